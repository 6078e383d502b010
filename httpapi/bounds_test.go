package httpapi

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/manage"
)

// keyAction is a request that acts on an existing key.
type keyAction struct {
	method, path string
	body         any
}

// keyActions returns the requests that act on key id: a change with body,
// a revocation and a rotation.
func keyActions(id string, body map[string]any) []keyAction {
	return []keyAction{
		{"PATCH", "/v1/api-keys/" + id, body},
		{"DELETE", "/v1/api-keys/" + id, nil},
		{"POST", "/v1/api-keys/" + id + "/rotate", nil},
	}
}

// TestRevokeObeysTheKeyRule: a key with keys:manage cannot revoke a key
// that holds more than it does, and a system key with only keys:manage
// cannot revoke the root keys (key_root included) or a verifier key. The
// keys refused keep working.
func TestRevokeObeysTheKeyRule(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	manager, _ := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "m", "permissions": []string{"keys:manage", "contacts:read"}})
	strong, strongID := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "s", "permissions": []string{"contacts:read", "billing:write"}})
	d := problemOf(t, h.call("DELETE", "/v1/api-keys/"+strongID, manager, nil), 403, keyward.CodeInsufficientPermissions)
	if !strings.Contains(d, "billing:write") || !strings.Contains(d, "revoke") {
		t.Errorf("detail %q does not name the permission and the action", d)
	}
	h.must(200, "GET", "/v1/whoami", strong, nil)

	sysManager, _ := h.key(h.root, map[string]any{"tenant_id": keyward.SystemTenantID, "name": "sys-m", "permissions": []string{"keys:manage"}})
	root2, root2ID := h.key(h.root, map[string]any{"tenant_id": keyward.SystemTenantID, "name": "root-2", "permissions": []string{keyward.PermAdmin}})
	verifier, verifierID := h.key(h.root, map[string]any{"tenant_id": keyward.SystemTenantID, "name": "verifier", "permissions": []string{keyward.PermVerify}})
	for _, tc := range []struct {
		id, perm string
	}{
		{manage.FirstRootKeyID, keyward.PermAdmin},
		{root2ID, keyward.PermAdmin},
		{verifierID, keyward.PermVerify},
	} {
		for _, c := range keyActions(tc.id, map[string]any{"enabled": false}) {
			d := problemOf(t, h.call(c.method, c.path, sysManager, c.body), 403, keyward.CodeInsufficientPermissions)
			if !strings.Contains(d, tc.perm) {
				t.Errorf("%s %s: detail %q does not name %s", c.method, c.path, d, tc.perm)
			}
		}
	}
	for i, k := range []string{h.root, root2} {
		h.must(201, "POST", "/v1/tenants", k, map[string]any{"slug": []string{"by-root", "by-root-2"}[i]})
	}
	h.must(200, "POST", "/v1/verify", verifier, map[string]any{"key": strong})
	// The system manager still manages what it may: a key it made.
	_, madeID := h.key(sysManager, map[string]any{"name": "made", "permissions": []string{"keys:manage"}})
	h.must(200, "DELETE", "/v1/api-keys/"+madeID, sysManager, nil)
}

