package middleware_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/httpapi"
	"github.com/keyward/keyward/internal/testclock"
	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/middleware"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/sqlite"
	"github.com/keyward/keyward/verify"
)

// env is a Keyward server on a real SQLite store, behind a real HTTP
// listener on loopback that the test can stop and start again on the same
// address, with the verifier that the in-process middleware shares.
type env struct {
	t        testing.TB
	store    keyward.Store
	verifier *verify.Verifier
	// svc writes through the server's verifier, as the API does; cli
	// writes to the store alone, as the command line does, so that its
	// changes reach the server by the change feed.
	svc, cli *manage.Service
	handler  http.Handler
	addr     string
	srv      *http.Server
	url      string

	verifies atomic.Int64 // POST /v1/verify requests the server received
	// noStreams makes the server answer GET /v1/changes 503, as a proxy
	// in front of it that cuts long requests might.
	noStreams  atomic.Bool
	mu         sync.Mutex
	lastEvents []string // the Last-Event-ID of each GET /v1/changes
}

func newEnv(t testing.TB, vopts verify.Options) *env {
	t.Helper()
	return newEnvConfig(t, vopts, nil)
}

// newEnvConfig is newEnv, with the server's Config changed by cfg (nil for
// none).
func newEnvConfig(t testing.TB, vopts verify.Options, cfg func(*httpapi.Config)) *env {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "keyward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	format, err := apikey.NewFormat(apikey.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	vopts.Format, vopts.FlushInterval = format, time.Hour
	v := verify.New(store, vopts)
	if err := v.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close(context.Background()) })
	e := &env{t: t, store: store, verifier: v,
		svc: manage.New(manage.Config{Store: store, Format: format, AfterChange: v.Refresh}),
		cli: manage.New(manage.Config{Store: store, Format: format})}
	if _, err := e.svc.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateTenant(ctx, manage.CommandLine(), manage.CreateTenantInput{Slug: "acme"}); err != nil {
		t.Fatal(err)
	}
	config := httpapi.Config{Service: e.svc, Verifier: v, Store: store}
	if cfg != nil {
		cfg(&config)
	}
	api, err := httpapi.NewServer(config)
	if err != nil {
		t.Fatal(err)
	}
	e.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/verify":
			e.verifies.Add(1)
		case "/v1/changes":
			if e.noStreams.Load() {
				http.Error(w, "no streams here", http.StatusServiceUnavailable)
				return
			}
			e.mu.Lock()
			e.lastEvents = append(e.lastEvents, r.Header.Get("Last-Event-ID"))
			e.mu.Unlock()
		}
		api.ServeHTTP(w, r)
	})
	e.start("127.0.0.1:0")
	t.Cleanup(e.stop)
	return e
}

// start serves the API on addr.
func (e *env) start(addr string) {
	e.t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	e.url = "http://" + e.addr
	e.srv = &http.Server{Handler: e.handler}
	go e.srv.Serve(ln)
}

// stop closes the listener and every connection at once: the change
// streams are cut as by a crash or a lost network.
func (e *env) stop() { e.srv.Close() }

// key creates a key of acme with in's settings (its tenant and a name by
// default) and returns its plaintext and id.
func (e *env) key(in manage.CreateKeyInput) (string, string) {
	e.t.Helper()
	if in.TenantID == "" {
		in.TenantID = "acme"
	}
	if in.Name == "" {
		in.Name = "client"
	}
	k, plain, err := e.svc.CreateKey(context.Background(), manage.CommandLine(), in)
	if err != nil {
		e.t.Fatal(err)
	}
	return plain, k.ID
}

// remote returns a Remote of the server, started, with a key of its own
// with keyward:verify.
func (e *env) remote(opts middleware.RemoteOptions) *middleware.Remote {
	e.t.Helper()
	opts.Key, _ = e.key(manage.CreateKeyInput{TenantID: keyward.SystemTenantID, Name: "remote", Permissions: []string{keyward.PermVerify}})
	opts.URL = e.url
	rm, err := middleware.NewRemote(opts)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rm.Start(ctx); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { rm.Close() })
	return rm
}

