package httpapi

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

// member adds a member to tenant with the root key and returns its id.
func (h *harness) member(tenant, email string, role keyward.Role, perms ...string) string {
	h.t.Helper()
	return h.must(http.StatusCreated, "POST", "/v1/members", h.root, map[string]any{
		"tenant_id": tenant, "email": email, "name": email, "role": role, "permissions": perms,
	}).data()["id"].(string)
}

// memberKey makes, with the root key, a key of tenant that belongs to
// member and holds perms, and returns its plaintext and id.
func (h *harness) memberKey(tenant, member string, perms ...string) (plaintext, id string) {
	h.t.Helper()
	return h.key(h.root, map[string]any{"tenant_id": tenant, "member_id": member, "name": "key of " + member, "permissions": perms})
}

// refusedForRole checks that a is the 403 of a role that lacks what the
// request needs, naming the role.
func refusedForRole(t *testing.T, a answer, role string) {
	t.Helper()
	d := problemOf(t, a, http.StatusForbidden, keyward.CodeInsufficientPermissions)
	if !strings.Contains(strings.ToLower(d), "role in this tenant is "+role) {
		t.Errorf("detail %q does not name the role %s", d, role)
	}
}

// TestRoleMatrix sends every key and member action with a key of each
// role (and a key of the tenant without a member, which acts as an admin),
// and expects each allowed or refused by the table of docs/access.md: a
// 403 that names the role.
func TestRoleMatrix(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	perms := []string{"contacts:read"}
	managerPerms := []string{"keys:manage", "contacts:read"}
	owner := h.member("acme", "owner@example.com", keyward.RoleOwner, perms...)
	callers := map[string]string{} // role → key
	members := map[string]string{} // role → member id
	for _, role := range []keyward.Role{keyward.RoleOwner, keyward.RoleAdmin, keyward.RoleDeveloper, keyward.RoleViewer} {
		id := owner
		if role != keyward.RoleOwner {
			id = h.member("acme", string(role)+"@example.com", role, perms...)
		}
		members[string(role)] = id
		callers[string(role)], _ = h.memberKey("acme", id, managerPerms...)
	}
	callers["memberless"], _ = h.key(h.root, map[string]any{"tenant_id": "acme", "name": "tenant manager", "permissions": managerPerms})
	other := h.member("acme", "other@example.com", keyward.RoleDeveloper, perms...)
	n := 0
	fresh := func(role keyward.Role) string {
		n++
		return h.member("acme", fmt.Sprintf("m%d@example.com", n), role, perms...)
	}
	otherKey := func(string) string {
		_, id := h.memberKey("acme", other, perms...)
		return id
	}
	ownKey := func(caller string) string {
		if caller == "memberless" {
			_, id := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "tenant key", "permissions": perms})
			return id
		}
		_, id := h.memberKey("acme", members[caller], perms...)
		return id
	}

	all := []string{"owner", "admin", "developer", "viewer", "memberless"}
	for _, tc := range []struct {
		action  string
		allowed []string
		status  int
		call    func(caller string) (method, path string, body any)
	}{
		{"list keys", all, 200, func(string) (string, string, any) { return "GET", "/v1/api-keys", nil }},
		{"show a key", all, 200, func(c string) (string, string, any) { return "GET", "/v1/api-keys/" + otherKey(c), nil }},
		{"list members", all, 200, func(string) (string, string, any) { return "GET", "/v1/members", nil }},
		{"show a member", all, 200, func(string) (string, string, any) { return "GET", "/v1/members/" + other, nil }},
		{"read the audit log", all, 200, func(string) (string, string, any) { return "GET", "/v1/audit-log", nil }},
		{"create a key", []string{"owner", "admin", "developer", "memberless"}, 201, func(string) (string, string, any) {
			return "POST", "/v1/api-keys", map[string]any{"name": "new", "permissions": perms}
		}},
		{"create a key for another member", []string{"owner", "admin", "memberless"}, 201, func(string) (string, string, any) {
			return "POST", "/v1/api-keys", map[string]any{"name": "new", "member_id": other, "permissions": perms}
		}},
		{"change a key of one's own", []string{"owner", "admin", "developer", "memberless"}, 200, func(c string) (string, string, any) {
			return "PATCH", "/v1/api-keys/" + ownKey(c), map[string]any{"name": "renamed"}
		}},
		{"revoke a key of one's own", []string{"owner", "admin", "developer", "memberless"}, 200, func(c string) (string, string, any) {
			return "DELETE", "/v1/api-keys/" + ownKey(c), nil
		}},
		{"change another member's key", []string{"owner", "admin", "memberless"}, 200, func(c string) (string, string, any) {
			return "PATCH", "/v1/api-keys/" + otherKey(c), map[string]any{"name": "renamed"}
		}},
		{"rotate another member's key", []string{"owner", "admin", "memberless"}, 201, func(c string) (string, string, any) {
			return "POST", "/v1/api-keys/" + otherKey(c) + "/rotate", nil
		}},
		{"revoke another member's key", []string{"owner", "admin", "memberless"}, 200, func(c string) (string, string, any) {
			return "DELETE", "/v1/api-keys/" + otherKey(c), nil
		}},
		{"add a developer", []string{"owner", "admin", "memberless"}, 201, func(string) (string, string, any) {
			n++
			return "POST", "/v1/members", map[string]any{"email": fmt.Sprintf("new%d@example.com", n), "name": "New", "role": "developer"}
		}},
		{"add an owner", []string{"owner"}, 201, func(string) (string, string, any) {
			n++
			return "POST", "/v1/members", map[string]any{"email": fmt.Sprintf("new%d@example.com", n), "name": "New", "role": "owner"}
		}},
		{"change a developer", []string{"owner", "admin", "memberless"}, 200, func(string) (string, string, any) {
			return "PATCH", "/v1/members/" + fresh(keyward.RoleDeveloper), map[string]any{"name": "Renamed"}
		}},
		{"make a developer an owner", []string{"owner"}, 200, func(string) (string, string, any) {
			return "PATCH", "/v1/members/" + fresh(keyward.RoleDeveloper), map[string]any{"role": "owner"}
		}},
		{"change an owner", []string{"owner"}, 200, func(string) (string, string, any) {
			return "PATCH", "/v1/members/" + fresh(keyward.RoleOwner), map[string]any{"name": "Renamed"}
		}},
		{"remove a developer", []string{"owner", "admin", "memberless"}, 200, func(string) (string, string, any) {
			return "DELETE", "/v1/members/" + fresh(keyward.RoleDeveloper), nil
		}},
		{"remove an owner", []string{"owner"}, 200, func(string) (string, string, any) {
			return "DELETE", "/v1/members/" + fresh(keyward.RoleOwner), nil
		}},
	} {
		for _, caller := range all {
			t.Run(tc.action+"/"+caller, func(t *testing.T) {
				method, path, body := tc.call(caller)
				a := h.call(method, path, callers[caller], body)
				if slices.Contains(tc.allowed, caller) {
					if a.status != tc.status {
						t.Errorf("%s %s: status %d, want %d\n%s", method, path, a.status, tc.status, a.raw)
					}
					return
				}
				role := caller
				if caller == "memberless" {
					role = "admin"
				}
				refusedForRole(t, a, role)
			})
		}
	}

	// A viewer's refusal says what the role can do and whom to ask, as
	// the M2M guide's table asks of "a viewer cannot create a key".
	d := problemOf(t, h.call("POST", "/v1/api-keys", callers["viewer"], map[string]any{"name": "x"}), 403, keyward.CodeInsufficientPermissions)
	if want := "Your role in this tenant is viewer, which can read keys but not create them; ask an admin or owner of the account."; d != want {
		t.Errorf("a viewer creating a key: %q, want %q", d, want)
	}
	// A key a member's key makes belongs to that member; a developer
	// naming another member is refused on member_id.
	k := h.must(201, "POST", "/v1/api-keys", callers["developer"], map[string]any{"name": "mine", "permissions": perms}).data()
	if k["member_id"] != members["developer"] || k["created_by"] == "" {
		t.Errorf("a developer's key: member_id %v, created_by %v", k["member_id"], k["created_by"])
	}
	if a := h.call("POST", "/v1/api-keys", callers["developer"], map[string]any{"name": "x", "member_id": other}); a.str("field") != "member_id" {
		t.Errorf("a developer naming another member: %s", a.raw)
	}
	// The keys of a member are listed by member_id.
	for _, key := range h.must(200, "GET", "/v1/api-keys?member_id="+members["developer"], callers["viewer"], nil).list() {
		if key["member_id"] != members["developer"] {
			t.Errorf("?member_id= lists a key of %v", key["member_id"])
		}
	}
}