// TestKeyExpiryBound: a key that expires makes, changes and rotates only
// keys that expire no later than itself.
func TestKeyExpiryBound(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	const bound = "2027-01-01T00:00:00Z"
	manager, managerID := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "m", "permissions": []string{"keys:manage"}, "expires": "2027-01-01"})

	t.Run("create", func(t *testing.T) {
		for _, body := range []map[string]any{
			{"name": "forever"},
			{"name": "later", "expires": "2027-01-02"},
			{"name": "long", "expires": "90d"},
		} {
			a := h.call("POST", "/v1/api-keys", manager, body)
			d := problemOf(t, a, 403, keyward.CodeInsufficientPermissions)
			if a.str("field") != "expires" || !strings.Contains(d, bound) || !strings.Contains(d, "no later than") {
				t.Errorf("create %v: field %q, detail %q; want expires, naming %s", body, a.str("field"), d, bound)
			}
		}
		k := h.must(201, "POST", "/v1/api-keys", manager, map[string]any{"name": "ok", "expires": bound}).data()
		if k["expires_at"] != bound {
			t.Errorf("expires_at %v", k["expires_at"])
		}
	})

	_, id := h.key(manager, map[string]any{"name": "short", "expires": "30d"})
	t.Run("update", func(t *testing.T) {
		for _, exp := range []string{"never", "2027-06-01"} {
			a := h.call("PATCH", "/v1/api-keys/"+id, manager, map[string]any{"expires": exp})
			if problemOf(t, a, 403, keyward.CodeInsufficientPermissions); a.str("field") != "expires" {
				t.Errorf("expires %s: field %q", exp, a.str("field"))
			}
		}
		h.must(200, "PATCH", "/v1/api-keys/"+id, manager, map[string]any{"expires": "2026-12-31"})
	})

	t.Run("itself", func(t *testing.T) {
		for _, exp := range []string{"never", "2027-01-02"} {
			problemOf(t, h.call("PATCH", "/v1/api-keys/"+managerID, manager, map[string]any{"expires": exp}), 403, keyward.CodeInsufficientPermissions)
		}
		h.must(200, "PATCH", "/v1/api-keys/"+managerID, manager, map[string]any{"expires": "2026-12-31T12:00:00Z"})
		if k := h.must(200, "GET", "/v1/whoami", manager, nil).data(); k["expires_at"] != "2026-12-31T12:00:00Z" {
			t.Errorf("the manager's expiry is %v", k["expires_at"])
		}
	})

	t.Run("keys beyond it", func(t *testing.T) {
		// A key that outlives the manager is out of its reach: it can
		// neither change, revoke nor rotate it.
		_, foreverID := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "forever"})
		for _, c := range keyActions(foreverID, map[string]any{"expires": "1d"}) {
			d := problemOf(t, h.call(c.method, c.path, manager, c.body), 403, keyward.CodeInsufficientPermissions)
			if !strings.Contains(d, "never expires") {
				t.Errorf("%s %s: detail %q", c.method, c.path, d)
			}
		}
	})

	t.Run("rotate", func(t *testing.T) {
		// A key made with the manager's expiry, rotated a week later,
		// would expire a week after the manager: its successor expires
		// with the manager instead.
		_, rid := h.key(manager, map[string]any{"name": "rotating", "expires": "2026-12-31T12:00:00Z"})
		h.clock.Advance(7 * 24 * time.Hour)
		rot := h.must(201, "POST", "/v1/api-keys/"+rid+"/rotate", manager, nil)
		if got := rot.data()["expires_at"]; got != "2026-12-31T12:00:00Z" {
			t.Errorf("the successor expires at %v, want the manager's expiry", got)
		}
	})
}

// TestKeyIPBound: a key restricted to IP ranges makes and changes only keys
// restricted to ranges inside its own.
func TestKeyIPBound(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	manager, managerID := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "m", "permissions": []string{"keys:manage"},
		"restrictions": map[string]any{"ips": []string{"127.0.0.0/8", "2001:db8::/32"}}})

	for _, tc := range []struct {
		ips   []string
		field string
	}{
		{nil, "restrictions.ips"},
		{[]string{}, "restrictions.ips"},
		{[]string{"10.0.0.0/8"}, "restrictions.ips[0]"},
		{[]string{"127.0.0.1", "126.0.0.0/7"}, "restrictions.ips[1]"},
		{[]string{"2001:db8::/16"}, "restrictions.ips[0]"},
		{[]string{"::ffff:10.0.0.1"}, "restrictions.ips[0]"},
	} {
		body := map[string]any{"name": "x"}
		if tc.ips != nil {
			body["restrictions"] = map[string]any{"ips": tc.ips}
		}
		a := h.call("POST", "/v1/api-keys", manager, body)
		d := problemOf(t, a, 403, keyward.CodeInsufficientPermissions)
		if a.str("field") != tc.field || !strings.Contains(d, "127.0.0.0/8, 2001:db8::/32") {
			t.Errorf("create with %q: field %q, detail %q; want %s and the manager's ranges", tc.ips, a.str("field"), d, tc.field)
		}
	}
	k := h.must(201, "POST", "/v1/api-keys", manager, map[string]any{"name": "inside",
		"restrictions": map[string]any{"ips": []string{"127.0.0.1", "127.1.0.0/16", "2001:db8:1::/48", "::ffff:127.0.0.2"}}}).data()
	id := k["id"].(string)

	for _, ips := range [][]string{{}, {"0.0.0.0/0"}, {"127.0.0.1", "192.0.2.1"}} {
		a := h.call("PATCH", "/v1/api-keys/"+id, manager, map[string]any{"restrictions": map[string]any{"ips": ips}})
		if problemOf(t, a, 403, keyward.CodeInsufficientPermissions); !strings.HasPrefix(a.str("field"), "restrictions.ips") {
			t.Errorf("update to %q: field %q", ips, a.str("field"))
		}
		// Itself neither.
		problemOf(t, h.call("PATCH", "/v1/api-keys/"+managerID, manager, map[string]any{"restrictions": map[string]any{"ips": ips}}), 403, keyward.CodeInsufficientPermissions)
	}
	h.must(200, "PATCH", "/v1/api-keys/"+id, manager, map[string]any{"restrictions": map[string]any{"ips": []string{"127.0.0.0/8"}}})
	h.must(200, "PATCH", "/v1/api-keys/"+managerID, manager, map[string]any{"restrictions": map[string]any{"ips": []string{"127.0.0.0/8"}}})
	if got := h.must(200, "GET", "/v1/api-keys/"+managerID, manager, nil).data()["restrictions"]; len(got.(map[string]any)["ips"].([]any)) != 1 {
		t.Errorf("the manager's restrictions: %v", got)
	}

	// A key allowed from everywhere is out of the manager's reach.
	_, openID := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "open"})
	for _, c := range keyActions(openID, map[string]any{"name": "y"}) {
		d := problemOf(t, h.call(c.method, c.path, manager, c.body), 403, keyward.CodeInsufficientPermissions)
		if !strings.Contains(d, "every address") {
			t.Errorf("%s %s: detail %q", c.method, c.path, d)
		}
	}
	h.must(201, "POST", "/v1/api-keys/"+id+"/rotate", manager, nil)
}

