package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// TestThreeNodesPostgres runs three serve nodes on one PostgreSQL database,
// as behind a load balancer: a change made through any node's API is
// enforced by the others within 1 s of its answer, and a node stopped
// gracefully leaves the others answering.
func TestThreeNodesPostgres(t *testing.T) {
	d := newPGDeployment(t)
	// The first node migrates the database and prints the root key; the
	// others start on the database it made.
	a := d.startNode(t, "A")
	root := strings.TrimSuffix(a.stdout.String(), "\n")
	b := d.startNode(t, "B")
	c := d.startNode(t, "C")
	if out := b.stdout.String() + c.stdout.String(); out != "" {
		t.Errorf("the nodes started after the first printed on stdout: %q", out)
	}
	nodes := map[string]*server{"A": a, "B": b, "C": c}

	// Tenants and keys are made through node A.
	acme := createTenant(t, a, root, "acme")
	globex := createTenant(t, a, root, "globex")
	key1, id1 := createKey(t, a, root, acme, "to-revoke")
	key2, _ := createKey(t, a, root, acme, "of-a-suspended-tenant")
	key3, id3 := createKey(t, a, root, globex, "to-rotate")
	// Every key verifies on every node, which caches it: what follows
	// checks that the nodes learn of changes, not only that they look up
	// keys they have never seen.
	for _, k := range []string{key1, key2, key3} {
		for _, name := range []string{"B", "C", "A"} {
			if ans := nodes[name].call(t, "GET", "/v1/whoami", k, nil); ans.status != http.StatusOK {
				t.Fatalf("whoami on node %s with a key made through A: %d %s", name, ans.status, ans.body)
			}
		}
	}

	// Revoked through C, refused by A and B.
	if ans := c.call(t, "DELETE", "/v1/api-keys/"+id1, root, nil); ans.status != http.StatusOK {
		t.Fatalf("DELETE /v1/api-keys/%s on C: %d %s", id1, ans.status, ans.body)
	}
	waitRefused(t, time.Now(), key1, http.StatusUnauthorized, keyward.CodeRevokedAPIKey, nodes, "A", "B")

	// The tenant suspended through B: its keys are refused by A and C.
	if ans := b.call(t, "POST", "/v1/tenants/"+acme+"/suspend", root, nil); ans.status != http.StatusOK {
		t.Fatalf("POST /v1/tenants/%s/suspend on B: %d %s", acme, ans.status, ans.body)
	}
	waitRefused(t, time.Now(), key2, http.StatusForbidden, keyward.CodeAccountSuspended, nodes, "A", "C")

	// Rotated through A with no grace period: the old key is refused by B
	// and C, and the successor works there.
	ans := a.call(t, "POST", "/v1/api-keys/"+id3+"/rotate", root, map[string]any{"grace_period": "0"})
	if ans.status != http.StatusCreated {
		t.Fatalf("POST /v1/api-keys/%s/rotate on A: %d %s", id3, ans.status, ans.body)
	}
	rotated := time.Now()
	var successor struct {
		Data struct {
			Key string `json:"key"`
		} `json:"data"`
	}
	if err := json.Unmarshal(ans.body, &successor); err != nil || successor.Data.Key == "" {
		t.Fatalf("rotate answered %s (%v)", ans.body, err)
	}
	waitRefused(t, rotated, key3, http.StatusUnauthorized, keyward.CodeExpiredAPIKey, nodes, "B", "C")
	for _, name := range []string{"B", "C"} {
		if ans := nodes[name].call(t, "GET", "/v1/whoami", successor.Data.Key, nil); ans.status != http.StatusOK {
			t.Errorf("whoami on node %s with the successor key: %d %s", name, ans.status, ans.body)
		}
	}

	// B stops gracefully; A and C go on answering, and still share their
	// changes.
	if err := b.shutdown(t); err != nil {
		t.Fatalf("node B returned %v when stopped\nstderr: %s", err, b.stderr)
	}
	http.DefaultClient.CloseIdleConnections()
	assertStopped(t, b.stderr.String())
	key4, id4 := createKey(t, a, root, globex, "after-b-stopped")
	for _, name := range []string{"A", "C"} {
		if ans := nodes[name].call(t, "GET", "/v1/whoami", key4, nil); ans.status != http.StatusOK {
			t.Fatalf("whoami on node %s after B stopped: %d %s", name, ans.status, ans.body)
		}
	}
	if ans := c.call(t, "DELETE", "/v1/api-keys/"+id4, root, nil); ans.status != http.StatusOK {
		t.Fatalf("DELETE /v1/api-keys/%s on C after B stopped: %d %s", id4, ans.status, ans.body)
	}
	waitRefused(t, time.Now(), key4, http.StatusUnauthorized, keyward.CodeRevokedAPIKey, nodes, "A")
}

// createTenant makes a tenant through node s and returns its id.
func createTenant(t *testing.T, s *server, root, slug string) string {
	t.Helper()
	ans := s.call(t, "POST", "/v1/tenants", root, map[string]any{"slug": slug})
	var created struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(ans.body, &created); ans.status != http.StatusCreated || err != nil || created.Data.ID == "" {
		t.Fatalf("POST /v1/tenants %s: %d %s", slug, ans.status, ans.body)
	}
	return created.Data.ID
}

// createKey makes a key of tenant through node s and returns its plaintext
// and id.
func createKey(t *testing.T, s *server, root, tenant, name string) (key, id string) {
	t.Helper()
	ans := s.call(t, "POST", "/v1/api-keys", root, map[string]any{"tenant_id": tenant, "name": name})
	m, ok := madeKeyOf(ans)
	if !ok {
		t.Fatalf("POST /v1/api-keys %s: %d %s", name, ans.status, ans.body)
	}
	return m.key, m.id
}

// madeKey is a key a test made: its plaintext and its id.
type madeKey struct{ key, id string }

// madeKeyOf reads the key that an answer to POST /v1/api-keys created; ok
// is false unless the answer is a 201 with the key and its id.
func madeKeyOf(a answer) (m madeKey, ok bool) {
	var created struct {
		Data struct {
			ID  string `json:"id"`
			Key string `json:"key"`
		} `json:"data"`
	}
	if a.status != http.StatusCreated || json.Unmarshal(a.body, &created) != nil || created.Data.Key == "" || created.Data.ID == "" {
		return madeKey{}, false
	}
	return madeKey{created.Data.Key, created.Data.ID}, true
}

// waitRefused polls GET /v1/whoami with key on each of the nodes named
// until it answers status and code, and fails the test if one of them does
// not within 1 s of since, the time the change was answered.
func waitRefused(t *testing.T, since time.Time, key string, status int, code keyward.Code, nodes map[string]*server, names ...string) {
	t.Helper()
	for _, name := range names {
		for {
			ans := nodes[name].call(t, "GET", "/v1/whoami", key, nil)
			if ans.status == status && ans.code() == code {
				t.Logf("node %s answered %d %s %v after the change", name, status, code, time.Since(since))
				break
			}
			if time.Since(since) > time.Second {
				t.Fatalf("1 s after the change, node %s answers %d %s, want %d %s", name, ans.status, ans.body, status, code)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