// TestKeyBoundByMember: a key that belongs to a member may hold only what
// the member holds, whoever makes it.
func TestKeyBoundByMember(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	owner := h.member("acme", "owner@example.com", keyward.RoleOwner, "contacts:read")
	a := h.call("POST", "/v1/api-keys", h.root, map[string]any{"tenant_id": "acme", "member_id": owner, "name": "x", "permissions": []string{"contacts:read", "billing:write"}})
	d := problemOf(t, a, 403, keyward.CodeInsufficientPermissions)
	if a.str("field") != "permissions[1]" || !strings.Contains(d, `"billing:write"`) || !strings.Contains(d, owner) {
		t.Errorf("a key beyond its member: field %q, detail %q", a.str("field"), d)
	}
	// So does a change of its permissions.
	_, keyID := h.memberKey("acme", owner, "contacts:read")
	a = h.call("PATCH", "/v1/api-keys/"+keyID, h.root, map[string]any{"permissions": []string{"billing:write"}})
	if problemOf(t, a, 403, keyward.CodeInsufficientPermissions); a.str("field") != "permissions[0]" {
		t.Errorf("a change beyond its member: field %q", a.str("field"))
	}
	// A member of another tenant, or none, is not found; a suspended one
	// is a conflict.
	h.tenant("beta")
	stranger := h.member("beta", "s@example.com", keyward.RoleOwner)
	for _, id := range []string{stranger, "mem_doesnotexist"} {
		a := h.call("POST", "/v1/api-keys", h.root, map[string]any{"tenant_id": "acme", "member_id": id, "name": "x"})
		problemOf(t, a, 404, keyward.CodeNotFound)
		if a.str("field") != "member_id" {
			t.Errorf("member_id %s: field %q", id, a.str("field"))
		}
	}
	dev := h.member("acme", "dev@example.com", keyward.RoleDeveloper)
	h.must(200, "PATCH", "/v1/members/"+dev, h.root, map[string]any{"status": "suspended"})
	problemOf(t, h.call("POST", "/v1/api-keys", h.root, map[string]any{"tenant_id": "acme", "member_id": dev, "name": "x"}), 409, keyward.CodeConflict)
}

