package httpapi

import (
	"strconv"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/manage"
)

// TestTenantIsolation sends a tenant's key at another tenant's resources on
// every route that names one, and expects the answer for an id that does
// not exist: 404, never 403, so ids cannot be probed. The other tenant's
// key must come out unchanged.
func TestTenantIsolation(t *testing.T) {
	h := newHarness(t)
	a := h.tenant("alpha")
	b := h.tenant("beta")
	perms := []string{"keys:manage", "contacts:read"}
	alpha, _ := h.key(h.root, map[string]any{"tenant_id": a, "name": "alpha admin", "permissions": perms})
	beta, betaID := h.key(h.root, map[string]any{"tenant_id": b, "name": "beta admin", "permissions": perms})
	rootID := h.must(200, "GET", "/v1/whoami", h.root, nil).data()["key_id"].(string)
	betaMember := h.member(b, "owner@beta.example", "owner", "contacts:read")
	h.member(a, "owner@alpha.example", "owner", "contacts:read")
	alphaDev := h.member(a, "dev@alpha.example", "developer", "contacts:read")
	// Beta's webhook, with a delivery: the revocation of a key of beta's.
	hook := h.must(201, "POST", "/v1/webhooks", beta, map[string]any{"url": "https://203.0.113.10/hook", "events": []string{"*"}}).data()["id"].(string)
	_, gone := h.key(beta, map[string]any{"tenant_id": b, "name": "gone"})
	h.must(200, "DELETE", "/v1/api-keys/"+gone, beta, nil)
	deliveries := h.must(200, "GET", "/v1/webhooks/"+hook+"/deliveries", beta, nil).list()
	if len(deliveries) == 0 {
		t.Fatal("no delivery to beta's webhook")
	}
	delivery := strconv.FormatFloat(deliveries[0]["id"].(float64), 'f', 0, 64)

	cases := []struct {
		pattern string // the route under test, as in routes.go
		method  string
		path    string
		body    any
	}{
		{"GET /v1/api-keys/{id}", "GET", "/v1/api-keys/" + betaID, nil},
		{"GET /v1/api-keys/{id}/usage", "GET", "/v1/api-keys/" + betaID + "/usage", nil},
		{"PATCH /v1/api-keys/{id}", "PATCH", "/v1/api-keys/" + betaID, map[string]any{"name": "pwned"}},
		{"DELETE /v1/api-keys/{id}", "DELETE", "/v1/api-keys/" + betaID, nil},
		{"POST /v1/api-keys/{id}/rotate", "POST", "/v1/api-keys/" + betaID + "/rotate", nil},
		{"GET /v1/api-keys", "GET", "/v1/api-keys?tenant_id=" + b, nil},
		{"GET /v1/api-keys", "GET", "/v1/api-keys?tenant_id=beta", nil},
		{"POST /v1/api-keys", "POST", "/v1/api-keys", map[string]any{"tenant_id": b, "name": "intruder"}},
		{"GET /v1/tenants/{id}", "GET", "/v1/tenants/" + b, nil},
		{"GET /v1/tenants/{id}", "GET", "/v1/tenants/beta", nil},
		{"GET /v1/tenants/{id}/usage", "GET", "/v1/tenants/" + b + "/usage", nil},
		{"GET /v1/tenants/{id}/usage", "GET", "/v1/tenants/beta/usage", nil},
		{"POST /v1/tenants/{id}/suspend", "POST", "/v1/tenants/" + b + "/suspend", nil},
		{"POST /v1/tenants/{id}/resume", "POST", "/v1/tenants/" + b + "/resume", nil},
		{"GET /v1/audit-log", "GET", "/v1/audit-log?tenant_id=" + b, nil},
		{"GET /v1/audit-log", "GET", "/v1/audit-log?target=" + betaID, nil},
		{"GET /v1/audit-log", "GET", "/v1/audit-log?target=" + b, nil},
		{"GET /v1/api-keys/{id}", "GET", "/v1/api-keys/" + rootID, nil},
		{"GET /v1/api-keys/{id}/usage", "GET", "/v1/api-keys/" + rootID + "/usage", nil},
		{"GET /v1/tenants/{id}", "GET", "/v1/tenants/" + keyward.SystemTenantID, nil},
		{"GET /v1/api-keys", "GET", "/v1/api-keys?member_id=" + betaMember, nil},
		{"POST /v1/api-keys", "POST", "/v1/api-keys", map[string]any{"member_id": betaMember, "name": "intruder"}},
		{"GET /v1/members/{id}", "GET", "/v1/members/" + betaMember, nil},
		{"PATCH /v1/members/{id}", "PATCH", "/v1/members/" + betaMember, map[string]any{"name": "pwned"}},
		{"DELETE /v1/members/{id}", "DELETE", "/v1/members/" + betaMember, nil},
		{"POST /v1/members/{id}/invitations", "POST", "/v1/members/" + betaMember + "/invitations", nil},
		{"POST /v1/portal-sessions", "POST", "/v1/portal-sessions", map[string]any{"tenant_id": b, "external_id": "user-1",
			"member": map[string]any{"email": "x@example.com", "name": "X", "role": "owner"}}},
		{"GET /v1/members", "GET", "/v1/members?tenant_id=" + b, nil},
		{"GET /v1/members", "GET", "/v1/members?tenant_id=beta", nil},
		{"POST /v1/members", "POST", "/v1/members", map[string]any{"tenant_id": b, "email": "x@example.com", "name": "X", "role": "owner"}},
		{"GET /v1/webhooks/{id}", "GET", "/v1/webhooks/" + hook, nil},
		{"PATCH /v1/webhooks/{id}", "PATCH", "/v1/webhooks/" + hook, map[string]any{"url": "https://203.0.113.66/pwned"}},
		{"DELETE /v1/webhooks/{id}", "DELETE", "/v1/webhooks/" + hook, nil},
		{"POST /v1/webhooks/{id}/rotate-secret", "POST", "/v1/webhooks/" + hook + "/rotate-secret", nil},
		{"GET /v1/webhooks/{id}/deliveries", "GET", "/v1/webhooks/" + hook + "/deliveries", nil},
		{"GET /v1/webhooks/{id}/deliveries/{delivery}", "GET", "/v1/webhooks/" + hook + "/deliveries/" + delivery, nil},
		{"POST /v1/webhooks/{id}/deliveries/{delivery}/redeliver", "POST", "/v1/webhooks/" + hook + "/deliveries/" + delivery + "/redeliver", nil},
		{"GET /v1/webhooks", "GET", "/v1/webhooks?tenant_id=" + b, nil},
		{"POST /v1/webhooks", "POST", "/v1/webhooks", map[string]any{"tenant_id": b, "url": "https://203.0.113.10/x", "events": []string{"*"}}},
	}
	covered := map[string]bool{}
	for _, tc := range cases {
		covered[tc.pattern] = true
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			got := h.call(tc.method, tc.path, alpha, tc.body)
			problemOf(t, got, 404, keyward.CodeNotFound)
			// The same request for an id that does not exist answers alike.
			missing := strings.NewReplacer(betaID, "key_doesnotexist", b, "ten_doesnotexist", "beta", "nosuchslug", rootID, "key_doesnotexist",
				keyward.SystemTenantID, "ten_doesnotexist", betaMember, "mem_doesnotexist", hook, "whk_doesnotexist").Replace(tc.path)
			if body, ok := tc.body.(map[string]any); ok {
				other := map[string]any{}
				for k, v := range body {
					other[k] = v
				}
				if body["tenant_id"] != nil {
					other["tenant_id"] = "ten_doesnotexist"
				}
				if body["member_id"] != nil {
					other["member_id"] = "mem_doesnotexist"
				}
				tc.body = other
			}
			problemOf(t, h.call(tc.method, missing, alpha, tc.body), 404, keyward.CodeNotFound)
		})
	}
	// The routes that only root may use refuse a tenant's key whatever it
	// names: 403, the same for every id.
	rootOnly := []struct{ pattern, method, path string }{
		{"PATCH /v1/tenants/{id}", "PATCH", "/v1/tenants/" + b},
		{"PATCH /v1/tenants/{id}", "PATCH", "/v1/tenants/" + a},
		{"POST /v1/tenants", "POST", "/v1/tenants"},
		{"POST /v1/plans", "POST", "/v1/plans"},
		{"GET /v1/plans", "GET", "/v1/plans"},
		{"GET /v1/plans/{name}", "GET", "/v1/plans/default"},
		{"PATCH /v1/plans/{name}", "PATCH", "/v1/plans/default"},
		{"POST /v1/permissions", "POST", "/v1/permissions"},
		{"GET /v1/permissions", "GET", "/v1/permissions"},
		{"DELETE /v1/permissions/{name}", "DELETE", "/v1/permissions/contacts:read"},
	}
	refused := map[string]bool{}
	for _, c := range rootOnly {
		refused[c.pattern] = true
		problemOf(t, h.call(c.method, c.path, alpha, map[string]any{}), 403, keyward.CodeInsufficientPermissions)
	}
	// Every route that takes a tenant's resource is in the table, and every
	// route only root may use is refused.
	for _, rt := range (&server{}).routes() {
		switch {
		case rt.need == manage.Root:
			if !refused[rt.pattern] {
				t.Errorf("route %s, root only, is not tested with a tenant's key", rt.pattern)
			}
		case strings.Contains(rt.pattern, "{id}") || strings.HasPrefix(rt.pattern, "GET /v1/api-keys") || rt.pattern == "POST /v1/api-keys" ||
			rt.pattern == "GET /v1/audit-log" || strings.Contains(rt.pattern, "/v1/members") || strings.Contains(rt.pattern, "/v1/webhooks") ||
			strings.Contains(rt.pattern, "/v1/portal-sessions"):
			if !covered[rt.pattern] {
				t.Errorf("route %s is not tested for tenant isolation", rt.pattern)
			}
		}
	}
	// A removal cannot move keys to another tenant's member; an audit
	// search for another tenant's member finds nothing, as for one that
	// never was.
	problemOf(t, h.call("DELETE", "/v1/members/"+alphaDev+"?transfer_keys_to="+betaMember, alpha, nil), 400, keyward.CodeInvalidRequest)
	if l := h.must(200, "GET", "/v1/audit-log?target="+betaMember, alpha, nil).list(); len(l) != 0 {
		t.Errorf("alpha sees beta's member's entries: %v", l)
	}
	if ms := h.must(200, "GET", "/v1/members", alpha, nil).list(); len(ms) != 2 || ms[0]["tenant_id"] != a || ms[1]["tenant_id"] != a {
		t.Errorf("alpha lists members %v", ms)
	}
	if m := h.must(200, "GET", "/v1/members/"+betaMember, beta, nil).data(); m["name"] != "owner@beta.example" {
		t.Errorf("beta's member changed: %v", m)
	}

	// Beta's key is untouched and works; alpha sees only its own.
	k := h.must(200, "GET", "/v1/api-keys/"+betaID, beta, nil).data()
	if k["name"] != "beta admin" || k["status"] != "active" || k["rotated_to"] != "" {
		t.Errorf("beta's key changed: %v", k)
	}
	h.must(200, "GET", "/v1/whoami", beta, nil)
	for _, key := range h.must(200, "GET", "/v1/api-keys", alpha, nil).list() {
		if key["tenant_id"] != a {
			t.Errorf("alpha lists a key of %v", key["tenant_id"])
		}
	}
	if ts := h.must(200, "GET", "/v1/tenants", alpha, nil).list(); len(ts) != 1 || ts[0]["id"] != a {
		t.Errorf("alpha lists tenants %v", ts)
	}
	for _, e := range h.must(200, "GET", "/v1/audit-log", alpha, nil).list() {
		if e["tenant_id"] != a {
			t.Errorf("alpha sees an audit entry of %v", e["tenant_id"])
		}
	}
	// /v1/verify is for system keys only: a tenant's key cannot ask about
	// another tenant's key, nor hold keyward:verify.
	problemOf(t, h.call("POST", "/v1/verify", alpha, map[string]any{"key": beta}), 403, keyward.CodeInsufficientPermissions)
	problemOf(t, h.call("POST", "/v1/api-keys", h.root, map[string]any{"tenant_id": a, "name": "v", "permissions": []string{"keyward:verify"}}), 400, keyward.CodeInvalidRequest)
	// A tenant's key cannot create tenants or act as root.
	problemOf(t, h.call("POST", "/v1/tenants", alpha, map[string]any{"slug": "gamma"}), 403, keyward.CodeInsufficientPermissions)
	problemOf(t, h.call("POST", "/v1/tenants/"+a+"/suspend", alpha, nil), 403, keyward.CodeInsufficientPermissions)
}

