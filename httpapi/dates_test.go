package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/lockedbuffer"
	"github.com/keyward/keyward/internal/sqlrow"
)

// storeKey puts a key straight into the store, past every check of
// package manage, and returns its plaintext and id.
func (h *harness) storeKey(tenantID string, perms []string, expires *time.Time) (plaintext, id string) {
	h.t.Helper()
	format, _ := apikey.NewFormat(apikey.DefaultPrefix)
	plaintext, err := format.Generate(keyward.Live)
	if err != nil {
		h.t.Fatal(err)
	}
	now := h.clock.Now()
	k := &keyward.Key{
		ID: apikey.NewID("key"), TenantID: tenantID, Environment: keyward.Live, Name: "stored by hand",
		Hash: apikey.Hash(plaintext), Head: apikey.Head(plaintext), Permissions: perms,
		ExpiresAt: expires, Status: keyward.KeyActive, CreatedAt: now, UpdatedAt: now, CreatedBy: "test",
	}
	k.Start, k.Last4 = apikey.Display(plaintext)
	if err := h.store.CreateKey(context.Background(), k, keyward.CommandLineActor()); err != nil {
		h.t.Fatal(err)
	}
	return plaintext, k.ID
}

// TestFarDatesRefused: an expiry or rotation date that JSON cannot encode
// (year 10000 in UTC), or that lies more than 100 years ahead, is refused
// on create and update with a 400 that names the field, and nothing is
// stored.
func TestFarDatesRefused(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	_, id := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "k"})
	for _, field := range []string{"expires", "rotate_by"} {
		for _, when := range []string{"9999-12-31T23:30:00-23:59", "9999-12-31", "2126-10-31T12:00:00.000001Z", "36501d"} {
			d := problemOf(t, h.call("POST", "/v1/api-keys", h.root, map[string]any{"tenant_id": "acme", "name": "far", field: when}), 400, keyward.CodeInvalidRequest)
			if !strings.HasPrefix(d, field+": ") || !strings.Contains(d, "36500d (100 years)") {
				t.Errorf("create with %s %s: detail %q", field, when, d)
			}
			a := h.call("PATCH", "/v1/api-keys/"+id, h.root, map[string]any{field: when})
			if d := problemOf(t, a, 400, keyward.CodeInvalidRequest); !strings.HasPrefix(d, field+": ") || a.str("field") != field {
				t.Errorf("update with %s %s: detail %q, field %q", field, when, d, a.str("field"))
			}
		}
	}
	// 100 years ahead to the microsecond is the latest accepted.
	k := h.must(http.StatusCreated, "POST", "/v1/api-keys", h.root, map[string]any{"tenant_id": "acme", "name": "far", "expires": "2126-10-31T12:00:00Z", "rotate_by": "36500d"}).data()
	if k["expires_at"] != "2126-10-31T12:00:00Z" || k["rotate_by"] != "2126-10-31T12:00:00Z" {
		t.Errorf("100 years ahead: expires_at %v, rotate_by %v", k["expires_at"], k["rotate_by"])
	}
	// Both keys were made at the same instant, so the list's order between
	// them is not fixed: the first one is found by its id.
	keys := h.must(200, "GET", "/v1/api-keys?tenant_id=acme", h.root, nil).list()
	if len(keys) != 2 {
		t.Fatalf("a refused request stored a key: %v", keys)
	}
	for _, k := range keys {
		if k["id"] == id && (k["expires_at"] != nil || k["rotate_by"] != nil) {
			t.Errorf("a refused update changed the key: %v", k)
		}
	}
}