// TestSuspendedMember: a suspended member's key may use nothing and manage
// nothing; resuming the member gives it all back.
func TestSuspendedMember(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	h.member("acme", "owner@example.com", keyward.RoleOwner)
	dev := h.member("acme", "dev@example.com", keyward.RoleDeveloper, "contacts:read")
	key, _ := h.memberKey("acme", dev, "keys:manage", "contacts:read")
	h.must(200, "PATCH", "/v1/members/"+dev, h.root, map[string]any{"status": "suspended"})
	who := h.must(200, "GET", "/v1/whoami", key, nil).data()
	if fmt.Sprint(who["permissions"]) != "[keys:manage]" || fmt.Sprint(who["withheld"]) != "[map[by:member permission:contacts:read]]" ||
		who["member"].(map[string]any)["status"] != "suspended" {
		t.Errorf("whoami of a suspended member's key: %v", who)
	}
	d := problemOf(t, h.call("GET", "/v1/api-keys", key, nil), 403, keyward.CodeInsufficientPermissions)
	if !strings.Contains(d, "suspended") {
		t.Errorf("a suspended member's key managing: %q", d)
	}
	h.must(200, "PATCH", "/v1/members/"+dev, h.root, map[string]any{"status": "active"})
	h.must(200, "GET", "/v1/api-keys", key, nil)
}

// TestLastOwner: a tenant keeps an active owner. Its first member must be
// one, and demoting, suspending or removing the last one is a 409 that
// says so; with a second owner, each works.
func TestLastOwner(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	first := h.call("POST", "/v1/members", h.root, map[string]any{"tenant_id": "acme", "email": "d@example.com", "name": "D", "role": "developer"})
	problemOf(t, first, 409, keyward.CodeConflict)
	owner := h.member("acme", "owner@example.com", keyward.RoleOwner)
	for _, c := range []struct {
		method string
		body   any
	}{
		{"PATCH", map[string]any{"role": "admin"}},
		{"PATCH", map[string]any{"status": "suspended"}},
		{"DELETE", nil},
	} {
		d := problemOf(t, h.call(c.method, "/v1/members/"+owner, h.root, c.body), 409, keyward.CodeConflict)
		if !strings.Contains(d, "owner") {
			t.Errorf("%s %v of the last owner: %q does not say why", c.method, c.body, d)
		}
	}
	h.member("acme", "second@example.com", keyward.RoleOwner)
	h.must(200, "PATCH", "/v1/members/"+owner, h.root, map[string]any{"role": "admin"})
}

