package httpapi

import (
	"testing"

	"github.com/keyward/keyward"
)

// TestNoKeyActsAboveItsMaker: a manager key acts with the role of the
// member it belongs to, so a caller that is not root may not obtain the
// plaintext of a key with keys:manage that belongs to a member who
// outranks it: not by making one for an owner, not by rotating an
// owner's, and not by moving its own keys to an owner as it leaves.
// Otherwise an admin would act as an owner and make itself one.
func TestNoKeyActsAboveItsMaker(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	owner := h.member("acme", "owner@example.com", keyward.RoleOwner, "contacts:read")
	admin := h.member("acme", "admin@example.com", keyward.RoleAdmin, "contacts:read")
	adminKey, _ := h.memberKey("acme", admin, "keys:manage", "contacts:read")
	tenantKey, _ := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "tenant manager", "permissions": []string{"keys:manage"}})
	_, ownerKeyID := h.memberKey("acme", owner, "keys:manage")

	for name, caller := range map[string]string{"admin": adminKey, "memberless": tenantKey} {
		a := h.call("POST", "/v1/api-keys", caller, map[string]any{"name": "owner's", "member_id": owner, "permissions": []string{"keys:manage"}})
		if a.status == 201 {
			got, _ := a.data()["key"].(string)
			e := h.call("POST", "/v1/members", got, map[string]any{"email": name + "-escalated@example.com", "name": "Escalated", "role": "owner"})
			t.Errorf("%s made a manager key for an owner, with which it added an owner: %d", name, e.status)
		}
		if a.str("field") != "member_id" {
			t.Errorf("%s making a manager key for an owner: field %q", name, a.str("field"))
		}
		problemOf(t, a, 403, keyward.CodeInsufficientPermissions)
		problemOf(t, h.call("POST", "/v1/api-keys/"+ownerKeyID+"/rotate", caller, nil), 403, keyward.CodeInsufficientPermissions)
	}
	// A key without keys:manage acts as no one: an admin may still make
	// and rotate an owner's API keys.
	_, id := h.key(adminKey, map[string]any{"name": "owner's reader", "member_id": owner, "permissions": []string{"contacts:read"}})
	h.must(201, "POST", "/v1/api-keys/"+id+"/rotate", adminKey, nil)
	// An admin may make a manager key for a member of its own rank or
	// below.
	dev := h.member("acme", "dev@example.com", keyward.RoleDeveloper, "contacts:read")
	h.must(201, "POST", "/v1/api-keys", adminKey, map[string]any{"name": "dev's", "member_id": dev, "permissions": []string{"keys:manage"}})

	// Leaving, an admin may not hand its manager key to an owner.
	a := h.call("DELETE", "/v1/members/"+admin+"?transfer_keys_to="+owner, adminKey, nil)
	if problemOf(t, a, 403, keyward.CodeInsufficientPermissions); a.str("field") != "transfer_keys_to" {
		t.Errorf("an admin moving its manager key to an owner: field %q", a.str("field"))
	}
	h.must(200, "GET", "/v1/whoami", adminKey, nil)
	// Nor may it move a developer's manager key, whose plaintext it may
	// know, to an owner; moving it to a member of its own rank is allowed.
	peer := h.member("acme", "peer@example.com", keyward.RoleAdmin, "contacts:read")
	if a := h.call("DELETE", "/v1/members/"+dev+"?transfer_keys_to="+owner, adminKey, nil); a.status != 403 {
		t.Errorf("an admin moving a developer's manager key to an owner: %d %s", a.status, a.raw)
	}
	h.must(200, "DELETE", "/v1/members/"+dev+"?transfer_keys_to="+peer, adminKey, nil)
}

// TestMethodCase: forward-auth and /v1/verify refuse a method that is not
// an upper-case HTTP method, with 400 invalid_request, rather than let it
// fall to the default route: under default: authenticated, get would pass
// a key without contacts:read to an upstream that serves it as GET.
func TestMethodCase(t *testing.T) {
	h := newHarness(t, withRoutes(t, "default: authenticated\nroutes:\n  - match: GET /v1/contacts/**\n    permissions: [contacts:read]\n"))
	h.tenant("acme")
	weak, _ := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "weak"})
	verifier, _ := h.key(h.root, map[string]any{"tenant_id": keyward.SystemTenantID, "name": "gateway", "permissions": []string{"keyward:verify"}})
	for _, m := range []string{"get", "Get", "GET /v1/x", "G\u00e9T"} {
		a := h.call("GET", "/v1/forward-auth", weak, nil, "X-Forwarded-Method", m, "X-Forwarded-Uri", "/v1/contacts/1")
		problemOf(t, a, 400, keyward.CodeInvalidRequest)
		v := h.must(200, "POST", "/v1/verify", verifier, map[string]any{"key": weak, "method": m, "path": "/v1/contacts/1"}).body
		if v["valid"] != false || v["code"] != string(keyward.CodeInvalidRequest) {
			t.Errorf("/v1/verify with method %q: %v", m, v)
		}
	}
	problemOf(t, h.call("GET", "/v1/forward-auth", weak, nil, "X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/v1/contacts/1"), 403, keyward.CodeInsufficientPermissions)
	h.must(200, "GET", "/v1/forward-auth", weak, nil, "X-Forwarded-Method", "M-SEARCH", "X-Forwarded-Uri", "/v1/other")
}