// TestTestKeyMakesTestKeys: a test key manages test keys only: it cannot
// make a live key, nor change, rotate or revoke one.
func TestTestKeyMakesTestKeys(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	tester, _ := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "t", "environment": "test", "permissions": []string{"keys:manage"}})
	_, liveID := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "live"})
	for _, body := range []map[string]any{{"name": "x", "environment": "live"}, {"name": "x"}} {
		a := h.call("POST", "/v1/api-keys", tester, body)
		d := problemOf(t, a, 403, keyward.CodeInsufficientPermissions)
		if a.str("field") != "environment" || !strings.Contains(d, `"test"`) {
			t.Errorf("create %v: field %q, detail %q", body, a.str("field"), d)
		}
	}
	for _, c := range keyActions(liveID, map[string]any{"name": "y"}) {
		d := problemOf(t, h.call(c.method, c.path, tester, c.body), 403, keyward.CodeInsufficientPermissions)
		if !strings.Contains(d, "live") {
			t.Errorf("%s %s: detail %q", c.method, c.path, d)
		}
	}
	if k := h.must(200, "GET", "/v1/api-keys/"+liveID, h.root, nil).data(); k["status"] != "active" || k["name"] != "live" || k["rotated_to"] != "" {
		t.Errorf("the live key changed: %v", k)
	}
	_, testID := h.key(tester, map[string]any{"name": "x", "environment": "test"})
	h.must(200, "PATCH", "/v1/api-keys/"+testID, tester, map[string]any{"name": "y"})
	h.must(200, "DELETE", "/v1/api-keys/"+testID, tester, nil)
}

// TestExpiredKeyStaysExpired: an expired key cannot be revived by a new
// expiry, nor changed or rotated at all, by any key, root included (409);
// it can still be revoked.
func TestExpiredKeyStaysExpired(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	key, id := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "short", "expires": "1h"})
	h.clock.Advance(2 * time.Hour)
	problemOf(t, h.call("GET", "/v1/whoami", key, nil), http.StatusUnauthorized, keyward.CodeExpiredAPIKey)
	for _, body := range []map[string]any{{"expires": "90d"}, {"expires": "never"}, {"name": "renamed"}, {"enabled": false}} {
		d := problemOf(t, h.call("PATCH", "/v1/api-keys/"+id, h.root, body), 409, keyward.CodeConflict)
		if !strings.Contains(d, "expired on 2026-11-24T13:00:00Z") || !strings.Contains(d, "create a new key") {
			t.Errorf("update %v: detail %q", body, d)
		}
	}
	d := problemOf(t, h.call("POST", "/v1/api-keys/"+id+"/rotate", h.root, nil), 409, keyward.CodeConflict)
	if !strings.Contains(d, "expired") {
		t.Errorf("rotate: detail %q", d)
	}
	problemOf(t, h.call("GET", "/v1/whoami", key, nil), http.StatusUnauthorized, keyward.CodeExpiredAPIKey)
	if k := h.must(200, "GET", "/v1/api-keys/"+id, h.root, nil).data(); k["expires_at"] != "2026-11-24T13:00:00Z" || k["name"] != "short" || k["rotated_to"] != "" {
		t.Errorf("the expired key changed: %v", k)
	}
	h.must(200, "DELETE", "/v1/api-keys/"+id, h.root, nil)
}
