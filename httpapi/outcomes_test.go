package httpapi

import (
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// flip changes the last character of a key, breaking its checksum.
func flip(key string) string {
	last := key[len(key)-1]
	c := byte('A')
	if last == 'A' {
		c = 'B'
	}
	return key[:len(key)-1] + string(c)
}

// TestOutcomes reaches every refusal of docs/outcomes.md that this version
// checks, through GET /v1/whoami, with its status, code, body and headers.
func TestOutcomes(t *testing.T) {
	h := newHarness(t)
	acme := h.tenant("acme")
	good, _ := h.key(h.root, map[string]any{"tenant_id": acme, "name": "good", "permissions": []string{"contacts:read"}})
	revoked, revokedID := h.key(h.root, map[string]any{"tenant_id": acme, "name": "revoked"})
	h.must(200, "DELETE", "/v1/api-keys/"+revokedID, h.root, nil)
	expired, _ := h.key(h.root, map[string]any{"tenant_id": acme, "name": "expired", "expires": "1h"})
	disabled, disabledID := h.key(h.root, map[string]any{"tenant_id": acme, "name": "disabled"})
	h.must(200, "PATCH", "/v1/api-keys/"+disabledID, h.root, map[string]any{"enabled": false})
	ipOnly, _ := h.key(h.root, map[string]any{"tenant_id": acme, "name": "office", "restrictions": map[string]any{"ips": []string{"203.0.113.0/24"}}})
	ipLocal, _ := h.key(h.root, map[string]any{"tenant_id": acme, "name": "local", "restrictions": map[string]any{"ips": []string{"127.0.0.1"}}})
	other := h.tenant("other")
	suspended, _ := h.key(h.root, map[string]any{"tenant_id": other, "name": "suspended"})
	h.must(200, "POST", "/v1/tenants/"+other+"/suspend", h.root, nil)
	h.clock.Advance(2 * time.Hour)
	// unknown is well-formed, with a valid checksum, but was never issued.
	format, _ := apikey.NewFormat(apikey.DefaultPrefix)
	unknown, err := format.Generate(keyward.Live)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name      string
		header    []string
		query     string
		status    int
		code      keyward.Code
		detail    string // part of the detail
		challenge string // WWW-Authenticate, "" for none
	}{
		{"missing", nil, "", 401, keyward.CodeMissingAPIKey, "X-API-Key", `Bearer realm="keyward"`},
		{"wrong scheme basic", []string{"Authorization", "Basic dXNlcjpwYXNz"}, "", 401, keyward.CodeMalformedAPIKey, "Bearer", `error="invalid_token"`},
		{"wrong scheme token", []string{"Authorization", "Token " + good}, "", 401, keyward.CodeMalformedAPIKey, "Bearer", `error="invalid_token"`},
		{"quotes", []string{"X-API-Key", `"` + good + `"`}, "", 401, keyward.CodeMalformedAPIKey, "quotes", `error="invalid_token"`},
		{"bearer quotes", []string{"Authorization", `Bearer "` + good + `"`}, "", 401, keyward.CodeMalformedAPIKey, "quotes", `error="invalid_token"`},
		{"inner whitespace", []string{"X-API-Key", good[:20] + " " + good[20:]}, "", 401, keyward.CodeMalformedAPIKey, "whitespace", `error="invalid_token"`},
		{"other prefix", []string{"X-API-Key", "pk" + good[2:]}, "", 401, keyward.CodeMalformedAPIKey, `"pk"`, `error="invalid_token"`},
		{"bad checksum", []string{"X-API-Key", flip(good)}, "", 401, keyward.CodeMalformedAPIKey, "checksum", `error="invalid_token"`},
		{"truncated", []string{"X-API-Key", good[:len(good)-3]}, "", 401, keyward.CodeMalformedAPIKey, "", `error="invalid_token"`},
		{"not a key", []string{"X-API-Key", "6aa0fa074bec4a5cb0e8ed8fd36151ce"}, "", 401, keyward.CodeMalformedAPIKey, "", `error="invalid_token"`},
		{"key in query", nil, "?api_key=" + good, 400, keyward.CodeInvalidRequest, "header", ""},
		{"two different keys", []string{"X-API-Key", good, "Authorization", "Bearer " + revoked}, "", 400, keyward.CodeInvalidRequest, "not both", ""},
		{"invalid", []string{"X-API-Key", unknown}, "", 401, keyward.CodeInvalidAPIKey, "", `error="invalid_token"`},
		{"revoked", []string{"X-API-Key", revoked}, "", 401, keyward.CodeRevokedAPIKey, "revoked", `error="invalid_token"`},
		{"expired", []string{"X-API-Key", expired}, "", 401, keyward.CodeExpiredAPIKey, "expired", `error="invalid_token"`},
		{"suspended", []string{"X-API-Key", suspended}, "", 403, keyward.CodeAccountSuspended, "suspended", ""},
		{"disabled", []string{"X-API-Key", disabled}, "", 403, keyward.CodeKeyDisabled, "disabled", ""},
		{"ip not allowed", []string{"X-API-Key", ipOnly}, "", 403, keyward.CodeIPNotAllowed, "127.0.0.1", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := h.call("GET", "/v1/whoami"+tc.query, "", nil, tc.header...)
			detail := problemOf(t, a, tc.status, tc.code)
			if !strings.Contains(detail, tc.detail) {
				t.Errorf("detail %q does not mention %q", detail, tc.detail)
			}
			for _, k := range []string{good, revoked, expired, disabled, suspended, unknown} {
				if strings.Contains(a.raw, k[8:]) {
					t.Errorf("the answer contains a key: %s", a.raw)
				}
			}
			got := a.header.Get("WWW-Authenticate")
			if tc.challenge == "" && got != "" || !strings.Contains(got, tc.challenge) {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
			}
			if tc.code == keyward.CodeMissingAPIKey && strings.Contains(got, "error=") {
				t.Errorf("a missing key carries no error in WWW-Authenticate (RFC 6750): %q", got)
			}
		})
	}

	t.Run("valid with X-API-Key and Bearer", func(t *testing.T) {
		for _, hdr := range [][]string{{"X-API-Key", good}, {"x-api-key", good}, {"Authorization", "Bearer " + good}, {"Authorization", "bearer   " + good}, {"X-API-Key", good, "Authorization", "Bearer " + good}} {
			a := h.must(200, "GET", "/v1/whoami", "", nil, hdr...)
			if d := a.data(); d["tenant_id"] != acme || d["name"] != "good" || d["environment"] != "live" {
				t.Errorf("%v: whoami %s", hdr[0], a.raw)
			}
		}
		h.must(200, "GET", "/v1/whoami", ipLocal, nil)
	})

	t.Run("insufficient permissions", func(t *testing.T) {
		a := h.call("GET", "/v1/forward-auth?permissions=contacts:read,messages:send", "", nil, "X-API-Key", good)
		detail := problemOf(t, a, 403, keyward.CodeInsufficientPermissions)
		if !strings.Contains(detail, "messages:send") {
			t.Errorf("detail %q does not name the missing permission", detail)
		}
		if got := a.header.Get("WWW-Authenticate"); !strings.Contains(got, `error="insufficient_scope"`) {
			t.Errorf("WWW-Authenticate %q", got)
		}
		h.must(200, "GET", "/v1/forward-auth?permissions=contacts:read", "", nil, "X-API-Key", good)
	})

	t.Run("order: the first failing check decides", func(t *testing.T) {
		// A key both revoked and expired is revoked; a disabled key of a
		// suspended tenant is suspended.
		both, bothID := h.key(h.root, map[string]any{"tenant_id": acme, "name": "both", "expires": "1h"})
		h.must(200, "DELETE", "/v1/api-keys/"+bothID, h.root, nil)
		h.clock.Advance(2 * time.Hour)
		problemOf(t, h.call("GET", "/v1/whoami", both, nil), 401, keyward.CodeRevokedAPIKey)

		third := h.tenant("third")
		k, id := h.key(h.root, map[string]any{"tenant_id": third, "name": "x", "restrictions": map[string]any{"ips": []string{"203.0.113.1"}}})
		h.must(200, "PATCH", "/v1/api-keys/"+id, h.root, map[string]any{"enabled": false})
		h.must(200, "POST", "/v1/tenants/third/suspend", h.root, nil)
		problemOf(t, h.call("GET", "/v1/whoami", k, nil), 403, keyward.CodeAccountSuspended)
		h.must(200, "POST", "/v1/tenants/third/resume", h.root, nil)
		problemOf(t, h.call("GET", "/v1/whoami", k, nil), 403, keyward.CodeKeyDisabled)
		h.must(200, "PATCH", "/v1/api-keys/"+id, h.root, map[string]any{"enabled": true})
		problemOf(t, h.call("GET", "/v1/whoami", k, nil), 403, keyward.CodeIPNotAllowed)
	})

	t.Run("unknown route", func(t *testing.T) {
		problemOf(t, h.call("GET", "/v1/nothing", good, nil), 404, keyward.CodeNotFound)
	})
}
