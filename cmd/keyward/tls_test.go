package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/testcert"
)

// tlsConn is a kept-alive HTTP/1.1 connection over TLS to a server,
// driven by hand, so that a test knows that its requests go on the one
// connection.
type tlsConn struct {
	conn *tls.Conn
	rd   *bufio.Reader
}

// dialTLS connects to addr over TLS, trusting pool, and returns the
// connection and the common name of the certificate it was served.
func dialTLS(t *testing.T, addr string, pool *x509.CertPool) (*tlsConn, string) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &tlsConn{conn: c, rd: bufio.NewReader(c)}, c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// get sends GET path on the connection with the given headers (name,
// value pairs) and returns the answer, its body read.
func (c *tlsConn) get(t *testing.T, path string, header ...string) *http.Response {
	t.Helper()
	req := "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n"
	for i := 0; i+1 < len(header); i += 2 {
		req += header[i] + ": " + header[i+1] + "\r\n"
	}
	if _, err := io.WriteString(c.conn, req+"\r\n"); err != nil {
		t.Fatalf("GET %s on the open connection: %v", path, err)
	}
	resp, err := http.ReadResponse(c.rd, nil)
	if err != nil {
		t.Fatalf("GET %s on the open connection: %v", path, err)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// waitLogged waits until the logs of p hold n lines whose message is msg.
func waitLogged(t *testing.T, p *process, msg string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(p.stderr.String(), `"msg":"`+msg+`"`) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the log did not say %q %d times within 30s\n%s", msg, n, p.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writeFile writes data to name, or fails the test.
func writeFile(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// tlsRoutesFile is a route policy whose public route needs TLS.
const tlsRoutesFile = `
default: deny
routes:
  - match: GET /status
    public: true
    tls: required
`

// TestServeTLS: keyward serve as a process with --tls-cert and --tls-key
// answers over TLS, with HSTS; on SIGHUP it serves the new pair to new
// connections while a kept-alive connection goes on working; a bad new
// pair is logged and the old one kept; a route with tls: required takes
// forward-auth's request over TLS.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	first := testcert.Write(t, dir, "first")
	second, third := testcert.New(t, "second"), testcert.New(t, "third")
	pool := first.Pool()
	pool.AddCert(second.Leaf)
	pool.AddCert(third.Leaf)
	routes := filepath.Join(dir, "routes.yaml")
	writeFile(t, routes, []byte(tlsRoutesFile))

	p := startProcess(t, "sqlite:"+filepath.Join(dir, "keyward.db"), "--tls-cert", first.CertFile, "--tls-key", first.KeyFile,
		"--hsts", "1y", "--routes", routes)
	addr := strings.TrimPrefix(p.url, "http://")

	open, cn := dialTLS(t, addr, pool)
	if cn != "first" {
		t.Fatalf("served %q, want first", cn)
	}
	resp := open.get(t, "/healthz")
	if resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") != "max-age=31536000" {
		t.Fatalf("GET /healthz over TLS: %d, Strict-Transport-Security %q; want 200, max-age=31536000", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
	}
	// The route needs TLS, and the request to forward-auth came over it.
	if resp := open.get(t, "/v1/forward-auth", "X-Original-Method", "GET", "X-Original-URI", "/status"); resp.StatusCode != 200 {
		t.Errorf("forward-auth over TLS for a route with tls: required: %d, want 200", resp.StatusCode)
	}

	// Plain HTTP on the TLS port gets no answer of the API.
	if resp, err := http.Get(p.url + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the TLS port: %d, want 400", resp.StatusCode)
		}
	}

	// A Go client that trusts the certificate, over HTTP/2.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	t.Cleanup(client.CloseIdleConnections)
	r2, err := client.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != 200 || r2.ProtoMajor != 2 {
		t.Errorf("HTTP/2 client: %d over %s, want 200 over HTTP/2", r2.StatusCode, r2.Proto)
	}

	// The files replaced and SIGHUP sent: new connections get the new
	// pair, the open one goes on.
	writeFile(t, first.CertFile, second.CertPEM)
	writeFile(t, first.KeyFile, second.KeyPEM)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLogged(t, p, "TLS certificate reloaded", 1)
	if _, cn := dialTLS(t, addr, pool); cn != "second" {
		t.Fatalf("after SIGHUP, a new connection was served %q, want second", cn)
	}
	if resp := open.get(t, "/healthz"); resp.StatusCode != 200 {
		t.Fatalf("the connection open across the reload: %d, want 200", resp.StatusCode)
	}

	// A certificate whose key is not there yet: logged, and the pair in
	// use stays.
	writeFile(t, first.CertFile, third.CertPEM)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLogged(t, p, "the TLS certificate was not reloaded: the one in use stays", 1)
	if !strings.Contains(p.stderr.String(), "is not the key of the certificate") {
		t.Errorf("the log does not say what is wrong with the pair:\n%s", p.stderr)
	}
	if _, cn := dialTLS(t, addr, pool); cn != "second" {
		t.Fatalf("after a bad reload, a new connection was served %q, want second still", cn)
	}
	if resp := open.get(t, "/healthz"); resp.StatusCode != 200 {
		t.Fatalf("the connection open across a bad reload: %d, want 200", resp.StatusCode)
	}
	select {
	case err := <-p.exited:
		p.exited <- err
		t.Fatalf("the process exited: %v", err)
	default:
	}
}

// TestServeTLSConfig: the TLS flags fail at start, with status 2, naming
// what to fix: one file without the other, a file that cannot be read, a
// key that is not the certificate's, --require-tls that would refuse
// everything, a bad --hsts; and their environment variables alike.
func TestServeTLSConfig(t *testing.T) {
	dir := t.TempDir()
	a := testcert.Write(t, dir, "a")
	b := testcert.Write(t, dir, "b")
	missing := filepath.Join(dir, "missing.pem")
	db := dbFile(t)
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"cert alone", []string{"--tls-cert", a.CertFile}, "--tls-key is missing"},
		{"key alone", []string{"--tls-key", a.KeyFile}, "--tls-cert is missing"},
		{"no cert file", []string{"--tls-cert", missing, "--tls-key", a.KeyFile}, "--tls-cert " + missing + ": cannot read the file"},
		{"no key file", []string{"--tls-cert", a.CertFile, "--tls-key", missing}, "--tls-key " + missing + ": cannot read the file"},
		{"mismatched", []string{"--tls-cert", a.CertFile, "--tls-key", b.KeyFile}, "--tls-key " + b.KeyFile + " is not the key of the certificate"},
		{"require-tls, nothing to say so", []string{"--require-tls"}, "--require-tls without --tls-cert"},
		{"bad hsts", []string{"--hsts", "forever"}, `--hsts: "forever" is not a duration`},
		{"hsts too many years", []string{"--hsts", "101y"}, `--hsts: "101y" is not a number of years`},
	} {
		t.Run(c.name, func(t *testing.T) {
			fails(t, db, 2, append([]string{"serve"}, c.args...), c.want)
		})
	}
	for _, c := range []struct {
		vars []string
		want string
	}{
		{[]string{"KEYWARD_TLS_CERT", a.CertFile}, "--tls-key is missing: --tls-cert needs the file of its private key beside it (env KEYWARD_TLS_KEY)"},
		{[]string{"KEYWARD_TLS_CERT", a.CertFile, "KEYWARD_TLS_KEY", b.KeyFile}, "is not the key of the certificate"},
		{[]string{"KEYWARD_REQUIRE_TLS", "maybe"}, `KEYWARD_REQUIRE_TLS: "maybe" is not true or false`},
		{[]string{"KEYWARD_HSTS", "-1d"}, "--hsts"},
	} {
		err := run(t.Context(), []string{"--db", db, "serve"}, env(c.vars...), strings.NewReader(""), io.Discard, io.Discard)
		if msg := errorMessage(err); exitCode(err) != 2 || !strings.Contains(msg, c.want) {
			t.Errorf("%v: exit status %d, message %q; want 2 and %q", c.vars, exitCode(err), msg, c.want)
		}
	}
	if _, err := os.Stat(db); err == nil {
		t.Error("a usage error opened the database")
	}
}

