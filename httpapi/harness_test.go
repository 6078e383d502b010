package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/gateway"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/internal/reqlog"
	"github.com/keyward/keyward/internal/testclock"
	"github.com/keyward/keyward/internal/teststore"
	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/verify"
)

// pg is the PostgreSQL server of a run with KEYWARD_TEST_DB=postgres,
// started on first use.
var pg = pgtest.New()

func TestMain(m *testing.M) {
	code := m.Run()
	pg.Stop()
	benchRedis.Stop()
	os.Exit(code)
}

// newStore opens the store the tests run on (internal/teststore).
func newStore(t testing.TB) keyward.Store { return teststore.Open(t, pg) }

// harness runs the whole API on a real store (see newStore) behind a real
// HTTP listener on loopback.
type harness struct {
	t   testing.TB
	url string
	// authURL, when not "", is the auth listener's (withAuthListener),
	// where call sends the requests to /v1/forward-auth and
	// POST /v1/verify.
	authURL  string
	root     string
	store    keyward.Store
	verifier *verify.Verifier
	svc      *manage.Service
	clock    *testclock.Clock
	// logs is the request log of both listeners, written by flushLogs.
	logs *reqlog.Log
}

// harnessOption changes the server's Config, or the verifier's Options,
// from their defaults.
type harnessOption func(*harnessConfig)

// harnessConfig is what the options of newHarness change.
type harnessConfig struct {
	Config
	verify verify.Options
	// auth starts the auth listener beside the API (withAuthListener).
	auth bool
}

// withAuthListener has forward-auth's and POST /v1/verify's requests
// answered by the auth listener (gateway.AuthServer, on fasthttp, as serve --auth-addr starts
// it), with the API's verifier and settings, instead of by the API.
func withAuthListener() harnessOption {
	return func(c *harnessConfig) { c.auth = true }
}

// fronts runs test once for each front that answers forward-auth and
// POST /v1/verify, with the
// option that gives newHarness that front: the API's own listener
// (net/http) and the auth listener (fasthttp). The answers must be the
// same.
func fronts(t *testing.T, test func(t *testing.T, front harnessOption)) {
	t.Run("api", func(t *testing.T) { test(t, func(*harnessConfig) {}) })
	t.Run("auth-listener", func(t *testing.T) { test(t, withAuthListener()) })
}

// withVerifyOptions gives the verifier opts; the harness sets their
// format, clock and flush interval.
func withVerifyOptions(opts verify.Options) harnessOption {
	return func(c *harnessConfig) { c.verify = opts }
}

func withTrustedProxies(list string) harnessOption {
	return func(c *harnessConfig) {
		p, err := ParseCIDRs(list)
		if err != nil {
			panic(err)
		}
		c.TrustedProxies = p
	}
}

func newHarness(t testing.TB, opts ...harnessOption) *harness {
	t.Helper()
	ctx := context.Background()
	store := newStore(t)
	clk := testclock.New(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	format, err := apikey.NewFormat(apikey.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	var hc harnessConfig
	for _, o := range opts {
		o(&hc)
	}
	vopts := hc.verify
	vopts.Format, vopts.Clock, vopts.FlushInterval = format, clk.Now, time.Hour
	v := verify.New(store, vopts)
	if err := v.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close(context.Background()) })
	svc := manage.New(manage.Config{Store: store, Format: format, Clock: clk.Now, AfterChange: v.Refresh})
	root, err := svc.Bootstrap(ctx)
	if err != nil || root == "" {
		t.Fatalf("bootstrap: %q, %v", root, err)
	}
	cfg := hc.Config
	cfg.Service, cfg.Verifier, cfg.Store = svc, v, store
	cfg.Logs = reqlog.New(reqlog.Config{Store: store})
	h, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	hn := &harness{t: t, url: srv.URL, root: root, store: store, verifier: v, svc: svc, clock: clk, logs: cfg.Logs}
	if hc.auth {
		hn.authURL = startAuthListener(t, cfg, v)
	}
	return hn
}

