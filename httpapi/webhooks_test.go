package httpapi

import (
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

// TestWebhookRoles: where a tenant's events go is an admin's or owner's
// to decide: a developer's or viewer's key with keys:manage may read the
// endpoints but not register, change, rotate or delete one; a test key may
// not either; a key of the tenant as a whole may. Nothing answered holds
// the secret but the answers that make one.
func TestWebhookRoles(t *testing.T) {
	h := newHarness(t)
	acme := h.tenant("acme")
	admin, _ := h.key(h.root, map[string]any{"tenant_id": acme, "name": "admin", "permissions": []string{"keys:manage"}})
	created := h.must(201, "POST", "/v1/webhooks", admin, map[string]any{"url": "https://203.0.113.10/hook", "events": []string{"key.revoked"}})
	secret := created.str("secret")
	hook := created.data()["id"].(string)
	if len(secret) < 20 || created.data()["tenant_id"] != acme {
		t.Fatalf("created %s", created.raw)
	}
	test, _ := h.key(h.root, map[string]any{"tenant_id": acme, "name": "test", "environment": "test", "permissions": []string{"keys:manage"}})
	h.member(acme, "owner@acme.example", keyward.RoleOwner, "contacts:read")
	var weak []string
	for _, role := range []string{"developer", "viewer"} {
		m := h.member(acme, role+"@acme.example", keyward.Role(role), "contacts:read")
		k, _ := h.key(h.root, map[string]any{"tenant_id": acme, "member_id": m, "name": role, "permissions": []string{"keys:manage"}})
		weak = append(weak, k)
	}
	for i, k := range append(weak, test) {
		if got := h.must(200, "GET", "/v1/webhooks", k, nil).list(); len(got) != 1 {
			t.Errorf("key %d: lists %d endpoints, want 1", i, len(got))
		}
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{"POST", "/v1/webhooks", map[string]any{"url": "https://203.0.113.11/x", "events": []string{"*"}}},
			{"PATCH", "/v1/webhooks/" + hook, map[string]any{"url": "https://203.0.113.66/pwned"}},
			{"POST", "/v1/webhooks/" + hook + "/rotate-secret", nil},
			{"DELETE", "/v1/webhooks/" + hook, nil},
		} {
			problemOf(t, h.call(c.method, c.path, k, c.body), 403, keyward.CodeInsufficientPermissions)
		}
	}
	got := h.must(200, "GET", "/v1/webhooks/"+hook, admin, nil)
	if got.data()["url"] != "https://203.0.113.10/hook" || got.str("secret") != "" || strings.Contains(got.raw, secret) {
		t.Errorf("after the refusals: %s", got.raw)
	}
	if strings.Contains(h.must(200, "GET", "/v1/webhooks", h.root, nil).raw, secret) {
		t.Error("the list shows the secret")
	}
}
