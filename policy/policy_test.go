package policy

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

const example = `default: deny            # or: authenticated (any valid key, no permission)
routes:
  - match: GET /health
    public: true
  - match: GET /v1/contacts/**
    permissions: [contacts:read]
  - match: POST /v1/contacts
    permissions: [contacts:write]
  - match: GET /v1/tenants/{tenant}/sites/{site}/**
    tenant: tenant          # this path parameter must be the key's tenant (id or slug), else 404
    resources: [site]       # checked against the key's allowed resources, else 404
    capabilities: [m2m_api] # the tenant's plan must include it, else 403 plan_not_entitled
    environments: [live]    # a test key gets 403 environment_mismatch
`

func mustParse(t testing.TB, yaml string) *Policy {
	t.Helper()
	p, err := Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseExample(t *testing.T) {
	p := mustParse(t, example)
	if p.Default() != DefaultDeny || !p.DefaultRoute().Deny || !p.DefaultRoute().Default {
		t.Errorf("default = %v", p.DefaultRoute())
	}
	routes := p.Routes()
	if len(routes) != 4 {
		t.Fatalf("%d routes, want 4", len(routes))
	}
	want := []struct {
		pattern string
		line    int
		public  bool
		perms   []string
		caps    []string
		tenant  string
		res     []string
		envs    []keyward.Environment
	}{
		{"GET /health", 3, true, nil, nil, "", nil, nil},
		{"GET /v1/contacts/**", 5, false, []string{"contacts:read"}, nil, "", nil, nil},
		{"POST /v1/contacts", 7, false, []string{"contacts:write"}, nil, "", nil, nil},
		{"GET /v1/tenants/{tenant}/sites/{site}/**", 9, false, nil, []string{"m2m_api"}, "tenant", []string{"site"}, []keyward.Environment{keyward.Live}},
	}
	for i, w := range want {
		r := routes[i]
		if r.Pattern.String() != w.pattern || r.Line != w.line || r.Public != w.public ||
			!slices.Equal(r.Permissions, w.perms) || !slices.Equal(r.Capabilities, w.caps) ||
			r.Tenant != w.tenant || !slices.Equal(r.Resources, w.res) || !slices.Equal(r.Environments, w.envs) {
			t.Errorf("route %d = %+v, want %+v", i, *r, w)
		}
	}
	tls := mustParse(t, "routes:\n  - match: GET /health\n    public: true\n    tls: required\n  - match: GET /x\n")
	if r := tls.Routes(); !r[0].TLS || !r[0].Public || r[1].TLS {
		t.Errorf("tls: required on a public route gives TLS %v, Public %v; absent gives TLS %v", r[0].TLS, r[0].Public, r[1].TLS)
	}
	up := mustParse(t, "routes:\n  - match: GET /a\n    upstream: http://10.0.0.1:9000/base\n    upstream_test: https://sandbox.internal\n  - match: GET /b\n    public: true\n    upstream: http://h\n")
	if r := up.Routes(); r[0].Upstream.String() != "http://10.0.0.1:9000/base" || r[0].UpstreamTest.String() != "https://sandbox.internal" ||
		r[1].Upstream.String() != "http://h" || r[1].UpstreamTest != nil {
		t.Errorf("upstreams: %v %v, %v %v", r[0].Upstream, r[0].UpstreamTest, r[1].Upstream, r[1].UpstreamTest)
	}
	if p := mustParse(t, "default: authenticated\n"); p.Default() != DefaultAuthenticated || p.DefaultRoute().Deny {
		t.Errorf("default: authenticated gives %v", p.DefaultRoute())
	}
	if p := mustParse(t, "routes: []\n"); p.Default() != DefaultDeny {
		t.Errorf("no default gives %v, want deny", p.DefaultRoute())
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ name, yaml, err string }{
		{"empty", "", `sets neither default nor routes; write at least "default: deny", and the routes of your API`},
		{"comments only", "# nothing\n", `sets neither default nor routes; write at least "default: deny", and the routes of your API`},
		{"bad default", "default: allow\n", `line 1: default is "allow"; use deny (refuse requests that match no route) or authenticated (any valid key, no permission)`},
		{"unknown field", "default: deny\nroutes:\n  - match: GET /x\n    publik: true\n",
			`line 4, column 5: unknown field "publik"; the file has the fields default and routes, and a route has match, public, permissions, capabilities, tenant, resources, environments, cost, tls, upstream and upstream_test`},
		{"unknown top field", "defaults: deny\n",
			`line 1, column 1: unknown field "defaults"; the file has the fields default and routes, and a route has match, public, permissions, capabilities, tenant, resources, environments, cost, tls, upstream and upstream_test`},
		{"cost of none", "routes:\n  - match: GET /x\n    cost: 0\n",
			`line 2: route "GET /x": cost 0 is not one; give the credits a request takes, from 1 to 1000000`},
		{"cost not a number", "routes:\n  - match: GET /x\n    cost: five\n", `line 3, column 11: expected int64`},
		{"public with a cost", "routes:\n  - match: GET /health\n    public: true\n    cost: 2\n",
			`line 2: route "GET /health" is public, so it needs no key, but it has cost; remove public: true, or remove cost`},
		{"not a bool", "routes:\n  - match: GET /x\n    public: yes please\n", `line 3, column 13: expected true or false`},
		{"not a list", "routes:\n  - match: GET /x\n    permissions: contacts:read\n", `line 3, column 18: string was used where sequence is expected`},
		{"list in list", "routes:\n  - match: GET /x\n    permissions: [a, [b]]\n", `line 3, column 22: expected a single value (text)`},
		{"duplicate key", "routes:\n  - match: GET /x\n    match: GET /y\n", `line 3, column 5: mapping key "match" already defined at [2:5]`},
		{"bare star", "routes:\n  - match: * /v1/**\n", `line 2, column 14: could not find alias "/v1/**"; quote a value that starts with *, such as match: "* /v1/reports/*"`},
		{"two documents", "default: deny\n---\ndefault: authenticated\n", `line 2: the file holds 2 YAML documents; a routes file is one`},
		{"missing match", "routes:\n  - public: true\n", `line 2: routes[0]: match is missing; write the method and path the route applies to, such as GET /v1/contacts`},
		{"bad pattern", "routes:\n  - match: GET /v1/{id\n", `line 2: route "GET /v1/{id": segment 2: "{" without "}"`},
		{"public with more", "routes:\n  - match: GET /health\n    public: true\n    permissions: [a]\n    environments: [live]\n",
			`line 2: route "GET /health" is public, so it needs no key, but it has permissions and environments; remove public: true, or remove permissions and environments`},
		{"bad permission", "routes:\n  - match: GET /x\n    permissions: [Contacts:Read]\n",
			`line 2: route "GET /x": permission "Contacts:Read" is not valid: use lowercase words joined by colons, such as contacts:read or m2m_api, at most 64 characters`},
		{"long permission", "routes:\n  - match: GET /x\n    permissions: [" + strings.Repeat("a", 65) + "]\n",
			`line 2: route "GET /x": permission "` + strings.Repeat("a", 65) + `" is not valid: use lowercase words joined by colons, such as contacts:read or m2m_api, at most 64 characters`},
		{"none", "routes:\n  - match: GET /x\n    permissions: [none]\n",
			`line 2: route "GET /x": "none" cannot be a permission, since no key may hold it; to ask for no permission, leave permissions out`},
		{"permission twice", "routes:\n  - match: GET /x\n    permissions: [a, a]\n", `line 2: route "GET /x" lists permission "a" twice`},
		{"bad capability", "routes:\n  - match: GET /x\n    capabilities: [m2m api]\n",
			`line 2: route "GET /x": capability "m2m api" is not valid: use lowercase words joined by colons, such as contacts:read or m2m_api, at most 64 characters`},
		{"tenant not a param", "routes:\n  - match: GET /v1/{tenant_id}/x\n    tenant: tenant\n",
			`line 2: route "GET /v1/{tenant_id}/x": tenant "tenant" is not a parameter of the pattern; its parameters are {tenant_id}`},
		{"tenant without params", "routes:\n  - match: GET /v1/x\n    tenant: tenant\n",
			`line 2: route "GET /v1/x": tenant "tenant" is not a parameter of the pattern, which has none; name one in the path, such as {tenant}`},
		{"resource not a param", "routes:\n  - match: GET /v1/{tenant}/{site}\n    resources: [site, page]\n",
			`line 2: route "GET /v1/{tenant}/{site}": resource "page" is not a parameter of the pattern; its parameters are {tenant}, {site}`},
		{"resource is the tenant", "routes:\n  - match: GET /v1/{tenant}\n    tenant: tenant\n    resources: [tenant]\n",
			`line 2: route "GET /v1/{tenant}": {tenant} is the tenant; it cannot be a resource as well`},
		{"resource twice", "routes:\n  - match: GET /v1/{site}\n    resources: [site, site]\n", `line 2: route "GET /v1/{site}" lists resource "site" twice`},
		{"bad tls", "routes:\n  - match: GET /x\n    tls: yes\n", `line 2: route "GET /x": tls "yes" is not a setting; write tls: required, or leave it out for requests over plain HTTP too`},
		{"upstream not http", "routes:\n  - match: GET /x\n    upstream: ftp://files\n",
			`line 2: route "GET /x": upstream "ftp://files" does not start with http:// or https://; write a URL such as http://127.0.0.1:9000 or https://api.internal/base`},
		{"upstream without host", "routes:\n  - match: GET /x\n    upstream: http:///x\n",
			`line 2: route "GET /x": upstream "http:///x" names no host; write a URL such as http://127.0.0.1:9000 or https://api.internal/base`},
		{"upstream_test with query", "routes:\n  - match: GET /x\n    upstream_test: http://h/?a=1\n",
			`line 2: route "GET /x": upstream_test "http://h/?a=1" has a query string; write a URL such as http://127.0.0.1:9000 or https://api.internal/base, and leave the query to each request`},
		{"upstream_test on a public route", "routes:\n  - match: GET /x\n    public: true\n    upstream_test: http://h\n",
			`line 2: route "GET /x" is public, so it needs no key, but it has upstream_test; remove public: true, or remove upstream_test`},
		{"upstream_test for live keys only", "routes:\n  - match: GET /x\n    environments: [live]\n    upstream_test: http://h\n",
			`line 2: route "GET /x" takes live keys only (environments), so upstream_test would never be used; remove one of them`},
		{"bad environment", "routes:\n  - match: GET /x\n    environments: [production]\n", `line 2: route "GET /x": environment "production" is not one; use live or test`},
		{"environment twice", "routes:\n  - match: GET /x\n    environments: [test, test]\n", `line 2: route "GET /x" lists environment "test" twice`},
		{"duplicate", "routes:\n  - match: GET /x\n  - match: POST /x\n  - match: GET  /x\n",
			`line 4: route "GET /x" is already at line 2; give each pattern one route`},
		{"equivalent", "routes:\n  - match: GET /v1/{id}\n  - match: GET /v1/*\n",
			`line 3: route "GET /v1/*" matches the same requests as route "GET /v1/{id}" at line 2; keep one of them`},
		{"overlap", "routes:\n  - match: GET /v1/{a}/x\n  - match: GET /v1/x/{b}\n",
			`line 3: route "GET /v1/x/{b}" conflicts with route "GET /v1/{a}/x" at line 2: both match GET /v1/x/x, and neither is more specific than the other; make one of them more specific, or keep them from overlapping`},
		{"methods against paths", "routes:\n  - match: GET /v1/**\n  - match: '* /v1/reports'\n",
			`line 3: route "* /v1/reports" conflicts with route "GET /v1/**" at line 2: both match GET /v1/reports; "* /v1/reports" matches more methods, but "GET /v1/**" more paths, so neither is more specific; make one of them more specific, or keep them from overlapping`},
		{"several problems in line order", "default: nope\nroutes:\n  - match: GET /x\n    environments: [prod]\n  - match: get /y\n",
			`line 1: default is "nope"; use deny (refuse requests that match no route) or authenticated (any valid key, no permission); ` +
				`line 3: route "GET /x": environment "prod" is not one; use live or test; ` +
				`line 5: route "get /y": method "get" must be upper case: GET`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != c.err {
				t.Errorf("error\n got %s\nwant %s", err, c.err)
			}
		})
	}
}