// TestManagePermissions checks who may manage: a key without keys:manage may
// not, and a tenant's key grants only permissions it holds itself.
func TestManagePermissions(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	manager, _ := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "m", "permissions": []string{"keys:manage", "contacts:read"}})
	plain, _ := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "p", "permissions": []string{"contacts:read"}})
	problemOf(t, h.call("GET", "/v1/api-keys", plain, nil), 403, keyward.CodeInsufficientPermissions)
	problemOf(t, h.call("POST", "/v1/api-keys", plain, map[string]any{"name": "x"}), 403, keyward.CodeInsufficientPermissions)
	d := problemOf(t, h.call("POST", "/v1/api-keys", manager, map[string]any{"name": "x", "permissions": []string{"contacts:read", "billing:write"}}), 403, keyward.CodeInsufficientPermissions)
	if !strings.Contains(d, "billing:write") {
		t.Errorf("detail %q does not name the permission", d)
	}
	problemOf(t, h.call("POST", "/v1/api-keys", h.root, map[string]any{"tenant_id": "acme", "name": "x", "permissions": []string{"keyward:admin"}}), 400, keyward.CodeInvalidRequest)
	h.must(201, "POST", "/v1/api-keys", manager, map[string]any{"name": "x", "permissions": []string{"contacts:read"}})
	problemOf(t, h.call("POST", "/v1/api-keys", h.root, map[string]any{"name": "x"}), 400, keyward.CodeInvalidRequest)
}

