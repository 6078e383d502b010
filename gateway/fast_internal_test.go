package gateway

import (
	"bytes"
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/sqlite"
	"github.com/keyward/keyward/verify"
)

// TestHotPathAllocs: the fasthttp front's work on a request of a cached
// key, its checks and the rewriting of the request that goes upstream,
// allocates nothing: the request's bytes are viewed, never copied.
func TestHotPathAllocs(t *testing.T) {
	run := hotPath(t)
	if raceEnabled {
		t.Log("allocations not counted under the race detector, whose sync.Pool drops items")
		return
	}
	if allocs := testing.AllocsPerRun(200, run); allocs != 0 {
		t.Errorf("a cached key's request allocates %.1f times; want 0", allocs)
	}
}

// BenchmarkHotPath measures the fasthttp front's own work on a request
// of a cached key (checks, rewriting the request, with a copy of the
// request each round), without I/O.
func BenchmarkHotPath(b *testing.B) {
	run := hotPath(b)
	b.ReportAllocs()
	for b.Loop() {
		run()
	}
}

// hotPath returns a function that runs the front's verify and rewrite on
// a copy of a request of a cached key, on a real store and route policy.
func hotPath(t testing.TB) func() {
	v, routes, keys := fixture(t)
	key := keys.key
	up, _ := url.Parse("http://127.0.0.1:1")
	f, err := newFront(Config{Verifier: v, Routes: routes, Upstream: up})
	if err != nil {
		t.Fatal(err)
	}
	req := new(fasthttp.Request)
	req.Header.SetMethod("GET")
	req.SetRequestURI("/v1/contacts/1")
	req.Header.SetHost("api.example")
	req.Header.Set("X-API-Key", key)
	req.Header.Set("User-Agent", "wrk")
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000}
	var rc fasthttp.RequestCtx
	rc.Init(req, addr, nil) // the test's connection (allocates)
	run := func() {
		req.CopyTo(&rc.Request)
		rc.Response.Reset()
		p := passes.Get().(*pass)
		if !f.verify(&rc, p) {
			t.Fatalf("refused: %s", rc.Response.Body())
		}
		f.rewrite(&rc, p)
		f.release(p)
	}
	run() // the key is cached now
	if got := string(rc.Request.Header.Peek("X-Keyward-Tenant-Slug")); got != "acme" || len(rc.Request.Header.Peek("X-Api-Key")) != 0 {
		t.Fatalf("the request that goes up: %s", rc.Request.Header.Header())
	}
	return run
}

// TestAuthHotPathAllocs: the auth listener's answer to nginx's
// forward-auth request of a cached key allocates nothing.
func TestAuthHotPathAllocs(t *testing.T) {
	run := authHotPath(t)
	if raceEnabled {
		t.Log("allocations not counted under the race detector, whose sync.Pool drops items")
		return
	}
	if allocs := testing.AllocsPerRun(200, run); allocs != 0 {
		t.Errorf("a cached key's auth request allocates %.1f times; want 0", allocs)
	}
}

// BenchmarkAuthHotPath measures the auth listener's work on nginx's
// forward-auth request of a cached key, without I/O.
func BenchmarkAuthHotPath(b *testing.B) {
	run := authHotPath(b)
	b.ReportAllocs()
	for b.Loop() {
		run()
	}
}

// authHotPath returns a function that has the auth listener answer a
// copy of nginx's forward-auth request of a cached key, on a real store
// and route policy.
func authHotPath(t testing.TB) func() {
	v, routes, keys := fixture(t)
	key := keys.key
	a, err := NewAuthServer(AuthConfig{Verifier: v, Routes: routes})
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
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000}
	var rc fasthttp.RequestCtx
	rc.Init(req, addr, nil) // the test's connection (allocates)
	run := func() {
		req.CopyTo(&rc.Request)
		rc.Response.Reset()
		a.handle(&rc)
	}
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
	return v, routes, fixtureKeys{key: key, verifier: verifier}
}

// fixtureKeys are fixture's keys: one of its tenant, and one of the
// system tenant that may verify keys.
type fixtureKeys struct{ key, verifier string }

// TestAuthVerifyAllocs: the auth listener's answer to POST /v1/verify of
// a cached key by a cached verifier key allocates nothing.
func TestAuthVerifyAllocs(t *testing.T) {
	run := authVerify(t)
	if raceEnabled {
		t.Log("allocations not counted under the race detector, whose sync.Pool drops items")
		return
	}
	if allocs := testing.AllocsPerRun(200, run); allocs != 0 {
		t.Errorf("a cached key's POST /v1/verify allocates %.1f times; want 0", allocs)
	}
}

// BenchmarkAuthVerify measures the auth listener's work on POST /v1/verify
// of a cached key by a cached verifier key, without I/O.
func BenchmarkAuthVerify(b *testing.B) {
	run := authVerify(b)
	b.ReportAllocs()
	for b.Loop() {
		run()
	}
}

// authVerify returns a function that has the auth listener answer a copy
// of a POST /v1/verify of a cached key by a cached verifier key, on a
// real store and route policy.
func authVerify(t testing.TB) func() {
	v, routes, keys := fixture(t)
	a, err := NewAuthServer(AuthConfig{Verifier: v, Routes: routes})
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
	var rc fasthttp.RequestCtx
	rc.Init(req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000}, nil)
	run := func() {
		req.CopyTo(&rc.Request)
		rc.Response.Reset()
		a.handle(&rc)
	}
	run()
	if rc.Response.StatusCode() != 200 || !bytes.Contains(rc.Response.Body(), []byte(`"valid":true`)) {
		t.Fatalf("the answer: %s\n%s", rc.Response.Header.Header(), rc.Response.Body())
	}
	return run
}
