package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testcert"
)

// awaitListener waits up to 10 s for serve to log that the listener named
// name listens (its line comes after the API's, which the server's start
// waits for) and returns its address.
func awaitListener(t *testing.T, stderr interface{ String() string }, name string) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if addr := listenerAddr(stderr.String(), name); addr != "" {
			return addr
		}
	}
	t.Fatalf("no listening line for the %s listener:\n%s", name, stderr)
	return ""
}

// listenerAddr returns the address of the listener named name (gateway,
// auth) from serve's JSON log, or "" when it has none.
func listenerAddr(logs, name string) string {
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "listening" && line["listener"] == name {
			addr, _ := line["addr"].(string)
			return addr
		}
	}
	return ""
}

// recorder is an upstream that keeps the header of the last request it
// got.
type recorder struct {
	srv  *httptest.Server
	mu   sync.Mutex
	last http.Header
	n    int
}

func newRecorder(t *testing.T, name string) *recorder {
	r := &recorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.last, r.n = req.Header.Clone(), r.n+1
		r.mu.Unlock()
		w.Header().Set("X-Upstream", name)
		fmt.Fprint(w, name)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) got() (http.Header, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last, r.n
}

// gatewayRoutes is the route policy of TestServeGateway.
const gatewayRoutes = `default: deny
routes:
  - match: GET /health
    public: true
  - match: GET /v1/contacts/**
    permissions: [contacts:read]
`

