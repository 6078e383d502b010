package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/pgtest"
)

// TestPartitionedNodePostgres cuts node P off from PostgreSQL, as when a
// network partition leaves the database silent (connections neither
// answered nor closed), while node A still reaches it. Cut off, P answers
// its cached keys at once; answers a key it cannot check, and a management
// call, 503 storage_unavailable with Retry-After after --storage-timeout
// (1s here), not after the 10 s connect timeout or never; and is not
// ready. When the network heals, P is ready again without a restart, and
// refuses within 1 s a key revoked through A while P was cut off.
func TestPartitionedNodePostgres(t *testing.T) {
	d := newPGDeployment(t)
	root := d.migrate(t)
	proxy, throughProxy := pgtest.NewProxy(t, d.dsn)
	a := d.startNode(t, "A")
	p := startNodeOn(t, "P", throughProxy, "--storage-timeout", "1s")
	tenant := createTenant(t, a, root, "acme")
	cached, cachedID := createKey(t, a, root, tenant, "cached")
	revoked, revokedID := createKey(t, a, root, tenant, "revoked-while-cut-off")
	for _, k := range []string{cached, revoked, root} {
		if ans := p.call(t, "GET", "/v1/whoami", k, nil); ans.status != http.StatusOK {
			t.Fatalf("whoami on P before the cut: %d %s", ans.status, ans.body)
		}
	}

	proxy.Cut()
	t.Logf("P is cut off from PostgreSQL")
	// A key made now is one P has not heard of.
	uncached, _ := createKey(t, a, root, tenant, "unknown-to-p")
	if ans := p.call(t, "GET", "/v1/whoami", cached, nil); ans.status != http.StatusOK {
		t.Errorf("whoami on P with a cached key, cut off: %d %s", ans.status, ans.body)
	}
	for _, c := range []struct {
		what, path, key string
	}{
		{"an uncached key", "/v1/whoami", uncached},
		{"a management call", "/v1/api-keys/" + cachedID, root},
	} {
		began := time.Now()
		status, header, body := get(t, p, c.path, c.key)
		took := time.Since(began)
		if status != http.StatusServiceUnavailable || (answer{status, body}).code() != keyward.CodeStorageUnavailable || header.Get("Retry-After") == "" {
			t.Errorf("%s on P, cut off: %d %v %s, want 503 storage_unavailable with Retry-After", c.what, status, header, body)
		}
		t.Logf("%s on P, cut off, was answered %d in %v", c.what, status, took)
		if took > 5*time.Second {
			t.Errorf("%s on P, cut off, took %v to answer; --storage-timeout is 1s", c.what, took)
		}
	}
	waitStatus(t, p, "/readyz", http.StatusServiceUnavailable, 10*time.Second)

	// Revoked through A while P cannot hear of it.
	if ans := a.call(t, "DELETE", "/v1/api-keys/"+revokedID, root, nil); ans.status != http.StatusOK {
		t.Fatalf("DELETE /v1/api-keys/%s on A: %d %s", revokedID, ans.status, ans.body)
	}
	time.Sleep(500 * time.Millisecond)

	proxy.Mend()
	mended := time.Now()
	t.Logf("the network healed")
	waitRefused(t, mended, revoked, http.StatusUnauthorized, keyward.CodeRevokedAPIKey, map[string]*server{"P": p}, "P")
	waitStatus(t, p, "/readyz", http.StatusOK, 10*time.Second)
	t.Logf("P was ready %v after the network healed", time.Since(mended))
	if ans := p.call(t, "GET", "/v1/whoami", uncached, nil); ans.status != http.StatusOK {
		t.Errorf("whoami on P with the uncached key after the network healed: %d %s", ans.status, ans.body)
	}
}
