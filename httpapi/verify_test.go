package httpapi

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/lockedbuffer"
)

func TestVerifyEndpoint(t *testing.T) { fronts(t, testVerifyEndpoint) }

func testVerifyEndpoint(t *testing.T, front harnessOption) {
	h := newHarness(t, front)
	h.tenant("acme")
	service, _ := h.key(h.root, map[string]any{"tenant_id": keyward.SystemTenantID, "name": "gateway", "permissions": []string{"keyward:verify"}})
	customer, customerID := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "c", "permissions": []string{"contacts:read"}, "restrictions": map[string]any{"ips": []string{"198.51.100.0/24"}}})

	ok := h.must(200, "POST", "/v1/verify", service, map[string]any{"key": customer, "permissions": []string{"contacts:read"}, "ip": "198.51.100.7"}).body
	if ok["valid"] != true || ok["status"] != float64(200) || ok["key_id"] != customerID || ok["environment"] != "live" {
		t.Errorf("valid verify: %v", ok)
	}
	// A body the strict decoder refuses, one with an escape it reads, and
	// one over the limit, are answered alike by every front.
	if a := h.call("POST", "/v1/verify", service, `{"key":"`+customer+`","scope":"admin"}`); problemOf(t, a, 400, keyward.CodeInvalidRequest) == "" || a.str("field") != "scope" {
		t.Errorf("an unknown field: %s", a.raw)
	}
	if a := h.must(200, "POST", "/v1/verify", service, `{"key":"`+customer+`","permissions":["contacts\u003aread"],"ip":"198.51.100.7"}`); a.body["valid"] != true {
		t.Errorf("an escaped permission: %s", a.raw)
	}
	if h.authURL == "" {
		// The auth listener refuses such a body from its Content-Length
		// and closes the connection; a client still sending it may see a
		// reset first (gateway's TestAuthBodyTooLarge sends none).
		if d := problemOf(t, h.call("POST", "/v1/verify", service, `{"key":"`+strings.Repeat("k", maxBody)+`"}`), 400, keyward.CodeInvalidRequest); !strings.Contains(d, "larger than") {
			t.Errorf("a body over the limit: %s", d)
		}
	}
	cases := []struct {
		body   map[string]any
		code   keyward.Code
		status float64
	}{
		{map[string]any{"key": customer, "ip": "203.0.113.1"}, keyward.CodeIPNotAllowed, 403},
		{map[string]any{"key": customer, "ip": "198.51.100.7", "permissions": []string{"contacts:write"}}, keyward.CodeInsufficientPermissions, 403},
		{map[string]any{"key": " " + customer}, keyward.CodeMalformedAPIKey, 401},
		{map[string]any{"key": ""}, keyward.CodeMissingAPIKey, 401},
	}
	for _, tc := range cases {
		got := h.must(200, "POST", "/v1/verify", service, tc.body).body
		if got["valid"] != false || got["code"] != string(tc.code) || got["status"] != tc.status || got["detail"] == "" {
			t.Errorf("verify %v: %v", tc.body["key"] != "", got)
		}
	}
	if d := h.must(200, "POST", "/v1/verify", service, map[string]any{"key": " " + customer}).body["detail"].(string); !strings.Contains(d, "whitespace") {
		t.Errorf("whitespace detail: %q", d)
	}
	problemOf(t, h.call("POST", "/v1/verify", service, map[string]any{"key": customer, "ip": "nowhere"}), 400, keyward.CodeInvalidRequest)
	// A root key may verify too.
	if got := h.must(200, "POST", "/v1/verify", h.root, map[string]any{"key": customer, "ip": "198.51.100.7"}).body; got["valid"] != true {
		t.Errorf("root verify: %v", got)
	}
	// The caller needs keyward:verify.
	other, _ := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "o"})
	problemOf(t, h.call("POST", "/v1/verify", other, map[string]any{"key": customer}), 403, keyward.CodeInsufficientPermissions)
	// A key without permissions shows [], as /v1/whoami does; a refused
	// key none.
	if got := h.must(200, "POST", "/v1/verify", service, map[string]any{"key": other}).body; got["valid"] != true || fmt.Sprint(got["permissions"]) != "[]" {
		t.Errorf("verify a key without permissions: %v", got)
	}
	if got := h.must(200, "POST", "/v1/verify", service, map[string]any{"key": " " + customer}).body; got["permissions"] != nil {
		t.Errorf("verify a malformed key: %v", got)
	}
	if perms, isList := ok["permissions"].([]any); !isList || len(perms) != 1 {
		t.Errorf("a valid verify of a key with one permission: %v", ok)
	}
}

func TestForwardAuth(t *testing.T) { fronts(t, testForwardAuth) }