// TestRemoveMember: removing a member revokes their keys, refused at once
// by /v1/whoami; with transfer_keys_to they move to another member instead.
// The answer says how many, and the audit log has each.
func TestRemoveMember(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	owner := h.member("acme", "owner@example.com", keyward.RoleOwner, "contacts:read")
	ownerKey, _ := h.memberKey("acme", owner, "keys:manage", "contacts:read")
	leaving := h.member("acme", "leaving@example.com", keyward.RoleDeveloper, "contacts:read")
	k1, _ := h.memberKey("acme", leaving, "contacts:read")
	k2, _ := h.memberKey("acme", leaving)
	h.must(200, "GET", "/v1/whoami", k1, nil)

	r := h.must(200, "DELETE", "/v1/members/"+leaving, ownerKey, nil)
	if r.body["revoked"] != float64(2) || r.body["moved"] != float64(0) || !strings.Contains(r.str("message"), "2 keys revoked") ||
		r.body["member"].(map[string]any)["id"] != leaving {
		t.Errorf("removal: %s", r.raw)
	}
	for _, k := range []string{k1, k2} {
		problemOf(t, h.call("GET", "/v1/whoami", k, nil), 401, keyward.CodeRevokedAPIKey)
	}
	problemOf(t, h.call("GET", "/v1/members/"+leaving, h.root, nil), 404, keyward.CodeNotFound)

	moving := h.member("acme", "moving@example.com", keyward.RoleDeveloper, "contacts:read")
	heir := h.member("acme", "heir@example.com", keyward.RoleDeveloper, "contacts:read")
	k3, k3ID := h.memberKey("acme", moving, "contacts:read")
	problemOf(t, h.call("DELETE", "/v1/members/"+moving+"?transfer_keys_to="+moving, h.root, nil), 400, keyward.CodeInvalidRequest)
	problemOf(t, h.call("DELETE", "/v1/members/"+moving+"?transfer_keys_to=mem_doesnotexist", h.root, nil), 400, keyward.CodeInvalidRequest)
	r = h.must(200, "DELETE", "/v1/members/"+moving+"?transfer_keys_to="+heir, h.root, nil)
	if r.body["moved"] != float64(1) || r.body["revoked"] != float64(0) || r.str("transferred_to") != heir || !strings.Contains(r.str("message"), "1 key moved") {
		t.Errorf("removal with a transfer: %s", r.raw)
	}
	who := h.must(200, "GET", "/v1/whoami", k3, nil).data()
	if who["member"].(map[string]any)["id"] != heir || fmt.Sprint(who["permissions"]) != "[contacts:read]" {
		t.Errorf("the moved key's whoami: %v", who)
	}

	actions := map[string][]string{}
	for _, e := range h.must(200, "GET", "/v1/audit-log?tenant_id=acme&limit=200", h.root, nil).list() {
		actions[e["action"].(string)] = append(actions[e["action"].(string)], e["target"].(string))
		if e["action"] == keyward.ActionMemberRemove && e["target"] == leaving && e["actor_member"] != owner {
			t.Errorf("the removal by the owner's key names actor_member %v, want %s", e["actor_member"], owner)
		}
	}
	if !slices.Contains(actions[keyward.ActionKeyTransfer], k3ID) || len(actions[keyward.ActionMemberRemove]) != 2 || len(actions[keyward.ActionKeyRevoke]) < 2 {
		t.Errorf("audit log: %v", actions)
	}
}

// TestPlanEntitlement: a plan without API access refuses new keys and its
// tenants' existing keys with 403 plan_not_entitled; a plan's key limit
// refuses a key past it, saying the limit, and counts revoked keys no more.
func TestPlanEntitlement(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	key, _ := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "before"})
	h.must(201, "POST", "/v1/plans", h.root, map[string]any{"name": "frozen", "api_access": false})
	h.must(200, "PATCH", "/v1/tenants/acme", h.root, map[string]any{"plan": "frozen"})
	problemOf(t, h.call("POST", "/v1/api-keys", h.root, map[string]any{"tenant_id": "acme", "name": "x"}), 403, keyward.CodePlanNotEntitled)
	problemOf(t, h.call("GET", "/v1/whoami", key, nil), 403, keyward.CodePlanNotEntitled)
	h.must(200, "PATCH", "/v1/plans/frozen", h.root, map[string]any{"api_access": true, "max_keys": 2})
	if who := h.must(200, "GET", "/v1/whoami", key, nil).data(); who["plan"] != "frozen" {
		t.Errorf("whoami: plan %v", who["plan"])
	}

	_, second := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "second"})
	d := problemOf(t, h.call("POST", "/v1/api-keys", h.root, map[string]any{"tenant_id": "acme", "name": "third"}), 403, keyward.CodePlanNotEntitled)
	if !strings.Contains(d, "at most 2 keys") {
		t.Errorf("past the key limit: %q does not say the limit", d)
	}
	// A rotation replaces a key, and is not refused by the limit.
	h.must(201, "POST", "/v1/api-keys/"+second+"/rotate", h.root, map[string]any{"grace_period": "0"})
	h.must(200, "DELETE", "/v1/api-keys/"+second, h.root, nil)
}

