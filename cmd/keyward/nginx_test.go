package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/lockedbuffer"
)

// readmeNginx returns the two nginx snippets of the README, the one for
// the http block and the one for the server block, so that the test runs
// what users copy.
func readmeNginx(t *testing.T) (httpBlock, serverBlock string) {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	rest := string(b)
	for len(blocks) < 2 {
		var ok bool
		if _, rest, ok = strings.Cut(rest, "```nginx\n"); !ok {
			t.Fatalf("README.md has %d ```nginx blocks, want 2: the http block's, then the server block's", len(blocks))
		}
		var block string
		if block, rest, ok = strings.Cut(rest, "```"); !ok {
			t.Fatal("README.md has an unterminated ```nginx block")
		}
		blocks = append(blocks, block)
	}
	return blocks[0], blocks[1]
}

// startNginx runs a real nginx in the foreground with the README's
// snippets, the server one in a server on a free loopback port, keyward
// (host:port) and upstream (a URL) put in place of the snippets'
// addresses and the test's directory in place of /var/log/nginx. It
// returns nginx's base URL and the directory, which holds access.log and
// error.log. edits are more pairs of old and new strings to replace in the
// snippets.
func startNginx(t *testing.T, keyward, upstream string, edits ...string) (base, dir string) {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		t.Fatal("nginx is not installed; scripts/test installs it (apt-get install nginx)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir = t.TempDir()
	replace := strings.NewReplacer(append([]string{"http://127.0.0.1:9000", upstream, "127.0.0.1:8080", keyward, "/var/log/nginx/", dir + "/"}, edits...)...).Replace
	httpBlock, serverBlock := readmeNginx(t)
	conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events {}
http {
    client_body_temp_path %[1]s; proxy_temp_path %[1]s; fastcgi_temp_path %[1]s; uwsgi_temp_path %[1]s; scgi_temp_path %[1]s;
%[3]s
    server {
        listen %[2]s;
%[4]s
    }
}
`, dir, addr, replace(httpBlock), replace(serverBlock))
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", path, "-e", filepath.Join(dir, "error.log"))
	var out lockedbuffer.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return "http://" + addr, dir
		}
		if time.Now().After(deadline) {
			logs, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx did not listen on %s within 10s: %s\n%s", addr, out.String(), logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nginxAnswer is an answer through nginx, read whole.
type nginxAnswer struct {
	status int
	header http.Header
	body   string
}

// TestNginxForwardAuth puts a real nginx, configured with the README's
// snippets, in front of an upstream, with Keyward's /v1/forward-auth
// deciding every request. Every refusal reaches the client with Keyward's
// status, problem body and headers, Keyward stopped is a 503 problem from
// nginx, and no part of a key is written to nginx's access or error log.
func TestNginxForwardAuth(t *testing.T) {
	db := dbFile(t)
	kw := startServer(t, db, "--trusted-proxies", "127.0.0.1")
	kw.waitHealthy(t)

	var mu sync.Mutex
	var seen http.Header
	var reached int
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = r.Header.Clone()
		reached++
		mu.Unlock()
		io.WriteString(w, "upstream ok")
	}))
	t.Cleanup(upstream.Close)
	proxy, logDir := startNginx(t, strings.TrimPrefix(kw.url, "http://"), upstream.URL)

	ok(t, db, "tenants", "create", "acme")
	key := strings.TrimSpace(ok(t, db, "keys", "create", "--tenant", "acme", "--name", "n", "--env", "test", "--permissions", "contacts:read,messages:send").stdout)
	noPerm := strings.TrimSpace(ok(t, db, "keys", "create", "--tenant", "acme", "--name", "p", "--permissions", "messages:send").stdout)
	office := strings.TrimSpace(ok(t, db, "keys", "create", "--tenant", "acme", "--name", "o", "--permissions", "contacts:read", "--allow-ip", "10.0.0.0/8").stdout)
	format, _ := apikey.NewFormat(apikey.DefaultPrefix)
	unknown, err := format.Generate(keyward.Live)
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{key, noPerm, office, unknown}

	send := func(method, path string, header ...string) nginxAnswer {
		t.Helper()
		var body io.Reader
		if method == "POST" {
			body = strings.NewReader(strings.Repeat("x", 100_000))
		}
		req, err := http.NewRequest(method, proxy+path, body)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return nginxAnswer{resp.StatusCode, resp.Header, string(b)}
	}

	for _, hdr := range [][]string{{"X-API-Key", key}, {"Authorization", "Bearer " + key}} {
		a := send("GET", "/api/orders?page=2", hdr...)
		if a.status != 200 || a.body != "upstream ok" || !strings.HasPrefix(a.header.Get("X-Request-Id"), "req_") {
			t.Fatalf("%s: %d %v %q", hdr[0], a.status, a.header, a.body)
		}
		mu.Lock()
		h := seen
		mu.Unlock()
		if h.Get("X-Keyward-Environment") != "test" || h.Get("X-Keyward-Permissions") != "contacts:read,messages:send" ||
			!strings.HasPrefix(h.Get("X-Keyward-Key-Id"), "key_") || !strings.HasPrefix(h.Get("X-Keyward-Tenant"), "ten_") {
			t.Errorf("%s: the upstream got identity headers %v", hdr[0], h)
		}
		if h.Get("X-Api-Key") != "" || h.Get("Authorization") != "" {
			t.Errorf("%s: the key reached the upstream", hdr[0])
		}
	}
	if a := send("GET", "/api/orders", "X-API-Key", key); a.header.Get("Sunset") != "" || a.header.Get("Deprecation") != "" {
		t.Errorf("a key without a notice: Sunset %q, Deprecation %q", a.header.Get("Sunset"), a.header.Get("Deprecation"))
	}
	// A key that expires within the notice: nginx passes Keyward's
	// Deprecation and Sunset on to the client.
	expiring := strings.TrimSpace(ok(t, db, "keys", "create", "--tenant", "acme", "--name", "e", "--permissions", "contacts:read", "--expires", "2d").stdout)
	if a := send("GET", "/api/orders", "X-API-Key", expiring); a.status != 200 || !strings.HasPrefix(a.header.Get("Deprecation"), "@") {
		t.Errorf("an expiring key: %d, Sunset %q, Deprecation %q", a.status, a.header.Get("Sunset"), a.header.Get("Deprecation"))
	} else if sunset, err := http.ParseTime(a.header.Get("Sunset")); err != nil || time.Until(sunset) < 47*time.Hour || time.Until(sunset) > 49*time.Hour {
		t.Errorf("an expiring key: Sunset %q (%v), want in 2 days", a.header.Get("Sunset"), err)
	}

	// refused checks that a is Keyward's refusal: status, problem body
	// with code, the X-Request-Id of that body, challenge in
	// WWW-Authenticate ("" for none), and that the upstream was not
	// reached.
	refused := func(name string, a nginxAnswer, status int, code keyward.Code, challenge string) {
		t.Helper()
		var p struct {
			Code      keyward.Code `json:"code"`
			Status    int          `json:"status"`
			RequestID string       `json:"request_id"`
			Detail    string       `json:"detail"`
		}
		if err := json.Unmarshal([]byte(a.body), &p); err != nil {
			t.Errorf("%s: %d, the body is not JSON: %q", name, a.status, a.body)
			return
		}
		if a.status != status || p.Code != code || p.Status != status || p.Detail == "" {
			t.Errorf("%s: %d %s, want %d %s: %s", name, a.status, p.Code, status, code, a.body)
		}
		if ct := a.header.Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("%s: Content-Type %q", name, ct)
		}
		if ids := a.header.Values("X-Request-Id"); len(ids) != 1 || ids[0] != p.RequestID || p.RequestID == "" {
			t.Errorf("%s: X-Request-Id %q, request_id %q", name, ids, p.RequestID)
		}
		got := a.header.Values("WWW-Authenticate")
		switch {
		case challenge == "" && len(got) != 0:
			t.Errorf("%s: WWW-Authenticate %q, want none", name, got)
		case challenge != "" && (len(got) != 1 || !strings.Contains(got[0], challenge)):
			t.Errorf("%s: WWW-Authenticate %q, want one with %q", name, got, challenge)
		}
		for _, k := range keys {
			if strings.Contains(a.body, k[8:]) {
				t.Errorf("%s: the answer repeats a key: %s", name, a.body)
			}
		}
	}

	mu.Lock()
	before := reached
	mu.Unlock()
	encoded := strings.NewReplacer("_", "%5F", "s", "%73").Replace(key)
	refusals := []struct {
		name      string
		method    string
		path      string
		header    []string
		status    int
		code      keyward.Code
		challenge string
	}{
		{"missing", "GET", "/api/orders", nil, 401, keyward.CodeMissingAPIKey, `Bearer realm="keyward"`},
		{"malformed", "GET", "/api/orders", []string{"X-API-Key", "sk_live_nonsense"}, 401, keyward.CodeMalformedAPIKey, `error="invalid_token"`},
		{"unknown", "GET", "/api/orders", []string{"Authorization", "Bearer " + unknown}, 401, keyward.CodeInvalidAPIKey, `error="invalid_token"`},
		{"refused with a body", "POST", "/api/orders", []string{"X-API-Key", "sk_live_nonsense"}, 401, keyward.CodeMalformedAPIKey, `error="invalid_token"`},
		{"insufficient permissions", "GET", "/api/orders", []string{"X-API-Key", noPerm}, 403, keyward.CodeInsufficientPermissions, `error="insufficient_scope"`},
		// The client's own X-Forwarded-For is replaced by nginx's.
		{"ip not allowed", "GET", "/api/orders", []string{"X-API-Key", office, "X-Forwarded-For", "10.1.2.3"}, 403, keyward.CodeIPNotAllowed, ""},
		{"key in the query", "GET", "/api/orders?page=2&api_key=" + key, []string{"X-API-Key", key}, 400, keyward.CodeInvalidRequest, ""},
		{"key in any parameter after a semicolon", "GET", "/api/orders?page=2;secret=" + noPerm, nil, 400, keyward.CodeInvalidRequest, ""},
		{"key percent-encoded", "GET", "/api/orders?s=" + encoded, []string{"X-API-Key", key}, 400, keyward.CodeInvalidRequest, ""},
		{"unknown key in the query", "GET", "/api/orders?token=" + unknown, nil, 400, keyward.CodeInvalidRequest, ""},
		{"key in the path", "GET", "/api/" + key + "/orders", []string{"X-API-Key", key}, 400, keyward.CodeInvalidRequest, ""},
		{"key in the path, percent-encoded", "GET", "/api/" + encoded + "/x", []string{"X-API-Key", key}, 400, keyward.CodeInvalidRequest, ""},
		{"two keys in the path", "GET", "/api/" + noPerm + "/" + office, []string{"X-API-Key", key}, 400, keyward.CodeInvalidRequest, ""},
		{"key in the path, encoded twice", "GET", "/api/" + strings.ReplaceAll(encoded, "%", "%25") + "/x", []string{"X-API-Key", key}, 400, keyward.CodeInvalidRequest, ""},
	}
	for _, c := range refusals {
		refused(c.name, send(c.method, c.path, c.header...), c.status, c.code, c.challenge)
	}
	mu.Lock()
	if reached != before {
		t.Errorf("%d refused requests reached the upstream", reached-before)
	}
	mu.Unlock()

	// A client's own X-Original-URI or X-Original-Method, which Keyward
	// reads too, is cleared by nginx: it neither passes for the request
	// nor makes Keyward blame the proxy.
	for _, h := range [][]string{{"X-Original-URI", "/other"}, {"X-Original-Method", "DELETE"}} {
		if a := send("GET", "/api/orders", "X-API-Key", key, h[0], h[1]); a.status != 200 {
			t.Errorf("a client's %s: %d %s", h[0], a.status, a.body)
		}
	}

	// Revoked from the command line, the key is refused through nginx
	// within a second.
	list := decodeList[map[string]any](t, ok(t, db, "keys", "list", "--tenant", "acme", "--env", "test", "--json").stdout)
	ok(t, db, "keys", "revoke", list.Data[0]["id"].(string))
	deadline := time.Now().Add(time.Second)
	for {
		a := send("GET", "/api/orders", "X-API-Key", key)
		if a.status == 401 {
			refused("revoked", a, 401, keyward.CodeRevokedAPIKey, `error="invalid_token"`)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the revoked key still passes nginx after 1s: %d", a.status)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Keyward stopped: nginx answers 503 itself, as problem+json with
	// Retry-After, and writes no key to its logs either.
	if err := kw.shutdown(t); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, path string
		header     []string
	}{
		{"stopped, a valid key", "/api/orders", []string{"X-API-Key", noPerm}},
		{"stopped, no key", "/api/orders", nil},
		{"stopped, key in the query", "/api/orders?api_key=" + noPerm, nil},
		{"stopped, key in the path", "/api/x/" + office, []string{"Authorization", "Bearer " + office}},
	} {
		a := send("GET", c.path, c.header...)
		refused(c.name, a, 503, keyward.CodeStorageUnavailable, "")
		if a.header.Get("Retry-After") == "" {
			t.Errorf("%s: no Retry-After: %v", c.name, a.header)
		}
	}

	// nginx writes the access log line after the answer: wait for the
	// last one.
	var access, errorLog []byte
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		access, _ = os.ReadFile(filepath.Join(logDir, "access.log"))
		if strings.Contains(string(access), `"GET [a path with a key]" 503`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the access log lacks the last request, with the key in the path replaced:\n%s", access)
		}
	}
	errorLog, err = os.ReadFile(filepath.Join(logDir, "error.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(access), `"GET /api/orders" 400`) || !strings.Contains(string(access), `"GET [a path with a key]" 400`) ||
		!strings.Contains(string(access), `"GET [an encoded path]" 400`) {
		t.Errorf("the access log lacks the refusals:\n%s", access)
	}
	for name, log := range map[string]string{"access.log": string(access), "error.log": string(errorLog)} {
		for _, k := range keys {
			// No run of 8 characters of a key's body.
			body := k[len(k)-apikey.BodyLen:]
			for i := 0; i+8 <= len(body); i++ {
				if strings.Contains(log, body[i:i+8]) {
					t.Errorf("nginx's %s holds part of a key (%s…):\n%s", name, body[i:i+8], log)
					break
				}
			}
		}
	}
}

// nginxRoutes is a route policy for the locations of the README's nginx
// snippet, under /api/.
const nginxRoutes = `default: deny
routes:
  - match: GET /api/health
    public: true
  - match: GET /api/contacts/**
    permissions: [contacts:read]
  - match: GET /api/billing
    permissions: [contacts:read]
    tls: required
`

// TestNginxRoutes puts a real nginx, with the README's snippets less the
// permissions parameter, in front of an upstream, and Keyward's serve
// --routes deciding: a public route passes without a key, a route the
// policy denies is refused, a permissioned one passes with the right key
// and the identity headers reach the upstream. The file rewritten (and
// SIGHUP sent), the new policy applies; a bad file keeps the old one.
func TestNginxRoutes(t *testing.T) {
	// nginx asks the API's listener (--addr), or the auth listener
	// (--auth-addr), which must answer alike.
	t.Run("api", func(t *testing.T) { testNginxRoutes(t, false) })
	t.Run("auth-listener", func(t *testing.T) { testNginxRoutes(t, true) })
}

func testNginxRoutes(t *testing.T, authListener bool) {
	db := dbFile(t)
	routes := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(routes, []byte(nginxRoutes), 0o600); err != nil {
		t.Fatal(err)
	}
	var kw *server
	addr := ""
	if authListener {
		kw = startServer(t, db, "--trusted-proxies", "127.0.0.1", "--routes", routes, "--auth-addr", "127.0.0.1:0")
		addr = awaitListener(t, kw.stderr, "auth")
	} else {
		kw = startServer(t, db, "--trusted-proxies", "127.0.0.1", "--routes", routes)
		addr = strings.TrimPrefix(kw.url, "http://")
	}
	kw.waitHealthy(t)

	var mu sync.Mutex
	var seen http.Header
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = r.Header.Clone()
		mu.Unlock()
		io.WriteString(w, "upstream ok")
	}))
	t.Cleanup(upstream.Close)
	proxy, _ := startNginx(t, addr, upstream.URL,
		// The policy decides: no permissions parameter. A variable stays
		// in its place, since nginx takes a proxy_pass with a query
		// string in a named location only with one.
		"permissions=$keyward_permissions&", "${keyward_none}",
		"set                 $keyward_permissions contacts:read;", `set $keyward_none "";`)

	ok(t, db, "tenants", "create", "acme")
	reader := strings.TrimSpace(ok(t, db, "keys", "create", "--tenant", "acme", "--name", "Zoë", "--permissions", "contacts:read").stdout)
	writer := strings.TrimSpace(ok(t, db, "keys", "create", "--tenant", "acme", "--name", "w", "--permissions", "contacts:write").stdout)
	send := func(path, key string, header ...string) nginxAnswer {
		t.Helper()
		req, err := http.NewRequest("GET", proxy+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return nginxAnswer{resp.StatusCode, resp.Header, string(b)}
	}
	code := func(a nginxAnswer) keyward.Code {
		var p struct {
			Code keyward.Code `json:"code"`
		}
		json.Unmarshal([]byte(a.body), &p)
		return p.Code
	}

	if a := send("/api/health", ""); a.status != 200 || a.body != "upstream ok" {
		t.Errorf("a public route without a key: %d %s", a.status, a.body)
	}
	mu.Lock()
	if got := seen.Get("X-Keyward-Key-Id"); got != "" {
		t.Errorf("a public route: the upstream got X-Keyward-Key-Id %q", got)
	}
	mu.Unlock()
	if a := send("/api/orders", reader); a.status != 403 || code(a) != keyward.CodeEndpointNotAllowed {
		t.Errorf("a route the default denies: %d %s", a.status, a.body)
	}
	if a := send("/api/contacts/1", writer); a.status != 403 || code(a) != keyward.CodeInsufficientPermissions {
		t.Errorf("a key without the route's permission: %d %s", a.status, a.body)
	}
	// nginx sets X-Forwarded-Proto itself: a client's own "https" over
	// plain HTTP does not pass a route that requires TLS.
	if a := send("/api/billing", reader, "X-Forwarded-Proto", "https"); a.status != 403 || code(a) != keyward.CodeTLSRequired {
		t.Errorf("a TLS-only route over plain HTTP, the client claiming https: %d %s", a.status, a.body)
	}
	if a := send("/api/contacts/1", ""); a.status != 401 || code(a) != keyward.CodeMissingAPIKey {
		t.Errorf("no key: %d %s", a.status, a.body)
	}
	if a := send("/api/contacts/1?page=2", reader); a.status != 200 || a.body != "upstream ok" {
		t.Fatalf("the right key: %d %s", a.status, a.body)
	}
	mu.Lock()
	h := seen
	mu.Unlock()
	if h.Get("X-Keyward-Key-Name") != "Zoë" || h.Get("X-Keyward-Tenant-Slug") != "acme" || h.Get("X-Keyward-Plan") != "default" ||
		h.Get("X-Keyward-Environment") != "live" || h.Get("X-Keyward-Permissions") != "contacts:read" ||
		!strings.HasPrefix(h.Get("X-Keyward-Key-Id"), "key_") || !strings.HasPrefix(h.Get("X-Keyward-Tenant"), "ten_") {
		t.Errorf("the upstream got identity headers %v", h)
	}
	if _, ok := h["X-Keyward-Member-Id"]; ok || h.Get("X-Api-Key") != "" {
		t.Errorf("the upstream got a member id or the key: %v", h)
	}

	// eventually waits until path through nginx answers status.
	eventually := func(what, path, key string, status int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			a := send(path, key)
			if a.status == status {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s still answers %d, want %d: %s", what, path, a.status, status, a.body)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// The file rewritten and SIGHUP sent, the new policy applies.
	newer := nginxRoutes + "  - match: GET /api/orders\n    permissions: [contacts:read]\n"
	if err := os.WriteFile(routes, []byte(newer), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually("reloaded", "/api/orders", reader, 200)

	// A bad file keeps the policy in use, and the log says what is wrong.
	if err := os.WriteFile(routes, []byte("default: deny\nroutes:\n  - match: GET /api/orders\n    permissions: [Not A Permission]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(kw.stderr.String(), "routes file not reloaded"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no log of the bad file:\n%s", kw.stderr)
		}
	}
	if a := send("/api/orders", reader); a.status != 200 {
		t.Errorf("after a bad file: %d %s", a.status, a.body)
	}
	if a := send("/api/health", ""); a.status != 200 {
		t.Errorf("after a bad file, the public route: %d %s", a.status, a.body)
	}
}

// TestServeBadRoutes: serve does not start with a routes file it cannot
// read or that holds a bad policy, and says which file and what is wrong.
func TestServeBadRoutes(t *testing.T) {
	db := dbFile(t)
	bad := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(bad, []byte("default: maybe\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, file := range map[string]string{"bad": bad, "missing": filepath.Join(t.TempDir(), "none.yaml")} {
		var stderr strings.Builder
		err := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--db", db, "--routes", file}, env(), strings.NewReader(""), io.Discard, &stderr)
		if err == nil || !strings.Contains(err.Error()+stderr.String(), file) || !strings.Contains(err.Error()+stderr.String(), "--routes") {
			t.Errorf("%s routes file: %v\n%s", name, err, stderr.String())
		}
	}
}