// TestParseAliases shows that YAML anchors and aliases work across routes,
// and that aliases that would expand a small file into a huge one (a
// "billion laughs") are refused before they are expanded.
func TestParseAliases(t *testing.T) {
	p := mustParse(t, "routes:\n  - match: GET /a\n    permissions: &read [contacts:read, reports:read]\n  - match: GET /b\n    permissions: *read\n")
	if r := p.Routes()[1]; r.Line != 4 || !slices.Equal(r.Permissions, []string{"contacts:read", "reports:read"}) {
		t.Errorf("the aliased route is %+v", *r)
	}
	var b strings.Builder
	b.WriteString("routes:\n")
	prev := ""
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		items := "[x, x, x, x, x, x, x, x, x]"
		if prev != "" {
			items = "[" + strings.Repeat("*"+prev+", ", 8) + "*" + prev + "]"
		}
		fmt.Fprintf(&b, "  - match: GET /%s\n    permissions: &%s %s\n", n, n, items)
		prev = n
	}
	_, err := Parse([]byte(b.String()))
	want := "the YAML holds more than 1000000 values once its aliases (*name) are expanded; write the routes without so many aliases"
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
}

func TestFileErrorNamesFileAndCounts(t *testing.T) {
	var b strings.Builder
	b.WriteString("routes:\n")
	for i := range 25 {
		fmt.Fprintf(&b, "  - match: GET /r%d\n    environments: [x]\n", i)
	}
	_, err := Parse([]byte(b.String()))
	fe, ok := err.(*FileError)
	if !ok {
		t.Fatalf("error %T %v, want *FileError", err, err)
	}
	if len(fe.Problems) != maxProblems || fe.More != 25-maxProblems {
		t.Errorf("%d problems and %d more, want %d and %d", len(fe.Problems), fe.More, maxProblems, 25-maxProblems)
	}
	if !strings.HasSuffix(err.Error(), "; and 5 more problems") {
		t.Errorf("error does not count the rest: %s", err)
	}
	fe.Name = "routes.yaml"
	if got, want := fe.Lines()[0], `routes.yaml:2: route "GET /r0": environment "x" is not one; use live or test`; got != want {
		t.Errorf("first line\n got %s\nwant %s", got, want)
	}
}