// TestCatalogue: an empty catalogue accepts any well-formed permission;
// once it has entries, keys, members and plans may hold only catalogued
// ones (Keyward's own are built in), and a permission in use cannot be
// removed: the 409 says where it is used.
func TestCatalogue(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	h.key(h.root, map[string]any{"tenant_id": "acme", "name": "free", "permissions": []string{"anything:goes"}})
	h.must(201, "POST", "/v1/permissions", h.root, map[string]any{"name": "contacts:read", "description": "Read contacts"})
	h.must(201, "POST", "/v1/permissions", h.root, map[string]any{"name": "contacts:write"})
	problemOf(t, h.call("POST", "/v1/permissions", h.root, map[string]any{"name": "contacts:read"}), 409, keyward.CodeConflict)
	problemOf(t, h.call("POST", "/v1/permissions", h.root, map[string]any{"name": "keys:manage"}), 400, keyward.CodeInvalidRequest)
	if l := h.must(200, "GET", "/v1/permissions", h.root, nil).list(); len(l) != 2 || l[0]["name"] != "contacts:read" || l[0]["description"] != "Read contacts" {
		t.Errorf("the catalogue: %v", l)
	}

	for _, c := range []struct {
		path string
		body map[string]any
	}{
		{"/v1/api-keys", map[string]any{"tenant_id": "acme", "name": "x", "permissions": []string{"keys:manage", "billing:write"}}},
		{"/v1/members", map[string]any{"tenant_id": "acme", "email": "o@example.com", "name": "O", "role": "owner", "permissions": []string{"contacts:read", "billing:write"}}},
		{"/v1/plans", map[string]any{"name": "pro", "permissions": []string{"contacts:read", "billing:write"}}},
	} {
		a := h.call("POST", c.path, h.root, c.body)
		if d := problemOf(t, a, 400, keyward.CodeInvalidRequest); a.str("field") != "permissions[1]" || !strings.Contains(d, `"billing:write" is not in the permission catalogue`) {
			t.Errorf("POST %s with an unknown permission: field %q, detail %q", c.path, a.str("field"), d)
		}
	}
	_, keyID := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "reader", "permissions": []string{"keys:manage", "contacts:read"}})
	member := h.member("acme", "o@example.com", keyward.RoleOwner, "contacts:write")
	h.must(201, "POST", "/v1/plans", h.root, map[string]any{"name": "pro", "permissions": []string{"contacts:write"}})

	d := problemOf(t, h.call("DELETE", "/v1/permissions/contacts:read", h.root, nil), 409, keyward.CodeConflict)
	if !strings.Contains(d, "1") || !strings.Contains(d, "key") {
		t.Errorf("removing a permission a key holds: %q does not say where", d)
	}
	d = problemOf(t, h.call("DELETE", "/v1/permissions/contacts:write", h.root, nil), 409, keyward.CodeConflict)
	if !strings.Contains(d, member) || !strings.Contains(d, "pro") {
		t.Errorf("removing a permission a member and a plan hold: %q does not say where", d)
	}
	// A revoked key holds nothing.
	h.must(200, "DELETE", "/v1/api-keys/"+keyID, h.root, nil)
	h.must(200, "DELETE", "/v1/permissions/contacts:read", h.root, nil)
	problemOf(t, h.call("DELETE", "/v1/permissions/contacts:read", h.root, nil), 404, keyward.CodeNotFound)
	problemOf(t, h.call("DELETE", "/v1/permissions/keys:manage", h.root, nil), 400, keyward.CodeInvalidRequest)
}

// TestPlans: plans are created, listed, shown and changed by root; the
// built-in default plan includes everything; a tenant moves between plans
// that exist, and the system tenant stays on default.
func TestPlans(t *testing.T) {
	h := newHarness(t)
	def := h.must(200, "GET", "/v1/plans/default", h.root, nil).data()
	if def["api_access"] != true || def["max_keys"] != float64(0) || fmt.Sprint(def["permissions"]) != "[]" {
		t.Errorf("the default plan: %v", def)
	}
	p := h.must(201, "POST", "/v1/plans", h.root, map[string]any{"name": "pro", "capabilities": []string{"m2m_api", "webhooks", "m2m_api"}, "max_keys": 20}).data()
	if p["api_access"] != true || fmt.Sprint(p["capabilities"]) != "[m2m_api webhooks]" || p["max_keys"] != float64(20) {
		t.Errorf("a new plan: %v", p)
	}
	problemOf(t, h.call("POST", "/v1/plans", h.root, map[string]any{"name": "pro"}), 409, keyward.CodeConflict)
	for body, field := range map[string]string{
		`{"name": "Pro Plan"}`:                          "name",
		`{"name": "x", "capabilities": ["M2M"]}`:        "capabilities[0]",
		`{"name": "x", "max_keys": -1}`:                 "max_keys",
		`{"name": "x", "permissions": ["keys:manage"]}`: "permissions[0]",
	} {
		if a := h.call("POST", "/v1/plans", h.root, body); a.status != 400 || a.str("field") != field {
			t.Errorf("POST /v1/plans %s: %d, field %q, want 400 naming %s", body, a.status, a.str("field"), field)
		}
	}
	if names := h.must(200, "GET", "/v1/plans", h.root, nil).list(); len(names) != 2 || names[0]["name"] != "default" || names[1]["name"] != "pro" {
		t.Errorf("plans: %v", names)
	}
	problemOf(t, h.call("PATCH", "/v1/plans/pro", h.root, map[string]any{"max_keys": 20}), 400, keyward.CodeInvalidRequest)
	if p := h.must(200, "PATCH", "/v1/plans/pro", h.root, map[string]any{"capabilities": []string{}}).data(); fmt.Sprint(p["capabilities"]) != "[]" {
		t.Errorf("cleared capabilities: %v", p["capabilities"])
	}
	problemOf(t, h.call("GET", "/v1/plans/gold", h.root, nil), 404, keyward.CodeNotFound)

	a := h.call("POST", "/v1/tenants", h.root, map[string]any{"slug": "acme", "plan": "gold"})
	if d := problemOf(t, a, 400, keyward.CodeInvalidRequest); a.str("field") != "plan" || !strings.Contains(d, "default, pro") {
		t.Errorf("a tenant on a plan that does not exist: field %q, detail %q", a.str("field"), d)
	}
	h.must(201, "POST", "/v1/tenants", h.root, map[string]any{"slug": "acme", "plan": "pro"})
	if tn := h.must(200, "PATCH", "/v1/tenants/acme", h.root, map[string]any{"plan": "default"}).data(); tn["plan"] != "default" {
		t.Errorf("moved tenant: %v", tn)
	}
	problemOf(t, h.call("PATCH", "/v1/tenants/acme", h.root, map[string]any{"plan": "gold"}), 400, keyward.CodeInvalidRequest)
	problemOf(t, h.call("PATCH", "/v1/tenants/acme", h.root, map[string]any{}), 400, keyward.CodeInvalidRequest)
	problemOf(t, h.call("PATCH", "/v1/tenants/"+keyward.SystemTenantID, h.root, map[string]any{"plan": "pro"}), 400, keyward.CodeInvalidRequest)
	problemOf(t, h.call("PATCH", "/v1/tenants/nosuchslug", h.root, map[string]any{"plan": "pro"}), 404, keyward.CodeNotFound)
}

