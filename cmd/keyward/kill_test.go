package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/postgres"
)

// TestNodeKilledPostgres kills one of three nodes on one PostgreSQL
// database with SIGKILL while it answers management writes and
// verifications, and checks that no change it committed is lost:
//   - every key it answered as created exists and verifies on the others;
//   - every key it answered as revoked is revoked, and refused within 1 s
//     by the others, which had cached it;
//   - a revocation that was committed but whose answer the kill cut off is
//     enforced like any other, and one that was not committed leaves the
//     key working everywhere;
//   - every key and every revocation has its audit entry and its change in
//     the feed, none half-written;
//   - the node started again on the database answers the same.
func TestNodeKilledPostgres(t *testing.T) {
	d := newPGDeployment(t)
	dsn := d.dsn
	root := d.migrate(t)
	b := d.startNode(t, "B")
	c := d.startNode(t, "C")
	k := startProcess(t, dsn)
	k.waitHealthy(t)
	nodes := map[string]*server{"B": b, "C": c}
	tenant := createTenant(t, b, root, "acme")

	// The keys to revoke through K are made and cached on B and C first,
	// so that B and C must learn of each revocation from the database.
	doomed := make([]madeKey, 150)
	for i := range doomed {
		doomed[i].key, doomed[i].id = createKey(t, b, root, tenant, fmt.Sprintf("doomed-%d", i))
		for name, s := range nodes {
			if a := s.call(t, "GET", "/v1/whoami", doomed[i].key, nil); a.status != http.StatusOK {
				t.Fatalf("whoami on node %s before the kill: %d %s", name, a.status, a.body)
			}
		}
	}
	steady, _ := createKey(t, b, root, tenant, "steady")

	// Traffic on K: one client creates keys, one revokes the doomed keys in
	// turn and two verify a key. A request the kill cuts off ends its
	// client.
	var (
		mu        sync.Mutex
		created   []madeKey           // answered 201 by K
		revoked   = map[string]bool{} // ids answered 200 by K
		attempted []string            // ids whose revocation was sent to K
		verified  int
	)
	ctx := t.Context()
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			a, err := k.try(ctx, "POST", "/v1/api-keys", root, map[string]any{"tenant_id": tenant, "name": fmt.Sprintf("made-on-k-%d", i)})
			if err != nil {
				return
			}
			m, ok := madeKeyOf(a)
			if !ok {
				t.Errorf("POST /v1/api-keys on K before the kill: %d %s", a.status, a.body)
				return
			}
			mu.Lock()
			created = append(created, m)
			mu.Unlock()
		}
	})
	wg.Go(func() {
		for _, d := range doomed {
			mu.Lock()
			attempted = append(attempted, d.id)
			mu.Unlock()
			a, err := k.try(ctx, "DELETE", "/v1/api-keys/"+d.id, root, nil)
			if err != nil {
				return
			}
			if a.status != http.StatusOK {
				t.Errorf("DELETE /v1/api-keys/%s on K before the kill: %d %s", d.id, a.status, a.body)
				return
			}
			mu.Lock()
			revoked[d.id] = true
			mu.Unlock()
		}
	})
	for range 2 {
		wg.Go(func() {
			for {
				a, err := k.try(ctx, "GET", "/v1/whoami", steady, nil)
				if err != nil {
					return
				}
				if a.status != http.StatusOK {
					t.Errorf("whoami on K before the kill: %d %s", a.status, a.body)
					return
				}
				mu.Lock()
				verified++
				mu.Unlock()
			}
		})
	}

	// If the test ends early, K is killed so that the clients end.
	t.Cleanup(func() {
		k.cmd.Process.Kill()
		wg.Wait()
	})

	// K is killed once both writers have had answers, in the middle of
	// their work.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		nc, nr := len(created), len(revoked)
		mu.Unlock()
		if nc >= 10 && nr >= 10 {
			break
		}
		if time.Now().After(deadline) || t.Failed() {
			t.Fatalf("K answered %d creations and %d revocations in 30 s; want 10 of each before the kill", nc, nr)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := k.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	wg.Wait()
	err := <-k.exited
	k.exited <- err
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("K exited with %v, want killed by SIGKILL", err)
	}
	if len(attempted) == len(doomed) && len(revoked) == len(doomed) {
		t.Fatalf("K revoked all %d doomed keys before the kill; the kill should come mid-traffic", len(doomed))
	}
	http.DefaultClient.CloseIdleConnections()

	// Every key K answered as created verifies on B and C.
	for _, m := range created {
		for name, s := range nodes {
			if a := s.call(t, "GET", "/v1/whoami", m.key, nil); a.status != http.StatusOK {
				t.Errorf("whoami on node %s with key %s that K created before the kill: %d %s", name, m.id, a.status, a.body)
			}
		}
	}

	// Every revocation sent to K, answered or not: what the database holds
	// is what B and C enforce, and a revocation K answered is there.
	keys := map[string]string{}
	for _, d := range doomed {
		keys[d.id] = d.key
	}
	committed := 0
	for _, id := range attempted {
		a := b.call(t, "GET", "/v1/api-keys/"+id, root, nil)
		var shown struct {
			Data keyward.Key `json:"data"`
		}
		if err := json.Unmarshal(a.body, &shown); a.status != http.StatusOK || err != nil {
			t.Fatalf("GET /v1/api-keys/%s on B: %d %s", id, a.status, a.body)
		}
		switch {
		case shown.Data.Status == keyward.KeyRevoked:
			committed++
			waitRefused(t, killed, keys[id], http.StatusUnauthorized, keyward.CodeRevokedAPIKey, nodes, "B", "C")
		case revoked[id]:
			t.Errorf("K answered 200 to the revocation of %s before the kill, but the database holds it %s", id, shown.Data.Status)
		default:
			for name, s := range nodes {
				if a := s.call(t, "GET", "/v1/whoami", keys[id], nil); a.status != http.StatusOK {
					t.Errorf("whoami on node %s with key %s, whose revocation was not committed: %d %s", name, id, a.status, a.body)
				}
			}
		}
	}
	t.Logf("before SIGKILL, K answered %d creations, %d revocations and %d verifications; %d revocation(s) sent, %d committed",
		len(created), len(revoked), verified, len(attempted), committed)

	// Each key of the tenant has one creation in the audit log, each
	// revoked key one revocation, and the feed names each of them.
	assertAuditAndFeed(t, dsn, tenant)

	// K started again on the database answers as B and C do.
	k2 := startProcess(t, dsn)
	k2.waitHealthy(t)
	for _, m := range created {
		if a := k2.call(t, "GET", "/v1/whoami", m.key, nil); a.status != http.StatusOK {
			t.Errorf("whoami on K restarted with key %s that K created before the kill: %d %s", m.id, a.status, a.body)
		}
	}
	for id := range revoked {
		if a := k2.call(t, "GET", "/v1/whoami", keys[id], nil); a.status != http.StatusUnauthorized || a.code() != keyward.CodeRevokedAPIKey {
			t.Errorf("whoami on K restarted with key %s that K revoked before the kill: %d %s", id, a.status, a.body)
		}
	}
}