// precedence is a policy whose routes overlap without conflicting: the
// most specific decides each request.
var precedence = []string{
	"GET /",
	"* /**",
	"GET /v1/contacts",
	"GET /v1/contacts/",
	"GET /v1/contacts/**",
	"POST /v1/contacts",
	"GET /v1/contacts/{id}",
	"GET /v1/contacts/me",
	"DELETE /v1/contacts/{id}",
	"POST /v1/contacts/{id}/notes/**",
	"GET /v1/contacts/{id}/notes/**",
	"GET /v1/contacts/{id}/notes/{note}",
	"HEAD /v1/contacts/{id}/notes/{note}",
	"GET /v1/tenants/{tenant}/sites/{site}/**",
	"GET /v1/tenants/{tenant}/sites/{site}/pages/*",
	"GET /v1/tenants/{tenant}/sites/main/pages/*",
	"* /v1/reports/*",
	"GET /v1/reports/daily",
	"GET /v1/reports/export",
}

func precedenceYAML(order []string) string {
	var b strings.Builder
	b.WriteString("default: authenticated\nroutes:\n")
	for _, p := range order {
		fmt.Fprintf(&b, "  - match: %q\n", p)
	}
	return b.String()
}

var precedenceRequests = []struct{ req, route, params string }{
	{"GET /", "GET /", ""},
	{"HEAD /", "GET /", ""},
	{"POST /", "* /**", ""},
	{"GET /x", "* /**", ""},
	{"GET /v1/contacts", "GET /v1/contacts", ""},
	{"HEAD /v1/contacts", "GET /v1/contacts", ""},
	{"GET /v1/contacts/", "GET /v1/contacts/", ""},
	{"POST /v1/contacts", "POST /v1/contacts", ""},
	{"POST /v1/contacts/", "* /**", ""},
	{"GET /v1/contacts/c_1", "GET /v1/contacts/{id}", "id=c_1"},
	{"GET /v1/contacts/me", "GET /v1/contacts/me", ""},
	{"DELETE /v1/contacts/me", "DELETE /v1/contacts/{id}", "id=me"},
	{"GET /v1/contacts/c_1/x", "GET /v1/contacts/**", ""},
	{"GET /v1/contacts/c_1/notes", "GET /v1/contacts/{id}/notes/**", "id=c_1"},
	{"HEAD /v1/contacts/c_1/notes", "GET /v1/contacts/{id}/notes/**", "id=c_1"},
	{"GET /v1/contacts/c_1/notes/n_1", "GET /v1/contacts/{id}/notes/{note}", "id=c_1 note=n_1"},
	{"HEAD /v1/contacts/c_1/notes/n_1", "HEAD /v1/contacts/{id}/notes/{note}", "id=c_1 note=n_1"},
	{"POST /v1/contacts/c_1/notes/n_1", "POST /v1/contacts/{id}/notes/**", "id=c_1"},
	{"PUT /v1/contacts/c_1/notes/n_1", "* /**", ""},
	{"GET /v1/contacts/c_1/notes/n_1/", "GET /v1/contacts/{id}/notes/**", "id=c_1"},
	{"GET /v1/tenants/t_1/sites/s_1", "GET /v1/tenants/{tenant}/sites/{site}/**", "tenant=t_1 site=s_1"},
	{"GET /v1/tenants/t_1/sites/s_1/pages/p", "GET /v1/tenants/{tenant}/sites/{site}/pages/*", "tenant=t_1 site=s_1"},
	{"GET /v1/tenants/t_1/sites/main/pages/p", "GET /v1/tenants/{tenant}/sites/main/pages/*", "tenant=t_1"},
	{"GET /v1/tenants/t_1/sites/main", "GET /v1/tenants/{tenant}/sites/{site}/**", "tenant=t_1 site=main"},
	{"GET /v1/tenants/t_1/sites", "* /**", ""},
	{"GET /v1/reports/daily", "GET /v1/reports/daily", ""},
	{"POST /v1/reports/daily", "* /v1/reports/*", ""},
	{"GET /v1/reports/export", "GET /v1/reports/export", ""},
	{"GET /v1/contacts/export", "GET /v1/contacts/{id}", "id=export"},
	{"GET /v1/reports/weekly", "* /v1/reports/*", ""},
}