func testForwardAuth(t *testing.T, front harnessOption) {
	h := newHarness(t, front, withTrustedProxies("127.0.0.1/32"))
	h.tenant("acme")
	key, id := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "c", "environment": "test", "permissions": []string{"contacts:read", "messages:send"}, "restrictions": map[string]any{"ips": []string{"198.51.100.7"}}})

	// The client's address comes from X-Forwarded-For because the peer
	// (127.0.0.1) is a trusted proxy.
	for _, method := range []string{"GET", "POST", "DELETE"} {
		a := h.must(200, method, "/v1/forward-auth", "", nil, "X-API-Key", key, "X-Forwarded-For", "198.51.100.7", "X-Forwarded-Method", "POST", "X-Forwarded-Uri", "/v1/contacts")
		if a.header.Get("X-Keyward-Key-Id") != id || a.header.Get("X-Keyward-Environment") != "test" ||
			a.header.Get("X-Keyward-Permissions") != "contacts:read,messages:send" || !strings.HasPrefix(a.header.Get("X-Keyward-Tenant"), "ten_") {
			t.Errorf("%s: identity headers %v", method, a.header)
		}
	}
	// A spoofed address in front of the real one is not believed.
	problemOf(t, h.call("GET", "/v1/forward-auth", "", nil, "X-API-Key", key, "X-Forwarded-For", "198.51.100.7, 203.0.113.9"), 403, keyward.CodeIPNotAllowed)
	problemOf(t, h.call("GET", "/v1/forward-auth", "", nil, "X-API-Key", key), 403, keyward.CodeIPNotAllowed)
	problemOf(t, h.call("GET", "/v1/forward-auth", "", nil), 401, keyward.CodeMissingAPIKey)

	// The presenting rules apply to the original request: a key in its
	// query string is refused, whichever header names it.
	for _, hdr := range []string{"X-Forwarded-Uri", "X-Original-URI"} {
		d := problemOf(t, h.call("GET", "/v1/forward-auth", "", nil, "X-API-Key", key, "X-Forwarded-For", "198.51.100.7", hdr, "/api/orders?page=2&api_key="+key), 400, keyward.CodeInvalidRequest)
		if !strings.Contains(d, "api_key") {
			t.Errorf("%s: detail %q", hdr, d)
		}
	}
	h.must(200, "GET", "/v1/forward-auth?permissions=contacts:read,%20messages:send", "", nil, "X-API-Key", key, "X-Forwarded-For", "198.51.100.7", "X-Forwarded-Uri", "/api/orders?page=2")
}

// TestForwardedForUntrusted: without --trusted-proxies, X-Forwarded-For is
// never believed; the log says so once, naming the peer and the flag,
// since behind a proxy left out of the list every client has the proxy's
// address.
func TestForwardedForUntrusted(t *testing.T) { fronts(t, testForwardedForUntrusted) }

func testForwardedForUntrusted(t *testing.T, front harnessOption) {
	var log lockedbuffer.Buffer
	h := newHarness(t, front, withLog(&log))
	h.tenant("acme")
	key, _ := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "c", "restrictions": map[string]any{"ips": []string{"198.51.100.7"}}})
	if strings.Contains(log.String(), "X-Forwarded-For") {
		t.Fatalf("a warning before any request with X-Forwarded-For:\n%s", log.String())
	}
	for range 3 {
		problemOf(t, h.call("GET", "/v1/forward-auth", "", nil, "X-API-Key", key, "X-Forwarded-For", "198.51.100.7"), 403, keyward.CodeIPNotAllowed)
	}
	if got := log.String(); strings.Count(got, "not a trusted proxy") != 1 || !strings.Contains(got, `"peer":"127.0.0.1"`) ||
		!strings.Contains(got, "--trusted-proxies") || strings.Contains(got, key[8:]) {
		t.Errorf("the log after three requests with an untrusted X-Forwarded-For, want one warning naming the peer:\n%s", got)
	}
}

func TestAuditLog(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	manager, managerID := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "m", "permissions": []string{"keys:manage"}})
	secret, id := h.key(manager, map[string]any{"name": "x"})
	h.must(200, "PATCH", "/v1/api-keys/"+id, manager, map[string]any{"name": "y"})
	rot := h.must(201, "POST", "/v1/api-keys/"+id+"/rotate", manager, nil)
	h.must(200, "DELETE", "/v1/api-keys/"+id, manager, nil)
	a := h.must(200, "GET", "/v1/audit-log?target="+id, manager, nil)
	var actions []string
	for _, e := range a.list() {
		actions = append(actions, e["action"].(string))
		if e["actor"] != managerID || e["actor_ip"] != "127.0.0.1" || e["at"] == nil {
			t.Errorf("entry: %v", e)
		}
	}
	if got := strings.Join(actions, ","); got != "key.revoke,key.rotate,key.update,key.create" {
		t.Errorf("actions %s", got)
	}
	raw, _ := json.Marshal(h.must(200, "GET", "/v1/audit-log", h.root, nil).body)
	for _, k := range []string{secret, rot.data()["key"].(string), manager, h.root} {
		if strings.Contains(string(raw), k[8:]) {
			t.Errorf("the audit log holds a key")
		}
	}
	if !strings.Contains(string(raw), `"tenant.create"`) || !strings.Contains(string(raw), `"actor":"cli"`) {
		t.Errorf("root's audit log lacks tenant creation or the bootstrap by cli: %s", raw)
	}
}

func TestOperations(t *testing.T) {
	h := newHarness(t)
	if a := h.must(200, "GET", "/healthz", "", nil); a.str("status") != "ok" {
		t.Errorf("healthz: %s", a.raw)
	}
	h.must(200, "GET", "/readyz", "", nil)
	doc := h.must(200, "GET", "/openapi.json", "", nil)
	paths := doc.body["paths"].(map[string]any)
	for _, rt := range (&server{}).routes() {
		method, path, ok := strings.Cut(rt.pattern, " ")
		if !ok {
			method, path = "GET", rt.pattern
		}
		op, _ := paths[path].(map[string]any)
		if op[strings.ToLower(method)] == nil {
			t.Errorf("openapi.json lacks %s", rt.pattern)
		}
	}
	if !strings.Contains(doc.raw, `"grace_period"`) || !strings.Contains(doc.raw, `"next_cursor"`) || !strings.Contains(doc.raw, "application/problem+json") {
		t.Errorf("openapi.json lacks request or answer schemas")
	}
	h.store.Close()
	problemOf(t, h.call("GET", "/readyz", "", nil), 503, keyward.CodeStorageUnavailable)
}
