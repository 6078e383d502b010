package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// TestRotateWithNotice: the operator rotates every key of a tenant with
// 30 days' notice (keys rotate-all); the old key answers with Deprecation
// and Sunset from then on; key.rotated with the date reaches the tenant's
// webhook; the successor waits in the tenant's dashboard, where an owner
// reveals it once, though it holds a permission the owner does not (a
// second reveal is refused, and a viewer has no button and is refused); the operator's console lists the old key while it is
// still used.
func TestRotateWithNotice(t *testing.T) {
	r := newHookReceiver(t)
	s := startSite(t, "--webhook-allow-private", "--flush-interval", "50ms")
	s.member(t, s.acme, "ada@example.com", "owner", "correct horse battery", "contacts:read")
	s.member(t, s.acme, "vic@example.com", "viewer", "a viewer's password", "contacts:read")
	s.member(t, keyward.SystemTenantID, "ops@example.com", "owner", "the operator's password")
	acmeKey := s.call(t, "POST", "/v1/api-keys", s.root, map[string]any{"tenant_id": s.acme, "name": "mgr", "permissions": []string{"keys:manage"}})
	mgr, made := madeKeyOf(acmeKey)
	if !made {
		t.Fatalf("make a key of acme: %s", acmeKey.body)
	}
	r.register(t, s.server, mgr.key, keyward.EventKeyRotated)
	// A key holding a permission no member holds: its tenant's owner may
	// still reveal its successor.
	billing, made := madeKeyOf(s.call(t, "POST", "/v1/api-keys", s.root, map[string]any{"tenant_id": s.acme, "name": "billing", "permissions": []string{"contacts:write"}}))
	if !made {
		t.Fatal("could not make the billing key")
	}
	old, oldID := billing.key, billing.id

	o := ok(t, s.db, "keys", "rotate-all", "--tenant", "acme", "--notice", "30d")
	if !strings.Contains(o.stdout, "Rotated 2 keys with notice") {
		t.Fatalf("rotate-all: %s %s", o.stdout, o.stderr)
	}
	fails(t, s.db, 1, []string{"keys", "rotate-all", "--notice", "30d"}, "exactly one")
	if o := ok(t, s.db, "keys", "rotate-all", "--tenant", "acme", "--notice", "30d"); !strings.Contains(o.stdout, "Rotated 0 keys") || !strings.Contains(o.stdout, "Left 4 keys") {
		t.Fatalf("rotate-all again: %s", o.stdout)
	}

	// The old key works, with notice (once this server has read the
	// command line's change, within a second).
	var resp *http.Response
	waitFor(t, "the old key's notice", func() bool {
		req, _ := http.NewRequest("GET", s.url+"/v1/forward-auth", nil)
		req.Header.Set("X-API-Key", old)
		var err error
		if resp, err = http.DefaultClient.Do(req); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("Sunset") != ""
	})
	sunset, err := http.ParseTime(resp.Header.Get("Sunset"))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Deprecation") == "" || err != nil || sunset.Before(time.Now().Add(29*24*time.Hour)) {
		t.Fatalf("the old key: %d, Deprecation %q, Sunset %q", resp.StatusCode, resp.Header.Get("Deprecation"), resp.Header.Get("Sunset"))
	}
	waitFor(t, "key.rotated delivered", func() bool { return len(r.dataOf(keyward.EventKeyRotated)) == 2 })
	var rotated struct {
		Key       struct{ ID string }
		Successor struct{ ID string }
		SunsetAt  time.Time `json:"sunset_at"`
	}
	var succID string
	for _, d := range r.dataOf(keyward.EventKeyRotated) {
		if err := json.Unmarshal(d, &rotated); err != nil {
			t.Fatal(err)
		}
		if rotated.Key.ID == oldID {
			succID = rotated.Successor.ID
			if rotated.SunsetAt.Sub(sunset).Abs() > time.Second {
				t.Errorf("key.rotated says the old key stops at %v; its Sunset says %v", rotated.SunsetAt, sunset)
			}
		}
	}
	if succID == "" {
		t.Fatal("no key.rotated for the old key")
	}

	// A viewer has no reveal, and is refused one.
	vic := s.visitor(t)
	vic.signIn("vic@example.com", "a viewer's password")
	if p := vic.get("/keys"); strings.Contains(p.body, "Reveal your new key") || !strings.Contains(p.body, "new key waiting") {
		t.Error("a viewer is offered the reveal, or is not told a key waits")
	}
	if p := vic.post("/keys/"+succID+"/reveal", url.Values{"csrf": {vic.csrf("/keys")}}); p.status != http.StatusForbidden {
		t.Errorf("a viewer's reveal: %d; want 403", p.status)
	}
	// The owner reveals it, once.
	ada := s.visitor(t)
	ada.signIn("ada@example.com", "correct horse battery")
	if p := ada.get("/keys"); !strings.Contains(p.body, `action="/keys/`+succID+`/reveal"`) {
		t.Fatal("the owner is not offered the reveal of the successor")
	}
	p := ada.post("/keys/"+succID+"/reveal", url.Values{"csrf": {ada.csrf("/keys")}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("reveal: %d\n%s", p.status, p.body)
	}
	// A visit to another key's reveal page (a link from another site)
	// leaves this one waiting.
	if other := ada.get("/keys/" + oldID + "/reveal"); !strings.Contains(other.body, "not shown again") {
		t.Fatal("another key's reveal page shows a key")
	}
	p = ada.get(p.location)
	m := regexp.MustCompile(`value="(sk_live_[^"]+)"`).FindStringSubmatch(p.body)
	if m == nil || !strings.Contains(p.body, "It replaces") {
		t.Fatalf("the reveal shows no key:\n%s", p.body)
	}
	if a := s.call(t, "GET", "/v1/whoami", m[1], nil); a.status != http.StatusOK {
		t.Fatalf("the revealed key: %d %s", a.status, a.body)
	}
	if p := ada.post("/keys/"+succID+"/reveal", url.Values{"csrf": {ada.csrf("/keys")}}); p.status != http.StatusConflict {
		t.Errorf("a second reveal: %d; want 409", p.status)
	}

	// The old key is still used: the console lists it.
	ops := s.visitor(t)
	ops.signIn("ops@example.com", "the operator's password")
	waitFor(t, "the console lists the old key in use", func() bool {
		return strings.Contains(ops.get("/console").body, `<a href="/keys/`+oldID+`">billing</a>, last used`)
	})
	// A tenant's owner has no console.
	if p := ada.get("/console"); p.status != http.StatusForbidden {
		t.Errorf("a tenant's owner opened the console: %d", p.status)
	}
}