// TestUnencodableAnswer: a key whose expiry JSON cannot encode, put into
// the store past every check, makes each answer that shows it a logged 500
// problem, never an empty 200; the key can still be revoked.
func TestUnencodableAnswer(t *testing.T) {
	var logs lockedbuffer.Buffer
	h := newHarness(t, withLog(&logs))
	acme := h.tenant("acme")
	year10000 := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	key, id := h.storeKey(acme, []string{"contacts:read"}, &year10000)
	verifier, _ := h.key(h.root, map[string]any{"tenant_id": "system", "name": "verifier", "permissions": []string{"keyward:verify"}})

	for _, c := range []struct {
		method, path, key string
		body              any
	}{
		{"GET", "/v1/api-keys?tenant_id=acme", h.root, nil},
		{"GET", "/v1/api-keys/" + id, h.root, nil},
		{"GET", "/v1/whoami", key, nil},
		{"POST", "/v1/verify", verifier, map[string]any{"key": key}},
	} {
		a := h.call(c.method, c.path, c.key, c.body)
		d := problemOf(t, a, http.StatusInternalServerError, keyward.CodeInternal)
		if !strings.Contains(d, "could not be encoded") {
			t.Errorf("%s %s: detail %q", c.method, c.path, d)
		}
		if !strings.Contains(logs.String(), a.str("request_id")) {
			t.Errorf("%s %s: request %s is not in the log:\n%s", c.method, c.path, a.str("request_id"), logs.String())
		}
	}
	if !strings.Contains(logs.String(), "year outside of range") {
		t.Errorf("the log does not give the cause:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), key[8:]) {
		t.Error("the log holds the key")
	}
	// Forward-auth answers no body: the key passes.
	h.must(200, "GET", "/v1/forward-auth", key, nil)

	rev := h.must(200, "DELETE", "/v1/api-keys/"+id, h.root, nil)
	if rev.raw != `{"success":true,"message":"API key revoked successfully"}`+"\n" {
		t.Errorf("revoke: %s", rev.raw)
	}
	problemOf(t, h.call("GET", "/v1/whoami", key, nil), 401, keyward.CodeRevokedAPIKey)
	problemOf(t, h.call("GET", "/v1/forward-auth", key, nil), 401, keyward.CodeRevokedAPIKey)
}

// TestExpiredStatus: a key past its expiry shows "expired" in every
// answer, and the status filter lists it as expired, not as active or
// disabled. A revoked key stays revoked whatever its expiry.
func TestExpiredStatus(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	create := func(name string, extra map[string]any) string {
		body := map[string]any{"tenant_id": "acme", "name": name}
		for k, v := range extra {
			body[k] = v
		}
		_, id := h.key(h.root, body)
		return id
	}
	active := create("active", nil)
	expiring := create("expiring", map[string]any{"expires": "1h"})
	disabledExpiring := create("disabled-expiring", map[string]any{"expires": "1h"})
	revokedExpiring := create("revoked-expiring", map[string]any{"expires": "1h"})
	disabled := create("disabled", nil)
	h.must(200, "PATCH", "/v1/api-keys/"+disabledExpiring, h.root, map[string]any{"enabled": false})
	h.must(200, "PATCH", "/v1/api-keys/"+disabled, h.root, map[string]any{"enabled": false})
	h.must(200, "DELETE", "/v1/api-keys/"+revokedExpiring, h.root, nil)
	if st := h.must(200, "GET", "/v1/api-keys/"+expiring, h.root, nil).data()["status"]; st != "active" {
		t.Fatalf("before its expiry: status %v", st)
	}

	h.clock.Advance(time.Hour)
	want := map[string]string{active: "active", expiring: "expired", disabledExpiring: "expired", revokedExpiring: "revoked", disabled: "disabled"}
	for id, st := range want {
		if got := h.must(200, "GET", "/v1/api-keys/"+id, h.root, nil).data()["status"]; got != st {
			t.Errorf("show %s: status %v, want %s", id, got, st)
		}
	}
	for _, k := range h.must(200, "GET", "/v1/api-keys?tenant_id=acme", h.root, nil).list() {
		if k["status"] != want[k["id"].(string)] {
			t.Errorf("list: %s has status %v, want %s", k["id"], k["status"], want[k["id"].(string)])
		}
	}
	for _, st := range []string{"active", "disabled", "expired", "revoked"} {
		var wantIDs []string
		for id, s := range want {
			if s == st {
				wantIDs = append(wantIDs, id)
			}
		}
		got := h.must(200, "GET", "/v1/api-keys?tenant_id=acme&status="+st, h.root, nil).list()
		if len(got) != len(wantIDs) {
			t.Errorf("status=%s lists %d keys, want %v", st, len(got), wantIDs)
		}
		for _, k := range got {
			if want[k["id"].(string)] != st || k["status"] != st {
				t.Errorf("status=%s lists %s, whose status is %v", st, k["id"], k["status"])
			}
		}
	}
	if d := problemOf(t, h.call("GET", "/v1/api-keys?tenant_id=acme&status=gone", h.root, nil), 400, keyward.CodeInvalidRequest); !strings.Contains(d, "expired") {
		t.Errorf("bad status detail %q does not list expired", d)
	}

	// An expired key can no longer be changed; revoking it shows revoked.
	problemOf(t, h.call("PATCH", "/v1/api-keys/"+expiring, h.root, map[string]any{"name": "renamed"}), 409, keyward.CodeConflict)
	// The previous key of a rotation without grace is expired at once.
	rot := h.must(http.StatusCreated, "POST", "/v1/api-keys/"+active+"/rotate", h.root, map[string]any{"grace_period": "0"})
	if prev := rot.body["previous"].(map[string]any); prev["status"] != "expired" || rot.data()["status"] != "active" {
		t.Errorf("rotate: previous status %v, successor %v", prev["status"], rot.data()["status"])
	}
}

// TestNeverAndEmptyTimes: "never" means no time on create as on update;
// an empty string is refused on both, not taken for "never".
func TestNeverAndEmptyTimes(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	k := h.must(http.StatusCreated, "POST", "/v1/api-keys", h.root, map[string]any{"tenant_id": "acme", "name": "k", "expires": "never", "rotate_by": "never"}).data()
	if k["expires_at"] != nil || k["rotate_by"] != nil {
		t.Errorf("never: expires_at %v, rotate_by %v", k["expires_at"], k["rotate_by"])
	}
	_, id := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "dated", "expires": "30d", "rotate_by": "20d"})
	for _, field := range []string{"expires", "rotate_by"} {
		d := problemOf(t, h.call("POST", "/v1/api-keys", h.root, map[string]any{"tenant_id": "acme", "name": "x", field: ""}), 400, keyward.CodeInvalidRequest)
		if !strings.HasPrefix(d, field+": is empty") || !strings.Contains(d, `"never"`) {
			t.Errorf("create with %s \"\": %q", field, d)
		}
		d = problemOf(t, h.call("PATCH", "/v1/api-keys/"+id, h.root, map[string]any{field: ""}), 400, keyward.CodeInvalidRequest)
		if !strings.HasPrefix(d, field+": is empty") {
			t.Errorf("update with %s \"\": %q", field, d)
		}
	}
	if k := h.must(200, "GET", "/v1/api-keys/"+id, h.root, nil).data(); k["expires_at"] != "2026-12-24T12:00:00Z" || k["rotate_by"] != "2026-12-14T12:00:00Z" {
		t.Errorf("a refused update changed the times: %v, %v", k["expires_at"], k["rotate_by"])
	}
	if n := len(h.must(200, "GET", "/v1/api-keys?tenant_id=acme", h.root, nil).list()); n != 2 {
		t.Errorf("%d keys, want 2", n)
	}
}

