package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// TestPostgresRestartUnderTraffic stops and starts PostgreSQL under three
// nodes that are answering verifications on each node and key creations
// on one. Throughout:
//   - a valid key is never answered 401, and the cached keys keep
//     answering 200 on every node;
//   - a creation is answered 201 or 503 storage_unavailable, and every key
//     answered as created verifies on every node afterwards;
//   - no node stops answering.
//
// When the database is back, each node is ready again without a restart
// of its own, and three revocations made right after recovery (from the
// command line as soon as the database takes writes, then through node A
// and through node C) are each refused by all three nodes within 1 s of
// their answer, and refused from then on.
func TestPostgresRestartUnderTraffic(t *testing.T) {
	d := newPGDeployment(t)
	dsn := d.dsn
	root := d.migrate(t)
	nodes := map[string]*server{}
	for _, name := range []string{"A", "B", "C"} {
		nodes[name] = d.startNode(t, name, "--flush-interval", "200ms")
	}
	tenant := createTenant(t, nodes["A"], root, "acme")
	steady, _ := createKey(t, nodes["A"], root, tenant, "steady")
	var later [3]madeKey // revoked after recovery
	for i := range later {
		later[i].key, later[i].id = createKey(t, nodes["A"], root, tenant, fmt.Sprintf("revoked-after-recovery-%d", i))
	}
	verifying := []string{steady, later[0].key, later[1].key, later[2].key}
	for name, s := range nodes {
		for _, k := range verifying {
			if a := s.call(t, "GET", "/v1/whoami", k, nil); a.status != http.StatusOK {
				t.Fatalf("whoami on node %s before the restart: %d %s", name, a.status, a.body)
			}
		}
	}

	// sent and answered hold when each revocation was sent and answered.
	var (
		mu       sync.Mutex
		sent     = map[string]time.Time{}
		answered = map[string]time.Time{}
		created  []madeKey
		counts   = map[string]int{} // answers by node, then creations by status
	)
	ctx, stopTraffic := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for name, s := range nodes {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				key := verifying[i%len(verifying)]
				began := time.Now()
				a, err := s.try(ctx, "GET", "/v1/whoami", key, nil)
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					t.Errorf("whoami on node %s: no answer: %v", name, err)
					return
				}
				mu.Lock()
				sentAt, isSent := sent[key]
				answeredAt, isAnswered := answered[key]
				counts[name]++
				mu.Unlock()
				switch {
				case a.status == http.StatusOK && isAnswered && began.After(answeredAt.Add(time.Second)):
					t.Errorf("node %s answered 200 for a key revoked %v before the request", name, began.Sub(answeredAt))
				case a.status == http.StatusOK:
				case a.status == http.StatusUnauthorized && a.code() == keyward.CodeRevokedAPIKey && isSent && time.Now().After(sentAt):
				default:
					t.Errorf("node %s answered %d %s for a valid, cached key", name, a.status, a.body)
				}
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			a, err := nodes["B"].try(ctx, "POST", "/v1/api-keys", root, map[string]any{"tenant_id": tenant, "name": fmt.Sprintf("made-under-traffic-%d", i)})
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				t.Errorf("POST /v1/api-keys on B: no answer: %v", err)
				return
			}
			m, made := madeKeyOf(a)
			switch {
			case made:
				mu.Lock()
				created = append(created, m)
				counts["201"]++
				mu.Unlock()
			case a.status == http.StatusServiceUnavailable && a.code() == keyward.CodeStorageUnavailable:
				mu.Lock()
				counts["503"]++
				mu.Unlock()
			default:
				t.Errorf("POST /v1/api-keys on B: %d %s, want 201 or 503 storage_unavailable", a.status, a.body)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	t.Cleanup(func() {
		stopTraffic()
		wg.Wait()
	})

	time.Sleep(300 * time.Millisecond)
	d.pg.Halt(t)
	halted := time.Now()
	for _, s := range nodes {
		waitStatus(t, s, "/readyz", http.StatusServiceUnavailable, 10*time.Second)
	}
	time.Sleep(time.Second)
	mu.Lock()
	refused := counts["503"]
	mu.Unlock()
	if refused == 0 {
		t.Errorf("no creation was answered 503 during the outage")
	}
	d.pg.Resume(t)
	resumed := time.Now()
	t.Logf("PostgreSQL was down for %v", resumed.Sub(halted))

	// Revoked from the command line as soon as the database takes writes,
	// which may be before the nodes have noticed it is back.
	revoke := func(k madeKey, how string, do func() bool) {
		t.Helper()
		mu.Lock()
		sent[k.key] = time.Now()
		mu.Unlock()
		for deadline := time.Now().Add(20 * time.Second); !do(); {
			if time.Now().After(deadline) {
				t.Fatalf("the revocation %s did not succeed within 20 s of PostgreSQL's restart", how)
			}
			time.Sleep(10 * time.Millisecond)
		}
		at := time.Now()
		mu.Lock()
		answered[k.key] = at
		mu.Unlock()
		t.Logf("revoked %s %v after PostgreSQL started", how, at.Sub(resumed))
		waitRefused(t, at, k.key, http.StatusUnauthorized, keyward.CodeRevokedAPIKey, nodes, "A", "B", "C")
	}
	revoke(later[0], "from the command line", func() bool {
		return cli(t, dsn, "keys", "revoke", later[0].id).err == nil
	})
	for name, s := range nodes {
		waitStatus(t, s, "/readyz", http.StatusOK, 10*time.Second)
		t.Logf("node %s was ready %v after PostgreSQL started", name, time.Since(resumed))
	}
	for i, name := range []string{"A", "C"} {
		k := later[i+1]
		revoke(k, "through node "+name, func() bool {
			a, err := nodes[name].try(t.Context(), "DELETE", "/v1/api-keys/"+k.id, root, nil)
			return err == nil && a.status == http.StatusOK
		})
	}

	// The nodes answer under traffic a while longer, then every key
	// answered as created verifies everywhere.
	time.Sleep(500 * time.Millisecond)
	stopTraffic()
	wg.Wait()
	http.DefaultClient.CloseIdleConnections()
	t.Logf("answers: %v", counts)
	for _, m := range created {
		for name, s := range nodes {
			if a := s.call(t, "GET", "/v1/whoami", m.key, nil); a.status != http.StatusOK {
				t.Errorf("whoami on node %s with key %s, created under traffic: %d %s", name, m.id, a.status, a.body)
			}
		}
	}
	assertAuditAndFeed(t, dsn, tenant)
}
