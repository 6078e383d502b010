package policy

import (
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

func TestCleanPath(t *testing.T) {
	good := []struct{ in, out string }{
		{"/", "/"},
		{"/v1/contacts", "/v1/contacts"},
		{"/v1/contacts/", "/v1/contacts/"},
		{"/v1/contacts?limit=10", "/v1/contacts"},
		{"/v1/contacts?next=/../admin", "/v1/contacts"},
		{"/v1/contacts#frag", "/v1/contacts"},
		{"/v1/contacts?", "/v1/contacts"},
		{"/v1/%63ontacts", "/v1/contacts"},
		{"/v1/%63%4Fntacts", "/v1/cOntacts"},
		{"/v1/a%20b", "/v1/a b"},
		{"/v1/a%3Fb?c", "/v1/a?b"},
		{"/v1/a%25b", "/v1/a%b"},
		{"/v1/.well-known/x", "/v1/.well-known/x"},
		{"/v1/...", "/v1/..."},
		{"/v1/a+b", "/v1/a+b"},
		{"/v1/é", "/v1/é"},
		{"/v1/%C3%A9", "/v1/é"},
	}
	for _, c := range good {
		got, err := CleanPath(c.in)
		if err != nil {
			t.Errorf("CleanPath(%q): %v", c.in, err)
			continue
		}
		if got != c.out {
			t.Errorf("CleanPath(%q) = %q, want %q", c.in, got, c.out)
		}
	}

	bad := []struct{ in, msg string }{
		{"", "The request path is not an absolute path: it must start with /; send a clean absolute path."},
		{"?a=1", "The request path is not an absolute path: it must start with /; send a clean absolute path."},
		{"v1/contacts", "The request path is not an absolute path: it must start with /; send a clean absolute path."},
		{"http://evil.example/v1/contacts", "The request path is not an absolute path: it must start with /; send a clean absolute path."},
		{"*", "The request path is not an absolute path: it must start with /; send a clean absolute path."},
		{"//v1/contacts", "The request path has an empty segment (//) at segment 1; send a clean absolute path."},
		{"/v1//contacts", "The request path has an empty segment (//) at segment 2; send a clean absolute path."},
		{"/v1/./contacts", `The request path has a "." segment at segment 2; send a clean absolute path.`},
		{"/v1/admin/../contacts", `The request path has a ".." segment at segment 3; send a clean absolute path.`},
		{"/v1/contacts/..", `The request path has a ".." segment at segment 3; send a clean absolute path.`},
		{"/v1/%2e%2e/admin", `The request path has a ".." segment at segment 2; send a clean absolute path.`},
		{"/v1/%2E/admin", `The request path has a "." segment at segment 2; send a clean absolute path.`},
		{"/v1/.%2e/admin", `The request path has a ".." segment at segment 2; send a clean absolute path.`},
		{"/v1/contacts%2F..%2Fadmin", "The request path has an encoded slash (%2F); send a clean absolute path."},
		{"/v1/a%2fb", "The request path has an encoded slash (%2f); send a clean absolute path."},
		{"/v1/a%00", "The request path has an encoded control character (%00); send a clean absolute path."},
		{"/v1/a%0a", "The request path has an encoded control character (%0a); send a clean absolute path."},
		{"/v1/a%5Cb", "The request path has an encoded backslash (%5C); send a clean absolute path."},
		{"/v1\\admin", `The request path contains a backslash (\); send a clean absolute path.`},
		{"/v1/a\x00", "The request path contains a control character; send a clean absolute path."},
		{"/v1/a%zz", `The request path has a bad percent escape "%zz": write % as %25, and escapes as % and two hex digits; send a clean absolute path.`},
		{"/v1/a%4", `The request path has a bad percent escape "%4": write % as %25, and escapes as % and two hex digits; send a clean absolute path.`},
		{"/v1/a%", `The request path has a bad percent escape "%": write % as %25, and escapes as % and two hex digits; send a clean absolute path.`},
	}
	for _, c := range bad {
		got, err := CleanPath(c.in)
		if err == nil {
			t.Errorf("CleanPath(%q) = %q, want an error", c.in, got)
			continue
		}
		if keyward.ErrorCode(err) != keyward.CodeInvalidRequest {
			t.Errorf("CleanPath(%q): code %s, want invalid_request", c.in, keyward.ErrorCode(err))
		}
		if m := keyward.ErrorMessage(err); m != c.msg {
			t.Errorf("CleanPath(%q):\n got %s\nwant %s", c.in, m, c.msg)
		}
	}
}

// TestCleanPathAllocations checks that a path without an escape costs no
// allocation.
func TestCleanPathAllocations(t *testing.T) {
	n := testing.AllocsPerRun(100, func() {
		if _, err := CleanPath("/v1/tenants/ten_1/sites/site_1/contacts?limit=10"); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("CleanPath allocates %v times, want 0", n)
	}
}

// checkEnds fails t unless the segment ends p kept are those of its path
// split at each slash.
func checkEnds(t testing.TB, p *Path) {
	t.Helper()
	var want []int
	for i := 1; i < len(p.s); i++ {
		if p.s[i] == '/' {
			want = append(want, i)
		}
	}
	want = append(want, len(p.s))
	if p.n != min(len(want), maxSegments) {
		t.Fatalf("Path %q keeps %d segment ends, want %d", p.s, p.n, min(len(want), maxSegments))
	}
	for i := range p.n {
		if int(p.ends[i]) != want[i] {
			t.Fatalf("Path %q: segment %d ends at %d, want %d", p.s, i, p.ends[i], want[i])
		}
	}
}

// TestPathSegments: Path.Clean keeps where the segments end, decoded or
// not, up to maxSegments; matching a deeper path looks for the rest.
func TestPathSegments(t *testing.T) {
	deep := "/v1" + strings.Repeat("/x", maxSegments+5)
	for _, target := range []string{"/", "/a", "/a/", "/v1/tenants/t_1/sites/s_1?x=/y", "/v1/%63ontacts/a%20b/", deep, deep + "/", deep + "?q"} {
		var p Path
		if err := p.Clean(target); err != nil {
			t.Fatalf("Clean(%q): %v", target, err)
		}
		checkEnds(t, &p)
	}
	pol := mustParse(t, "routes:\n  - match: GET /v1"+strings.Repeat("/x", maxSegments+3)+"/{last}/x\n  - match: GET /v1/**\n")
	var p Path
	if err := p.Clean(deep); err != nil {
		t.Fatal(err)
	}
	var m Match
	pol.MatchPath("GET", &p, &m)
	if v, ok := m.Param("last"); !ok || v != "x" {
		t.Errorf("MatchPath of %d segments: route %v, last = %q, %v", maxSegments+6, m.Route, v, ok)
	}
	if err := p.Clean(deep + "/"); err != nil {
		t.Fatal(err)
	}
	if pol.MatchPath("GET", &p, &m); m.Route.String() != "GET /v1/**" {
		t.Errorf("MatchPath of %d segments and a slash: route %v, want GET /v1/**", maxSegments+7, m.Route)
	}
	e, err := ParseEndpoints([]string{"GET /v1" + strings.Repeat("/x", maxSegments+4) + "/*/"})
	if err != nil {
		t.Fatal(err)
	}
	if !e.AllowPath("GET", &p) {
		t.Errorf("AllowPath refuses a path of %d segments that its entry matches", maxSegments+7)
	}
}

// TestCheckMethod: upper-case HTTP methods pass; a lower-case letter, a
// byte outside a token, an empty or overlong method is invalid_request.
func TestCheckMethod(t *testing.T) {
	for _, m := range []string{"GET", "HEAD", "M-SEARCH", "PROPFIND", "X_1!"} {
		if err := CheckMethod(m); err != nil {
			t.Errorf("CheckMethod(%q) = %v", m, err)
		}
	}
	for _, m := range []string{"", "get", "Get", "GET /x", "GET\t", "G\u00c9T", "GET\x00", strings.Repeat("A", 33)} {
		if err := CheckMethod(m); keyward.ErrorCode(err) != keyward.CodeInvalidRequest {
			t.Errorf("CheckMethod(%q) = %v, want invalid_request", m, err)
		}
	}
}