// caughtUp waits until the stream of rm is live and has sent every change
// the server's verifier applied: an answer asked for while a change to its
// key is on its way is not cached.
func (e *env) caughtUp(rm *middleware.Remote) {
	e.t.Helper()
	applied, _ := e.verifier.Applied()
	deadline := time.Now().Add(5 * time.Second)
	for rm.Position() < applied || !rm.Live() {
		if time.Now().After(deadline) {
			e.t.Fatalf("the stream's position %d never reached %d", rm.Position(), applied)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// reply is an answer of the middleware, or of forward-auth.
type reply struct {
	status int
	header http.Header
	body   map[string]any
	caller *middleware.Caller
}

// echo is the API behind the middleware: it answers 200 and keeps the
// Caller it was handed.
func echo(got **middleware.Caller) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*got, _ = middleware.Identity(r.Context())
		w.WriteHeader(http.StatusOK)
	})
}

// serve sends GET target with key (none when "") through the middleware mw.
func serve(t *testing.T, mw func(http.Handler) http.Handler, target, key string) reply {
	t.Helper()
	var c *middleware.Caller
	req := httptest.NewRequest("GET", target, nil)
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	rec := httptest.NewRecorder()
	mw(echo(&c)).ServeHTTP(rec, req)
	rp := reply{status: rec.Code, header: rec.Header(), caller: c}
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &rp.body); err != nil {
			t.Fatalf("the body is not JSON: %v\n%s", err, rec.Body)
		}
	}
	if rec.Header().Get("X-Request-Id") == "" {
		t.Errorf("no X-Request-Id")
	}
	return rp
}

// forwardAuth asks the server's forward-auth about GET target with key,
// with the permissions of query ("" for none).
func (e *env) forwardAuth(target, key, query string) reply {
	e.t.Helper()
	req, err := http.NewRequest("GET", e.url+"/v1/forward-auth"+query, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-Uri", target)
	req.Header.Set("X-Forwarded-Method", "GET")
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	rp := reply{status: resp.StatusCode, header: resp.Header}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &rp.body); err != nil {
			e.t.Fatalf("forward-auth's body is not JSON: %v\n%s", err, raw)
		}
	}
	return rp
}

// TestInProcess: a valid key passes with its identity in the context; a
// refused one never reaches the handler.
func TestInProcess(t *testing.T) {
	e := newEnv(t, verify.Options{})
	key, id := e.key(manage.CreateKeyInput{Name: "order-bot", Environment: "test"})
	mw := middleware.New(e.verifier, middleware.Options{})

	r := serve(t, mw, "/api/orders", key)
	want := middleware.Caller{KeyID: id, KeyName: "order-bot", TenantSlug: "acme", Plan: manage.DefaultPlan, Environment: keyward.Test}
	if r.status != http.StatusOK || r.caller == nil {
		t.Fatalf("status %d, caller %v: %v", r.status, r.caller, r.body)
	}
	got := *r.caller
	if got.TenantID == "" || len(got.Permissions) != 0 {
		t.Errorf("caller %+v", got)
	}
	got.TenantID, got.Permissions = "", nil
	if got.KeyID != want.KeyID || got.KeyName != want.KeyName || got.TenantSlug != want.TenantSlug || got.Plan != want.Plan ||
		got.Environment != want.Environment || got.MemberID != "" {
		t.Errorf("caller %+v, want %+v", got, want)
	}

	r = serve(t, mw, "/api/orders", "")
	if r.status != http.StatusUnauthorized || r.caller != nil || r.body["code"] != "missing_api_key" {
		t.Errorf("without a key: %d %v, caller %v", r.status, r.body, r.caller)
	}
	if _, ok := middleware.Identity(context.Background()); ok {
		t.Errorf("Identity of a context the middleware never saw")
	}
}