// TestManageStrongerKeys: a tenant's manager cannot change, rotate or
// revoke a key that holds more than it does (a successor would hand it
// those permissions; a revocation would take away what it was never given).
func TestManageStrongerKeys(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	manager, _ := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "m", "permissions": []string{"keys:manage", "contacts:read"}})
	_, strongID := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "s", "permissions": []string{"contacts:read", "billing:write"}, "restrictions": map[string]any{"ips": []string{"10.0.0.0/8"}}})
	_, weakID := h.key(manager, map[string]any{"name": "w", "permissions": []string{"contacts:read"}})
	for _, c := range []struct{ method, path string }{
		{"PATCH", "/v1/api-keys/" + strongID},
		{"POST", "/v1/api-keys/" + strongID + "/rotate"},
		{"DELETE", "/v1/api-keys/" + strongID},
	} {
		d := problemOf(t, h.call(c.method, c.path, manager, map[string]any{}), 403, keyward.CodeInsufficientPermissions)
		if !strings.Contains(d, "billing:write") {
			t.Errorf("%s %s: detail %q does not name the permission", c.method, c.path, d)
		}
	}
	if k := h.must(200, "GET", "/v1/api-keys/"+strongID, manager, nil).data(); k["rotated_to"] != "" || len(k["restrictions"].(map[string]any)["ips"].([]any)) != 1 {
		t.Errorf("the stronger key changed: %v", k)
	}
	h.must(200, "PATCH", "/v1/api-keys/"+weakID, manager, map[string]any{"name": "w2"})
	h.must(201, "POST", "/v1/api-keys/"+weakID+"/rotate", manager, nil)
	h.must(200, "DELETE", "/v1/api-keys/"+weakID, manager, nil)
	h.must(200, "DELETE", "/v1/api-keys/"+strongID, h.root, nil)
}
