package main

import (
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
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/lockedbuffer"
)

// readmeBlock returns the only block of the README fenced as lang
// (```caddyfile), so that a test runs what users copy.
func readmeBlock(t *testing.T, lang string) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(string(b), "```"+lang+"\n")
	if len(parts) != 2 {
		t.Fatalf("README.md has %d ```%s blocks, want 1", len(parts)-1, lang)
	}
	block, _, ok := strings.Cut(parts[1], "```")
	if !ok {
		t.Fatalf("README.md has an unterminated ```%s block", lang)
	}
	return block
}

// freeAddr returns a loopback address with a port that was free a moment
// ago, for a program that takes its address in its configuration.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startCaddy runs a real caddy in the foreground with the README's
// Caddyfile, its site on a free loopback port instead of api.example.com,
// keyward (host:port) and upstream (host:port) put in place of the
// snippet's addresses. Caddy gets no admin endpoint and keeps its data and
// configuration in the test's directory, so that it never meets a caddy
// the system runs. edits are more pairs of old and new strings to replace
// in the snippet. It returns caddy's base URL and its output (its log).
func startCaddy(t *testing.T, keyward, upstream string, edits ...string) (base string, log *lockedbuffer.Buffer) {
	t.Helper()
	bin, err := exec.LookPath("caddy")
	if err != nil {
		t.Fatal("caddy is not installed; scripts/test installs it (apt-get install caddy)")
	}
	addr := freeAddr(t)
	dir := t.TempDir()
	site := readmeBlock(t, "caddyfile")
	for _, s := range []string{"api.example.com {", "127.0.0.1:8080", "127.0.0.1:9000"} {
		if !strings.Contains(site, s) {
			t.Fatalf("the README's Caddyfile lacks %q, which the test replaces", s)
		}
	}
	site = strings.NewReplacer(append([]string{
		// Caddy 2.6 listens on every interface unless told.
		"api.example.com {", "http://" + addr + " {\n\tbind 127.0.0.1",
		"127.0.0.1:8080", keyward, "127.0.0.1:9000", upstream,
	}, edits...)...).Replace(site)
	if !strings.HasPrefix(site, "{\n") {
		t.Fatal("the README's Caddyfile does not start with its global options, where the test adds its own")
	}
	conf := fmt.Sprintf(`{
	admin off
	storage file_system {
		root %s
	}
%s`, filepath.Join(dir, "data"), site[2:])
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", path, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	log = &lockedbuffer.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start caddy: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return "http://" + addr, log
		}
		select {
		case <-exited:
			t.Fatalf("caddy exited before listening on %s:\n%s\n%s", addr, log.String(), conf)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("caddy did not listen on %s within 10s:\n%s", addr, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// proxyAnswer is an answer through a proxy, read whole.
type proxyAnswer struct {
	status int
	header http.Header
	body   string
}

// code returns the code of a's problem body, or "" for another body.
func (a proxyAnswer) code() keyward.Code {
	var p struct {
		Code keyward.Code `json:"code"`
	}
	json.Unmarshal([]byte(a.body), &p)
	return p.Code
}

// sendThrough sends a request to base+path with the header pairs and, for
// a POST, a body of 100,000 bytes, and returns the answer.
func sendThrough(t *testing.T, base, method, path string, header ...string) proxyAnswer {
	t.Helper()
	var body io.Reader
	if method == "POST" {
		body = strings.NewReader(strings.Repeat("x", 100_000))
	}
	req, err := http.NewRequest(method, base+path, body)
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
	return proxyAnswer{resp.StatusCode, resp.Header, string(b)}
}

// recordingUpstream is a test API that counts the requests that reach it
// and keeps the headers and body length of the last one.
type recordingUpstream struct {
	mu      sync.Mutex
	reached int
	header  http.Header
	bodyLen int64
}

// start runs u on a loopback port and returns its host:port.
func (u *recordingUpstream) start(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		u.mu.Lock()
		u.reached++
		u.header = r.Header.Clone()
		u.bodyLen = n
		u.mu.Unlock()
		io.WriteString(w, "upstream ok")
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// last returns the number of requests that reached u, and the headers and
// body length of the last one.
func (u *recordingUpstream) last() (int, http.Header, int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.reached, u.header, u.bodyLen
}

// checkRefusal checks that a is Keyward's refusal, passed on as it is:
// status, problem body with code, the X-Request-Id of that body, the
// challenge in WWW-Authenticate ("" for none), and no part of any of keys
// in the body.
func checkRefusal(t *testing.T, name string, a proxyAnswer, status int, code keyward.Code, challenge string, keys ...string) {
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
	if ids := a.header.Values("X-Request-Id"); len(ids) != 1 || ids[0] != p.RequestID || !strings.HasPrefix(p.RequestID, "req_") {
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
		if strings.Contains(a.body, k[len(k)-apikey.BodyLen:]) {
			t.Errorf("%s: the answer repeats a key: %s", name, a.body)
		}
	}
}

// checkNoKeyIn fails t if text holds a run of 8 characters of the body of
// any of keys.
func checkNoKeyIn(t *testing.T, what, text string, keys ...string) {
	t.Helper()
	for _, k := range keys {
		body := k[len(k)-apikey.BodyLen:]
		for i := 0; i+8 <= len(body); i++ {
			if strings.Contains(text, body[i:i+8]) {
				t.Errorf("%s holds part of a key (%s…):\n%s", what, body[i:i+8], text)
				break
			}
		}
	}
}

// TestCaddyForwardAuth puts a real caddy, configured with the README's
// Caddyfile, in front of an upstream, with Keyward's /v1/forward-auth
// deciding every request. A valid key reaches the upstream with the
// identity headers and without the key, whatever identity headers the
// client sent; every refusal reaches the client with Keyward's status,
// problem body and headers (RateLimit and Retry-After for a rate-limited
// key) and never the upstream; Keyward stopped, caddy answers 503
// storage_unavailable as Keyward would, and still passes nothing on. No
// part of a key reaches caddy's log.
func TestCaddyForwardAuth(t *testing.T) {
	db := dbFile(t)
	kw := startServer(t, db, "--trusted-proxies", "127.0.0.1")
	kw.waitHealthy(t)
	var up recordingUpstream
	proxy, caddyLog := startCaddy(t, strings.TrimPrefix(kw.url, "http://"), up.start(t))

	ok(t, db, "tenants", "create", "acme")
	key := strings.TrimSpace(ok(t, db, "keys", "create", "--tenant", "acme", "--name", "Zoë", "--env", "test", "--permissions", "contacts:read,messages:send").stdout)
	noPerm := strings.TrimSpace(ok(t, db, "keys", "create", "--tenant", "acme", "--name", "p", "--permissions", "messages:send").stdout)
	office := strings.TrimSpace(ok(t, db, "keys", "create", "--tenant", "acme", "--name", "o", "--permissions", "contacts:read", "--allow-ip", "10.0.0.0/8").stdout)
	limited := strings.TrimSpace(ok(t, db, "keys", "create", "--tenant", "acme", "--name", "l", "--permissions", "contacts:read", "--rate-limit", "burst:2/1h").stdout)
	format, _ := apikey.NewFormat(apikey.DefaultPrefix)
	unknown, err := format.Generate(keyward.Live)
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{key, noPerm, office, limited, unknown}
	send := func(method, path string, header ...string) proxyAnswer {
		t.Helper()
		return sendThrough(t, proxy, method, path, header...)
	}

	for _, c := range []struct {
		name, method string
		header       []string
	}{
		{"X-API-Key", "GET", []string{"X-API-Key", key}},
		{"Authorization", "GET", []string{"Authorization", "Bearer " + key}},
		{"a POST with a body", "POST", []string{"X-API-Key", key}},
		// A client's own identity headers are replaced, or removed for
		// one Keyward does not send; its own X-Original-* neither pass
		// for the request nor make Keyward blame the proxy.
		{"the client's own identity headers", "GET", []string{"X-API-Key", key, "X-Keyward-Permissions", "admin:all",
			"X-Keyward-Member-Id", "mem_someone", "X-Keyward-Tenant", "ten_other", "X-Original-URI", "/other", "X-Original-Method", "DELETE"}},
	} {
		a := send(c.method, "/api/orders?page=2", c.header...)
		if a.status != 200 || a.body != "upstream ok" {
			t.Fatalf("%s: %d %v %q", c.name, a.status, a.header, a.body)
		}
		if id := a.header.Get("X-Request-Id"); !strings.HasPrefix(id, "req_") {
			t.Errorf("%s: X-Request-Id %q, want Keyward's", c.name, id)
		}
		_, h, n := up.last()
		if h.Get("X-Keyward-Environment") != "test" || h.Get("X-Keyward-Permissions") != "contacts:read,messages:send" ||
			h.Get("X-Keyward-Key-Name") != "Zoë" || h.Get("X-Keyward-Tenant-Slug") != "acme" || h.Get("X-Keyward-Plan") != "default" ||
			!strings.HasPrefix(h.Get("X-Keyward-Key-Id"), "key_") || !strings.HasPrefix(h.Get("X-Keyward-Tenant"), "ten_") ||
			h.Get("X-Keyward-Member-Id") != "" || !strings.HasPrefix(h.Get("X-Request-Id"), "req_") {
			t.Errorf("%s: the upstream got identity headers %v", c.name, h)
		}
		if h.Get("X-Api-Key") != "" || h.Get("Authorization") != "" {
			t.Errorf("%s: the key reached the upstream", c.name)
		}
		if want := map[string]int64{"GET": 0, "POST": 100_000}[c.method]; n != want {
			t.Errorf("%s: the upstream got a body of %d bytes, want %d", c.name, n, want)
		}
	}
	for i := range 2 {
		if a := send("GET", "/api/orders", "X-API-Key", limited); a.status != 200 {
			t.Fatalf("rate-limited key, request %d of 2: %d %s", i+1, a.status, a.body)
		}
	}

	before, _, _ := up.last()
	encoded := strings.NewReplacer("_", "%5F", "s", "%73").Replace(key)
	for _, c := range []struct {
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
		// The client's own X-Forwarded-For is replaced by caddy's.
		{"ip not allowed", "GET", "/api/orders", []string{"X-API-Key", office, "X-Forwarded-For", "10.1.2.3"}, 403, keyward.CodeIPNotAllowed, ""},
		{"key in the query", "GET", "/api/orders?page=2&api_key=" + key, []string{"X-API-Key", key}, 400, keyward.CodeInvalidRequest, ""},
		{"key percent-encoded", "GET", "/api/orders?s=" + encoded, []string{"X-API-Key", key}, 400, keyward.CodeInvalidRequest, ""},
		{"key in the path", "GET", "/api/" + key + "/orders", []string{"X-API-Key", key}, 400, keyward.CodeInvalidRequest, ""},
		{"key in the path, percent-encoded", "GET", "/api/" + encoded + "/x", []string{"X-API-Key", key}, 400, keyward.CodeInvalidRequest, ""},
	} {
		checkRefusal(t, c.name, send(c.method, c.path, c.header...), c.status, c.code, c.challenge, keys...)
	}
	a := send("GET", "/api/orders", "X-API-Key", limited)
	checkRefusal(t, "rate limited", a, 429, keyward.CodeRateLimited, "", keys...)
	for _, h := range []string{"Retry-After", "Ratelimit", "Ratelimit-Policy", "X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset"} {
		if a.header.Get(h) == "" {
			t.Errorf("rate limited: no %s: %v", h, a.header)
		}
	}
	if got := a.header.Get("X-Ratelimit-Remaining"); got != "0" {
		t.Errorf("rate limited: X-RateLimit-Remaining %q, want 0", got)
	}
	if after, _, _ := up.last(); after != before {
		t.Errorf("%d refused requests reached the upstream", after-before)
	}

	// Revoked from the command line, the key is refused through caddy
	// within a second.
	list := decodeList[map[string]any](t, ok(t, db, "keys", "list", "--tenant", "acme", "--env", "test", "--json").stdout)
	ok(t, db, "keys", "revoke", list.Data[0]["id"].(string))
	for deadline := time.Now().Add(time.Second); ; time.Sleep(20 * time.Millisecond) {
		a := send("GET", "/api/orders", "X-API-Key", key)
		if a.status == 401 {
			checkRefusal(t, "revoked", a, 401, keyward.CodeRevokedAPIKey, `error="invalid_token"`, keys...)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the revoked key still passes caddy after 1s: %d", a.status)
		}
	}
	// Until the revocation arrived, the key passed.
	before, _, _ = up.last()

	// Keyward stopped: caddy answers 503 storage_unavailable itself, with
	// Retry-After, and passes nothing on.
	if err := kw.shutdown(t); err != nil {
		t.Fatal(err)
	}
	for _, h := range [][]string{{"X-API-Key", noPerm}, nil} {
		a := send("GET", "/api/orders?api_key="+office, h...)
		var p struct {
			Code      keyward.Code `json:"code"`
			RequestID string       `json:"request_id"`
		}
		if err := json.Unmarshal([]byte(a.body), &p); err != nil || a.status != 503 || p.Code != keyward.CodeStorageUnavailable ||
			a.header.Get("Content-Type") != "application/problem+json" || a.header.Get("Retry-After") == "" ||
			p.RequestID == "" || a.header.Get("X-Request-Id") != p.RequestID {
			t.Errorf("Keyward stopped: %d %v %s", a.status, a.header, a.body)
		}
	}
	if after, _, _ := up.last(); after != before {
		t.Errorf("with Keyward stopped, %d requests reached the upstream", after-before)
	}
	checkNoKeyIn(t, "caddy's log", caddyLog.String(), keys...)
}

// caddyRoutes is a route policy for the paths of the README's Caddyfile,
// under /api/.
const caddyRoutes = nginxRoutes

// TestCaddyRoutes puts a real caddy, with the README's Caddyfile less the
// permissions parameter, in front of an upstream, and Keyward's serve
// --routes deciding: a public route passes without a key, a route the
// policy denies is refused, a permissioned one passes with the right key
// and the identity headers reach the upstream.
func TestCaddyRoutes(t *testing.T) {
	db := dbFile(t)
	routes := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(routes, []byte(caddyRoutes), 0o600); err != nil {
		t.Fatal(err)
	}
	kw := startServer(t, db, "--trusted-proxies", "127.0.0.1", "--routes", routes)
	kw.waitHealthy(t)
	var up recordingUpstream
	const param = "?permissions=contacts:read"
	if !strings.Contains(readmeBlock(t, "caddyfile"), param) {
		t.Fatalf("the README's Caddyfile lacks %q, which the test removes", param)
	}
	proxy, _ := startCaddy(t, strings.TrimPrefix(kw.url, "http://"), up.start(t), param, "?")

	ok(t, db, "tenants", "create", "acme")
	reader := strings.TrimSpace(ok(t, db, "keys", "create", "--tenant", "acme", "--name", "r", "--permissions", "contacts:read").stdout)
	writer := strings.TrimSpace(ok(t, db, "keys", "create", "--tenant", "acme", "--name", "w", "--permissions", "contacts:write").stdout)

	if a := sendThrough(t, proxy, "GET", "/api/health"); a.status != 200 || a.body != "upstream ok" {
		t.Errorf("a public route without a key: %d %s", a.status, a.body)
	}
	if _, h, _ := up.last(); h.Get("X-Keyward-Key-Id") != "" {
		t.Errorf("a public route: the upstream got X-Keyward-Key-Id %q", h.Get("X-Keyward-Key-Id"))
	}
	before, _, _ := up.last()
	for _, c := range []struct {
		name, method, path, key string
		status                  int
		code                    keyward.Code
	}{
		{"a route the default denies", "GET", "/api/orders", reader, 403, keyward.CodeEndpointNotAllowed},
		// caddy asks Keyward with GET: the policy must see the original
		// method, from X-Forwarded-Method.
		{"a method no route allows", "DELETE", "/api/contacts/1", reader, 403, keyward.CodeEndpointNotAllowed},
		{"a key without the route's permission", "GET", "/api/contacts/1", writer, 403, keyward.CodeInsufficientPermissions},
		{"no key", "GET", "/api/contacts/1", "", 401, keyward.CodeMissingAPIKey},
	} {
		var h []string
		if c.key != "" {
			h = []string{"X-API-Key", c.key}
		}
		if a := sendThrough(t, proxy, c.method, c.path, h...); a.status != c.status || a.code() != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, a.status, a.body, c.status, c.code)
		}
	}
	if after, _, _ := up.last(); after != before {
		t.Errorf("%d refused requests reached the upstream", after-before)
	}
	if a := sendThrough(t, proxy, "GET", "/api/contacts/1?page=2", "X-API-Key", reader); a.status != 200 || a.body != "upstream ok" {
		t.Fatalf("the right key: %d %s", a.status, a.body)
	}
	if _, h, _ := up.last(); h.Get("X-Keyward-Permissions") != "contacts:read" || !strings.HasPrefix(h.Get("X-Keyward-Key-Id"), "key_") || h.Get("X-Api-Key") != "" {
		t.Errorf("the right key: the upstream got headers %v", h)
	}

	// The API down is caddy's own 502, not Keyward's 503: the snippet's
	// error handler tells the two apart.
	downProxy, _ := startCaddy(t, strings.TrimPrefix(kw.url, "http://"), freeAddr(t), param, "?")
	if a := sendThrough(t, downProxy, "GET", "/api/contacts/1", "X-API-Key", reader); a.status != 502 || a.code() != "" {
		t.Errorf("the API down: %d %s", a.status, a.body)
	}
}
