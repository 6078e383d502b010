package httpapi

import (
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

// TestBadInput sends each common mistake and expects a 400 whose detail
// names the field and what is wrong; nothing is written.
func TestBadInput(t *testing.T) {
	h := newHarness(t)
	acme := h.tenant("acme")
	_, id := h.key(h.root, map[string]any{"tenant_id": acme, "name": "k"})
	long := strings.Repeat("n", 101)
	cases := []struct {
		name   string
		method string
		path   string
		body   any
		field  string // "" when the detail names no field
		detail string
	}{
		{"malformed JSON", "POST", "/v1/api-keys", `{"name": "x",`, "", "not valid JSON"},
		{"not an object", "POST", "/v1/api-keys", `["x"]`, "", "JSON object"},
		{"empty body", "POST", "/v1/api-keys", "", "", "empty"},
		{"two values", "POST", "/v1/api-keys", `{"name":"x","tenant_id":"acme"} {}`, "", "single JSON object"},
		{"unknown field", "POST", "/v1/api-keys", map[string]any{"tenant_id": acme, "name": "x", "expiry": "90d"}, "expiry", "not a field"},
		{"wrong type", "POST", "/v1/api-keys", map[string]any{"tenant_id": acme, "name": 7}, "name", "a string"},
		{"empty name", "POST", "/v1/api-keys", map[string]any{"tenant_id": acme, "name": "  "}, "name", "required"},
		{"overlong name", "POST", "/v1/api-keys", map[string]any{"tenant_id": acme, "name": long}, "name", "at most 100"},
		{"past expiry", "POST", "/v1/api-keys", map[string]any{"tenant_id": acme, "name": "x", "expires": "2020-01-01"}, "expires", "in the past"},
		{"unreadable expiry", "POST", "/v1/api-keys", map[string]any{"tenant_id": acme, "name": "x", "expires": "next week"}, "expires", "90d"},
		{"bad environment", "POST", "/v1/api-keys", map[string]any{"tenant_id": acme, "name": "x", "environment": "prod"}, "environment", `"live" or "test"`},
		{"bad CIDR", "POST", "/v1/api-keys", map[string]any{"tenant_id": acme, "name": "x", "restrictions": map[string]any{"ips": []string{"10.0.0.300/8"}}}, "restrictions.ips[0]", "CIDR"},
		{"bad permission", "POST", "/v1/api-keys", map[string]any{"tenant_id": acme, "name": "x", "permissions": []string{"Contacts Write"}}, "permissions[0]", "contacts:write"},
		{"bad tag", "POST", "/v1/api-keys", map[string]any{"tenant_id": acme, "name": "x", "metadata": map[string]string{"a b": "c"}}, "metadata", "tag name"},
		{"grace over 30 days", "POST", "/v1/api-keys/" + id + "/rotate", map[string]any{"grace_period": "31d"}, "grace_period", "30 days"},
		{"unreadable grace", "POST", "/v1/api-keys/" + id + "/rotate", map[string]any{"grace_period": "soon"}, "grace_period", "24h"},
		{"update past expiry", "PATCH", "/v1/api-keys/" + id, map[string]any{"expires": "2001-01-01"}, "expires", "in the past"},
		{"update empty name", "PATCH", "/v1/api-keys/" + id, map[string]any{"name": ""}, "name", "required"},
		{"bad limit", "GET", "/v1/api-keys?tenant_id=acme&limit=0", nil, "limit", "1 to 200"},
		{"bad cursor", "GET", "/v1/api-keys?tenant_id=acme&cursor=zzz", nil, "", "cursor"},
		{"bad status filter", "GET", "/v1/api-keys?tenant_id=acme&status=gone", nil, "status", "active"},
		{"bad slug", "POST", "/v1/tenants", map[string]any{"slug": "Acme Inc"}, "slug", "lowercase"},
		{"reserved slug", "POST", "/v1/tenants", map[string]any{"slug": "system"}, "slug", "reserved"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := h.call(tc.method, tc.path, h.root, tc.body)
			detail := problemOf(t, a, 400, keyward.CodeInvalidRequest)
			if !strings.Contains(detail, tc.detail) || (tc.field != "" && !strings.HasPrefix(detail, tc.field)) {
				t.Errorf("detail %q: want it to start with %q and mention %q", detail, tc.field, tc.detail)
			}
			if tc.field != "" && a.str("field") != tc.field {
				t.Errorf("field %q, want %q", a.str("field"), tc.field)
			}
		})
	}
	problemOf(t, h.call("POST", "/v1/tenants", h.root, map[string]any{"slug": "acme"}), 409, keyward.CodeConflict)
	// Nothing of the above was written: acme still has its one key, and the
	// key was neither rotated nor changed.
	keys := h.must(200, "GET", "/v1/api-keys?tenant_id=acme", h.root, nil).list()
	if len(keys) != 1 || keys[0]["rotated_to"] != "" || keys[0]["expires_at"] != nil || keys[0]["name"] != "k" {
		t.Errorf("a refused request changed something: %v", keys)
	}
}