// TestSameAnswersAsForwardAuth: in process and remote, the middleware
// refuses as forward-auth does, with the same status, problem, challenge
// and Retry-After; a valid key gets the same RateLimit headers.
func TestSameAnswersAsForwardAuth(t *testing.T) {
	e := newEnv(t, verify.Options{FailedAttempts: verify.NoFailedAttemptLimit})
	rm := e.remote(middleware.RemoteOptions{})
	ctx := context.Background()

	valid, _ := e.key(manage.CreateKeyInput{})
	revoked, revokedID := e.key(manage.CreateKeyInput{})
	if _, err := e.svc.RevokeKey(ctx, manage.CommandLine(), revokedID); err != nil {
		t.Fatal(err)
	}
	disabled, disabledID := e.key(manage.CreateKeyInput{})
	off := false
	if _, err := e.svc.UpdateKey(ctx, manage.CommandLine(), disabledID, manage.UpdateKeyInput{Enabled: &off}); err != nil {
		t.Fatal(err)
	}
	limited, _ := e.key(manage.CreateKeyInput{RateLimits: []keyward.RateLimit{{Name: "hourly", Limit: 3, Period: keyward.Duration(time.Hour)}}})
	unknown, err := e.verifier.Format().Generate(keyward.Live)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name, key   string
		permissions []string
		status      int
		code        string
	}{
		{"valid", valid, nil, 200, ""},
		{"missing", "", nil, 401, "missing_api_key"},
		{"malformed", valid[:len(valid)-1] + "x", nil, 401, "malformed_api_key"},
		{"unknown", unknown, nil, 401, "invalid_api_key"},
		{"revoked", revoked, nil, 401, "revoked_api_key"},
		{"disabled", disabled, nil, 403, "key_disabled"},
		{"insufficient permissions", valid, []string{"reports:read"}, 403, "insufficient_permissions"},
		{"rate limits", limited, nil, 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			query := ""
			if c.permissions != nil {
				query = "?permissions=" + c.permissions[0]
			}
			fa := e.forwardAuth("/api/x", c.key, query)
			opts := middleware.Options{Permissions: c.permissions}
			for mode, mw := range map[string]func(http.Handler) http.Handler{
				"in process": middleware.New(e.verifier, opts),
				"remote":     rm.Middleware(opts),
			} {
				got := serve(t, mw, "/api/x", c.key)
				if fa.status != c.status || got.status != c.status {
					t.Errorf("%s: status %d, forward-auth %d, want %d: %v", mode, got.status, fa.status, c.status, got.body)
				}
				if c.code == "" {
					if got.caller == nil {
						t.Errorf("%s: no caller", mode)
					}
				} else {
					for _, m := range []string{"type", "title", "status", "detail", "code", "success"} {
						if got.body[m] != fa.body[m] {
							t.Errorf("%s: %s %v, forward-auth's %v", mode, m, got.body[m], fa.body[m])
						}
					}
					if got.body["code"] != c.code {
						t.Errorf("%s: code %v, want %s", mode, got.body["code"], c.code)
					}
					if got.body["request_id"] != got.header.Get("X-Request-Id") {
						t.Errorf("%s: request_id %v, X-Request-Id %q", mode, got.body["request_id"], got.header.Get("X-Request-Id"))
					}
				}
				for _, h := range []string{"WWW-Authenticate", "Retry-After", "Content-Type", "RateLimit-Policy", "X-RateLimit-Limit"} {
					if g, f := got.header.Get(h), fa.header.Get(h); g != f {
						t.Errorf("%s: %s %q, forward-auth's %q", mode, h, g, f)
					}
				}
			}
			if c.name == "rate limits" && fa.header.Get("RateLimit-Policy") == "" {
				t.Errorf("forward-auth sent no RateLimit-Policy for a key with rate limits")
			}
		})
	}

	// The key of three requests an hour has made them: the fourth is
	// refused, with Retry-After, by each alike.
	fa := e.forwardAuth("/api/x", limited, "")
	for mode, mw := range map[string]func(http.Handler) http.Handler{
		"in process": middleware.New(e.verifier, middleware.Options{}),
		"remote":     rm.Middleware(middleware.Options{}),
	} {
		got := serve(t, mw, "/api/x", limited)
		if fa.status != 429 || got.status != 429 || got.body["code"] != "rate_limited" || got.header.Get("Retry-After") == "" ||
			got.header.Get("RateLimit") != fa.header.Get("RateLimit") {
			t.Errorf("%s: %d %v %v, forward-auth's %d %v", mode, got.status, got.body, got.header, fa.status, fa.header)
		}
	}
}