// TestNegativeAndLongDurations: each error says exactly what is wrong.
func TestNegativeAndLongDurations(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	_, id := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "k"})
	for _, c := range []struct {
		method, path, field, value, want string
	}{
		{"POST", "/v1/api-keys", "expires", "-1h", `expires: "-1h" is negative`},
		{"POST", "/v1/api-keys", "rotate_by", "-90d", `rotate_by: "-90d" is negative`},
		{"POST", "/v1/api-keys", "expires", "36501d", `expires: "36501d" is longer than the maximum of 36500d (100 years)`},
		{"PATCH", "/v1/api-keys/" + id, "expires", "-1h", `expires: "-1h" is negative`},
		{"PATCH", "/v1/api-keys/" + id, "rotate_by", "36501d", `rotate_by: "36501d" is longer than the maximum of 36500d (100 years)`},
		{"POST", "/v1/api-keys/" + id + "/rotate", "grace_period", "-1h", `grace_period: "-1h" is negative`},
		{"POST", "/v1/api-keys/" + id + "/rotate", "grace_period", "36501d", "longer than 30 days"},
	} {
		body := map[string]any{c.field: c.value}
		if c.method == "POST" && c.field != "grace_period" {
			body["tenant_id"], body["name"] = "acme", "x"
		}
		d := problemOf(t, h.call(c.method, c.path, h.root, body), 400, keyward.CodeInvalidRequest)
		if !strings.Contains(d, c.want) {
			t.Errorf("%s %s %s=%s: detail %q, want %q", c.method, c.path, c.field, c.value, d, c.want)
		}
	}
}

