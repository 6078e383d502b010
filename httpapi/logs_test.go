package httpapi

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// TestRequestLogs: a refused call is found by its X-Request-Id through
// GET /v1/logs, on every surface of both fronts (the API's routes,
// forward-auth, POST /v1/verify), with what it was asked and answered, by
// its tenant's manager and by a root key; another tenant's manager finds
// nothing, and is answered 404 for the key; an entry of no tenant is the
// root key's alone; the filters select what they say; nothing holds the
// key or the query string.
func TestRequestLogs(t *testing.T) { fronts(t, testRequestLogs) }

func testRequestLogs(t *testing.T, front harnessOption) {
	h := newHarness(t, front)
	h.tenant("acme")
	h.tenant("globex")
	manager, _ := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "manager", "permissions": []string{"keys:manage", "contacts:read"}})
	other, _ := h.key(h.root, map[string]any{"tenant_id": "globex", "name": "other", "permissions": []string{"keys:manage"}})
	verifier, _ := h.key(h.root, map[string]any{"tenant_id": "system", "name": "verifier", "permissions": []string{"keyward:verify"}})
	key, keyID := h.key(manager, map[string]any{"tenant_id": "acme", "name": "app", "permissions": []string{"contacts:read"}})
	revoked, revokedID := h.key(manager, map[string]any{"tenant_id": "acme", "name": "old", "permissions": []string{"contacts:read"}})
	h.must(200, "DELETE", "/v1/api-keys/"+revokedID, manager, nil)

	type want struct {
		surface, method, path, route string
		status                       int
		code                         keyward.Code
		keyID                        string
	}
	cases := []struct {
		name string
		call func() answer
		want want
	}{
		{"api refused", func() answer { return h.call("GET", "/v1/whoami?x=1", revoked, nil, "User-Agent", "probe/1") },
			want{"api", "GET", "/v1/whoami", "GET /v1/whoami", 401, keyward.CodeRevokedAPIKey, revokedID}},
		{"api answered 404", func() answer { return h.call("GET", "/v1/api-keys/key_nope", manager, nil) },
			want{"api", "GET", "/v1/api-keys/key_nope", "GET /v1/api-keys/{id}", 404, keyward.CodeNotFound, ""}},
		{"forward-auth refused", func() answer {
			return h.call("GET", "/v1/forward-auth", revoked, nil, "X-Original-Method", "POST", "X-Original-URI", "/v1/orders?token=secret", "User-Agent", "probe/1")
		}, want{"forward-auth", "POST", "/v1/orders", "", 401, keyward.CodeRevokedAPIKey, revokedID}},
		{"forward-auth allowed", func() answer {
			return h.call("GET", "/v1/forward-auth", key, nil, "X-Original-Method", "GET", "X-Original-URI", "/v1/contacts/7")
		}, want{"forward-auth", "GET", "/v1/contacts/7", "", 200, "", keyID}},
		{"verify refused", func() answer {
			return h.call("POST", "/v1/verify", verifier, map[string]any{"key": revoked, "method": "DELETE", "path": "/v1/contacts/9?q=1", "ip": "192.0.2.44"})
		}, want{"verify", "DELETE", "/v1/contacts/9", "", 401, keyward.CodeRevokedAPIKey, revokedID}},
	}
	ids := map[string]string{}
	for _, c := range cases {
		a := c.call()
		ids[c.name] = a.header.Get("X-Request-Id")
	}
	h.flushLogs()
	for _, c := range cases {
		for _, by := range []string{manager, h.root} {
			got := h.must(200, "GET", "/v1/logs?request_id="+url.QueryEscape(ids[c.name]), by, nil).list()
			if len(got) != 1 {
				t.Errorf("%s: %d entries for %s, want 1", c.name, len(got), ids[c.name])
				continue
			}
			e, w := got[0], c.want
			if e["surface"] != w.surface || e["method"] != w.method || e["path"] != w.path || str(e["route"]) != w.route ||
				e["status"] != float64(w.status) || str(e["code"]) != string(w.code) || (w.keyID != "" && e["key_id"] != w.keyID) ||
				e["request_id"] != ids[c.name] || !strings.HasPrefix(str(e["tenant_id"]), "ten_") {
				t.Errorf("%s: entry %v, want %+v", c.name, e, w)
			}
		}
		// Another tenant's manager finds nothing of acme's.
		if got := h.must(200, "GET", "/v1/logs?request_id="+url.QueryEscape(ids[c.name]), other, nil).list(); len(got) != 0 {
			t.Errorf("%s: globex's manager sees %v", c.name, got)
		}
	}
	// Who made the API's refusal, where from, with what.
	e := h.must(200, "GET", "/v1/logs?request_id="+url.QueryEscape(ids["api refused"]), manager, nil).list()[0]
	if e["user_agent"] != "probe/1" || e["client_ip"] != "127.0.0.1" || e["environment"] != "live" || e["latency_us"] == nil {
		t.Errorf("api refusal: %v", e)
	}
	if e := h.must(200, "GET", "/v1/logs?request_id="+url.QueryEscape(ids["verify refused"]), manager, nil).list()[0]; e["client_ip"] != "192.0.2.44" {
		t.Errorf("verify: client_ip %v, want the body's", e["client_ip"])
	}

	// A key that does not exist belongs to no tenant: the root key sees
	// its entry, a tenant's manager does not.
	unknown := h.call("GET", "/v1/whoami", "sk_live_"+strings.Repeat("A", 37), nil).header.Get("X-Request-Id")
	h.flushLogs()
	if got := h.must(200, "GET", "/v1/logs?request_id="+unknown, h.root, nil).list(); len(got) != 1 || str(got[0]["tenant_id"]) != "" {
		t.Errorf("unknown key, root: %v", got)
	}
	if got := h.must(200, "GET", "/v1/logs?request_id="+unknown, manager, nil).list(); len(got) != 0 {
		t.Errorf("unknown key, acme's manager: %v", got)
	}

	// Filters.
	if got := h.must(200, "GET", "/v1/logs?key_id="+revokedID, manager, nil).list(); len(got) != 3 {
		t.Errorf("key_id: %d entries, want 3 (api, forward-auth, verify)", len(got))
	}
	problemOf(t, h.call("GET", "/v1/logs?key_id="+revokedID, other, nil), 404, keyward.CodeNotFound)
	if got := h.must(200, "GET", "/v1/logs?code=allowed&surface=forward-auth", manager, nil).list(); len(got) != 1 || got[0]["key_id"] != keyID {
		t.Errorf("allowed forward-auth: %v", got)
	}
	if got := h.must(200, "GET", "/v1/logs?status=404", manager, nil).list(); len(got) != 1 {
		t.Errorf("status=404: %v", got)
	}
	if got := h.must(200, "GET", "/v1/logs?to=2000-01-01", manager, nil).list(); len(got) != 0 {
		t.Errorf("to=2000-01-01: %v", got)
	}
	page := h.must(200, "GET", "/v1/logs?limit=2", manager, nil)
	if len(page.list()) != 2 || page.body["next_cursor"] == nil {
		t.Errorf("limit=2: %s", page.raw)
	}
	for _, bad := range []struct{ query, field string }{
		{"code=bogus", "code"}, {"status=42", "status"}, {"from=yesterday", "from"}, {"surface=smtp", "surface"},
		{"from=2026-12-01&to=2026-11-01", "to"}, {"after=x", "after"}, {"limit=0", "limit"},
	} {
		a := h.call("GET", "/v1/logs?"+bad.query, manager, nil)
		problemOf(t, a, http.StatusBadRequest, keyward.CodeInvalidRequest)
		if a.str("field") != bad.field {
			t.Errorf("%s: field %q, want %q", bad.query, a.str("field"), bad.field)
		}
	}

	// Nothing the log holds quotes a key or a query string.
	all := h.must(200, "GET", "/v1/logs?limit=200", h.root, nil).raw
	for _, secret := range []string{key, revoked, manager, verifier, "token=secret", "x=1", "q=1"} {
		if strings.Contains(all, secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
}

// str is v as a string, "" for nil.
func str(v any) string {
	s, _ := v.(string)
	return s
}

// TestUsageCounts: GET /v1/usage counts a key's and a tenant's requests by
// hour and day, accepted and refused by code, every bucket of the range,
// and answers another tenant's key or tenant as one that does not exist.
func TestUsageCounts(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	h.tenant("globex")
	manager, managerID := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "manager", "permissions": []string{"keys:manage", "contacts:read"}})
	other, _ := h.key(h.root, map[string]any{"tenant_id": "globex", "name": "other", "permissions": []string{"keys:manage"}})
	key, keyID := h.key(manager, map[string]any{"tenant_id": "acme", "name": "app", "permissions": []string{"contacts:read"}})
	before := time.Now().UTC()
	for range 3 {
		h.must(200, "GET", "/v1/forward-auth", key, nil, "X-Original-URI", "/v1/contacts/1")
	}
	refused := h.must(403, "GET", "/v1/api-keys", key, nil) // no keys:manage
	h.must(200, "GET", "/v1/whoami", key, nil)
	unknown := h.must(401, "GET", "/v1/whoami", "sk_live_"+strings.Repeat("A", 37), nil).str("code")
	h.flushLogs()
	after := time.Now().UTC()
	code := refused.str("code")

	hours := "from=" + before.Add(-time.Hour).Format(time.RFC3339) + "&to=" + after.Format(time.RFC3339)
	u := h.must(200, "GET", "/v1/usage?key_id="+keyID+"&"+hours, manager, nil).body
	if u["key_id"] != keyID || !strings.HasPrefix(str(u["tenant_id"]), "ten_") || u["granularity"] != "hour" {
		t.Errorf("usage of the key: %v", u)
	}
	buckets := u["buckets"].([]any)
	want := 2 + int(after.Truncate(time.Hour).Sub(before.Truncate(time.Hour))/time.Hour)
	if len(buckets) != want {
		t.Fatalf("%d buckets, want %d: the hour before, and every hour to now", len(buckets), want)
	}
	if first := buckets[0].(map[string]any); first["requests"] != 0.0 || first["start"] != before.Add(-time.Hour).Truncate(time.Hour).Format(time.RFC3339) {
		t.Errorf("first bucket %v: want the hour before, empty", first)
	}
	total := u["total"].(map[string]any)
	if total["requests"] != 5.0 || total["allowed"] != 4.0 || total["refused"] != 1.0 || total["codes"].(map[string]any)[code] != 1.0 {
		t.Errorf("the key's total: %v; want 5 requests, 4 allowed, 1 %s", total, code)
	}
	// The tenant's usage adds its other keys' (the manager's calls here),
	// and only the root key sees that of no key.
	tenant := h.must(200, "GET", "/v1/usage?"+hours, manager, nil).body["total"].(map[string]any)
	if tenant["requests"].(float64) <= 5 || tenant["codes"].(map[string]any)[unknown] != nil {
		t.Errorf("acme's total: %v; want more than its key's, and no unknown key's", tenant)
	}
	all := h.must(200, "GET", "/v1/usage?"+hours, h.root, nil).body["total"].(map[string]any)
	if all["codes"].(map[string]any)[unknown] != 1.0 {
		t.Errorf("everything, for root: %v; want the unknown key's refusal", all)
	}
	// By the day: the same totals.
	days := h.must(200, "GET", "/v1/usage?granularity=day&key_id="+keyID+"&from="+before.Format(time.DateOnly)+"&to="+after.Format(time.RFC3339), manager, nil).body
	if d := days["total"].(map[string]any); d["requests"] != 5.0 || days["granularity"] != "day" {
		t.Errorf("by the day: %v", days)
	}
	// Another tenant's key or tenant is not found; bad input names its field.
	problemOf(t, h.call("GET", "/v1/usage?key_id="+keyID, other, nil), 404, keyward.CodeNotFound)
	problemOf(t, h.call("GET", "/v1/usage?tenant_id=acme", other, nil), 404, keyward.CodeNotFound)
	problemOf(t, h.call("GET", "/v1/usage?tenant_id=globex&key_id="+managerID, h.root, nil), 404, keyward.CodeNotFound)
	for _, bad := range []struct{ query, field string }{
		{"granularity=week", "granularity"}, {"from=yesterday", "from"}, {"to=soon", "to"},
		{"from=2026-12-01&to=2026-11-01", "to"}, {"from=2025-01-01&to=2026-11-01", "from"},
	} {
		a := h.call("GET", "/v1/usage?"+bad.query, manager, nil)
		problemOf(t, a, http.StatusBadRequest, keyward.CodeInvalidRequest)
		if a.str("field") != bad.field {
			t.Errorf("%s: field %q, want %q", bad.query, a.str("field"), bad.field)
		}
	}
}