// startAuthListener serves the auth listener of cfg's settings on
// loopback, and returns its URL.
func startAuthListener(t testing.TB, cfg Config, v *verify.Verifier) string {
	t.Helper()
	a, err := gateway.NewAuthServer(gateway.AuthConfig{
		Verifier: v, Routes: cfg.Routes, TrustedProxies: cfg.TrustedProxies,
		RequireTLS: cfg.RequireTLS, HSTS: cfg.HSTS, TLSRequired: ErrTLSRequired, Logger: cfg.Logger, Logs: cfg.Logs,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = a.Serve(ln) }()
	t.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	return "http://" + ln.Addr().String()
}

// flushLogs writes the request log's pending entries.
func (h *harness) flushLogs() {
	h.t.Helper()
	if err := h.logs.Flush(context.Background()); err != nil {
		h.t.Fatal(err)
	}
}

// answer is a response with its body read and decoded.
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

func (a answer) data() map[string]any {
	d, _ := a.body["data"].(map[string]any)
	return d
}

func (a answer) list() []map[string]any {
	var out []map[string]any
	for _, v := range a.body["data"].([]any) {
		out = append(out, v.(map[string]any))
	}
	return out
}

// call sends a request with the key in X-API-Key (none when key is "") and
// body as JSON (none when nil; a string is sent as it is).
func (h *harness) call(method, path, key string, body any, header ...string) answer {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	base := h.url
	if h.authURL != "" && (strings.HasPrefix(path, "/v1/forward-auth") || method == "POST" && strings.HasPrefix(path, "/v1/verify")) {
		base = h.authURL
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			h.t.Fatalf("%s %s: body is not JSON: %v\n%s", method, path, err, raw)
		}
	}
	if resp.Header.Get("X-Request-Id") == "" {
		h.t.Errorf("%s %s: no X-Request-Id", method, path)
	}
	return a
}

// must calls and fails the test unless the answer has the given status.
func (h *harness) must(status int, method, path, key string, body any, header ...string) answer {
	h.t.Helper()
	a := h.call(method, path, key, body, header...)
	if a.status != status {
		h.t.Fatalf("%s %s: status %d, want %d\n%s", method, path, a.status, status, a.raw)
	}
	return a
}

// tenant creates a tenant with the root key and returns its id.
func (h *harness) tenant(slug string) string {
	h.t.Helper()
	return h.must(http.StatusCreated, "POST", "/v1/tenants", h.root, map[string]any{"slug": slug}).data()["id"].(string)
}

// key creates a key from the given body with the given key and returns its
// plaintext and id.
func (h *harness) key(by string, body map[string]any) (plaintext, id string) {
	h.t.Helper()
	d := h.must(http.StatusCreated, "POST", "/v1/api-keys", by, body).data()
	return d["key"].(string), d["id"].(string)
}

// problemOf checks that a is a problem+json answer with status and code,
// and returns its detail.
func problemOf(t *testing.T, a answer, status int, code keyward.Code) string {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d\n%s", a.status, status, a.raw)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	if a.str("code") != string(code) {
		t.Errorf("code %q, want %q\n%s", a.str("code"), code, a.raw)
	}
	if a.body["status"] != float64(status) || a.body["success"] != false || a.str("title") == "" ||
		a.str("type") != "urn:keyward:error:"+string(code) || a.str("detail") == "" {
		t.Errorf("problem body incomplete: %s", a.raw)
	}
	if a.str("request_id") == "" || a.str("request_id") != a.header.Get("X-Request-Id") {
		t.Errorf("request_id %q does not match X-Request-Id %q", a.str("request_id"), a.header.Get("X-Request-Id"))
	}
	return a.str("detail")
}

var loopback = netip.MustParseAddr("127.0.0.1")

// withLog sends the server's log to buf, as JSON lines.
func withLog(buf io.Writer) harnessOption {
	return func(c *harnessConfig) { c.Logger = slog.New(slog.NewJSONHandler(buf, nil)) }
}
