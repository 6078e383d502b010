package fastgate

import (
	"context"
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

// checkEnv returns a Gateway with a verifier on a real SQLite store and
// a route policy, and a request to GET /v1/contacts/1 with a valid key
// of it, already verified once (so cached).
func checkEnv(tb testing.TB, copyStrings bool) (*Gateway, *fasthttp.Request) {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "keyward.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	format, _ := apikey.NewFormat(apikey.DefaultPrefix)
	v := verify.New(store, verify.Options{Format: format, FlushInterval: time.Hour})
	tb.Cleanup(func() { v.Close(context.Background()) })
	svc := manage.New(manage.Config{Store: store, Format: format, AfterChange: v.Refresh})
	if _, err := svc.Bootstrap(ctx); err != nil {
		tb.Fatal(err)
	}
	if _, err := svc.CreateTenant(ctx, manage.CommandLine(), manage.CreateTenantInput{Slug: "acme"}); err != nil {
		tb.Fatal(err)
	}
	_, key, err := svc.CreateKey(ctx, manage.CommandLine(), manage.CreateKeyInput{TenantID: "acme", Name: "load", Permissions: []string{"contacts:read"}})
	if err != nil {
		tb.Fatal(err)
	}
	name := filepath.Join(dir, "routes.yaml")
	routes := "default: deny\nroutes:\n  - match: GET /health\n    public: true\n  - match: GET /v1/contacts/**\n    permissions: [contacts:read]\n" +
		"  - match: POST /v1/contacts\n    permissions: [contacts:write]\n"
	if err := os.WriteFile(name, []byte(routes), 0o600); err != nil {
		tb.Fatal(err)
	}
	f, err := policy.Open(name, nil)
	if err != nil {
		tb.Fatal(err)
	}
	g := New(Config{Upstream: "127.0.0.1:1", Verifier: v, Routes: f, CopyStrings: copyStrings})
	req := new(fasthttp.Request)
	req.Header.SetMethod("GET")
	req.SetRequestURI("/v1/contacts/1")
	req.Header.SetHost("api.example")
	req.Header.Set("X-API-Key", key)
	req.Header.Set("User-Agent", "wrk")
	var rc fasthttp.RequestCtx
	req.CopyTo(&rc.Request)
	if !g.check(&rc, []byte("req_1")) {
		tb.Fatalf("the key was refused: %s", rc.Response.Body())
	}
	return g, req
}

// TestCheckAllocs asserts that the verification of a cached key on the
// fasthttp path allocates nothing, as Keyward's hot path must not: the
// request's bytes are viewed as strings, never copied.
func TestCheckAllocs(t *testing.T) {
	g, req := checkEnv(t, false)
	var rc fasthttp.RequestCtx
	id := []byte("req_1")
	allocs := testing.AllocsPerRun(200, func() {
		req.CopyTo(&rc.Request)
		if !g.check(&rc, id) {
			t.Fatal("refused")
		}
	})
	if allocs != 0 {
		t.Errorf("check allocates %.1f times per request; want 0", allocs)
	}
}

// BenchmarkCheck measures the verification of a cached key on the
// fasthttp path, with the request's bytes viewed as strings (view) and
// copied into new ones (copy); the copy of the request each round
// (CopyTo) is included in both.
func BenchmarkCheck(b *testing.B) {
	for _, c := range []struct {
		name string
		copy bool
	}{{"view", false}, {"copy", true}} {
		b.Run(c.name, func(b *testing.B) {
			g, req := checkEnv(b, c.copy)
			var rc fasthttp.RequestCtx
			id := []byte("req_1")
			b.ReportAllocs()
			for b.Loop() {
				req.CopyTo(&rc.Request)
				if !g.check(&rc, id) {
					b.Fatal("refused")
				}
			}
		})
	}
}
