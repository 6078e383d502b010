package httpapi

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// TestKeyLifecycle follows the seeds' flow: create, call with X-API-Key and
// Bearer, check connectivity, list, update, rotate with an overlap, revoke.
func TestKeyLifecycle(t *testing.T) {
	h := newHarness(t)
	acme := h.tenant("acme")
	manager, managerID := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "acme admin", "permissions": []string{"keys:manage", "contacts:read", "contacts:write"}})

	// A tenant's own key creates keys for its tenant, without naming it.
	created := h.must(http.StatusCreated, "POST", "/v1/api-keys", manager, map[string]any{
		"name": "prod-order-bot", "environment": "test", "permissions": []string{"contacts:read"},
		"expires": "2027-01-01", "rotate_by": "90d", "metadata": map[string]string{"owner": "ops", "service": "orders"},
		"restrictions": map[string]any{"ips": []string{"127.0.0.1", "10.0.0.0/8"}},
	})
	d := created.data()
	plaintext, id := d["key"].(string), d["id"].(string)
	format, _ := apikey.NewFormat("sk")
	if env, perr := format.Parse(plaintext); perr != nil || env != keyward.Test {
		t.Fatalf("created key does not parse as a test key: %v", perr)
	}
	if !strings.HasPrefix(plaintext, "sk_test_") || d["prefix"] != "sk_test_" || !strings.HasPrefix(plaintext, d["start"].(string)) ||
		!strings.HasSuffix(plaintext, d["last4"].(string)) || d["tenant_id"] != acme || d["created_by"] != managerID {
		t.Errorf("created key fields: %s", created.raw)
	}
	if d["expires_at"] != "2027-01-01T00:00:00Z" || d["rotate_by"] != "2027-02-22T12:00:00Z" {
		t.Errorf("expires_at %v, rotate_by %v", d["expires_at"], d["rotate_by"])
	}
	if !strings.Contains(created.str("message"), "only once") {
		t.Errorf("no store-it-now message: %s", created.raw)
	}

	// Connectivity check with either header.
	for _, hdr := range [][]string{{"X-API-Key", plaintext}, {"Authorization", "Bearer " + plaintext}} {
		who := h.must(200, "GET", "/v1/whoami", "", nil, hdr...).data()
		if who["key_id"] != id || who["tenant_slug"] != "acme" || who["environment"] != "test" {
			t.Errorf("whoami: %v", who)
		}
	}

	// Show and list never carry the plaintext; last_used appears after the
	// batch is written.
	if err := h.verifier.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	shown := h.must(200, "GET", "/v1/api-keys/"+id, manager, nil)
	if strings.Contains(shown.raw, plaintext[8:]) || shown.data()["key"] != nil {
		t.Errorf("show carries the plaintext: %s", shown.raw)
	}
	if shown.data()["last_used_at"] == nil || shown.data()["last_used"] == nil || shown.data()["last_used_ip"] != "127.0.0.1" {
		t.Errorf("last used not shown: %s", shown.raw)
	}
	list := h.must(200, "GET", "/v1/api-keys?environment=test", manager, nil)
	if list.body["success"] != true || len(list.list()) != 1 || list.list()[0]["id"] != id {
		t.Errorf("list: %s", list.raw)
	}
	for _, field := range []string{"id", "name", "prefix", "start", "last4", "environment", "created_at", "last_used", "expires_at", "status"} {
		if _, ok := list.list()[0][field]; !ok {
			t.Errorf("list entry has no %q", field)
		}
	}

	// Update.
	upd := h.must(200, "PATCH", "/v1/api-keys/"+id, manager, map[string]any{"name": "order-bot", "expires": "never", "metadata": map[string]string{"owner": "dev"}}).data()
	if upd["name"] != "order-bot" || upd["expires_at"] != nil || upd["metadata"].(map[string]any)["owner"] != "dev" || upd["rotate_by"] == nil {
		t.Errorf("update: %v", upd)
	}

	// Rotate: the successor works at once, the old key until the grace ends.
	rot := h.must(http.StatusCreated, "POST", "/v1/api-keys/"+id+"/rotate", manager, map[string]any{"grace_period": "1h"})
	next, nextID := rot.data()["key"].(string), rot.data()["id"].(string)
	prev := rot.body["previous"].(map[string]any)
	if prev["rotated_to"] != nextID || prev["expires_at"] != "2026-11-24T13:00:00Z" || rot.data()["rotated_from"] != id || rot.data()["name"] != "order-bot" {
		t.Errorf("rotate: %s", rot.raw)
	}
	h.must(200, "GET", "/v1/whoami", next, nil)
	h.must(200, "GET", "/v1/whoami", plaintext, nil)
	h.clock.Advance(time.Hour)
	detail := problemOf(t, h.call("GET", "/v1/whoami", plaintext, nil), 401, keyward.CodeExpiredAPIKey)
	if !strings.Contains(detail, nextID) {
		t.Errorf("expired detail does not name the successor: %q", detail)
	}
	problemOf(t, h.call("POST", "/v1/api-keys/"+id+"/rotate", manager, nil), 409, keyward.CodeConflict)

	// Rotate with no grace: the old key stops at once.
	rot2 := h.must(http.StatusCreated, "POST", "/v1/api-keys/"+nextID+"/rotate", manager, map[string]any{"grace_period": "0"})
	problemOf(t, h.call("GET", "/v1/whoami", next, nil), 401, keyward.CodeExpiredAPIKey)
	third := rot2.data()["key"].(string)

	// Revoke: the seed's exact answer, and the key is refused at once.
	rev := h.must(200, "DELETE", "/v1/api-keys/"+rot2.data()["id"].(string), manager, nil)
	if rev.raw != `{"success":true,"message":"API key revoked successfully"}`+"\n" {
		t.Errorf("revoke answer: %s", rev.raw)
	}
	problemOf(t, h.call("GET", "/v1/whoami", third, nil), 401, keyward.CodeRevokedAPIKey)
	h.must(200, "DELETE", "/v1/api-keys/"+rot2.data()["id"].(string), manager, nil)
	problemOf(t, h.call("PATCH", "/v1/api-keys/"+rot2.data()["id"].(string), manager, map[string]any{"name": "x"}), 409, keyward.CodeConflict)
	if revokedKeys := h.must(200, "GET", "/v1/api-keys?status=revoked", manager, nil).list(); len(revokedKeys) != 1 || revokedKeys[0]["revoked_at"] == nil {
		t.Errorf("revoked keys: %v", revokedKeys)
	}
}