// TestServeRequireTLS: keyward serve --require-tls behind a proxy that
// terminates TLS answers plain HTTP 403 tls_required unless the proxy,
// in --trusted-proxies, says in X-Forwarded-Proto that the request came
// over HTTPS; it believes no one else; HSTS goes on those answers alone.
func TestServeRequireTLS(t *testing.T) {
	db := dbFile(t)
	s := startServer(t, db, "--require-tls", "--trusted-proxies", "127.0.0.1", "--hsts", "180d")
	root := strings.TrimSuffix(s.stdout.String(), "\n")
	get := func(t *testing.T, s *server, proto string) (*http.Response, answer) {
		t.Helper()
		req, err := http.NewRequest("GET", s.url+"/v1/whoami", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-API-Key", root)
		if proto != "" {
			req.Header.Set("X-Forwarded-Proto", proto)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, answer{resp.StatusCode, body}
	}
	resp, a := get(t, s, "")
	if a.status != 403 || a.code() != keyward.CodeTLSRequired || resp.Header.Get("Strict-Transport-Security") != "" {
		t.Errorf("plain HTTP: %d %s, Strict-Transport-Security %q; want 403 tls_required, none", a.status, a.code(), resp.Header.Get("Strict-Transport-Security"))
	}
	resp, a = get(t, s, "https")
	if want := fmt.Sprint("max-age=", 180*24*3600); a.status != 200 || resp.Header.Get("Strict-Transport-Security") != want {
		t.Errorf("from the trusted proxy over https: %d, Strict-Transport-Security %q; want 200, %s", a.status, resp.Header.Get("Strict-Transport-Security"), want)
	}
	if a := s.call(t, "GET", "/healthz", "", nil); a.status != 200 {
		t.Errorf("/healthz over plain HTTP: %d, want 200", a.status)
	}
	if err := s.shutdown(t); err != nil {
		t.Fatal(err)
	}

	// The same server, its proxy elsewhere: X-Forwarded-Proto from
	// 127.0.0.1 is not believed.
	s = startServer(t, db, "--require-tls", "--trusted-proxies", "10.0.0.0/8")
	if _, a := get(t, s, "https"); a.status != 403 || a.code() != keyward.CodeTLSRequired {
		t.Errorf("X-Forwarded-Proto: https from a peer that is not a trusted proxy: %d %s, want 403 tls_required", a.status, a.code())
	}
}

// TestServeRouteTLSPlain: over plain HTTP, forward-auth refuses a route
// with tls: required, 403 tls_required, when no proxy says the request
// came over HTTPS.
func TestServeRouteTLSPlain(t *testing.T) {
	dir := t.TempDir()
	routes := filepath.Join(dir, "routes.yaml")
	writeFile(t, routes, []byte(tlsRoutesFile))
	s := startServer(t, dbFile(t), "--routes", routes)
	req, err := http.NewRequest("GET", s.url+"/v1/forward-auth", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Original-Method", "GET")
	req.Header.Set("X-Original-URI", "/status")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if a := (answer{resp.StatusCode, body}); a.status != 403 || a.code() != keyward.CodeTLSRequired {
		t.Errorf("forward-auth over plain HTTP for a route with tls: required: %d %s, want 403 tls_required", a.status, a.code())
	}
}

// TestParseHSTS: --hsts takes years, the durations of the other flags and
// seconds, and 0 or nothing for none.
func TestParseHSTS(t *testing.T) {
	const day = 24 * time.Hour
	for in, want := range map[string]time.Duration{
		"": 0, "0": 0, "1y": 365 * day, "2y": 730 * day, "180d": 180 * day, "26w": 182 * day,
		"31536000": 365 * day, "1h30m": 90 * time.Minute,
	} {
		if got, err := parseHSTS(in); err != nil || got != want {
			t.Errorf("parseHSTS(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"0y", "101y", "-1", "-1d", "1ms", "1 y", "soon"} {
		if got, err := parseHSTS(in); err == nil {
			t.Errorf("parseHSTS(%q) = %v, want an error", in, got)
		}
	}
}
