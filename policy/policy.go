package policy

import (
	"net/url"
	"slices"

	"github.com/keyward/keyward"
)

// Default is what a policy does with a request that matches no route.
type Default string

// Defaults.
const (
	// DefaultDeny refuses a request that matches no route, whatever the key.
	DefaultDeny Default = "deny"
	// DefaultAuthenticated lets through any valid key that passes its own
	// checks, and asks for no permission.
	DefaultAuthenticated Default = "authenticated"
)

// Route is one entry of a policy: the requests it applies to and what they
// need. A verifier checks a matched route's fields in the order of the
// outcomes (SPEC §5, docs/outcomes.md): Public before any key check, then
// Environments (7), Tenant and Resources (9), Capabilities and
// Permissions (10). A Route is shared and read-only.
type Route struct {
	// Pattern is what the route matches; nil for the default route.
	Pattern *Pattern
	// Line is the route's line in the file; 0 for the default route.
	Line int

	// Default is true for the route that stands for the policy's default
	// when no route matches; Deny is then true for `default: deny`.
	Default bool
	Deny    bool

	// TLS is true for a route that takes only requests that came over
	// TLS (tls: required in the file): one over plain HTTP is refused 403
	// tls_required before anything else, public routes included, so that
	// a key sent in the clear is not checked and the answer does not
	// tell whether it works.
	TLS bool

	// Public routes need no key at all; they have none of the fields below.
	Public bool
	// Permissions must all be among the key's effective permissions, else
	// 403 insufficient_permissions. Empty: any valid key.
	Permissions []string
	// Capabilities must all be in the plan of the key's tenant, else 403
	// plan_not_entitled.
	Capabilities []string
	// Tenant, when set, names the path parameter that must be the key's
	// tenant, by id or slug, else 404 not_found.
	Tenant string
	// Resources name path parameters whose values must be among the
	// key's allowed resources for that name, when the key restricts it,
	// else 404 not_found.
	Resources []string
	// Environments, when set, are the environments a key must be in, else
	// 403 environment_mismatch.
	Environments []keyward.Environment
	// Cost is the credits a request of the route takes from a key that
	// has credits (cost: in the file, default 1); 1 for the default
	// route.
	Cost int64

	// Upstream and UpstreamTest, when set, are where the gateway (serve
	// --gateway-addr) sends the route's requests: those of live keys and
	// of a public route to Upstream, those of test keys to UpstreamTest,
	// instead of serve's --upstream and --upstream-test. A route with
	// Upstream and without UpstreamTest refuses test keys (403
	// environment_mismatch): its test requests have no place to go that
	// is not live. Other surfaces ignore both.
	Upstream, UpstreamTest *url.URL

	// tenantParam is the index of Tenant among the pattern's wildcards,
	// and resourceParams those of Resources, found once at load for
	// Match.Tenant and Match.Resource.
	tenantParam    int
	resourceParams []int
}

// String names the route for messages: its pattern, or "default: deny".
func (r *Route) String() string {
	switch {
	case r.Pattern == nil && r.Deny:
		return "default: " + string(DefaultDeny)
	case r.Pattern == nil:
		return "default: " + string(DefaultAuthenticated)
	}
	return r.Pattern.String()
}

// AllowsEnvironment reports whether a key in environment e may use the
// route: Environments is empty or holds e.
func (r *Route) AllowsEnvironment(e keyward.Environment) bool {
	return len(r.Environments) == 0 || slices.Contains(r.Environments, e)
}

// Match is the result of Policy.Match, owned by the caller so that
// matching allocates nothing: the route that decides, and the values of
// its path parameters.
type Match struct {
	// Route is the matched route, or the policy's default route (whose
	// Default field is true) when none matches. Never nil after Match.
	Route *Route
	vals  [MaxParams]string
}

// Param returns the value of the matched route's path parameter name, as
// decoded by CleanPath; ok is false when the route has no such parameter.
func (m *Match) Param(name string) (value string, ok bool) {
	if name == "" || m.Route == nil || m.Route.Pattern == nil {
		return "", false
	}
	for i, n := range m.Route.Pattern.params {
		if n == name {
			return m.vals[i], true
		}
	}
	return "", false
}

// TLSRequired is the value of a route's tls field that makes it take
// requests over TLS alone.
const TLSRequired = "required"

// MaxCost is the highest cost a route may declare.
const MaxCost = 1_000_000

// Tenant returns the value of the matched route's tenant parameter
// (Route.Tenant), or "" when it has none.
func (m *Match) Tenant() string {
	if m.Route == nil || m.Route.Tenant == "" {
		return ""
	}
	return m.vals[m.Route.tenantParam]
}

// Resource returns the value of the matched route's resource parameter
// Route.Resources[i].
func (m *Match) Resource(i int) string {
	return m.vals[m.Route.resourceParams[i]]
}

// Policy is a compiled route policy: immutable, safe for concurrent use.
type Policy struct {
	def    Route
	routes []*Route // in file order
	trees  []methodTree
	any    *node // routes with method *
}