// TestMemberInput: a member's fields are checked, each error naming the
// field; an email or external id taken in the tenant is a 409 whatever
// its case.
func TestMemberInput(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	m := h.must(201, "POST", "/v1/members", h.root, map[string]any{
		"tenant_id": "acme", "email": "Ada@Example.com", "name": " Ada ", "role": "owner", "external_id": "user_1",
	}).data()
	if m["email"] != "Ada@Example.com" || m["name"] != "Ada" || m["status"] != "active" || !strings.HasPrefix(m["id"].(string), "mem_") || fmt.Sprint(m["permissions"]) != "[]" {
		t.Errorf("member: %v", m)
	}
	base := func(kv ...any) map[string]any {
		b := map[string]any{"tenant_id": "acme", "email": "b@example.com", "name": "B", "role": "developer"}
		for i := 0; i+1 < len(kv); i += 2 {
			b[kv[i].(string)] = kv[i+1]
		}
		return b
	}
	for _, c := range []struct {
		body   map[string]any
		status int
		field  string
	}{
		{base("email", ""), 400, "email"},
		{base("email", "not-an-email"), 400, "email"},
		{base("email", "Ada <ada@example.com>"), 400, "email"},
		{base("email", "a@localhost"), 400, "email"},
		{base("email", "ada@example.com"), 409, "email"},
		{base("name", ""), 400, "name"},
		{base("name", "A\u202eB"), 400, "name"},
		{base("role", "boss"), 400, "role"},
		{base("role", ""), 400, "role"},
		{base("external_id", "user 2"), 400, "external_id"},
		{base("external_id", strings.Repeat("x", 129)), 400, "external_id"},
		{base("external_id", "user_1"), 409, "external_id"},
		{base("permissions", []string{"Bad Perm"}), 400, "permissions[0]"},
		{base("permissions", []string{"keys:manage"}), 400, "permissions[0]"},
		{base("tenant_id", ""), 400, "tenant_id"},
	} {
		a := h.call("POST", "/v1/members", h.root, c.body)
		if a.status != c.status || a.str("field") != c.field {
			t.Errorf("POST /v1/members %v: %d, field %q; want %d naming %s\n%s", c.body, a.status, a.str("field"), c.status, c.field, a.raw)
		}
	}
	// The system tenant's members are the operator's staff: root adds
	// them; a key of the system tenant that is not root adds none.
	staff := base("tenant_id", keyward.SystemTenantID)
	staff["role"], staff["email"] = "owner", "ops@example.com"
	h.must(201, "POST", "/v1/members", h.root, staff)
	sysManager, _ := h.key(h.root, map[string]any{"tenant_id": keyward.SystemTenantID, "name": "sys", "permissions": []string{"keys:manage"}})
	staff["email"] = "ops2@example.com"
	if a := h.call("POST", "/v1/members", sysManager, staff); a.status != 400 || a.str("field") != "tenant_id" {
		t.Errorf("a system key that is not root added a member of the system tenant: %d %s", a.status, a.raw)
	}
	id := m["id"].(string)
	problemOf(t, h.call("PATCH", "/v1/members/"+id, h.root, map[string]any{"name": "Ada"}), 400, keyward.CodeInvalidRequest)
	problemOf(t, h.call("PATCH", "/v1/members/"+id, h.root, map[string]any{"status": "gone"}), 400, keyward.CodeInvalidRequest)
	if m := h.must(200, "PATCH", "/v1/members/"+id, h.root, map[string]any{"external_id": ""}).data(); m["external_id"] != "" {
		t.Errorf("a cleared external id: %v", m["external_id"])
	}
	// A key of a member grants only what it holds.
	key, _ := h.memberKey("acme", id, "keys:manage")
	a := h.call("POST", "/v1/members", key, base("permissions", []string{"contacts:read"}))
	if problemOf(t, a, 403, keyward.CodeInsufficientPermissions); a.str("field") != "permissions[0]" {
		t.Errorf("granting what the key lacks: field %q", a.str("field"))
	}
}