// TestMatchPrecedence checks that the most specific route decides, and
// that the order of the file changes nothing.
func TestMatchPrecedence(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	order := slices.Clone(precedence)
	for round := range 20 {
		p := mustParse(t, precedenceYAML(order))
		for _, c := range precedenceRequests {
			method, path, _ := strings.Cut(c.req, " ")
			var m Match
			p.Match(method, path, &m)
			if m.Route.String() != c.route {
				t.Errorf("round %d (%v): %s matches %s, want %s", round, order, c.req, m.Route, c.route)
				continue
			}
			if got := params(&m); got != c.params {
				t.Errorf("%s: params %q, want %q", c.req, got, c.params)
			}
			if want := referenceFind(p, method, path); want != m.Route {
				t.Errorf("%s: the reference finds %v, Match %v", c.req, want, m.Route)
			}
		}
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
}

// params lists the matched route's parameters as name=value.
func params(m *Match) string {
	var out []string
	for _, name := range m.Route.Pattern.Params() {
		v, ok := m.Param(name)
		if !ok {
			return "missing " + name
		}
		out = append(out, name+"="+v)
	}
	return strings.Join(out, " ")
}

// referenceFind finds the route for a request the slow way: every route
// that matches (by referenceMatch), then the one more specific than all
// the others, or nil.
func referenceFind(p *Policy, method, path string) *Route {
	var found []*Route
	for _, r := range p.routes {
		if referenceMatch(r.Pattern, method, path) {
			found = append(found, r)
		}
	}
	for _, r := range found {
		best := true
		for _, o := range found {
			if o != r && r.Pattern.compare(o.Pattern) != moreSpecific {
				best = false
			}
		}
		if best {
			return r
		}
	}
	return nil
}

func TestMatchDefault(t *testing.T) {
	p := mustParse(t, example)
	var m Match
	for _, req := range []string{"GET /v1/other", "POST /health", "DELETE /v1/contacts/1", "GET v1/contacts"} {
		method, path, _ := strings.Cut(req, " ")
		p.Match(method, path, &m)
		if !m.Route.Default || !m.Route.Deny || m.Route != p.DefaultRoute() {
			t.Errorf("%s matches %v, want the default", req, m.Route)
		}
		if _, ok := m.Param("tenant"); ok {
			t.Errorf("%s: the default has a parameter", req)
		}
	}
	p.Match("GET", "/v1/tenants/acme/sites/s%1/x", &m)
	if v, ok := m.Param("site"); !ok || v != "s%1" {
		t.Errorf("Param(site) = %q, %v", v, ok)
	}
	if _, ok := m.Param("page"); ok {
		t.Error("Param(page) found")
	}
	// Tenant and Resource read the route's tenant and resources by the
	// index found at load, and agree with Param.
	if want, _ := m.Param(m.Route.Tenant); m.Route.Tenant == "" || m.Tenant() != want || want != "acme" {
		t.Errorf("%v: Tenant() = %q, want %q", m.Route, m.Tenant(), want)
	}
	for i, name := range m.Route.Resources {
		if want, _ := m.Param(name); m.Resource(i) != want {
			t.Errorf("%v: Resource(%d) = %q, want %q", m.Route, i, m.Resource(i), want)
		}
	}
	if len(m.Route.Resources) == 0 {
		t.Errorf("%v has no resources to read", m.Route)
	}
	p.Match("GET", "/v1/other", &m)
	if m.Tenant() != "" {
		t.Errorf("the default route's Tenant() = %q", m.Tenant())
	}
	// A * segment is not captured: no name finds it.
	mustParse(t, precedenceYAML(precedence)).Match("POST", "/v1/reports/daily", &m)
	if v, ok := m.Param(""); ok || m.Route.String() != "* /v1/reports/*" {
		t.Errorf("%v: Param(\"\") = %q, %v", m.Route, v, ok)
	}
}

// TestMatchEncodedPath shows that an encoded path cannot pass a route by:
// CleanPath decodes it before matching.
func TestMatchEncodedPath(t *testing.T) {
	p := mustParse(t, "default: authenticated\nroutes:\n  - match: GET /v1/contacts/**\n    permissions: [contacts:read]\n")
	for _, target := range []string{"/v1/%63ontacts", "/v1/contact%73/1?x", "/v1/%63%6F%6E%74%61%63%74%73/"} {
		path, err := CleanPath(target)
		if err != nil {
			t.Fatal(err)
		}
		var m Match
		p.Match("GET", path, &m)
		if m.Route.String() != "GET /v1/contacts/**" {
			t.Errorf("%s matches %v", target, m.Route)
		}
	}
}

func TestMatchManyChildren(t *testing.T) {
	var order []string
	for i := range 40 {
		order = append(order, fmt.Sprintf("GET /v1/r%d/{id}", i), fmt.Sprintf("POST /v1/r%d", i))
	}
	p := mustParse(t, precedenceYAML(order))
	for i := range 40 {
		var m Match
		p.Match("GET", fmt.Sprintf("/v1/r%d/x", i), &m)
		if want := fmt.Sprintf("GET /v1/r%d/{id}", i); m.Route.String() != want {
			t.Errorf("matched %v, want %s", m.Route, want)
		}
	}
}

func TestAllocations(t *testing.T) {
	p := benchPolicy(t)
	paths := benchPaths()
	var m Match
	for _, c := range paths {
		if n := testing.AllocsPerRun(50, func() { p.Match(c.method, c.path, &m) }); n != 0 {
			t.Errorf("Match(%s %s) allocates %v times", c.method, c.path, n)
		}
	}
	e, err := ParseEndpoints([]string{"GET /v1/contacts/**", "* /v1/reports/*", "POST /v1/tenants/{t}/sites/{s}"})
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(50, func() { e.Allow("POST", "/v1/tenants/t/sites/s") }); n != 0 {
		t.Errorf("Endpoints.Allow allocates %v times", n)
	}
	r, err := ParseReferrers([]string{"https://app.example.com", "https://*.example.org/*", "http://localhost:3000/app/*"})
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(50, func() { r.Allow("http://localhost:3000/app/x?y#z", "") }); n != 0 {
		t.Errorf("Referrers.Allow allocates %v times", n)
	}
	if n := testing.AllocsPerRun(50, func() { r.Allow("", "HTTPS://A.B.Example.ORG") }); n != 0 {
		t.Errorf("Referrers.Allow allocates %v times", n)
	}
}
