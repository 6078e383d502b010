package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/gateway"
	"github.com/keyward/keyward/httpapi"
	"github.com/keyward/keyward/internal/lockedbuffer"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/internal/reqlog"
	"github.com/keyward/keyward/internal/testclock"
	"github.com/keyward/keyward/internal/teststore"
	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/verify"
)

// pg is the PostgreSQL server of a run with KEYWARD_TEST_DB=postgres,
// started on first use.
var pg = pgtest.New()

func TestMain(m *testing.M) {
	code := m.Run()
	pg.Stop()
	os.Exit(code)
}

// newStore opens the store the tests run on (internal/teststore).
func newStore(t testing.TB) keyward.Store { return teststore.Open(t, pg) }

// upstream is an API behind the gateway, on a real listener: it counts
// the requests it gets and keeps the last one's header, and serves the
// paths under /v1/io/ that the streaming tests use.
type upstream struct {
	name  string
	srv   *httptest.Server
	url   *url.URL
	count atomic.Int64

	mu   sync.Mutex
	last *http.Request
	// release ends the server-sent event stream of /v1/io/sse.
	release chan struct{}
}

func newUpstream(t testing.TB, name string) *upstream {
	t.Helper()
	u := &upstream{name: name, release: make(chan struct{})}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	u.url, _ = url.Parse(u.srv.URL)
	return u
}

// newTLSUpstream is newUpstream over TLS, with a certificate of
// httptest's for 127.0.0.1 that no system trusts.
func newTLSUpstream(t testing.TB, name string) *upstream {
	t.Helper()
	u := &upstream{name: name, release: make(chan struct{})}
	u.srv = httptest.NewUnstartedServer(http.HandlerFunc(u.serve))
	u.srv.StartTLS()
	t.Cleanup(u.srv.Close)
	u.url, _ = url.Parse(u.srv.URL)
	return u
}

// lastRequest returns the last request the upstream got.
func (u *upstream) lastRequest() *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	u.count.Add(1)
	u.mu.Lock()
	u.last = r.Clone(context.Background())
	u.mu.Unlock()
	w.Header().Set("X-Upstream", u.name)
	switch r.URL.Path {
	case "/v1/io/upload":
		// The body is counted as it comes, never held.
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, n)
	case "/v1/io/download":
		n, _ := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		io.Copy(w, io.LimitReader(pattern{}, n))
	case "/v1/io/continue":
		// The interim answer carries a header of the upstream's own, so
		// that the client can tell it from one the gateway made.
		w.Header().Set("X-Interim", "upstream")
		w.WriteHeader(http.StatusContinue)
		w.Header().Del("X-Interim")
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %d bytes", len(b))
	case "/v1/io/trailer":
		// A chunked answer whose trailer comes after the body.
		w.Header().Set("Trailer", "X-Checksum")
		fmt.Fprint(w, "body with a trailer")
		w.(http.Flusher).Flush()
		w.Header().Set("X-Checksum", "abc123")
	case "/v1/io/sse":
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-u.release:
		case <-r.Context().Done():
		}
		fmt.Fprint(w, "data: two\n\n")
	case "/v1/io/slow":
		d, _ := time.ParseDuration(r.URL.Query().Get("wait"))
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "late")
	case "/v1/io/trickle":
		// The header at once, then the body slowly: a stream that lasts
		// longer than the upstream timeout.
		w.WriteHeader(http.StatusOK)
		for i := range 5 {
			fmt.Fprintf(w, "part %d\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond)
		}
	case "/v1/io/busy":
		// The upstream's own limits: its Retry-After is the client's to
		// see, its RateLimit gives way to the gateway's.
		w.Header().Set("Retry-After", "7")
		w.Header().Set("RateLimit", `"upstream";r=0;t=7`)
		w.Header().Set("X-Request-Id", "upstream-id")
		w.WriteHeader(http.StatusServiceUnavailable)
	case "/v1/io/ws":
		if !strings.EqualFold(r.Header.Get("Upgrade"), "echo") {
			http.Error(w, "no upgrade", http.StatusBadRequest)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		rw.Flush()
		// Echo line by line until the client closes.
		for {
			line, err := rw.ReadString('\n')
			if err != nil {
				return
			}
			rw.WriteString("echo: " + line)
			rw.Flush()
		}
	default:
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "query": r.URL.RawQuery})
	}
}

// pattern is an endless reader of generated bytes.
type pattern struct{}

func (pattern) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte('a' + i%26)
	}
	return len(p), nil
}

// routes is the route policy of the gateway tests: issue 9's, and routes
// for TLS, streaming and routes with upstreams of their own (%s: the
// reports upstreams, live and test, and the legacy upstream).
const routes = `default: deny
routes:
  - match: GET /health
    public: true
  - match: GET /v1/contacts/**
    permissions: [contacts:read]
  - match: POST /v1/contacts
    permissions: [contacts:write]
  - match: GET /v1/tenants/{tenant}/sites/{site}/**
    tenant: tenant
    resources: [site]
    capabilities: [m2m_api]
    environments: [live]
  - match: "* /v1/billing/**"
    tls: required
  - match: "* /v1/io/**"
  - match: "* /v1/reports/**"
    upstream: %s
    upstream_test: %s
  - match: "* /v1/legacy/**"
    upstream: %s
`

// env is a Keyward on a real store with the API (for managing keys and
// asking forward-auth) and the gateway in front of its upstreams, each on
// a real listener.
type env struct {
	t        testing.TB
	root     string
	store    keyward.Store
	verifier *verify.Verifier
	clock    *testclock.Clock
	routes   *policy.File
	api      string // the API's URL
	gw       *gateway.Gateway
	gwURL    string
	log      *lockedbuffer.Buffer
	// logs is the request log of the API and the gateway.
	logs *reqlog.Log

	live, test, reportsLive, reportsTest, legacy *upstream
}