// TestAccessAudit: every member, plan, catalogue and tenant-plan change is
// in the audit log, naming the key and, when it belongs to one, the member
// who acted.
func TestAccessAudit(t *testing.T) {
	h := newHarness(t)
	acme := h.tenant("acme")
	owner := h.member("acme", "owner@example.com", keyward.RoleOwner)
	key, _ := h.memberKey("acme", owner, "keys:manage")
	dev := h.must(201, "POST", "/v1/members", key, map[string]any{"email": "d@example.com", "name": "D", "role": "developer"}).data()["id"].(string)
	h.must(200, "PATCH", "/v1/members/"+dev, key, map[string]any{"role": "viewer"})
	h.must(200, "DELETE", "/v1/members/"+dev, key, nil)
	h.must(201, "POST", "/v1/plans", h.root, map[string]any{"name": "pro"})
	h.must(200, "PATCH", "/v1/plans/pro", h.root, map[string]any{"max_keys": 5})
	h.must(200, "PATCH", "/v1/tenants/acme", h.root, map[string]any{"plan": "pro"})
	h.must(201, "POST", "/v1/permissions", h.root, map[string]any{"name": "contacts:read"})
	h.must(200, "DELETE", "/v1/permissions/contacts:read", h.root, nil)

	type seen struct{ actor, member string }
	got := map[string]seen{}
	for _, e := range h.must(200, "GET", "/v1/audit-log?limit=200", h.root, nil).list() {
		m, _ := e["actor_member"].(string)
		got[e["action"].(string)+" "+e["target"].(string)] = seen{e["actor"].(string), m}
	}
	for _, want := range []struct {
		entry  string
		member string
	}{
		{keyward.ActionMemberAdd + " " + owner, ""},
		{keyward.ActionMemberAdd + " " + dev, owner},
		{keyward.ActionMemberUpdate + " " + dev, owner},
		{keyward.ActionMemberRemove + " " + dev, owner},
		{keyward.ActionPlanCreate + " pro", ""},
		{keyward.ActionPlanUpdate + " pro", ""},
		{keyward.ActionTenantSetPlan + " " + acme, ""},
		{keyward.ActionPermissionAdd + " contacts:read", ""},
		{keyward.ActionPermissionRemove + " contacts:read", ""},
	} {
		e, ok := got[want.entry]
		switch {
		case !ok:
			t.Errorf("no audit entry %s", want.entry)
		case e.member != want.member:
			t.Errorf("%s: actor_member %q, want %q", want.entry, e.member, want.member)
		case e.actor == "":
			t.Errorf("%s: no actor", want.entry)
		}
	}
	// The owner's key sees its tenant's entries, and finds a member's by
	// target.
	if l := h.must(200, "GET", "/v1/audit-log?target="+dev, key, nil).list(); len(l) < 3 {
		t.Errorf("the entries of %s: %v", dev, l)
	}
}

// TestKinboxPromise is Kinbox's promise on one node: a member makes a key
// with contacts:write; an admin takes contacts:write from the member; the
// key's whoami shows it withheld by the member, and /v1/verify refuses it
// with 403 insufficient_permissions saying why, while its other permission
// still verifies. Removing the member revokes the key.
func TestKinboxPromise(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	h.member("acme", "owner@example.com", keyward.RoleOwner, "contacts:read", "contacts:write")
	admin := h.member("acme", "admin@example.com", keyward.RoleAdmin, "contacts:read", "contacts:write")
	adminKey, _ := h.memberKey("acme", admin, "keys:manage")
	agent := h.member("acme", "agent@example.com", keyward.RoleDeveloper, "contacts:read", "contacts:write")
	agentManager, _ := h.memberKey("acme", agent, "keys:manage", "contacts:read", "contacts:write")
	d := h.must(201, "POST", "/v1/api-keys", agentManager, map[string]any{"name": "crm sync", "permissions": []string{"contacts:read", "contacts:write"}}).data()
	key := d["key"].(string)
	if d["member_id"] != agent {
		t.Fatalf("the member's key: member_id %v, want %s", d["member_id"], agent)
	}
	service, _ := h.key(h.root, map[string]any{"tenant_id": keyward.SystemTenantID, "name": "crm", "permissions": []string{"keyward:verify"}})
	if v := h.must(200, "POST", "/v1/verify", service, map[string]any{"key": key, "permissions": []string{"contacts:write"}}).body; v["valid"] != true {
		t.Fatalf("before: %v", v)
	}

	h.must(200, "PATCH", "/v1/members/"+agent, adminKey, map[string]any{"permissions": []string{"contacts:read"}})

	who := h.must(200, "GET", "/v1/whoami", key, nil).data()
	if fmt.Sprint(who["permissions"]) != "[contacts:read]" || fmt.Sprint(who["withheld"]) != "[map[by:member permission:contacts:write]]" ||
		who["member"].(map[string]any)["id"] != agent || who["member"].(map[string]any)["role"] != "developer" || who["plan"] != "default" {
		t.Errorf("whoami: %v", who)
	}
	v := h.must(200, "POST", "/v1/verify", service, map[string]any{"key": key, "permissions": []string{"contacts:write"}}).body
	if v["valid"] != false || v["status"] != float64(403) || v["code"] != string(keyward.CodeInsufficientPermissions) ||
		!strings.Contains(v["detail"].(string), "the member who made it no longer does") || fmt.Sprint(v["withheld"]) != "[map[by:member permission:contacts:write]]" {
		t.Errorf("verify contacts:write: %v", v)
	}
	if v := h.must(200, "POST", "/v1/verify", service, map[string]any{"key": key, "permissions": []string{"contacts:read"}}).body; v["valid"] != true || fmt.Sprint(v["permissions"]) != "[contacts:read]" {
		t.Errorf("verify contacts:read: %v", v)
	}

	h.must(200, "DELETE", "/v1/members/"+agent, adminKey, nil)
	problemOf(t, h.call("GET", "/v1/whoami", key, nil), 401, keyward.CodeRevokedAPIKey)
	if v := h.must(200, "POST", "/v1/verify", service, map[string]any{"key": key}).body; v["code"] != string(keyward.CodeRevokedAPIKey) {
		t.Errorf("verify after the removal: %v", v)
	}
}

