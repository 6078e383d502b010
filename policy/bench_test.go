package policy

import (
	"fmt"
	"strings"
	"testing"
)

// benchPolicy is a policy of 200 routes of the mix an API has: literal
// collections, items by id, nested items, ** subtrees, and routes for every
// method.
func benchPolicy(tb testing.TB) *Policy {
	tb.Helper()
	var b strings.Builder
	b.WriteString("default: deny\nroutes:\n  - match: GET /health\n    public: true\n")
	n := 1
	for i := 0; n < 200; i++ {
		res := fmt.Sprintf("res%d", i)
		for _, r := range []string{
			"GET /v1/" + res,
			"POST /v1/" + res,
			"GET /v1/" + res + "/{id}",
			"PATCH /v1/" + res + "/{id}",
			"DELETE /v1/" + res + "/{id}",
			"GET /v1/" + res + "/{id}/items/{item}",
			"GET /v1/tenants/{tenant}/" + res + "/**",
			"* /v1/" + res + "/{id}/files/**",
		} {
			if n == 200 {
				break
			}
			fmt.Fprintf(&b, "  - match: %q\n    permissions: [%s:read]\n", r, res)
			if strings.Contains(r, "{tenant}") {
				b.WriteString("    tenant: tenant\n")
			}
			n++
		}
	}
	p, err := Parse([]byte(b.String()))
	if err != nil {
		tb.Fatal(err)
	}
	if len(p.routes) != 200 {
		tb.Fatalf("%d routes", len(p.routes))
	}
	return p
}

type benchRequest struct{ method, path string }

func benchPaths() []benchRequest {
	return []benchRequest{
		{"GET", "/v1/res12"},
		{"GET", "/v1/res20/key_4f2a9c"},
		{"PATCH", "/v1/res3/key_4f2a9c"},
		{"GET", "/v1/res7/c_19/items/i_4"},
		{"GET", "/v1/tenants/acme/res18/sites/s_1/pages"},
		{"PUT", "/v1/res5/c_1/files/a/b/c.txt"},
		{"GET", "/health"},
		{"GET", "/v1/unknown/x"},
	}
}

// BenchmarkMatch matches a mix of requests against a policy of 200 routes.
func BenchmarkMatch(b *testing.B) {
	p := benchPolicy(b)
	reqs := benchPaths()
	var m Match
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r := reqs[i%len(reqs)]
		p.Match(r.method, r.path, &m)
	}
}

// BenchmarkCleanPath cleans a target with a query and no escape.
func BenchmarkCleanPath(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CleanPath("/v1/tenants/acme/sites/s_1/pages?limit=10"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEndpointsAllow checks a request against five endpoint entries,
// matching the last.
func BenchmarkEndpointsAllow(b *testing.B) {
	e, err := ParseEndpoints([]string{
		"GET /v1/contacts/**", "* /v1/reports/*", "POST /v1/messages",
		"DELETE /v1/contacts/{id}", "GET /v1/tenants/{tenant}/sites/{site}/**",
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !e.Allow("GET", "/v1/tenants/acme/sites/s_1/pages/p_1") {
			b.Fatal("refused")
		}
	}
}

// BenchmarkReferrersAllow checks a Referer against three entries, matching
// the last.
func BenchmarkReferrersAllow(b *testing.B) {
	r, err := ParseReferrers([]string{"https://app.example.com", "https://*.example.org/*", "https://*.example.com/app/*"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !r.Allow("https://eu.app.example.com/app/contacts?tab=2", "https://eu.app.example.com") {
			b.Fatal("refused")
		}
	}
}