// envOption changes the gateway's Config from the tests' default.
type envOption func(*gateway.Config)

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, store: newStore(t), clock: testclock.New(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)), log: new(lockedbuffer.Buffer)}
	e.live, e.test = newUpstream(t, "live"), newUpstream(t, "test")
	e.reportsLive, e.reportsTest, e.legacy = newUpstream(t, "reports-live"), newUpstream(t, "reports-test"), newUpstream(t, "legacy")
	format, err := apikey.NewFormat(apikey.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	// Debug too: fasthttp's own messages, which may quote a request, are
	// logged at that level.
	logger := slog.New(slog.NewJSONHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.verifier = verify.New(e.store, verify.Options{Format: format, Clock: e.clock.Now, FlushInterval: time.Hour, Logger: logger})
	if err := e.verifier.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.verifier.Close(context.Background()) })
	svc := manage.New(manage.Config{Store: e.store, Format: format, Clock: e.clock.Now, AfterChange: e.verifier.Refresh})
	if e.root, err = svc.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(t.TempDir(), "routes.yaml")
	text := fmt.Sprintf(routes, e.reportsLive.url, e.reportsTest.url, e.legacy.url)
	if err := os.WriteFile(name, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if e.routes, err = policy.Open(name, nil); err != nil {
		t.Fatal(err)
	}
	e.logs = reqlog.New(reqlog.Config{Store: e.store})
	api, err := httpapi.NewServer(httpapi.Config{Service: svc, Verifier: e.verifier, Store: e.store, Routes: e.routes, Logger: logger, Logs: e.logs})
	if err != nil {
		t.Fatal(err)
	}
	apiSrv := httptest.NewServer(api)
	t.Cleanup(apiSrv.Close)
	e.api = apiSrv.URL

	cfg := gateway.Config{Verifier: e.verifier, Routes: e.routes, Upstream: e.live.url, UpstreamTest: e.test.url, Logger: logger, Logs: e.logs}
	for _, o := range opts {
		o(&cfg)
	}
	if e.gw, err = gateway.New(cfg); err != nil {
		t.Fatal(err)
	}
	e.gwURL = serve(t, e.gw)
	return e
}

// serve serves gw on a loopback listener until the test ends, and
// returns its URL.
func serve(t testing.TB, gw *gateway.Gateway) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- gw.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := gw.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// serveTLS serves gw over TLS, with a certificate of httptest's, on a
// loopback listener until the test ends, and returns its URL and a
// client that trusts the certificate.
func serveTLS(t testing.TB, gw *gateway.Gateway) (string, *http.Client) {
	t.Helper()
	cert := httptest.NewUnstartedServer(http.NotFoundHandler())
	cert.StartTLS()
	t.Cleanup(cert.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- gw.ServeTLS(ln, cert.TLS) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		gw.Shutdown(ctx)
		<-served
	})
	return "https://" + ln.Addr().String(), cert.Client()
}

// answer is a response with its body read.
type answer struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

func (a answer) str(name string) string {
	s, _ := a.body[name].(string)
	return s
}

// do sends req and reads its answer.
func (e *env) do(req *http.Request) answer {
	e.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			e.t.Fatalf("%s %s: body is not JSON: %v\n%s", req.Method, req.URL, err, raw)
		}
	}
	if v := resp.Header.Values("X-Request-Id"); len(v) != 1 || v[0] == "" {
		e.t.Errorf("%s %s: X-Request-Id %q, want one", req.Method, req.URL, v)
	}
	return a
}

// request makes a request to base+uri with the key in X-API-Key (none
// when key is "") and the header pairs.
func (e *env) request(base, method, uri, key string, body io.Reader, header ...string) *http.Request {
	e.t.Helper()
	req, err := http.NewRequest(method, base+uri, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	return req
}

// gateway sends a request through the gateway.
func (e *env) gateway(method, uri, key string, header ...string) answer {
	e.t.Helper()
	return e.do(e.request(e.gwURL, method, uri, key, nil, header...))
}

// forwardAuth asks forward-auth about the same request, as a proxy would.
func (e *env) forwardAuth(method, uri, key string, header ...string) answer {
	e.t.Helper()
	header = append(header, "X-Forwarded-Method", method, "X-Forwarded-Uri", uri)
	return e.do(e.request(e.api, "GET", "/v1/forward-auth", key, nil, header...))
}

// call sends a management request to the API with the root key.
func (e *env) call(status int, method, path string, body any) map[string]any {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	a := e.do(e.request(e.api, method, path, e.root, rd, "Content-Type", "application/json"))
	if a.status != status {
		e.t.Fatalf("%s %s: status %d, want %d\n%s", method, path, a.status, status, a.raw)
	}
	d, _ := a.body["data"].(map[string]any)
	return d
}

// key creates a key from body and returns its plaintext and id.
func (e *env) key(body map[string]any) (string, string) {
	e.t.Helper()
	d := e.call(http.StatusCreated, "POST", "/v1/api-keys", body)
	return d["key"].(string), d["id"].(string)
}

// counts returns the number of requests each upstream got.
func (e *env) counts() [5]int64 {
	return [5]int64{e.live.count.Load(), e.test.count.Load(), e.reportsLive.count.Load(), e.reportsTest.count.Load(), e.legacy.count.Load()}
}

// rawRequest sends text on a new connection to the gateway and returns
// the connection and a reader of its answers.
func (e *env) rawRequest(text string) (net.Conn, *bufio.Reader) {
	e.t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.gwURL, "http://"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, text); err != nil {
		e.t.Fatal(err)
	}
	return conn, bufio.NewReader(conn)
}

var loopback = netip.MustParseAddr("127.0.0.1")

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
