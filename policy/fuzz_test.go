package policy

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// FuzzParse feeds routes files to Parse: it never panics, a refusal is a
// *FileError with at least one problem, and a policy it accepts holds
// what validation promises and parses again, written back as YAML, to the
// same policy.
func FuzzParse(f *testing.F) {
	f.Add([]byte(example))
	f.Add([]byte(precedenceYAML(precedence)))
	f.Add([]byte("default: authenticated\n"))
	f.Add([]byte("routes:\n  - {match: GET /x, public: true}\n  - {match: '* /x/**', environments: [test]}\n"))
	f.Add([]byte("routes:\n  - match: GET /v1/{a}/x\n  - match: GET /v1/x/{b}\n"))
	f.Add([]byte("routes:\n  - match: &a GET /x\n  - match: *a\n"))
	f.Add([]byte("default: deny\n---\ndefault: deny\n"))
	f.Add([]byte("routes:\n  - match: GET /a\n    permissions: &r [a]\n  - match: GET /b\n    permissions: *r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			var fe *FileError
			if !errors.As(err, &fe) || len(fe.Problems) == 0 {
				t.Fatalf("error %T %v, want a *FileError with problems", err, err)
			}
			return
		}
		checkPolicy(t, p)
		again, err := Parse([]byte(policyYAML(p)))
		if err != nil {
			t.Fatalf("the policy written back does not parse: %v\n%s", err, policyYAML(p))
		}
		if a, b := policyYAML(p), policyYAML(again); a != b {
			t.Fatalf("the policy written back parses to another:\n%s\n---\n%s", a, b)
		}
	})
}

// checkPolicy checks what validation promises of a parsed policy.
func checkPolicy(t *testing.T, p *Policy) {
	t.Helper()
	for i, r := range p.routes {
		if r.Public && (len(r.Permissions) > 0 || len(r.Capabilities) > 0 || r.Tenant != "" || len(r.Resources) > 0 || len(r.Environments) > 0) {
			t.Fatalf("public route %v has requirements", r)
		}
		if r.Tenant != "" && r.Pattern.param(r.Tenant) < 0 {
			t.Fatalf("route %v: tenant %q is not a parameter", r, r.Tenant)
		}
		for _, res := range r.Resources {
			if r.Pattern.param(res) < 0 || res == r.Tenant {
				t.Fatalf("route %v: resource %q", r, res)
			}
		}
		for _, e := range r.Environments {
			if !e.Valid() {
				t.Fatalf("route %v: environment %q", r, e)
			}
		}
		for _, o := range p.routes[:i] {
			if r.Pattern.conflicts(o.Pattern) {
				t.Fatalf("routes %v and %v conflict", r, o)
			}
		}
	}
}

// policyYAML writes a policy as a routes file.
func policyYAML(p *Policy) string {
	var b strings.Builder
	fmt.Fprintf(&b, "default: %s\nroutes:\n", p.Default())
	for _, r := range p.routes {
		fmt.Fprintf(&b, "  - match: %q\n", r.Pattern.String())
		if r.Public {
			b.WriteString("    public: true\n")
		}
		list := func(name string, items []string) {
			if len(items) > 0 {
				q := make([]string, len(items))
				for i, s := range items {
					q[i] = strconv.Quote(s)
				}
				fmt.Fprintf(&b, "    %s: [%s]\n", name, strings.Join(q, ", "))
			}
		}
		list("permissions", r.Permissions)
		list("capabilities", r.Capabilities)
		if r.Tenant != "" {
			fmt.Fprintf(&b, "    tenant: %q\n", r.Tenant)
		}
		list("resources", r.Resources)
		var envs []string
		for _, e := range r.Environments {
			envs = append(envs, string(e))
		}
		list("environments", envs)
	}
	return b.String()
}

// FuzzMatch matches requests against a pattern and against a policy that
// holds it: Pattern.Match agrees with referenceMatch, and Policy.Match
// finds the route and the parameters that referenceFind does.
func FuzzMatch(f *testing.F) {
	for _, c := range precedenceRequests {
		m, p, _ := strings.Cut(c.req, " ")
		f.Add(c.route, m, p)
	}
	f.Add("GET /v1/%63ontacts/{id}", "GET", "/v1/%63ontacts/x?y")
	f.Add("* /a/**", "PUT", "/a/")
	f.Add("GET /{x}/", "HEAD", "/x/")
	f.Add("POST /a/*/b/**", "POST", "/a/%2e%2e/b")
	var fixed []*Pattern
	for _, s := range precedence {
		fixed = append(fixed, mustPattern(f, s))
	}
	f.Fuzz(func(t *testing.T, pattern, method, target string) {
		pat, err := ParsePattern(pattern)
		if err != nil {
			return
		}
		if pat.String() != strings.TrimSpace(pat.String()) {
			t.Fatalf("String() %q is not trimmed", pat.String())
		}
		path, err := CleanPath(target)
		if err != nil {
			return
		}
		if got, want := pat.Match(method, path), referenceMatch(pat, method, path); got != want {
			t.Fatalf("%q matches %s %q: %v, the reference says %v", pat, method, path, got, want)
		}
		// A policy of the fixed routes, and the fuzzed one when it
		// conflicts with none of them.
		routes := make([]*Route, 0, len(fixed)+1)
		for i, p := range fixed {
			routes = append(routes, &Route{Pattern: p, Line: i + 1})
		}
		if !slices.ContainsFunc(fixed, pat.conflicts) {
			routes = append(routes, &Route{Pattern: pat, Line: len(fixed) + 1})
		}
		pol := compile(DefaultDeny, routes)
		var m Match
		pol.Match(method, path, &m)
		want := referenceFind(pol, method, path)
		if want == nil {
			want = pol.DefaultRoute()
		}
		if m.Route != want {
			t.Fatalf("%s %q matches %v, the reference finds %v", method, path, m.Route, want)
		}
		// A Path from Clean, with its segment ends kept, matches alike.
		var cleaned Path
		if err := cleaned.Clean(target); err != nil || cleaned.String() != path {
			t.Fatalf("Path.Clean(%q) = %q, %v; CleanPath says %q", target, cleaned.String(), err, path)
		}
		checkEnds(t, &cleaned)
		var mp Match
		pol.MatchPath(method, &cleaned, &mp)
		if mp != m {
			t.Fatalf("%s %q: MatchPath finds %v, Match %v", method, path, mp.Route, m.Route)
		}
		if got := pat.matchMethod(method) && pat.matchPath(&cleaned, nil); got != pat.Match(method, path) {
			t.Fatalf("%q matches the Path of %s %q: %v, the string %v", pat, method, path, got, !got)
		}
		if want.Pattern != nil {
			wantParams := referenceParams(want.Pattern, path)
			for i, name := range want.Pattern.params {
				if name == "" {
					continue
				}
				if v, ok := m.Param(name); !ok || v != wantParams[i] {
					t.Fatalf("%s %q: Param(%q) = %q, %v; want %q", method, path, name, v, ok, wantParams[i])
				}
			}
		}
	})
}

