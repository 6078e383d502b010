package httpapi

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

// TestNotices: a key past its rotate_by shows rotation_due in every answer
// about it (the key's, the list's, /v1/whoami's, /v1/verify's); a key in a
// rotation's grace period, or within the expiry notice of its expiry,
// carries Deprecation and Sunset on forward-auth's answers (allowed or
// refused) and the API's, on both fronts; a key with neither carries
// neither.
func TestNotices(t *testing.T) { fronts(t, testNotices) }

func testNotices(t *testing.T, front harnessOption) {
	h := newHarness(t, front)
	h.tenant("acme")
	verifier, _ := h.key(h.root, map[string]any{"tenant_id": "system", "name": "verifier", "permissions": []string{"keyward:verify"}})
	now := h.clock.Now()

	due, dueID := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "due", "rotate_by": "1d"})
	h.clock.Advance(25 * time.Hour)
	now = now.Add(25 * time.Hour)
	if d := h.must(200, "GET", "/v1/api-keys/"+dueID, h.root, nil).data(); d["rotation_due"] != true {
		t.Errorf("GET the key past rotate_by: rotation_due %v", d["rotation_due"])
	}
	for _, k := range h.must(200, "GET", "/v1/api-keys?tenant_id=acme", h.root, nil).list() {
		if k["id"] == dueID && k["rotation_due"] != true {
			t.Errorf("the list: rotation_due %v", k["rotation_due"])
		}
	}
	if d := h.must(200, "GET", "/v1/whoami", due, nil).data(); d["rotation_due"] != true || d["sunset"] != nil {
		t.Errorf("whoami: rotation_due %v, sunset %v", d["rotation_due"], d["sunset"])
	}
	if a := h.must(200, "POST", "/v1/verify", verifier, map[string]any{"key": due}); a.body["rotation_due"] != true {
		t.Errorf("verify: %s", a.raw)
	}

	// Rotated with a grace period of 3 days: the old key carries the
	// notice, deprecated at the rotation; its successor does not.
	old, oldID := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "old"})
	rotated := h.must(201, "POST", "/v1/api-keys/"+oldID+"/rotate", h.root, map[string]any{"grace_period": "3d"}).data()
	successor := rotated["key"].(string)
	sunset := now.Add(72 * time.Hour).UTC().Format(http.TimeFormat)
	deprecation := "@" + strconv.FormatInt(now.Unix(), 10)
	// Expiring in 2 days, within the default notice of a week, since 5
	// days: deprecated at the start of the notice.
	expiring, _ := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "expiring", "expires": "2d"})
	for _, c := range []struct {
		name, key, sunset, deprecation string
	}{
		{"in grace", old, sunset, deprecation},
		{"expiring", expiring, now.Add(48 * time.Hour).UTC().Format(http.TimeFormat), "@" + strconv.FormatInt(now.Add(48*time.Hour-7*24*time.Hour).Unix(), 10)},
		{"successor", successor, "", ""},
		{"due", due, "", ""},
	} {
		for _, a := range []answer{
			h.call("GET", "/v1/forward-auth", c.key, nil, "X-Original-URI", "/v1/contacts"),
			h.call("GET", "/v1/whoami", c.key, nil),
			h.call("GET", "/v1/api-keys", c.key, nil), // refused: no keys:manage
		} {
			if a.header.Get("Sunset") != c.sunset || a.header.Get("Deprecation") != c.deprecation {
				t.Errorf("%s, answered %d: Sunset %q, Deprecation %q; want %q and %q", c.name, a.status,
					a.header.Get("Sunset"), a.header.Get("Deprecation"), c.sunset, c.deprecation)
			}
		}
	}
	v := h.must(200, "POST", "/v1/verify", verifier, map[string]any{"key": old}).body
	if v["sunset"] != now.Add(72*time.Hour).UTC().Format(time.RFC3339) || v["deprecation"] != now.UTC().Format(time.RFC3339) {
		t.Errorf("verify of the key in grace: sunset %v, deprecation %v", v["sunset"], v["deprecation"])
	}
}