// assertAuditAndFeed checks, in the database, that every key of tenant has
// exactly one key.create entry in the audit log, every revoked key exactly
// one key.revoke entry and every other key none, and that the change feed
// has a change for each key's creation and one more for each revocation.
func assertAuditAndFeed(t *testing.T, dsn, tenant string) {
	t.Helper()
	store, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()

	var keys []*keyward.Key
	for p := (keyward.Page{Limit: keyward.MaxPageLimit}); ; {
		ks, next, err := store.Keys(t.Context(), keyward.KeyFilter{TenantID: tenant}, p)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, ks...)
		if next == "" {
			break
		}
		p.Cursor = next
	}
	actions := map[string]map[string]int{} // key id → action → entries
	for p := (keyward.Page{Limit: keyward.MaxPageLimit}); ; {
		es, next, err := store.AuditLog(t.Context(), keyward.AuditFilter{TenantID: tenant}, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if actions[e.Target] == nil {
				actions[e.Target] = map[string]int{}
			}
			actions[e.Target][e.Action]++
		}
		if next == "" {
			break
		}
		p.Cursor = next
	}
	changes := map[string]int{} // key id → changes
	for after := int64(0); ; {
		cs, err := store.Changes(t.Context(), after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) == 0 {
			break
		}
		for _, c := range cs {
			if c.Kind == keyward.ChangeKey {
				changes[c.ID]++
			}
		}
		after = cs[len(cs)-1].Seq
	}

	for _, k := range keys {
		wantRevoke, wantChanges := 0, 1
		if k.Status == keyward.KeyRevoked {
			wantRevoke, wantChanges = 1, 2
		}
		if got := actions[k.ID][keyward.ActionKeyCreate]; got != 1 {
			t.Errorf("key %s has %d key.create entries in the audit log, want 1", k.ID, got)
		}
		if got := actions[k.ID][keyward.ActionKeyRevoke]; got != wantRevoke {
			t.Errorf("key %s (%s) has %d key.revoke entries in the audit log, want %d", k.ID, k.Status, got, wantRevoke)
		}
		if got := changes[k.ID]; got != wantChanges {
			t.Errorf("key %s (%s) has %d changes in the feed, want %d", k.ID, k.Status, got, wantChanges)
		}
	}
	for id := range actions {
		if id != tenant && !slices.ContainsFunc(keys, func(k *keyward.Key) bool { return k.ID == id }) {
			t.Errorf("the audit log has entries for %s, which is no key of the tenant", id)
		}
	}
}