// TestRemoteRevocation: a key revoked from the command line (written to the
// store alone) is refused by a remote verifier within a second, though its
// answer was cached.
func TestRemoteRevocation(t *testing.T) {
	e := newEnv(t, verify.Options{})
	rm := e.remote(middleware.RemoteOptions{})
	mw := rm.Middleware(middleware.Options{})
	key, id := e.key(manage.CreateKeyInput{})
	e.caughtUp(rm)

	if r := serve(t, mw, "/api/x", key); r.status != http.StatusOK {
		t.Fatalf("status %d: %v", r.status, r.body)
	}
	asked := e.verifies.Load()
	if r := serve(t, mw, "/api/x", key); r.status != http.StatusOK || e.verifies.Load() != asked {
		t.Fatalf("the second request was not answered from the cache: %d, %d questions after %d", r.status, e.verifies.Load(), asked)
	}

	if _, err := e.cli.RevokeKey(context.Background(), manage.CommandLine(), id); err != nil {
		t.Fatal(err)
	}
	awaitRevoked(t, mw, key, "the revocation did not reach the remote verifier within 1 s")
}

// TestRemoteStreamResumes: when the stream is lost (the server stops, and
// comes back on the same address), the remote verifier reconnects from its
// last position and hears of the change made meanwhile, while what did not
// change stays cached.
func TestRemoteStreamResumes(t *testing.T) {
	e := newEnv(t, verify.Options{})
	rm := e.remote(middleware.RemoteOptions{})
	mw := rm.Middleware(middleware.Options{})
	a, aID := e.key(manage.CreateKeyInput{Name: "a"})
	b, _ := e.key(manage.CreateKeyInput{Name: "b"})
	e.caughtUp(rm)
	for _, k := range []string{a, b} {
		if r := serve(t, mw, "/api/x", k); r.status != http.StatusOK {
			t.Fatalf("status %d: %v", r.status, r.body)
		}
	}
	before := rm.Position()

	e.stop()
	if _, err := e.svc.RevokeKey(context.Background(), manage.CommandLine(), aID); err != nil {
		t.Fatal(err)
	}
	// While the server is away, both keys are answered from the cache,
	// within its TTL, as the server would.
	for _, k := range []string{a, b} {
		if r := serve(t, mw, "/api/x", k); r.status != http.StatusOK {
			t.Fatalf("with the server away: status %d: %v", r.status, r.body)
		}
	}
	e.start(e.addr)

	// Once the stream is back and caught up, a's answer was dropped by
	// the change it missed, and b's is still cached.
	e.caughtUp(rm)
	if r := serve(t, mw, "/api/x", a); r.status != http.StatusUnauthorized || r.body["code"] != "revoked_api_key" {
		t.Fatalf("the revocation made while the stream was lost never reached it: %d %v", r.status, r.body)
	}
	asked := e.verifies.Load()
	if r := serve(t, mw, "/api/x", b); r.status != http.StatusOK || e.verifies.Load() != asked {
		t.Errorf("b, unchanged, was not answered from the cache after the stream resumed: %d, %d questions after %d", r.status, e.verifies.Load(), asked)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	resumed := e.lastEvents[len(e.lastEvents)-1]
	if len(e.lastEvents) < 2 || e.lastEvents[0] != "" || resumed != strconv.FormatInt(before, 10) {
		t.Errorf("Last-Event-ID of each connection %q, want the last one %d", e.lastEvents, before)
	}
}

// TestRemoteTTL: with the server unreachable, a cached answer is given for
// the server's cache TTL after it came, and past it while the stream was
// heard from within the TTL; then the request is refused, 503.
func TestRemoteTTL(t *testing.T) {
	const ttl = time.Minute
	e := newEnv(t, verify.Options{CacheTTL: ttl})
	clk := testclock.New(time.Now())
	rm := e.remote(middleware.RemoteOptions{Clock: clk.Now})
	mw := rm.Middleware(middleware.Options{})
	key, _ := e.key(manage.CreateKeyInput{})
	e.caughtUp(rm)
	if r := serve(t, mw, "/api/x", key); r.status != http.StatusOK {
		t.Fatalf("status %d: %v", r.status, r.body)
	}

	// Past the TTL, with the stream heard from just now (a change of
	// another key), and the server gone: still answered.
	clk.Advance(ttl + time.Second)
	e.key(manage.CreateKeyInput{Name: "other"})
	e.caughtUp(rm)
	e.stop()
	if r := serve(t, mw, "/api/x", key); r.status != http.StatusOK {
		t.Fatalf("past the TTL, the stream heard from within it, the server gone: status %d: %v", r.status, r.body)
	}

	// A TTL after the stream was last heard from: refused.
	clk.Advance(ttl)
	r := serve(t, mw, "/api/x", key)
	if r.status != http.StatusServiceUnavailable || r.body["code"] != "storage_unavailable" || r.header.Get("Retry-After") != "1" || r.caller != nil {
		t.Fatalf("a TTL after the stream was last heard from: %d %v %v", r.status, r.body, r.header)
	}
}

// TestInProcessRoutes: with a route policy, the policy decides: a public
// route passes without a key (and without an identity), a route's
// permissions are needed, and a request no route takes is refused.
func TestInProcessRoutes(t *testing.T) {
	e := newEnv(t, verify.Options{})
	file := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(file, []byte(`default: deny
routes:
  - match: GET /health
    public: true
  - match: GET /v1/orders/**
  - match: GET /v1/contacts/**
    permissions: [contacts:read]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	routes, err := policy.Open(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	mw := middleware.New(e.verifier, middleware.Options{Routes: routes})
	key, _ := e.key(manage.CreateKeyInput{})
	cases := []struct {
		target, key string
		status      int
		code        string
	}{
		{"/health", "", 200, ""},
		{"/v1/orders/1", key, 200, ""},
		{"/v1/orders/1", "", 401, "missing_api_key"},
		{"/v1/contacts/1", key, 403, "insufficient_permissions"},
		{"/v1/other", key, 403, "endpoint_not_allowed"},
	}
	for _, c := range cases {
		r := serve(t, mw, c.target, c.key)
		if r.status != c.status || c.code != "" && r.body["code"] != c.code || (r.caller != nil) != (c.key != "" && c.status == 200) {
			t.Errorf("GET %s with key %t: %d %v, caller %v; want %d %s", c.target, c.key != "", r.status, r.body, r.caller, c.status, c.code)
		}
	}
}

// TestRemoteLostStreamAsksServer: while the stream is lost but the server
// answers, a cached answer is not given without asking the server, so
// that a key revoked meanwhile is refused within a second, not once the
// cached answer's TTL is over.
func TestRemoteLostStreamAsksServer(t *testing.T) {
	e := newEnv(t, verify.Options{})
	rm := e.remote(middleware.RemoteOptions{})
	mw := rm.Middleware(middleware.Options{})
	key, id := e.key(manage.CreateKeyInput{})
	e.caughtUp(rm)
	if r := serve(t, mw, "/api/x", key); r.status != http.StatusOK {
		t.Fatalf("status %d: %v", r.status, r.body)
	}

	// The stream is cut, and cannot connect again; the API answers.
	e.noStreams.Store(true)
	e.stop()
	e.start(e.addr)
	deadline := time.Now().Add(5 * time.Second)
	for rm.Live() {
		if time.Now().After(deadline) {
			t.Fatal("the Remote never saw its stream cut")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := e.svc.RevokeKey(context.Background(), manage.CommandLine(), id); err != nil {
		t.Fatal(err)
	}
	awaitRevoked(t, mw, key, "with the stream lost and the server answering, a revoked key still passed after 1 s")
}

// TestRemoteClose: Close ends the stream and every goroutine and
// connection of the Remote; afterwards it asks the server about every
// request rather than answer from a cache nothing keeps fresh; a Start
// still waiting for its stream returns when Close is called.
func TestRemoteClose(t *testing.T) {
	e := newEnv(t, verify.Options{})
	key, id := e.key(manage.CreateKeyInput{})
	verifyKey, _ := e.key(manage.CreateKeyInput{TenantID: keyward.SystemTenantID, Name: "remote", Permissions: []string{keyward.PermVerify}})
	time.Sleep(50 * time.Millisecond)
	before := runtime.NumGoroutine()

	rm, err := middleware.NewRemote(middleware.RemoteOptions{URL: e.url, Key: verifyKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rm.Start(ctx); err != nil {
		t.Fatal(err)
	}
	mw := rm.Middleware(middleware.Options{})
	e.caughtUp(rm)
	for range 2 {
		if r := serve(t, mw, "/api/x", key); r.status != http.StatusOK {
			t.Fatalf("status %d: %v", r.status, r.body)
		}
	}
	if err := rm.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RevokeKey(context.Background(), manage.CommandLine(), id); err != nil {
		t.Fatal(err)
	}
	if r := serve(t, mw, "/api/x", key); r.status != http.StatusUnauthorized || r.body["code"] != "revoked_api_key" {
		t.Errorf("after Close, a key revoked since it was cached: %d %v", r.status, r.body)
	}
	rm.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Close, %d before the Remote:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}

	// A Start that waits for a stream the server refuses returns on Close.
	e.noStreams.Store(true)
	rm2, err := middleware.NewRemote(middleware.RemoteOptions{URL: e.url, Key: verifyKey})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan error, 1)
	go func() { started <- rm2.Start(context.Background()) }()
	time.Sleep(100 * time.Millisecond)
	rm2.Close()
	select {
	case err := <-started:
		if err == nil {
			t.Errorf("Start returned no error, though its stream never connected")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Start still waits for its stream after Close")
	}
}

// TestRemotePolicyReload: when the server's route policy is reloaded
// (serve --routes, on SIGHUP or a change of the file), a remote verifier
// drops the answers the old policy decided, within a second, as
// forward-auth follows the new policy at once.
func TestRemotePolicyReload(t *testing.T) {
	file := filepath.Join(t.TempDir(), "routes.yaml")
	write := func(routes string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(routes), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("default: authenticated\nroutes:\n  - match: GET /orders/**\n")
	routes, err := policy.Open(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvConfig(t, verify.Options{}, func(c *httpapi.Config) { c.Routes = routes })
	rm := e.remote(middleware.RemoteOptions{})
	mw := rm.Middleware(middleware.Options{})
	key, _ := e.key(manage.CreateKeyInput{})
	e.caughtUp(rm)
	for range 2 {
		if r := serve(t, mw, "/orders/1", key); r.status != http.StatusOK {
			t.Fatalf("status %d: %v", r.status, r.body)
		}
	}

	write("default: authenticated\nroutes:\n  - match: GET /orders/**\n    permissions: [orders:read]\n")
	if err := routes.Reload(); err != nil {
		t.Fatal(err)
	}
	if fa := e.forwardAuth("/orders/1", key, ""); fa.status != http.StatusForbidden {
		t.Fatalf("forward-auth after the reload: %d %v", fa.status, fa.body)
	}
	reloaded := time.Now()
	for {
		r := serve(t, mw, "/orders/1", key)
		if r.status == http.StatusForbidden && r.body["code"] == "insufficient_permissions" {
			break
		}
		if time.Since(reloaded) > time.Second {
			t.Fatalf("a second after the server's policy was reloaded, the remote verifier still answers by the old one: %d %v", r.status, r.body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRemoteMetered: the requests of a key with credits are each asked of
// the server, which counts them: the third of a key with two credits is
// refused, though the first two were valid.
func TestRemoteMetered(t *testing.T) {
	e := newEnv(t, verify.Options{})
	rm := e.remote(middleware.RemoteOptions{})
	mw := rm.Middleware(middleware.Options{})
	key, _ := e.key(manage.CreateKeyInput{Credits: &keyward.Credits{Remaining: 2}})
	e.caughtUp(rm)
	for i, want := range []int{200, 200, 429} {
		asked := e.verifies.Load()
		r := serve(t, mw, "/api/x", key)
		if r.status != want || e.verifies.Load() != asked+1 {
			t.Errorf("request %d: status %d, want %d; %d questions to the server, want 1", i+1, r.status, want, e.verifies.Load()-asked)
		}
	}
}

// TestRemoteWithoutKey: a request without a key is refused without asking
// a server that has no route policy (so that anonymous requests are not
// each sent on to the key server), and asked of one that has, whose
// public routes pass.
func TestRemoteWithoutKey(t *testing.T) {
	e := newEnv(t, verify.Options{})
	rm := e.remote(middleware.RemoteOptions{})
	e.caughtUp(rm)
	asked := e.verifies.Load()
	if r := serve(t, rm.Middleware(middleware.Options{}), "/api/x", ""); r.status != http.StatusUnauthorized || r.body["code"] != "missing_api_key" || e.verifies.Load() != asked {
		t.Errorf("without a key, from a server without routes: %d %v, %d questions", r.status, r.body, e.verifies.Load()-asked)
	}

	file := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(file, []byte("default: authenticated\nroutes:\n  - match: GET /health\n    public: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	routes, err := policy.Open(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	e = newEnvConfig(t, verify.Options{}, func(c *httpapi.Config) { c.Routes = routes })
	rm = e.remote(middleware.RemoteOptions{})
	e.caughtUp(rm)
	mw := rm.Middleware(middleware.Options{})
	if r := serve(t, mw, "/health", ""); r.status != http.StatusOK || r.caller != nil {
		t.Errorf("a public route: %d %v", r.status, r.body)
	}
	if r := serve(t, mw, "/api/x", ""); r.status != http.StatusUnauthorized || r.body["code"] != "missing_api_key" {
		t.Errorf("without a key, a route that needs one: %d %v", r.status, r.body)
	}
}

// TestRemoteReset: when the stream reconnects to a server whose change
// feed never reached the Remote's position (its database was replaced, or
// restored from an older backup), the Remote drops every cached answer:
// a key the new database does not hold is refused, not answered from the
// cache.
func TestRemoteReset(t *testing.T) {
	old, replaced := newEnv(t, verify.Options{}), newEnv(t, verify.Options{})
	oldVerifyKey, _ := old.key(manage.CreateKeyInput{TenantID: keyward.SystemTenantID, Name: "remote", Permissions: []string{keyward.PermVerify}})
	newVerifyKey, _ := replaced.key(manage.CreateKeyInput{TenantID: keyward.SystemTenantID, Name: "remote", Permissions: []string{keyward.PermVerify}})
	key, _ := old.key(manage.CreateKeyInput{})
	for range 5 {
		old.key(manage.CreateKeyInput{}) // the old feed goes further
	}

	// The address the Remote knows, in front of the old server, then of
	// the replaced one (which knows the Remote's key under another
	// plaintext).
	var backend atomic.Pointer[env]
	backend.Store(old)
	front := &env{t: t, handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := backend.Load()
		if b == replaced && r.Header.Get("X-API-Key") == oldVerifyKey {
			r.Header.Set("X-API-Key", newVerifyKey)
		}
		b.handler.ServeHTTP(w, r)
	})}
	front.start("127.0.0.1:0")
	t.Cleanup(front.stop)

	rm, err := middleware.NewRemote(middleware.RemoteOptions{URL: front.url, Key: oldVerifyKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rm.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rm.Close() })
	old.caughtUp(rm)
	mw := rm.Middleware(middleware.Options{})
	for range 2 {
		if r := serve(t, mw, "/api/x", key); r.status != http.StatusOK {
			t.Fatalf("status %d: %v", r.status, r.body)
		}
	}
	last, err := replaced.store.LastChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rm.Position() <= last {
		t.Fatalf("the old feed's position %d is not past the replaced one's %d", rm.Position(), last)
	}

	backend.Store(replaced)
	before := rm.Position()
	front.stop()
	front.start(front.addr)
	deadline := time.Now().Add(5 * time.Second)
	for rm.Position() == before || !rm.Live() {
		if time.Now().After(deadline) {
			t.Fatalf("the stream never connected to the replaced server: position %d", rm.Position())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if r := serve(t, mw, "/api/x", key); r.status != http.StatusUnauthorized || r.body["code"] != "invalid_api_key" {
		t.Errorf("a key the replaced database does not hold: %d %v", r.status, r.body)
	}
}

// TestRemoteClientGone: a request whose client went away before the
// server answered is refused without an error in the log, which is for
// the failures of the verification itself; one the server cannot answer
// is logged, without the key.
func TestRemoteClientGone(t *testing.T) {
	e := newEnv(t, verify.Options{})
	var logged strings.Builder
	var mu sync.Mutex
	rm := e.remote(middleware.RemoteOptions{})
	mw := rm.Middleware(middleware.Options{Logger: slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logged.Write(p)
	}), nil))})
	key, _ := e.key(manage.CreateKeyInput{RateLimits: []keyward.RateLimit{{Name: "hourly", Limit: 100, Period: keyward.Duration(time.Hour)}}})

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequestWithContext(ctx, "GET", "/api/x", nil)
	req.Header.Set("X-API-Key", key)
	rec := httptest.NewRecorder()
	mw(echo(new(*middleware.Caller))).ServeHTTP(rec, req)
	mu.Lock()
	if rec.Code != http.StatusServiceUnavailable || logged.Len() != 0 {
		t.Errorf("a client gone: %d, logged %q", rec.Code, logged.String())
	}
	mu.Unlock()

	e.stop()
	if r := serve(t, mw, "/api/x", key); r.status != http.StatusServiceUnavailable {
		t.Errorf("with the server away: %d %v", r.status, r.body)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logged.String(), "could not verify a key") || strings.Contains(logged.String(), key[len(key)-8:]) {
		t.Errorf("with the server away, logged %q", logged.String())
	}
}

// writerFunc is an io.Writer of a function.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestRemoteShortTTL: a server cache TTL under a second is the Remote's
// too, not its default of minutes: with the server gone, a cached answer
// is refused once that TTL has passed since the stream was last heard.
func TestRemoteShortTTL(t *testing.T) {
	const ttl = 500 * time.Millisecond
	e := newEnv(t, verify.Options{CacheTTL: ttl})
	clk := testclock.New(time.Now())
	rm := e.remote(middleware.RemoteOptions{Clock: clk.Now})
	mw := rm.Middleware(middleware.Options{})
	key, _ := e.key(manage.CreateKeyInput{})
	e.caughtUp(rm)
	if r := serve(t, mw, "/api/x", key); r.status != http.StatusOK {
		t.Fatalf("status %d: %v", r.status, r.body)
	}
	e.stop()
	deadline := time.Now().Add(5 * time.Second)
	for rm.Live() {
		if time.Now().After(deadline) {
			t.Fatal("the Remote never saw its stream cut")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if r := serve(t, mw, "/api/x", key); r.status != http.StatusOK {
		t.Fatalf("the server gone, within its TTL: %d %v", r.status, r.body)
	}
	clk.Advance(ttl + 100*time.Millisecond)
	if r := serve(t, mw, "/api/x", key); r.status != http.StatusServiceUnavailable {
		t.Fatalf("the server gone, past its TTL of %s: %d %v", ttl, r.status, r.body)
	}
}

// awaitRevoked waits until mw refuses key as revoked, and fails the test
// with failure when it still passes 1 s after the revocation that the
// caller has just made.
func awaitRevoked(t *testing.T, mw func(http.Handler) http.Handler, key, failure string) {
	t.Helper()
	revoked := time.Now()
	for {
		r := serve(t, mw, "/api/x", key)
		if r.status == http.StatusUnauthorized && r.body["code"] == "revoked_api_key" {
			return
		}
		if time.Since(revoked) > time.Second {
			t.Fatalf("%s: %d %v", failure, r.status, r.body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