// TestServeGateway: keyward serve as a process with --gateway-addr and
// --tls-cert: the gateway answers over TLS with the API's certificate,
// proxies a live key's request to --upstream with its identity and
// without its key, a test key's to --upstream-test, refuses a request
// without a key as forward-auth does, takes the new certificate on
// SIGHUP, and stops with the API on SIGTERM. The client offers HTTP/2,
// and the gateway answers with HTTP/1.1 over TLS, as it promises
// (docs/gateway.md: fasthttp speaks no HTTP/2).
func TestServeGateway(t *testing.T) {
	dir := t.TempDir()
	first := testcert.Write(t, dir, "first")
	second := testcert.New(t, "second")
	pool := first.Pool()
	pool.AddCert(second.Leaf)
	routes := filepath.Join(dir, "routes.yaml")
	writeFile(t, routes, []byte(gatewayRoutes))
	db := filepath.Join(dir, "keyward.db")
	ok(t, db, "migrate")
	ok(t, db, "tenants", "create", "acme")
	live := strings.TrimSpace(ok(t, db, "keys", "create", "--tenant", "acme", "--name", "live", "--permissions", "contacts:read").stdout)
	test := strings.TrimSpace(ok(t, db, "keys", "create", "--tenant", "acme", "--name", "test", "--env", "test", "--permissions", "contacts:read").stdout)
	verifier := strings.TrimSpace(ok(t, db, "keys", "create", "--tenant", "system", "--name", "verifier", "--permissions", "keyward:verify").stdout)
	liveUp, testUp := newRecorder(t, "live"), newRecorder(t, "test")

	p := startProcess(t, "sqlite:"+db, "--routes", routes, "--tls-cert", first.CertFile, "--tls-key", first.KeyFile, "--hsts", "1y",
		"--gateway-addr", "127.0.0.1:0", "--upstream", liveUp.srv.URL, "--upstream-test", testUp.srv.URL, "--upstream-timeout", "5s",
		"--auth-addr", "127.0.0.1:0")
	addr, authAddr := awaitListener(t, p.stderr, "gateway"), awaitListener(t, p.stderr, "auth")
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	t.Cleanup(client.CloseIdleConnections)
	get := func(path, key string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "https://"+addr+path, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		req.Header.Set("X-Keyward-Tenant", "forged")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}

	resp, body := get("/v1/contacts/1", live)
	if resp.StatusCode != 200 || body != "live" || resp.Header.Get("Strict-Transport-Security") != "max-age=31536000" || resp.Header.Get("X-Request-Id") == "" ||
		resp.ProtoMajor != 1 || resp.TLS == nil || resp.TLS.NegotiatedProtocol != "http/1.1" {
		t.Fatalf("a live key through the gateway over TLS: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	h, _ := liveUp.got()
	if h.Get("Authorization") != "" || h.Get("X-Keyward-Environment") != "live" || h.Get("X-Keyward-Key-Name") != "live" ||
		h.Get("X-Keyward-Tenant-Slug") != "acme" || h.Get("X-Keyward-Tenant") == "forged" || h.Get("X-Forwarded-Proto") != "https" {
		t.Errorf("the upstream got %v", h)
	}
	if resp, body := get("/v1/contacts/1", test); resp.StatusCode != 200 || body != "test" {
		t.Errorf("a test key: %d %q, want the test upstream", resp.StatusCode, body)
	}
	if resp, body := get("/health", ""); resp.StatusCode != 200 || body != "live" {
		t.Errorf("a public route: %d %q", resp.StatusCode, body)
	}
	_, before := liveUp.got()
	resp, body = get("/v1/contacts/1", "")
	if resp.StatusCode != 401 || !strings.Contains(body, `"code":"missing_api_key"`) || resp.Header.Get("WWW-Authenticate") != `Bearer realm="keyward"` {
		t.Errorf("no key: %d %s", resp.StatusCode, body)
	}
	if _, n := liveUp.got(); n != before {
		t.Errorf("a refused request reached the upstream")
	}

	// The auth listener, over TLS too, answers forward-auth and
	// POST /v1/verify as the API does, and nothing else.
	ask := func(method, path, key, body string, header ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "https://"+authAddr+path, strings.NewReader(body))
		req.Header.Set("X-API-Key", key)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, _ = ask("GET", "/v1/forward-auth", live, "", "X-Original-URI", "/v1/contacts/1", "X-Original-Method", "GET")
	if resp.StatusCode != 200 || resp.Header.Get("X-Keyward-Key-Name") != "live" || resp.Header.Get("Strict-Transport-Security") != "max-age=31536000" ||
		resp.TLS == nil || resp.TLS.NegotiatedProtocol != "http/1.1" {
		t.Errorf("forward-auth on the auth listener: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, body := ask("GET", "/v1/forward-auth", live, "", "X-Original-URI", "/v1/other", "X-Original-Method", "GET"); resp.StatusCode != 403 ||
		!strings.Contains(body, `"code":"endpoint_not_allowed"`) {
		t.Errorf("forward-auth on the auth listener, a path the route policy denies: %d %s", resp.StatusCode, body)
	}
	if resp, body := ask("POST", "/v1/verify", verifier, `{"key":"`+live+`","path":"/v1/contacts/1","method":"GET"}`); resp.StatusCode != 200 ||
		!strings.Contains(body, `"valid":true`) || !strings.Contains(body, `"name":"live"`) {
		t.Errorf("POST /v1/verify on the auth listener: %d %s", resp.StatusCode, body)
	}
	if resp, body := ask("GET", "/v1/whoami", live, ""); resp.StatusCode != 404 || !strings.Contains(body, "--addr") {
		t.Errorf("another path on the auth listener: %d %s", resp.StatusCode, body)
	}

	// The new pair on SIGHUP reaches the gateway's new connections.
	writeFile(t, first.CertFile, second.CertPEM)
	writeFile(t, first.KeyFile, second.KeyPEM)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLogged(t, p, "TLS certificate reloaded", 1)
	if _, cn := dialTLS(t, addr, pool); cn != "second" {
		t.Errorf("after SIGHUP, the gateway served %q, want second", cn)
	}
	if _, cn := dialTLS(t, authAddr, pool); cn != "second" {
		t.Errorf("after SIGHUP, the auth listener served %q, want second", cn)
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := <-p.exited
	p.exited <- err // for the cleanup of startProcess
	if err != nil {
		t.Fatalf("serve exited with %v\n%s", err, p.stderr)
	}
	assertStopped(t, p.stderr.String())
	if strings.Contains(p.stderr.String(), live[8:]) || strings.Contains(p.stderr.String(), test[8:]) || strings.Contains(p.stderr.String(), verifier[8:]) {
		t.Errorf("the log holds a key")
	}
}

// TestServeGatewayFlags: the gateway's flags fail at start, with status 2
// and without opening the database, naming the flag to fix.
func TestServeGatewayFlags(t *testing.T) {
	dir := t.TempDir()
	routes := filepath.Join(dir, "routes.yaml")
	writeFile(t, routes, []byte(gatewayRoutes))
	db := dbFile(t)
	notPEM := filepath.Join(dir, "ca.txt")
	writeFile(t, notPEM, []byte("not a certificate\n"))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--gateway-addr", "127.0.0.1:0", "--routes", routes}, "--upstream is missing"},
		{[]string{"--gateway-addr", "127.0.0.1:0", "--routes", routes, "--upstream", "https://a", "--upstream-ca", filepath.Join(dir, "missing.pem")}, "--upstream-ca: cannot read the certificate authorities"},
		{[]string{"--gateway-addr", "127.0.0.1:0", "--routes", routes, "--upstream", "https://a", "--upstream-ca", notPEM}, "--upstream-ca: " + notPEM + " holds no PEM certificate"},
		{[]string{"--upstream-ca", notPEM}, "--upstream-ca is set (or KEYWARD_UPSTREAM_CA) but --gateway-addr is not"},
		{[]string{"--gateway-addr", "127.0.0.1:0", "--upstream", "http://127.0.0.1:9"}, "--routes is missing"},
		{[]string{"--gateway-addr", "127.0.0.1:0", "--routes", routes, "--upstream", "ftp://files"}, `--upstream: "ftp://files" does not start with http:// or https://`},
		{[]string{"--gateway-addr", "127.0.0.1:0", "--routes", routes, "--upstream", "127.0.0.1:9000"}, "--upstream:"},
		{[]string{"--gateway-addr", "127.0.0.1:0", "--routes", routes, "--upstream", "http://"}, "--upstream: \"http://\" names no host"},
		{[]string{"--gateway-addr", "127.0.0.1:0", "--routes", routes, "--upstream", "http://a", "--upstream-test", "https://b?x=1"}, "--upstream-test: "},
		{[]string{"--upstream", "http://127.0.0.1:9"}, "--upstream is set (or KEYWARD_UPSTREAM) but --gateway-addr is not"},
		{[]string{"--upstream-test", "http://127.0.0.1:9"}, "--upstream-test is set"},
		{[]string{"--upstream-timeout", "0"}, "--upstream-timeout: must be more than 0"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			fails(t, db, 2, append([]string{"serve"}, tc.args...), tc.want)
		})
	}
	for _, v := range []struct{ name, value, want string }{
		{"KEYWARD_UPSTREAM_TIMEOUT", "soon", "KEYWARD_UPSTREAM_TIMEOUT"},
		{"KEYWARD_GATEWAY_ADDR", "127.0.0.1:0", "--upstream is missing"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), []string{"--db", db, "serve", "--routes", routes}, env(v.name, v.value), strings.NewReader(""), &stdout, &stderr)
		if exitCode(err) != 2 || !strings.Contains(errorMessage(err), v.want) {
			t.Errorf("%s=%s: exit status %d, message %q", v.name, v.value, exitCode(err), errorMessage(err))
		}
	}
	if _, err := os.Stat(db); err == nil {
		t.Error("a usage error opened the database")
	}
}

// readmeGatewayRoutes returns the routes file of the README's gateway
// example.
func readmeGatewayRoutes(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "## Keyward as the gateway\n")
	if !ok {
		t.Fatal("README.md has no section \"Keyward as the gateway\"")
	}
	_, yaml, ok := strings.Cut(section, "<<'YAML'\n")
	if !ok {
		t.Fatal("the README's gateway example writes no routes file")
	}
	yaml, _, ok = strings.Cut(yaml, "\nYAML\n")
	if !ok {
		t.Fatal("the README's gateway example has an unterminated routes file")
	}
	return yaml + "\n"
}

// TestReadmeGateway runs the README's gateway example, its routes file
// and keys, with an upstream that echoes the headers it got as the
// README's Python does, and checks each answer the README promises.
func TestReadmeGateway(t *testing.T) {
	dir := t.TempDir()
	routes := filepath.Join(dir, "routes.yaml")
	writeFile(t, routes, []byte(readmeGatewayRoutes(t)))
	db := filepath.Join(dir, "keyward.db")
	ok(t, db, "migrate")
	ok(t, db, "tenants", "create", "acme")
	key := strings.TrimSpace(ok(t, db, "keys", "create", "--tenant", "acme", "--name", "demo", "--permissions", "contacts:read").stdout)
	testKey := strings.TrimSpace(ok(t, db, "keys", "create", "--tenant", "acme", "--name", "demo-test", "--env", "test", "--permissions", "contacts:read").stdout)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { r.Header.Write(w) }))
	t.Cleanup(echo.Close)
	s := startServer(t, "sqlite:"+db, "--routes", routes, "--gateway-addr", "127.0.0.1:0", "--upstream", echo.URL)
	addr := awaitListener(t, s.stderr, "gateway")
	for _, c := range []struct {
		path, key string
		status    int
		has       string
	}{
		{"/v1/contacts/1", key, 200, "X-Keyward-Tenant-Slug: acme"},
		{"/v1/contacts/1", "", 401, `"code":"missing_api_key"`},
		{"/v1/invoices", key, 403, `"code":"endpoint_not_allowed"`},
		{"/v1/contacts/1", testKey, 403, `"code":"environment_mismatch"`},
		{"/health", "", 200, "X-Forwarded-Proto: http"},
	} {
		req, _ := http.NewRequest("GET", "http://"+addr+c.path, nil)
		if c.key != "" {
			req.Header.Set("X-API-Key", c.key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(body), c.has) {
			t.Errorf("GET %s: %d %s, want %d with %s", c.path, resp.StatusCode, body, c.status, c.has)
		}
	}
}