// methodTree holds the routes of one method.
type methodTree struct {
	method string
	root   *node
}

// node is a place in a tree of path segments. A route whose pattern ends
// here is end; one whose pattern ends with ** here is multi.
type node struct {
	lits  []*node // literal children, searched in order when few
	index map[string]*node
	lit   string
	wild  *node
	end   *Route
	multi *Route
}

// maxLinear is how many literal children a node searches one by one before
// it uses a map.
const maxLinear = 8

// Routes returns the policy's routes in file order. The routes are shared:
// do not change them.
func (p *Policy) Routes() []*Route { return slices.Clone(p.routes) }

// DefaultRoute returns the route that stands for the policy's default
// (Route.Default is true).
func (p *Policy) DefaultRoute() *Route { return &p.def }

// Default returns the file's default: DefaultDeny or DefaultAuthenticated.
func (p *Policy) Default() Default {
	if p.def.Deny {
		return DefaultDeny
	}
	return DefaultAuthenticated
}

// Match finds the route for a request with this method and clean path (a
// CleanPath result) and fills m: the most specific route that matches, or
// the default route. It allocates nothing.
func (p *Policy) Match(method, cleanPath string, m *Match) {
	path := Path{s: cleanPath}
	p.MatchPath(method, &path, m)
}

// MatchPath is Match for a path cleaned by Path.Clean, whose segments
// it need not look for again.
func (p *Policy) MatchPath(method string, path *Path, m *Match) {
	m.Route = p.find(method, path, &m.vals)
	if m.Route == nil {
		m.Route = &p.def
	}
}

// find is Match without the default. A route with the request's own method
// is more specific than one with * (or GET, for a HEAD request) that
// matches too, since the policy holds no conflicting routes; so the trees
// are searched in that order.
func (p *Policy) find(method string, path *Path, vals *[MaxParams]string) *Route {
	if path.s == "" || path.s[0] != '/' {
		return nil
	}
	for i := range p.trees {
		if p.trees[i].method == method {
			if r := p.trees[i].root.match(path, 0, 1, 0, vals); r != nil {
				return r
			}
			break
		}
	}
	if method == "HEAD" {
		for i := range p.trees {
			if p.trees[i].method == "GET" {
				if r := p.trees[i].root.match(path, 0, 1, 0, vals); r != nil {
					return r
				}
				break
			}
		}
	}
	if p.any != nil {
		return p.any.match(path, 0, 1, 0, vals)
	}
	return nil
}

// match finds the most specific route under n for the rest of a path,
// from its segment i, which starts at start (past the path's end, no
// segment is left): a literal segment before a wildcard before **, each
// tried in full before the next. The values of the wildcards are written
// on the way back from a match, so a branch that fails leaves nothing
// behind.
func (n *node) match(path *Path, i, start, wild int, vals *[MaxParams]string) *Route {
	if start > len(path.s) {
		if n.end != nil {
			return n.end
		}
		return n.multi
	}
	end := path.end(i, start)
	seg := path.s[start:end]
	if c := n.child(seg); c != nil {
		if r := c.match(path, i+1, end+1, wild, vals); r != nil {
			return r
		}
	}
	if n.wild != nil && seg != "" {
		if r := n.wild.match(path, i+1, end+1, wild+1, vals); r != nil {
			vals[wild] = seg
			return r
		}
	}
	return n.multi
}

// child returns the literal child for seg, or nil.
func (n *node) child(seg string) *node {
	if n.index != nil {
		return n.index[seg]
	}
	for _, c := range n.lits {
		if equalSegment(seg, c.lit) {
			return c
		}
	}
	return nil
}

// insert adds route r to the tree under n.
func (n *node) insert(r *Route) {
	for _, s := range r.Pattern.segs {
		switch s.kind {
		case segMulti:
			n.multi = r
			return
		case segWild:
			if n.wild == nil {
				n.wild = &node{}
			}
			n = n.wild
		default:
			c := n.child(s.lit)
			if c == nil {
				c = &node{lit: s.lit}
				n.lits = append(n.lits, c)
				switch {
				case n.index != nil:
					n.index[c.lit] = c
				case len(n.lits) > maxLinear:
					n.index = make(map[string]*node, len(n.lits))
					for _, l := range n.lits {
						n.index[l.lit] = l
					}
				}
			}
			n = c
		}
	}
	n.end = r
}

// compile builds the trees of a policy whose routes do not conflict.
func compile(def Default, routes []*Route) *Policy {
	p := &Policy{
		def:    Route{Default: true, Deny: def != DefaultAuthenticated, Cost: 1},
		routes: routes,
	}
	for _, r := range routes {
		if r.Pattern.method == AnyMethod {
			if p.any == nil {
				p.any = &node{}
			}
			p.any.insert(r)
			continue
		}
		i := slices.IndexFunc(p.trees, func(t methodTree) bool { return t.method == r.Pattern.method })
		if i < 0 {
			p.trees = append(p.trees, methodTree{method: r.Pattern.method, root: &node{}})
			i = len(p.trees) - 1
		}
		p.trees[i].root.insert(r)
	}
	return p
}
