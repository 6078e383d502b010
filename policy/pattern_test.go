package policy

import (
	"fmt"
	"strings"
	"testing"
)

func TestParsePattern(t *testing.T) {
	good := []struct {
		in, text string
		params   []string
	}{
		{"GET /health", "GET /health", nil},
		{"  GET \t /v1/contacts/**  ", "GET /v1/contacts/**", nil},
		{"* /v1/reports/*", "* /v1/reports/*", nil},
		{"GET /", "GET /", nil},
		{"POST\t/x", "POST /x", nil},
		{"GET /**", "GET /**", nil},
		{"DELETE /v1/a/", "DELETE /v1/a/", nil},
		{"GET /v1/tenants/{tenant}/sites/{site}/**", "GET /v1/tenants/{tenant}/sites/{site}/**", []string{"tenant", "site"}},
		{"M-SEARCH /x", "M-SEARCH /x", nil},
		{"GET /v1/%63ontacts", "GET /v1/%63ontacts", nil},
		{"GET /a/{_x1}/*/{Y}", "GET /a/{_x1}/*/{Y}", []string{"_x1", "Y"}},
		{"GET /a/%3F", "GET /a/%3F", nil},
		{"GET /" + strings.Repeat("*/", 8) + "x", "GET /" + strings.Repeat("*/", 8) + "x", nil},
	}
	for _, c := range good {
		t.Run(c.in, func(t *testing.T) {
			p, err := ParsePattern(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if p.String() != c.text {
				t.Errorf("String() = %q, want %q", p.String(), c.text)
			}
			if got := fmt.Sprint(p.Params()); got != fmt.Sprint(c.params) {
				t.Errorf("Params() = %v, want %v", got, c.params)
			}
		})
	}

	bad := []struct{ in, err string }{
		{"", `"": is empty; write a method and a path, such as GET /v1/contacts`},
		{"/v1/contacts", `"/v1/contacts": has no method; write * /v1/contacts to match every method, or a method such as GET /v1/contacts`},
		{"GET", `"GET": has no path; write a method, a space and a path, such as GET /v1/contacts`},
		{"get /x", `"get /x": method "get" must be upper case: GET`},
		{"G@T /x", `"G@T /x": method "G@T" is not an HTTP method; use an upper-case method such as GET, or * for every method`},
		{"GET v1/x", `"GET v1/x": the path must start with /`},
		{"GET /v1/{id", `"GET /v1/{id": segment 2: "{" without "}"`},
		{"GET /v1/id}", `"GET /v1/id}": segment 2: "}" without "{"`},
		{"GET /v1/x{id}", `"GET /v1/x{id}": segment 2: "x{id}": a parameter is a whole segment, such as {id}`},
		{"GET /v1/{id}x", `"GET /v1/{id}x": segment 2: "{id}x": a parameter is a whole segment, such as {id}`},
		{"GET /v1/{}", `"GET /v1/{}": segment 2: {} has no name; write a name such as {id}, or * for a segment that is not captured`},
		{"GET /v1/{1a}", `"GET /v1/{1a}": segment 2: parameter name "1a" is not valid: use letters, digits and _, not starting with a digit`},
		{"GET /v1/{a-b}", `"GET /v1/{a-b}": segment 2: parameter name "a-b" is not valid: use letters, digits and _, not starting with a digit`},
		{"GET /{id}/x/{id}", `"GET /{id}/x/{id}": segment 3: {id} is already a parameter of this pattern; give each parameter its own name`},
		{"GET /a/**/b", `"GET /a/**/b": segment 2: ** must be the last segment`},
		{"GET /a/***", `"GET /a/***": segment 2: "***": * is a whole segment (* for one segment, ** for the rest of the path)`},
		{"GET /a*", `"GET /a*": segment 1: "a*": * is a whole segment (* for one segment, ** for the rest of the path)`},
		{"GET /a//b", `"GET /a//b": segment 2: is empty (//); a request path with an empty segment is refused, so the pattern could never match`},
		{"GET /a/../b", `"GET /a/../b": segment 2: "..": a request path with a . or .. segment is refused, so the pattern could never match`},
		{"GET /a/%2e", `"GET /a/%2e": segment 2: "%2e" is "." once decoded: a request path with a . or .. segment is refused, so the pattern could never match`},
		{"GET /a?x=1", `"GET /a?x=1": segment 1: "a?x=1": a pattern matches the path alone; remove the query or fragment (?…)`},
		{"GET /a#f", `"GET /a#f": segment 1: "a#f": a pattern matches the path alone; remove the query or fragment (#…)`},
		{"GET /a b", `"GET /a b": segment 1: "a b" contains a space; write it as %20`},
		{"GET /a\\b", `"GET /a\\b": segment 1: "a\\b": a request path with \ is refused, so the pattern could never match`},
		{"GET /a%2Fb", `"GET /a%2Fb": segment 1: "a%2Fb": has an encoded slash (%2F)`},
		{"GET /a%zz", `"GET /a%zz": segment 1: "a%zz": has a bad percent escape "%zz": write % as %25, and escapes as % and two hex digits`},
		{"GET /a%00", `"GET /a%00": segment 1: "a%00": has an encoded control character (%00)`},
		{"GET /" + strings.Repeat("*/", 9) + "x", `"GET /*/*/*/*/*/*/*/*/*/x": segment 9: is wildcard number 9; a pattern may have at most 8 ({name} or *)`},
	}
	for _, c := range bad {
		t.Run(c.in, func(t *testing.T) {
			_, err := ParsePattern(c.in)
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != c.err {
				t.Errorf("error\n got %s\nwant %s", err, c.err)
			}
		})
	}
}

func TestPatternMatch(t *testing.T) {
	cases := []struct {
		pattern string
		yes, no []string // "METHOD /path"
	}{
		{"GET /v1/contacts/**",
			[]string{"GET /v1/contacts", "GET /v1/contacts/", "GET /v1/contacts/a/b", "HEAD /v1/contacts/a"},
			[]string{"POST /v1/contacts", "GET /v1/contactsx", "GET /v1", "GET /v1/"}},
		{"* /v1/reports/*",
			[]string{"GET /v1/reports/a", "DELETE /v1/reports/b", "PATCH /v1/reports/%"},
			[]string{"GET /v1/reports", "GET /v1/reports/", "GET /v1/reports/a/b"}},
		{"GET /a", []string{"GET /a", "HEAD /a"}, []string{"GET /a/", "GET /", "get /a"}},
		{"GET /a/", []string{"GET /a/"}, []string{"GET /a", "GET /a/b"}},
		{"GET /", []string{"GET /"}, []string{"GET /a"}},
		{"GET /**", []string{"GET /", "GET /a", "GET /a/b/"}, []string{"POST /"}},
		{"HEAD /a", []string{"HEAD /a"}, []string{"GET /a"}},
		{"GET /a/{id}/b", []string{"GET /a/x/b"}, []string{"GET /a//b", "GET /a/x/b/"}},
		{"GET /v1/%63ontacts", []string{"GET /v1/contacts"}, []string{"GET /v1/%63ontacts"}},
	}
	for _, c := range cases {
		p, err := ParsePattern(c.pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range c.yes {
			m, path, _ := strings.Cut(r, " ")
			if !p.Match(m, path) {
				t.Errorf("%q does not match %q", c.pattern, r)
			}
		}
		for _, r := range c.no {
			m, path, _ := strings.Cut(r, " ")
			if p.Match(m, path) {
				t.Errorf("%q matches %q", c.pattern, r)
			}
		}
	}
}

// TestConflicts lists pairs of patterns that conflict and pairs that do
// not, both ways round.
func TestConflicts(t *testing.T) {
	conflict := [][2]string{
		{"GET /a", "GET /a"},
		{"GET /a/{x}", "GET /a/*"},
		{"GET /a/{x}", "GET /a/{y}"},
		{"GET /{a}/x", "GET /x/{b}"},
		{"* /a/b", "GET /a/**"},
		{"* /a/b", "GET /a/{x}"},
		{"GET /a/**", "GET /{x}/b"},
		{"GET /**", "GET /**"},
		{"* /**", "* /**"},
		{"HEAD /a/**", "GET /a/b"},
		{"GET /{x}/b/**", "GET /a/{y}/**"},
	}
	for _, c := range conflict {
		a, b := mustPattern(t, c[0]), mustPattern(t, c[1])
		if !a.conflicts(b) || !b.conflicts(a) {
			t.Errorf("%q and %q: no conflict, want one", c[0], c[1])
		}
	}
	fine := [][2]string{
		{"GET /a", "POST /a"},
		{"GET /a", "GET /a/"},
		{"GET /a", "GET /b"},
		{"GET /a/b", "GET /a/{x}"},
		{"GET /a/b", "GET /a/**"},
		{"GET /a", "GET /a/**"},
		{"GET /a/", "GET /a/**"},
		{"GET /a/{x}", "GET /a/**"},
		{"GET /a/**", "GET /**"},
		{"GET /a/**", "* /a/**"},
		{"GET /a/b", "* /a/**"},
		{"GET /a/{x}", "GET /a/"},
		{"HEAD /a", "GET /a"},
		{"GET /{x}", "GET /"},
		{"* /a", "GET /a"},
		{"POST /a/{x}", "GET /a/**"},
		{"GET /a/b/c", "GET /a/{x}/**"},
		{"GET /{x}/b", "GET /{x}/**"},
		{"* /a/{x}", "GET /a/b"},
		{"GET /{x}/**", "GET /a/{y}/c"},
	}
	for _, c := range fine {
		a, b := mustPattern(t, c[0]), mustPattern(t, c[1])
		if a.conflicts(b) || b.conflicts(a) {
			t.Errorf("%q and %q conflict, want none", c[0], c[1])
		}
	}
}

func mustPattern(t testing.TB, s string) *Pattern {
	t.Helper()
	p, err := ParsePattern(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCompareBySets checks compare against the sets of requests that
// patterns match, over every pattern and request of a small alphabet: two
// literals, the wildcards, a trailing slash, and a literal (c) that no
// pattern names.
func TestCompareBySets(t *testing.T) {
	var patterns []*Pattern
	var paths []string
	segs := []string{"a", "b", "{x}", "**", ""}
	var build func(prefix string, n int)
	build = func(prefix string, n int) {
		if prefix != "" {
			for _, m := range []string{"*", "GET", "HEAD", "POST"} {
				if p, err := ParsePattern(m + " " + prefix); err == nil {
					patterns = append(patterns, p)
				}
			}
		}
		if n == 0 {
			return
		}
		for _, s := range segs {
			build(prefix+"/"+s, n-1)
		}
	}
	build("", 3)
	var walk func(prefix string, n int)
	walk = func(prefix string, n int) {
		if prefix != "" {
			paths = append(paths, prefix)
		}
		if n == 0 {
			return
		}
		for _, s := range []string{"a", "b", "c", ""} {
			if strings.HasSuffix(prefix, "/") && prefix != "" {
				return // an empty segment ends a path
			}
			walk(prefix+"/"+s, n-1)
		}
	}
	walk("", 5)
	methods := []string{"GET", "HEAD", "POST", "PUT"}
	matches := func(p *Pattern) []bool {
		var out []bool
		for _, m := range methods {
			for _, path := range paths {
				out = append(out, referenceMatch(p, m, path))
			}
		}
		return out
	}
	sets := make([][]bool, len(patterns))
	for i, p := range patterns {
		sets[i] = matches(p)
	}
	for i, p1 := range patterns {
		for j, p2 := range patterns {
			want := relationOfSets(sets[i], sets[j])
			if got := p1.compare(p2); got != want {
				t.Fatalf("compare(%q, %q) = %v, want %v", p1, p2, got, want)
			}
		}
	}
	t.Logf("%d patterns, %d requests", len(patterns), len(paths)*len(methods))
}

func relationOfSets(a, b []bool) relation {
	sub, super, both := true, true, false
	for i := range a {
		if a[i] && !b[i] {
			sub = false
		}
		if b[i] && !a[i] {
			super = false
		}
		if a[i] && b[i] {
			both = true
		}
	}
	switch {
	case !both:
		return disjoint
	case sub && super:
		return equivalent
	case sub:
		return moreSpecific
	case super:
		return moreGeneral
	}
	return overlaps
}

// referenceMatch is a slow, plain matcher for tests: it splits pattern and
// path into segments and compares them one by one.
func referenceMatch(p *Pattern, method, path string) bool {
	if !(p.method == AnyMethod || p.method == method || p.method == "GET" && method == "HEAD") {
		return false
	}
	if !strings.HasPrefix(path, "/") {
		return false
	}
	got := strings.Split(path[1:], "/")
	_, want, _ := strings.Cut(p.text, " ")
	pat := strings.Split(want[1:], "/")
	for i, s := range pat {
		if s == "**" {
			return true
		}
		if i >= len(got) {
			return false
		}
		switch {
		case s == "*" || strings.HasPrefix(s, "{"):
			if got[i] == "" {
				return false
			}
		default:
			lit, problem := s, ""
			if strings.Contains(s, "%") {
				lit, problem = unescape(s)
			}
			if problem != "" || got[i] != lit {
				return false
			}
		}
	}
	return len(pat) == len(got)
}

func (r relation) String() string {
	return [...]string{"equivalent", "moreGeneral", "moreSpecific", "disjoint", "overlaps"}[r]
}