// TestUpdateWithoutChange: a PATCH that changes nothing is a 400 that
// says so, and writes neither an audit entry nor a change.
func TestUpdateWithoutChange(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	_, id := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "k", "permissions": []string{"a:read", "b:write"},
		"metadata": map[string]string{"owner": "ops"}, "restrictions": map[string]any{"ips": []string{"10.0.0.0/8", "192.0.2.7"}}, "expires": "2027-01-01"})
	audit := func() int {
		return len(h.must(200, "GET", "/v1/audit-log?target="+id, h.root, nil).list())
	}
	entries := audit()
	seq, err := h.store.LastChange(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []any{
		map[string]any{},
		map[string]any{"name": "k"},
		map[string]any{"permissions": []string{"b:write", "a:read"}},
		map[string]any{"metadata": map[string]string{"owner": "ops"}},
		map[string]any{"restrictions": map[string]any{"ips": []string{"192.0.2.7/32", "10.1.2.3/8"}}},
		map[string]any{"expires": "2027-01-01T00:00:00Z"},
		map[string]any{"rotate_by": "never"},
		map[string]any{"enabled": true},
		map[string]any{"name": "k", "enabled": true, "rotate_by": "never"},
	} {
		d := problemOf(t, h.call("PATCH", "/v1/api-keys/"+id, h.root, body), 400, keyward.CodeInvalidRequest)
		if !strings.Contains(d, "Nothing to change") {
			t.Errorf("PATCH %v: detail %q", body, d)
		}
	}
	if n := audit(); n != entries {
		t.Errorf("updates that changed nothing wrote %d audit entries", n-entries)
	}
	if now, err := h.store.LastChange(t.Context()); err != nil || now != seq {
		t.Errorf("updates that changed nothing moved the change feed from %d to %d (%v)", seq, now, err)
	}
	// A value equal to the current one beside a new one: the change is
	// made, once.
	if k := h.must(200, "PATCH", "/v1/api-keys/"+id, h.root, map[string]any{"name": "k", "enabled": false}).data(); k["status"] != "disabled" || k["name"] != "k" {
		t.Errorf("update: %v", k)
	}
	if n := audit(); n != entries+1 {
		t.Errorf("one update wrote %d audit entries", n-entries)
	}
}

// TestEmptyPages: every list answers an empty page as [], never null.
func TestEmptyPages(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	end := sqlrow.EncodeCursor(sqlrow.CursorTenants, sqlrow.Cursor{N: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro(), ID: "ten_z"})
	for _, path := range []string{
		"/v1/api-keys?tenant_id=acme",
		"/v1/api-keys?tenant_id=acme&status=expired",
		"/v1/tenants?cursor=" + url.QueryEscape(end),
		"/v1/audit-log?target=key_nope",
	} {
		a := h.must(200, "GET", path, h.root, nil)
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(a.raw), &raw); err != nil || string(raw["data"]) != "[]" {
			t.Errorf("GET %s: data is %s, want []", path, raw["data"])
		}
	}
}

// TestUnreadableBody: a body that does not arrive is answered with what
// went wrong, in words that name no socket address.
func TestUnreadableBody(t *testing.T) {
	h := newHarness(t)
	handler, err := NewServer(Config{Service: h.svc, Verifier: h.verifier, Store: h.store})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(handler)
	// A short ReadTimeout, as serve sets a longer one: the body's read
	// fails with the connection's "read tcp a:p->b:q: i/o timeout".
	srv.Config.ReadTimeout = 500 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	addr := regexp.MustCompile(`\d+\.\d+\.\d+\.\d+:\d+|\[[0-9a-f:]+\]:\d+`)

	send := func(t *testing.T, closeWrite bool) answer {
		t.Helper()
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		req := "POST /v1/api-keys HTTP/1.1\r\nHost: keyward\r\nX-API-Key: " + h.root +
			"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"tenant_id\": \"system\", \"name\":"
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatal(err)
		}
		if closeWrite {
			conn.(*net.TCPConn).CloseWrite()
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
		if err := json.Unmarshal(raw, &a.body); err != nil {
			t.Fatalf("not JSON: %s", raw)
		}
		return a
	}
	t.Run("too slow", func(t *testing.T) {
		d := problemOf(t, send(t, false), 400, keyward.CodeInvalidRequest)
		if addr.MatchString(d) || strings.Contains(d, "tcp") || !strings.Contains(d, "did not arrive in time") {
			t.Errorf("detail %q", d)
		}
	})
	t.Run("cut short", func(t *testing.T) {
		d := problemOf(t, send(t, true), 400, keyward.CodeInvalidRequest)
		if addr.MatchString(d) || !strings.Contains(d, "Content-Length") {
			t.Errorf("detail %q", d)
		}
	})
}