func TestListPagination(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	want := map[string]bool{}
	for i := 0; i < 7; i++ {
		_, id := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "k", "environment": []string{"live", "test"}[i%2]})
		want[id] = true
	}
	seen := map[string]bool{}
	cursor, pages := "", 0
	for {
		a := h.must(200, "GET", "/v1/api-keys?tenant_id=acme&limit=3&cursor="+cursor, h.root, nil)
		pages++
		for _, k := range a.list() {
			if seen[k["id"].(string)] {
				t.Errorf("key %s listed twice", k["id"])
			}
			seen[k["id"].(string)] = true
		}
		if cursor = a.str("next_cursor"); cursor == "" {
			break
		}
	}
	if pages != 3 || len(seen) != 7 {
		t.Errorf("%d pages, %d keys; want 3 pages, 7 keys", pages, len(seen))
	}
	if n := len(h.must(200, "GET", "/v1/api-keys?tenant_id=acme&environment=test", h.root, nil).list()); n != 3 {
		t.Errorf("test keys: %d, want 3", n)
	}
	if n := len(h.must(200, "GET", "/v1/api-keys?tenant_id=acme&status=revoked", h.root, nil).list()); n != 0 {
		t.Errorf("revoked keys: %d, want 0", n)
	}
}

// TestRotateEdges: a disabled key's successor is disabled too; a rotated
// key's grace can be shortened but not extended; a rotate request may come
// without a body, even chunked.
func TestRotateEdges(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	_, id := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "k"})
	h.must(200, "PATCH", "/v1/api-keys/"+id, h.root, map[string]any{"enabled": false})

	req, _ := http.NewRequest("POST", h.url+"/v1/api-keys/"+id+"/rotate", strings.NewReader(""))
	req.Header.Set("X-API-Key", h.root)
	req.ContentLength = -1 // sent chunked, with no content
	req.TransferEncoding = []string{"chunked"}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("rotate without a body: %d", resp.StatusCode)
	}
	old := h.must(200, "GET", "/v1/api-keys/"+id, h.root, nil).data()
	next := h.must(200, "GET", "/v1/api-keys/"+old["rotated_to"].(string), h.root, nil).data()
	if next["status"] != "disabled" {
		t.Errorf("successor of a disabled key is %v", next["status"])
	}
	for _, expires := range []string{"never", "30d"} {
		d := problemOf(t, h.call("PATCH", "/v1/api-keys/"+id, h.root, map[string]any{"expires": expires}), 409, keyward.CodeConflict)
		if !strings.Contains(d, "brought forward") {
			t.Errorf("detail %q", d)
		}
	}
	if got := h.must(200, "PATCH", "/v1/api-keys/"+id, h.root, map[string]any{"expires": "1h"}).data()["expires_at"]; got != "2026-11-24T13:00:00Z" {
		t.Errorf("grace brought forward to %v", got)
	}
}

// TestKeyNeverEchoed: a key pasted where an id or a path belongs is not
// repeated in the answer.
func TestKeyNeverEchoed(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	key, _ := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "k"})
	for _, path := range []string{"/v1/api-keys/" + key, "/v1/api-keys/" + key + "/rotate", "/v1/tenants/" + key, "/v1/" + key, "/v1/audit-log?target=" + key} {
		for _, method := range []string{"GET", "POST", "PATCH", "DELETE"} {
			a := h.call(method, path, h.root, nil)
			if strings.Contains(a.raw, key[8:]) {
				t.Errorf("%s %s: the answer holds the key: %s", method, path, a.raw)
			}
		}
	}
	// A key of this instance in a URL is refused before anything else
	// (TestKeyAnywhereInURL); a key-shaped id that is not one (here, a bad
	// checksum) is no such key.
	d := problemOf(t, h.call("GET", "/v1/api-keys/"+key, h.root, nil), 400, keyward.CodeInvalidRequest)
	if !strings.Contains(d, "the URL's path") {
		t.Errorf("detail %q", d)
	}
	d = problemOf(t, h.call("GET", "/v1/api-keys/"+flip(key), h.root, nil), 404, keyward.CodeNotFound)
	if !strings.Contains(d, "looks like an API key") {
		t.Errorf("detail %q", d)
	}
}
