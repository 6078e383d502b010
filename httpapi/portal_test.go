package httpapi

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/manage"
)

// TestPortalSessions: POST /v1/portal-sessions makes a one-time link for
// the tenant's member with the caller's external id, creating the member
// on first use when asked, bounded by the calling key: a key that acts as
// an admin signs no one in as an owner and creates no owner; a return_url
// that is not an absolute http(s) URL, or an external id no member has
// without "member", is refused with what to do.
func TestPortalSessions(t *testing.T) {
	h := newHarness(t, func(c *harnessConfig) { c.PublicURL = "https://keys.example.com" })
	acme := h.tenant("acme")
	owner := h.member(acme, "owner@acme.example", keyward.RoleOwner)
	h.must(http.StatusOK, "PATCH", "/v1/members/"+owner, h.root, map[string]any{"external_id": "user-owner"})
	body := map[string]any{"tenant_id": "acme", "external_id": "user-1", "return_url": "https://app.example.com/settings",
		"member": map[string]any{"email": "ada@acme.example", "name": "Ada", "role": "developer", "permissions": []string{}}}
	first := h.must(http.StatusCreated, "POST", "/v1/portal-sessions", h.root, body).data()
	path, _ := first["path"].(string)
	if first["created"] != true || !strings.HasPrefix(path, "/portal/pst_") || first["url"] != "https://keys.example.com"+path {
		t.Fatalf("first portal session: %v", first)
	}
	again := h.must(http.StatusCreated, "POST", "/v1/portal-sessions", h.root, body).data()
	if again["created"] != false || again["member_id"] != first["member_id"] || again["path"] == path {
		t.Fatalf("second portal session: %v; want the same member, not created, a new link", again)
	}
	// The token is stored only as its hash, and never in the audit log.
	a := h.must(http.StatusOK, "GET", "/v1/audit-log?target="+first["member_id"].(string), h.root, nil)
	if strings.Contains(a.raw, strings.TrimPrefix(path, "/portal/")) || strings.Count(a.raw, `"action":"member.portal_session"`) != 2 {
		t.Fatalf("the audit log of the member: %s; want two portal sessions, and no token", a.raw)
	}

	unknown := map[string]any{"tenant_id": "acme", "external_id": "user-none"}
	problemOf(t, h.call("POST", "/v1/portal-sessions", h.root, unknown), http.StatusNotFound, keyward.CodeNotFound)
	for _, bad := range []string{"javascript:alert(1)", "/settings", "https://user:pw@app.example.com/", "ftp://app.example.com/"} {
		b := map[string]any{"tenant_id": "acme", "external_id": "user-1", "return_url": bad}
		if a := h.call("POST", "/v1/portal-sessions", h.root, b); a.status != http.StatusBadRequest || !strings.Contains(a.str("field"), "return_url") {
			t.Errorf("return_url %q: %d %s", bad, a.status, a.raw)
		}
	}
	problemOf(t, h.call("POST", "/v1/portal-sessions", h.root, map[string]any{"tenant_id": "acme"}), http.StatusBadRequest, keyward.CodeInvalidRequest)

	// A tenant's key without a member acts as an admin.
	mgr, _ := h.key(h.root, map[string]any{"tenant_id": acme, "name": "app", "permissions": []string{"keys:manage"}})
	h.must(http.StatusCreated, "POST", "/v1/portal-sessions", mgr, map[string]any{"external_id": "user-1"})
	refusedForRole(t, h.call("POST", "/v1/portal-sessions", mgr, map[string]any{"external_id": "user-owner"}), "admin")
	asOwner := map[string]any{"external_id": "user-2", "member": map[string]any{"email": "boss@acme.example", "name": "Boss", "role": "owner"}}
	if a := h.call("POST", "/v1/portal-sessions", mgr, asOwner); a.status != http.StatusForbidden {
		t.Errorf("an admin key created an owner through the portal: %d %s", a.status, a.raw)
	}
	// A key that is less than the session it would open makes none: a
	// test key, an expiring key, a restricted key, or one without a
	// permission the member holds.
	h.must(http.StatusCreated, "POST", "/v1/permissions", h.root, map[string]any{"name": "contacts:read"})
	reader := h.member(acme, "reader@acme.example", keyward.RoleDeveloper, "contacts:read")
	h.must(http.StatusOK, "PATCH", "/v1/members/"+reader, h.root, map[string]any{"external_id": "user-reader"})
	for name, body := range map[string]map[string]any{
		"test":       {"environment": "test"},
		"expiring":   {"expires": "1h"},
		"restricted": {"restrictions": map[string]any{"ips": []string{"203.0.113.0/24"}}},
	} {
		body["tenant_id"], body["name"], body["permissions"] = acme, name, []string{"keys:manage", "contacts:read"}
		weak, _ := h.key(h.root, body)
		for _, ext := range []string{"user-1", "user-new"} {
			b := map[string]any{"external_id": ext, "member": map[string]any{"email": ext + "@acme.example", "name": "N", "role": "viewer"}}
			if a := h.call("POST", "/v1/portal-sessions", weak, b); a.status != http.StatusForbidden {
				t.Errorf("a %s key made a portal session for %s: %d %s", name, ext, a.status, a.raw)
			}
		}
	}
	if a := h.call("POST", "/v1/portal-sessions", mgr, map[string]any{"external_id": "user-reader"}); a.status != http.StatusForbidden || !strings.Contains(a.str("detail"), "contacts:read") {
		t.Errorf("a key without the member's permission made a portal session: %d %s", a.status, a.raw)
	}
	if n := len(h.must(http.StatusOK, "GET", "/v1/members?tenant_id=acme", h.root, nil).list()); n != 3 {
		t.Errorf("%d members; a refused portal session created one", n)
	}
	// A key without keys:manage makes none.
	plain, _ := h.key(h.root, map[string]any{"tenant_id": acme, "name": "plain"})
	problemOf(t, h.call("POST", "/v1/portal-sessions", plain, map[string]any{"external_id": "user-1"}), http.StatusForbidden, keyward.CodeInsufficientPermissions)
}

// TestInvitations: POST /v1/members/{id}/invitations makes a one-time link
// for whoever may change the member.
func TestInvitations(t *testing.T) {
	h := newHarness(t)
	acme := h.tenant("acme")
	owner := h.member(acme, "owner@acme.example", keyward.RoleOwner)
	dev := h.member(acme, "dev@acme.example", keyward.RoleDeveloper)
	l := h.must(http.StatusCreated, "POST", "/v1/members/"+dev+"/invitations", h.root, nil).data()
	if p, _ := l["path"].(string); !strings.HasPrefix(p, "/invitations/inv_") || l["url"] != "" || l["member_id"] != dev {
		t.Fatalf("invitation: %v", l)
	}
	mgr, _ := h.key(h.root, map[string]any{"tenant_id": acme, "name": "app", "permissions": []string{"keys:manage"}})
	h.must(http.StatusCreated, "POST", "/v1/members/"+dev+"/invitations", mgr, nil)
	refusedForRole(t, h.call("POST", "/v1/members/"+owner+"/invitations", mgr, nil), "admin")
	// A member with a password: only the operator replaces it.
	if err := h.svc.SetPassword(context.Background(), manage.CommandLine(), dev, "a password for dev"); err != nil {
		t.Fatal(err)
	}
	problemOf(t, h.call("POST", "/v1/members/"+dev+"/invitations", mgr, nil), http.StatusForbidden, keyward.CodeInsufficientPermissions)
	h.must(http.StatusCreated, "POST", "/v1/members/"+dev+"/invitations", h.root, nil)
}