// TestRestrictionBounds: a key with referrer, endpoint or resource
// restrictions makes and changes only keys whose own lie inside them.
func TestRestrictionBounds(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	inside := map[string]any{
		"referrers": []string{"https://app.example.com"},
		"endpoints": []string{"GET /v1/contacts/**"},
		"resources": map[string][]string{"site": {"site_1"}},
	}
	// The manager's restrictions hold on Keyward's API too: its endpoints
	// include the management routes it calls, and it sends a Referer
	// among its referrers.
	managing := map[string]any{
		"referrers": inside["referrers"],
		"endpoints": []string{"GET /v1/contacts/**", "POST /v1/api-keys", "DELETE /v1/api-keys/*"},
		"resources": inside["resources"],
	}
	manager, _ := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "m", "permissions": []string{"keys:manage"}, "restrictions": managing})
	page := []string{"Referer", "https://app.example.com/settings"}
	k := h.must(201, "POST", "/v1/api-keys", manager, map[string]any{"name": "inside", "restrictions": inside}, page...).data()
	if r := k["restrictions"].(map[string]any); fmt.Sprint(r["referrers"], r["endpoints"], r["resources"]) != "[https://app.example.com] [GET /v1/contacts/**] map[site:[site_1]]" {
		t.Errorf("restrictions as stored: %v", r)
	}
	for field, r := range map[string]map[string]any{
		"restrictions.referrers":         {"endpoints": inside["endpoints"], "resources": inside["resources"]},
		"restrictions.endpoints[0]":      {"referrers": inside["referrers"], "endpoints": []string{"* /v1/**"}, "resources": inside["resources"]},
		"restrictions.resources.site[0]": {"referrers": inside["referrers"], "endpoints": inside["endpoints"], "resources": map[string][]string{"site": {"site_2"}}},
	} {
		a := h.call("POST", "/v1/api-keys", manager, map[string]any{"name": "outside", "restrictions": r}, page...)
		if problemOf(t, a, 403, keyward.CodeInsufficientPermissions); a.str("field") != field {
			t.Errorf("a key outside its maker's %s: field %q", field, a.str("field"))
		}
	}
	_, broad := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "broad"})
	problemOf(t, h.call("DELETE", "/v1/api-keys/"+broad, manager, nil, page...), 403, keyward.CodeInsufficientPermissions)
	// Without a Referer or Origin among its referrers, or on a route
	// outside its endpoints, the manager is refused before anything else.
	problemOf(t, h.call("POST", "/v1/api-keys", manager, map[string]any{"name": "x"}), 403, keyward.CodeReferrerNotAllowed)
	problemOf(t, h.call("POST", "/v1/api-keys", manager, map[string]any{"name": "x"}, "Origin", "https://evil.example"), 403, keyward.CodeReferrerNotAllowed)
	h.must(201, "POST", "/v1/api-keys", manager, map[string]any{"name": "by origin", "restrictions": inside}, "Origin", "https://app.example.com")
	problemOf(t, h.call("GET", "/v1/api-keys", manager, nil, page...), 403, keyward.CodeEndpointNotAllowed)
	problemOf(t, h.call("GET", "/v1/whoami", manager, nil, page...), 403, keyward.CodeEndpointNotAllowed)
	if a := h.call("POST", "/v1/api-keys", h.root, map[string]any{"tenant_id": "acme", "name": "x", "restrictions": map[string]any{"endpoints": []string{"/v1"}}}); a.str("field") != "restrictions.endpoints[0]" {
		t.Errorf("an endpoint without a method: %s", a.raw)
	}
}
