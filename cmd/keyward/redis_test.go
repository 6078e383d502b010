package main

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/redistest"
)

// TestServeRedisLimits: with --redis, two nodes on one database share a
// key's rate limit: between them they allow it once, not once each as
// nodes without Redis do. When Redis stops answering, verification goes
// on (each node limiting alone, and saying so in its log), never turning
// into a 401; when it answers again, the limit is shared again.
func TestServeRedisLimits(t *testing.T) {
	d := newPGDeployment(t)
	root := d.migrate(t)
	rd := redistest.Start(t)
	url := rd.Database(t)
	a := d.startNode(t, "a", "--redis", url)
	b := d.startNode(t, "b", "--redis", url)
	a.call(t, "POST", "/v1/tenants", root, map[string]any{"slug": "acme"})
	created := a.call(t, "POST", "/v1/api-keys", root, map[string]any{"tenant_id": "acme", "name": "limited",
		"rate_limits": []map[string]any{{"name": "burst", "limit": 3, "period": "1h"}}})
	if created.status != 201 {
		t.Fatalf("create a limited key: %d %s", created.status, created.body)
	}
	key := decodeJSON[struct {
		Data struct{ Key string } `json:"data"`
	}](t, string(created.body)).Data.Key

	allowed := func(nodes ...*server) (n int) {
		t.Helper()
		for i := range 8 {
			ans := nodes[i%len(nodes)].call(t, "GET", "/v1/forward-auth", key, nil)
			switch {
			case ans.status == 200:
				n++
			case ans.status == 429 && ans.code() == keyward.CodeRateLimited:
			default:
				t.Fatalf("request %d: %d %s", i, ans.status, ans.body)
			}
		}
		return n
	}
	if n := allowed(a, b); n != 3 {
		t.Fatalf("two nodes on one Redis allowed %d requests of a limit of 3, want 3", n)
	}

	// Redis down: each node limits alone, from its own memory (which has
	// counted nothing yet), and logs it; no 401, no 5xx.
	rd.Halt(t)
	if n := allowed(a); n != 3 {
		t.Errorf("node a with Redis down allowed %d requests, want 3 (its own limit)", n)
	}
	if log := a.stderr.String(); !strings.Contains(log, "the shared limiter (Redis) failed; each node limits on its own") {
		t.Errorf("node a's log does not say that Redis failed:\n%s", log)
	}
	// Back: the limit is shared again (Redis, emptied by its restart,
	// counts afresh), once the node has asked it again (after 1 s).
	rd.Resume(t)
	time.Sleep(1100 * time.Millisecond)
	if n := allowed(a, b); n != 3 {
		t.Errorf("two nodes on Redis again allowed %d requests, want 3", n)
	}
}

// TestServeCreditsExact: credits of 10,000 spent through three nodes on
// one PostgreSQL database at once end at exactly zero, with exactly
// 10,000 requests allowed; every other is 429 quota_exceeded. The same
// with the nodes sharing rate limits through Redis, the key having a
// rate limit that never refuses: Redis counts the rates, the database
// the credits.
func TestServeCreditsExact(t *testing.T) {
	t.Run("postgres", func(t *testing.T) { testCreditsExact(t, nil, nil) })
	t.Run("postgres and redis", func(t *testing.T) {
		rd := redistest.Start(t)
		testCreditsExact(t, []string{"--redis", rd.Database(t)},
			[]map[string]any{{"name": "burst", "limit": 1_000_000, "period": "1s"}})
	})
}

// testCreditsExact is TestServeCreditsExact for nodes started with flags,
// and a key with rate limits (none when nil).
func testCreditsExact(t *testing.T, flags []string, rateLimits []map[string]any) {
	d := newPGDeployment(t)
	root := d.migrate(t)
	nodes := []*server{d.startNode(t, "a", flags...), d.startNode(t, "b", flags...), d.startNode(t, "c", flags...)}
	nodes[0].call(t, "POST", "/v1/tenants", root, map[string]any{"slug": "acme"})
	create := map[string]any{"tenant_id": "acme", "name": "metered", "credits": map[string]any{"remaining": 10000}}
	if rateLimits != nil {
		create["rate_limits"] = rateLimits
	}
	created := nodes[0].call(t, "POST", "/v1/api-keys", root, create)
	if created.status != 201 {
		t.Fatalf("create a key with credits: %d %s", created.status, created.body)
	}
	k := decodeJSON[struct {
		Data struct{ ID, Key string } `json:"data"`
	}](t, string(created.body)).Data

	var allowed, refused atomic.Int64
	var wg sync.WaitGroup
	for _, n := range nodes {
		for range 6 {
			wg.Go(func() {
				for {
					ans, err := n.try(t.Context(), "GET", "/v1/forward-auth", k.Key, nil)
					switch {
					case err != nil:
						t.Error(err)
						return
					case ans.status == 200:
						allowed.Add(1)
					case ans.status == 429 && ans.code() == keyward.CodeQuotaExceeded:
						refused.Add(1)
						return
					default:
						t.Errorf("%d %s", ans.status, ans.body)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	if allowed.Load() != 10000 {
		t.Errorf("three nodes allowed %d requests on 10000 credits, want exactly 10000 (%d refused)", allowed.Load(), refused.Load())
	}
	got := nodes[1].call(t, "GET", "/v1/api-keys/"+k.ID, root, nil)
	if !strings.Contains(string(got.body), `"credits":{"remaining":0}`) {
		t.Errorf("the key after: %s", got.body)
	}
}