// referenceParams returns the values of a pattern's wildcards in a path it
// matches, by splitting both.
func referenceParams(p *Pattern, path string) []string {
	var vals []string
	got := strings.Split(path[1:], "/")
	_, pat, _ := strings.Cut(p.text, " ")
	for i, s := range strings.Split(pat[1:], "/") {
		if s == "*" || strings.HasPrefix(s, "{") {
			vals = append(vals, got[i])
		}
	}
	return vals
}

// FuzzReferrer checks Referrers.Allow against net/url: what Allow accepts,
// a reference built on url.Parse accepts too, and for URLs made of plain
// characters alone the two agree.
func FuzzReferrer(f *testing.F) {
	f.Add("https://app.example.com", "https://app.example.com/x", "")
	f.Add("https://*.example.com/*", "", "https://a.example.com")
	f.Add("http://localhost:3000/app/*", "http://localhost:3000/app/x?y", "")
	f.Add("https://app.example.com", "https://app.example.com@evil.com/", "")
	f.Add("https://app.example.com", "https://app.example.com.evil.com/", "")
	f.Add("https://app.example.com", "https://evil.com/https://app.example.com", "")
	f.Add("https://app.example.com/a", "HTTPS://APP.EXAMPLE.COM:443/a#x", "")
	f.Add("http://[::1]:8080", "http://[::1]:8080/", "")
	f.Fuzz(func(t *testing.T, pattern, referer, origin string) {
		r, err := ParseReferrers([]string{pattern})
		if err != nil {
			return
		}
		got := r.Allow(referer, origin)
		h := referer
		if h == "" {
			h = origin
		}
		want := referenceReferrer(&r.pats[0], h)
		if got && !want {
			t.Fatalf("%q allows %q; the reference does not", pattern, h)
		}
		if !got && want && plainURL(h) {
			t.Fatalf("%q refuses %q; the reference allows it", pattern, h)
		}
	})
}

// referenceReferrer matches a presented URL against a compiled pattern,
// reading the URL with net/url.
func referenceReferrer(p *referrer, h string) bool {
	u, err := url.Parse(h)
	if err != nil || u.User != nil || u.Opaque != "" || u.Host == "" || strings.HasSuffix(u.Host, ":") {
		return false
	}
	host := strings.ToLower(u.Hostname())
	if strings.Contains(u.Host, "[") {
		host = "[" + host + "]"
	} else {
		for _, label := range strings.Split(host, ".") {
			if label == "" {
				return false
			}
		}
	}
	port := defaultPort(strings.ToLower(u.Scheme))
	if u.Port() != "" {
		n, err := strconv.Atoi(u.Port())
		if err != nil {
			return false
		}
		port = n
	}
	// The path as sent: from the first / after the host to the query.
	rest := h[strings.Index(h, "://")+3:]
	path := "/"
	if i := strings.IndexAny(rest, "/?#"); i >= 0 && rest[i] == '/' {
		path, _, _ = strings.Cut(rest[i:], "?")
		path, _, _ = strings.Cut(path, "#")
	}
	for _, seg := range strings.Split(path, "/") {
		if d, err := url.PathUnescape(seg); err == nil && (d == "." || d == "..") || seg == "." || seg == ".." {
			return false
		}
	}
	switch {
	case strings.ToLower(u.Scheme) != p.scheme || port != p.port:
		return false
	case p.wildcard && !strings.HasSuffix(host, "."+p.host):
		return false
	case !p.wildcard && host != p.host:
		return false
	case p.path == exactPath:
		return path == p.prefix
	case p.path == prefixPath:
		return strings.HasPrefix(path, p.prefix)
	}
	return true
}

// plainURL reports whether h is made only of characters on which Allow
// and net/url cannot disagree: letters, digits and . - : /.
func plainURL(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':' || c == '/') {
			return false
		}
	}
	return true
}
