package gateway_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRequestLogs: every request through the gateway has an entry in the
// request log, found through GET /v1/logs by its X-Request-Id: a refusal
// with its code, a request that went up with the upstream's status, a
// failure of the upstream with its code; with the route that decided, and
// never the query string or the key.
func TestRequestLogs(t *testing.T) {
	e := newEnv(t)
	e.call(http.StatusCreated, "POST", "/v1/tenants", map[string]any{"slug": "acme"})
	key, id := e.key(map[string]any{"tenant_id": "acme", "name": "app", "permissions": []string{"contacts:read"}})
	revoked, revokedID := e.key(map[string]any{"tenant_id": "acme", "name": "old", "permissions": []string{"contacts:read"}})
	e.call(http.StatusOK, "DELETE", "/v1/api-keys/"+revokedID, nil)
	e.legacy.srv.Close()

	cases := []struct {
		name, method, uri, key string
		status                 int
		code, keyID, route     string
		path                   string
	}{
		{"allowed", "GET", "/v1/contacts/7?page=2", key, 200, "", id, "GET /v1/contacts/**", "/v1/contacts/7"},
		{"revoked", "GET", "/v1/contacts/7?token=abc", revoked, 401, "revoked_api_key", revokedID, "GET /v1/contacts/**", "/v1/contacts/7"},
		{"no key", "GET", "/v1/contacts/8", "", 401, "missing_api_key", "", "", "/v1/contacts/8"},
		{"no permission", "POST", "/v1/contacts", key, 403, "insufficient_permissions", id, "POST /v1/contacts", "/v1/contacts"},
		{"upstream down", "GET", "/v1/legacy/x", key, 502, "upstream_unavailable", id, "* /v1/legacy/**", "/v1/legacy/x"},
	}
	ids := map[string]string{}
	for _, c := range cases {
		a := e.gateway(c.method, c.uri, c.key, "User-Agent", "client/2")
		if a.status != c.status {
			t.Fatalf("%s: status %d, want %d\n%s", c.name, a.status, c.status, a.raw)
		}
		ids[c.name] = a.header.Get("X-Request-Id")
	}
	if err := e.logs.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		a := e.do(e.request(e.api, "GET", "/v1/logs?request_id="+ids[c.name], e.root, nil))
		list, _ := a.body["data"].([]any)
		if a.status != 200 || len(list) != 1 {
			t.Errorf("%s: %d %s", c.name, a.status, a.raw)
			continue
		}
		got := list[0].(map[string]any)
		str := func(k string) string { s, _ := got[k].(string); return s }
		if str("surface") != "gateway" || str("method") != c.method || str("path") != c.path || got["status"] != float64(c.status) ||
			str("code") != c.code || str("key_id") != c.keyID || str("route") != c.route || str("user_agent") != "client/2" ||
			str("client_ip") != "127.0.0.1" {
			t.Errorf("%s: entry %v", c.name, got)
		}
	}
	all := e.do(e.request(e.api, "GET", "/v1/logs?limit=200", e.root, nil)).raw
	for _, secret := range []string{key, revoked, "token=abc", "page=2"} {
		if strings.Contains(all, secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
}

// TestNotices: a key in a rotation's grace period carries Deprecation and
// Sunset on every answer of the gateway, the upstream's, a refusal's and
// an upstream failure's; its successor carries none.
func TestNotices(t *testing.T) {
	e := newEnv(t)
	e.call(http.StatusCreated, "POST", "/v1/tenants", map[string]any{"slug": "acme"})
	old, oldID := e.key(map[string]any{"tenant_id": "acme", "name": "app", "permissions": []string{"contacts:read"}})
	a := e.call(http.StatusCreated, "POST", "/v1/api-keys/"+oldID+"/rotate", map[string]any{"grace_period": "3d"})
	successor := a["key"].(string)
	e.legacy.srv.Close()
	now := e.clock.Now()
	sunset, deprecation := now.Add(72*time.Hour).UTC().Format(http.TimeFormat), "@"+strconv.FormatInt(now.Unix(), 10)
	for _, c := range []struct {
		name, method, uri string
		status            int
	}{
		{"proxied", "GET", "/v1/contacts/7", 200},
		{"refused", "POST", "/v1/contacts", 403},
		{"upstream down", "GET", "/v1/legacy/x", 502},
	} {
		got := e.gateway(c.method, c.uri, old)
		if got.status != c.status || len(got.header.Values("Sunset")) != 1 || got.header.Get("Sunset") != sunset || got.header.Get("Deprecation") != deprecation {
			t.Errorf("%s: %d, Sunset %q, Deprecation %q; want %d, %s, %s", c.name, got.status, got.header.Values("Sunset"), got.header.Get("Deprecation"), c.status, sunset, deprecation)
		}
		if got := e.gateway(c.method, c.uri, successor); got.header.Get("Sunset") != "" || got.header.Get("Deprecation") != "" {
			t.Errorf("%s, the successor: Sunset %q, Deprecation %q", c.name, got.header.Get("Sunset"), got.header.Get("Deprecation"))
		}
	}
}
