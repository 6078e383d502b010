package gateway

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/metrics"
	"github.com/keyward/keyward/internal/reqlog"
	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/sqlite"
	"github.com/keyward/keyward/verify"
)

// TestHotPathAllocs: the fasthttp front's work on a request of a cached
// key, its checks and the rewriting of the request that goes upstream,
// allocates nothing: the request's bytes are viewed, never copied.
func TestHotPathAllocs(t *testing.T) { noAllocs(t, hotPath(t), "a cached key's request") }

// BenchmarkHotPath measures the fasthttp front's own work on a request
// of a cached key (checks, rewriting the request, with a copy of the
// request each round), without I/O.
func BenchmarkHotPath(b *testing.B) { benchRun(b, hotPath(b)) }

// hotPath returns a function that runs the front's verify and rewrite on
// a copy of a request of a cached key, on a real store and route policy.
func hotPath(t testing.TB) func() {
	v, routes, keys := fixture(t)
	key := keys.key
	up, _ := url.Parse("http://127.0.0.1:1")
	f, err := newFront(Config{Verifier: v, Routes: routes, Upstream: up, Logs: keys.logs})
	if err != nil {
		t.Fatal(err)
	}
	req := new(fasthttp.Request)
	req.Header.SetMethod("GET")
	req.SetRequestURI("/v1/contacts/1")
	req.Header.SetHost("api.example")
	req.Header.Set("X-API-Key", key)
	req.Header.Set("User-Agent", "wrk")
	rc, run := replay(req, func(rc *fasthttp.RequestCtx) {
		p := passes.Get().(*pass)
		if !f.verify(rc, p) {
			t.Fatalf("refused: %s", rc.Response.Body())
		}
		f.rewrite(rc, p)
		f.logRequest(rc, p)
		f.release(p)
	})
	run() // the key is cached now
	if got := string(rc.Request.Header.Peek("X-Keyward-Tenant-Slug")); got != "acme" || len(rc.Request.Header.Peek("X-Api-Key")) != 0 {
		t.Fatalf("the request that goes up: %s", rc.Request.Header.Header())
	}
	return run
}

// TestAuthHotPathAllocs: the auth listener's answer to nginx's
// forward-auth request of a cached key allocates nothing.
func TestAuthHotPathAllocs(t *testing.T) { noAllocs(t, authHotPath(t), "a cached key's auth request") }

// BenchmarkAuthHotPath measures the auth listener's work on nginx's
// forward-auth request of a cached key, without I/O.
func BenchmarkAuthHotPath(b *testing.B) { benchRun(b, authHotPath(b)) }

// authHotPath returns a function that has the auth listener answer a
// copy of nginx's forward-auth request of a cached key, on a real store
// and route policy.
func authHotPath(t testing.TB) func() {
	v, routes, keys := fixture(t)
	key := keys.key
	a, err := NewAuthServer(AuthConfig{Verifier: v, Routes: routes, Logs: keys.logs})
	if err != nil {
		t.Fatal(err)
	}
	req := new(fasthttp.Request)
	req.Header.SetMethod("GET")
	req.SetRequestURI("/v1/forward-auth")
	req.Header.SetHost("127.0.0.1")
	req.Header.Set("X-API-Key", key)
	req.Header.Set("X-Original-URI", "/v1/contacts/1")
	req.Header.Set("X-Original-Method", "GET")
	req.Header.Set("User-Agent", "wrk")
	rc, run := replay(req, a.handle)
	run() // the key is cached now
	if rc.Response.StatusCode() != 200 || string(rc.Response.Header.Peek("X-Keyward-Tenant-Slug")) != "acme" {
		t.Fatalf("the answer: %s\n%s", rc.Response.Header.Header(), rc.Response.Body())
	}
	return run
}

// fixture returns a started verifier on a real store with a tenant and a
// key of it, the key, and a route policy under which the key may GET
// /v1/contacts/**.
func fixture(t testing.TB) (*verify.Verifier, *policy.File, fixtureKeys) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "keyward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	format, _ := apikey.NewFormat(apikey.DefaultPrefix)
	v := verify.New(store, verify.Options{Format: format, FlushInterval: time.Hour})
	if err := v.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close(context.Background()) })
	svc := manage.New(manage.Config{Store: store, Format: format, AfterChange: v.Refresh})
	if _, err := svc.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateTenant(ctx, manage.CommandLine(), manage.CreateTenantInput{Slug: "acme"}); err != nil {
		t.Fatal(err)
	}
	_, key, err := svc.CreateKey(ctx, manage.CommandLine(), manage.CreateKeyInput{TenantID: "acme", Name: "k", Permissions: []string{"contacts:read"}})
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, "routes.yaml")
	if err := os.WriteFile(name, []byte("default: deny\nroutes:\n  - match: GET /v1/contacts/**\n    permissions: [contacts:read]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	routes, err := policy.Open(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, verifier, err := svc.CreateKey(ctx, manage.CommandLine(), manage.CreateKeyInput{TenantID: "system", Name: "verifier", Permissions: []string{"keyward:verify"}})
	if err != nil {
		t.Fatal(err)
	}
	// A request log whose writer does not run, with the metrics
	// observing every entry, as serve has them: the allocation tests
	// count the request's own, and the log drops once it is full, which
	// allocates no more than keeping does.
	logs := reqlog.New(reqlog.Config{Store: store, Observe: metrics.New().Observe})
	return v, routes, fixtureKeys{key: key, verifier: verifier, logs: logs}
}

// fixtureKeys are fixture's keys: one of its tenant, and one of the
// system tenant that may verify keys; and a request log on its store.
type fixtureKeys struct {
	key, verifier string
	logs          *reqlog.Log
}

// TestAuthVerifyAllocs: the auth listener's answer to POST /v1/verify of
// a cached key by a cached verifier key allocates nothing.
func TestAuthVerifyAllocs(t *testing.T) { noAllocs(t, authVerify(t), "a cached key's POST /v1/verify") }

// BenchmarkAuthVerify measures the auth listener's work on POST /v1/verify
// of a cached key by a cached verifier key, without I/O.
func BenchmarkAuthVerify(b *testing.B) { benchRun(b, authVerify(b)) }

// authVerify returns a function that has the auth listener answer a copy
// of a POST /v1/verify of a cached key by a cached verifier key, on a
// real store and route policy.
func authVerify(t testing.TB) func() {
	v, routes, keys := fixture(t)
	a, err := NewAuthServer(AuthConfig{Verifier: v, Routes: routes, Logs: keys.logs})
	if err != nil {
		t.Fatal(err)
	}
	req := new(fasthttp.Request)
	req.Header.SetMethod("POST")
	req.SetRequestURI("/v1/verify")
	req.Header.SetHost("127.0.0.1")
	req.Header.Set("X-API-Key", keys.verifier)
	req.Header.SetContentType("application/json")
	req.SetBodyString(`{"key":"` + keys.key + `","permissions":["contacts:read"],"method":"GET","path":"/v1/contacts/1"}`)
	rc, run := replay(req, a.handle)
	run()
	if rc.Response.StatusCode() != 200 || !bytes.Contains(rc.Response.Body(), []byte(`"valid":true`)) {
		t.Fatalf("the answer: %s\n%s", rc.Response.Header.Header(), rc.Response.Body())
	}
	return run
}

// noAllocs fails the test unless run allocates nothing; what names it.
func noAllocs(t *testing.T, run func(), what string) {
	if raceEnabled {
		t.Log("allocations not counted under the race detector, whose sync.Pool drops items")
		return
	}
	if allocs := testing.AllocsPerRun(200, run); allocs != 0 {
		t.Errorf("%s allocates %.1f times; want 0", what, allocs)
	}
}

// benchRun runs run b.N times, counting allocations.
func benchRun(b *testing.B, run func()) {
	b.ReportAllocs()
	for b.Loop() {
		run()
	}
}

// replay returns a RequestCtx from a loopback peer, and a function that
// copies req into it afresh and has serve answer it.
func replay(req *fasthttp.Request, serve func(*fasthttp.RequestCtx)) (*fasthttp.RequestCtx, func()) {
	rc := new(fasthttp.RequestCtx)
	rc.Init(req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000}, nil) // the test's connection (allocates)
	return rc, func() {
		req.CopyTo(&rc.Request)
		rc.Response.Reset()
		serve(rc)
	}
}

// TestAuthBodyTooLarge: a POST /v1/verify whose Content-Length is over
// the limit is answered 400 invalid_request problem+json, in the API
// listener's words, before its body is read.
func TestAuthBodyTooLarge(t *testing.T) {
	v, routes, keys := fixture(t)
	a, err := NewAuthServer(AuthConfig{Verifier: v, Routes: routes})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = a.Serve(ln) }()
	t.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/verify HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
		keys.verifier, maxAuthBody+1)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/problem+json" || resp.Header.Get("X-Request-Id") == "" ||
		!strings.Contains(string(body), `"code":"invalid_request"`) || !strings.Contains(string(body), "larger than 1048576 bytes") {
		t.Errorf("a body over the limit: %d %v %s", resp.StatusCode, resp.Header, body)
	}
}
