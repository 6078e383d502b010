package policy

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
	"unique"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/keyward/keyward"
)

// Limits on a routes file.
const (
	// MaxFileSize is the largest routes file, in bytes.
	MaxFileSize = 1 << 20
	// MaxRoutes is the most routes a file may hold.
	MaxRoutes = 5000
	// MaxNames is the most permissions, capabilities or resources one
	// route may list.
	MaxNames = 100
)

// maxProblems is the most problems a FileError lists; More counts the rest.
const maxProblems = 20

// Problem is one thing wrong in a routes file, at a line (and a column,
// for YAML errors) when it has one.
type Problem struct {
	Line   int
	Column int
	Text   string
}

// FileError is everything wrong with a routes file, in the order of the
// file (the first maxProblems of it).
type FileError struct {
	// Name is the file's name; "" when the policy was parsed from bytes.
	Name     string
	Problems []Problem
	// More counts the problems left out of Problems.
	More int
}

// Error lists the problems on one line, separated by "; ".
func (e *FileError) Error() string {
	return strings.Join(e.Lines(), "; ")
}

// Lines returns each problem as name:line:column: text, for printing one
// per line, and then how many more there are.
func (e *FileError) Lines() []string {
	out := make([]string, 0, len(e.Problems)+1)
	for _, p := range e.Problems {
		var where string
		switch {
		case e.Name != "" && p.Line > 0 && p.Column > 0:
			where = fmt.Sprintf("%s:%d:%d: ", e.Name, p.Line, p.Column)
		case e.Name != "" && p.Line > 0:
			where = fmt.Sprintf("%s:%d: ", e.Name, p.Line)
		case e.Name != "":
			where = e.Name + ": "
		case p.Line > 0 && p.Column > 0:
			where = fmt.Sprintf("line %d, column %d: ", p.Line, p.Column)
		case p.Line > 0:
			where = fmt.Sprintf("line %d: ", p.Line)
		}
		out = append(out, where+p.Text)
	}
	if e.More > 0 {
		out = append(out, fmt.Sprintf("and %d more problems", e.More))
	}
	return out
}

// Load reads and compiles the routes file at name.
func Load(name string) (*Policy, error) {
	data, err := readFile(name)
	if err != nil {
		return nil, err
	}
	return parseNamed(name, data)
}

// readFile reads a routes file of at most MaxFileSize bytes.
func readFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s is larger than %d bytes (1 MiB), the most a routes file may be", name, MaxFileSize)
	}
	return data, nil
}

// fileSpec is a routes file as YAML reads it.
type fileSpec struct {
	Default *string        `yaml:"default"`
	Routes  *[]routeFields `yaml:"routes"`
}

// routeFields are the fields a route may have. A new field is added here,
// checked in checkRoute and copied onto Route.
type routeFields struct {
	Match        string   `yaml:"match"`
	Public       bool     `yaml:"public"`
	Cost         *int64   `yaml:"cost"`
	Permissions  []string `yaml:"permissions"`
	Capabilities []string `yaml:"capabilities"`
	Tenant       string   `yaml:"tenant"`
	Resources    []string `yaml:"resources"`
	Environments []string `yaml:"environments"`
	TLS          string   `yaml:"tls"`
	Upstream     string   `yaml:"upstream"`
	UpstreamTest string   `yaml:"upstream_test"`
}

// fileLines are the lines of a routes file's parts, for its errors: 0
// when the syntax tree does not say (a value given by an alias).
type fileLines struct {
	def    int
	routes []int
}

// findLines finds the line of default's value and of each route in the
// body of a routes file's document.
func findLines(body ast.Node) fileLines {
	var l fileLines
	var pairs []*ast.MappingValueNode
	switch n := unwrap(body).(type) {
	case *ast.MappingNode:
		pairs = n.Values
	case *ast.MappingValueNode:
		pairs = []*ast.MappingValueNode{n}
	}
	for _, kv := range pairs {
		if kv.Key == nil || kv.Key.GetToken() == nil {
			continue
		}
		switch kv.Key.GetToken().Value {
		case "default":
			l.def = nodeLine(kv.Value)
		case "routes":
			if seq, ok := unwrap(kv.Value).(*ast.SequenceNode); ok {
				for _, v := range seq.Values {
					l.routes = append(l.routes, nodeLine(v))
				}
			}
		}
	}
	return l
}

// unwrap returns the node an anchor or a tag holds.
func unwrap(n ast.Node) ast.Node {
	for {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		default:
			return n
		}
	}
}

func nodeLine(n ast.Node) int {
	if n == nil {
		return 0
	}
	if t := n.GetToken(); t != nil && t.Position != nil {
		return t.Position.Line
	}
	return 0
}

// Parse reads and compiles a routes file's contents. Its error is a
// *FileError that lists every problem it finds, each with its line and the
// route it is in.
func Parse(data []byte) (*Policy, error) {
	if len(data) > MaxFileSize {
		return nil, &FileError{Problems: []Problem{{Text: fmt.Sprintf("is larger than %d bytes (1 MiB), the most a routes file may be", MaxFileSize)}}}
	}
	var spec fileSpec
	lines, problem := decode(data, &spec)
	if problem != nil {
		return nil, &FileError{Problems: []Problem{*problem}}
	}
	c := checker{}
	def := DefaultDeny
	switch {
	case spec.Default == nil && spec.Routes == nil:
		c.add(0, "sets neither default nor routes; write at least \"default: deny\", and the routes of your API")
	case spec.Default != nil:
		def = Default(*spec.Default)
		if def != DefaultDeny && def != DefaultAuthenticated {
			c.add(lines.def, "default is %q; use deny (refuse requests that match no route) or authenticated (any valid key, no permission)", *spec.Default)
		}
	}
	var routes []*Route
	if spec.Routes != nil {
		line := func(i int) int {
			if i < len(lines.routes) {
				return lines.routes[i]
			}
			return 0
		}
		if n := len(*spec.Routes); n > MaxRoutes {
			c.add(line(MaxRoutes), "the file has %d routes; use at most %d (a ** pattern covers many paths)", n, MaxRoutes)
		}
		for i, rf := range *spec.Routes {
			if r := c.checkRoute(i, line(i), &rf); r != nil {
				routes = append(routes, r)
			}
		}
	}
	c.checkConflicts(routes)
	if err := c.err(); err != nil {
		return nil, err
	}
	return compile(def, routes), nil
}

// decode reads the YAML of a routes file, strictly: one document, no
// unknown field, no key given twice.
func decode(data []byte, spec *fileSpec) (lines fileLines, problem *Problem) {
	// A panic in the YAML library is a bad file, not a crash of the server
	// that reloads it.
	defer func() {
		if r := recover(); r != nil {
			lines, problem = fileLines{}, &Problem{Text: fmt.Sprintf("the YAML cannot be read (the parser failed: %v)", r)}
		}
	}()
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return lines, yamlProblem(err)
	}
	if len(f.Docs) > 1 {
		line := nodeLine(f.Docs[1])
		if t := f.Docs[1].Start; t != nil && t.Position != nil {
			line = t.Position.Line
		}
		return lines, &Problem{Line: line, Text: fmt.Sprintf("the file holds %d YAML documents; a routes file is one", len(f.Docs))}
	}
	if len(f.Docs) == 1 {
		if n := expandedSize(f.Docs[0].Body, map[string]int{}); n > maxYAMLValues {
			return lines, &Problem{Text: fmt.Sprintf("the YAML holds more than %d values once its aliases (*name) are expanded; write the routes without so many aliases", maxYAMLValues)}
		}
	}
	if err := yaml.UnmarshalWithOptions(data, spec, yaml.Strict()); err != nil {
		return lines, yamlProblem(err)
	}
	if len(f.Docs) == 1 {
		lines = findLines(f.Docs[0].Body)
	}
	return lines, nil
}

// maxYAMLValues is the most values a routes file may hold once its
// aliases are expanded: far more than 5,000 routes need, far fewer than a
// few nested aliases can make of a small file (a "billion laughs").
const maxYAMLValues = 1_000_000

// expandedSize counts the values of a YAML tree as if its aliases were
// copies of what their anchors hold, stopping past maxYAMLValues. sizes
// records the size of each anchor seen.
func expandedSize(n ast.Node, sizes map[string]int) int {
	add := func(a, b int) int { return min(a+b, maxYAMLValues+1) }
	switch v := n.(type) {
	case nil:
		return 0
	case *ast.MappingNode:
		total := 1
		for _, kv := range v.Values {
			total = add(total, expandedSize(kv, sizes))
		}
		return total
	case *ast.MappingValueNode:
		return add(expandedSize(v.Key, sizes), expandedSize(v.Value, sizes))
	case *ast.SequenceNode:
		total := 1
		for _, e := range v.Values {
			total = add(total, expandedSize(e, sizes))
		}
		return total
	case *ast.AnchorNode:
		size := expandedSize(v.Value, sizes)
		if v.Name != nil && v.Name.GetToken() != nil {
			sizes[v.Name.GetToken().Value] = size
		}
		return size
	case *ast.AliasNode:
		if v.Value != nil && v.Value.GetToken() != nil {
			return max(sizes[v.Value.GetToken().Value], 1)
		}
		return 1
	case *ast.TagNode:
		return add(1, expandedSize(v.Value, sizes))
	}
	return 1
}

// yamlProblem turns a YAML error into a problem at its line and column.
func yamlProblem(err error) *Problem {
	var ye yaml.Error
	if !errors.As(err, &ye) {
		return &Problem{Text: err.Error()}
	}
	p := &Problem{Text: ye.GetMessage()}
	if t := ye.GetToken(); t != nil && t.Position != nil {
		p.Line, p.Column = t.Position.Line, t.Position.Column
	}
	var te *yaml.TypeError
	var ue *yaml.UnknownFieldError
	switch {
	case errors.As(err, &te):
		p.Text = "expected " + describeType(te.DstType)
	case errors.As(err, &ue):
		p.Text += "; the file has the fields default and routes, and a route has match, public, permissions, capabilities, tenant, resources, environments, cost, tls, upstream and upstream_test"
	case strings.HasPrefix(p.Text, "could not find alias"):
		// YAML reads a bare * as an alias.
		p.Text += `; quote a value that starts with *, such as match: "* /v1/reports/*"`
	}
	return p
}

// describeType names what a YAML value must be to fill a Go type.
func describeType(t reflect.Type) string {
	if t == nil {
		return "another kind of value"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a single value (text)"
	case reflect.Slice:
		return "a list, such as [a, b]"
	case reflect.Struct, reflect.Map, reflect.Pointer:
		return "a mapping of fields"
	}
	return t.Kind().String()
}

// checker gathers the problems of a routes file.
type checker struct {
	problems []Problem
}

func (c *checker) add(line int, format string, args ...any) {
	c.problems = append(c.problems, Problem{Line: line, Text: fmt.Sprintf(format, args...)})
}

func (c *checker) err() error {
	if len(c.problems) == 0 {
		return nil
	}
	slices.SortStableFunc(c.problems, func(a, b Problem) int { return a.Line - b.Line })
	e := &FileError{Problems: c.problems}
	if len(e.Problems) > maxProblems {
		e.More = len(e.Problems) - maxProblems
		e.Problems = e.Problems[:maxProblems]
	}
	return e
}

// checkRoute validates the i-th route, at line, and returns it, or nil
// when it has a problem.
func (c *checker) checkRoute(i, line int, rs *routeFields) *Route {
	before := len(c.problems)
	if rs.Match == "" {
		c.add(line, "routes[%d]: match is missing; write the method and path the route applies to, such as GET /v1/contacts", i)
		return nil
	}
	pat, err := ParsePattern(rs.Match)
	if err != nil {
		c.add(line, "route %v", err)
		return nil
	}
	name := fmt.Sprintf("route %q", pat.String())
	r := &Route{Pattern: pat, Line: line, Public: rs.Public}
	switch rs.TLS {
	case "":
	case TLSRequired:
		r.TLS = true
	default:
		c.add(line, "%s: tls %q is not a setting; write tls: required, or leave it out for requests over plain HTTP too", name, rs.TLS)
	}
	if rs.Public {
		var set []string
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"permissions", len(rs.Permissions) > 0},
			{"capabilities", len(rs.Capabilities) > 0},
			{"tenant", rs.Tenant != ""},
			{"resources", len(rs.Resources) > 0},
			{"environments", len(rs.Environments) > 0},
			{"cost", rs.Cost != nil},
			{"upstream_test", rs.UpstreamTest != ""},
		} {
			if f.set {
				set = append(set, f.name)
			}
		}
		if len(set) > 0 {
			c.add(line, "%s is public, so it needs no key, but it has %s; remove public: true, or remove %s", name, strings.Join(set, " and "), strings.Join(set, " and "))
		}
	}
	r.Cost = 1
	if rs.Cost != nil {
		if *rs.Cost < 1 || *rs.Cost > MaxCost {
			c.add(line, "%s: cost %d is not one; give the credits a request takes, from 1 to %d", name, *rs.Cost, MaxCost)
		}
		r.Cost = *rs.Cost
	}
	r.Permissions = c.checkNames(line, name, "permission", rs.Permissions)
	r.Capabilities = c.checkNames(line, name, "capability", rs.Capabilities)
	if rs.Tenant != "" {
		if c.checkParam(line, name, pat, "tenant", rs.Tenant) {
			r.Tenant = unique.Make(rs.Tenant).Value()
			r.tenantParam = pat.param(r.Tenant)
		}
	}
	if len(rs.Resources) > MaxNames {
		c.add(line, "%s lists %d resources; use at most %d", name, len(rs.Resources), MaxNames)
	}
	for j, res := range rs.Resources {
		switch {
		case slices.Contains(rs.Resources[:j], res):
			c.add(line, "%s lists resource %q twice", name, res)
		case res != "" && res == rs.Tenant:
			c.add(line, "%s: {%s} is the tenant; it cannot be a resource as well", name, res)
		case c.checkParam(line, name, pat, "resource", res):
			r.Resources = append(r.Resources, unique.Make(res).Value())
			r.resourceParams = append(r.resourceParams, pat.param(res))
		}
	}
	for j, e := range rs.Environments {
		env := keyward.Environment(e)
		switch {
		case !env.Valid():
			c.add(line, "%s: environment %q is not one; use live or test", name, e)
		case slices.Contains(rs.Environments[:j], e):
			c.add(line, "%s lists environment %q twice", name, e)
		default:
			r.Environments = append(r.Environments, env)
		}
	}
	if rs.Upstream != "" {
		u, err := ParseUpstream(rs.Upstream)
		if err != nil {
			c.add(line, "%s: upstream %v", name, err)
		}
		r.Upstream = u
	}
	if rs.UpstreamTest != "" {
		u, err := ParseUpstream(rs.UpstreamTest)
		switch {
		case err != nil:
			c.add(line, "%s: upstream_test %v", name, err)
		case len(r.Environments) > 0 && !r.AllowsEnvironment(keyward.Test):
			c.add(line, "%s takes live keys only (environments), so upstream_test would never be used; remove one of them", name)
		}
		r.UpstreamTest = u
	}
	if len(c.problems) > before {
		return nil
	}
	return r
}

// checkNames validates the permissions or capabilities of a route, by the
// rule of permission names (keyward.ValidPermission).
func (c *checker) checkNames(line int, route, kind string, names []string) []string {
	if len(names) > MaxNames {
		c.add(line, "%s lists %d %ss; use at most %d", route, len(names), kind, MaxNames)
		return nil
	}
	var out []string
	for j, n := range names {
		switch {
		case !keyward.ValidPermission(n):
			c.add(line, "%s: %s %q is not valid: use lowercase words joined by colons, such as contacts:read or m2m_api, at most %d characters", route, kind, n, keyward.MaxPermissionLen)
		case n == "none" && kind == "permission":
			c.add(line, "%s: \"none\" cannot be a permission, since no key may hold it; to ask for no permission, leave permissions out", route)
		case slices.Contains(names[:j], n):
			c.add(line, "%s lists %s %q twice", route, kind, n)
		default:
			// One copy of each name, shared with the verifier's copies of
			// the keys' permissions: equal strings that share their bytes
			// compare without reading them.
			out = append(out, unique.Make(n).Value())
		}
	}
	return out
}

// checkParam reports whether param is a {name} of the route's pattern,
// adding a problem when it is not.
func (c *checker) checkParam(line int, route string, pat *Pattern, field, param string) bool {
	if pat.param(param) >= 0 && param != "" {
		return true
	}
	params := pat.Params()
	if len(params) == 0 {
		c.add(line, "%s: %s %q is not a parameter of the pattern, which has none; name one in the path, such as {%s}", route, field, param, field)
		return false
	}
	for i, p := range params {
		params[i] = "{" + p + "}"
	}
	c.add(line, "%s: %s %q is not a parameter of the pattern; its parameters are %s", route, field, param, strings.Join(params, ", "))
	return false
}

// checkConflicts adds a problem for every two routes that match some
// request alike with neither more specific, on the line of the later one.
func (c *checker) checkConflicts(routes []*Route) {
	for j, b := range routes {
		for _, a := range routes[:j] {
			switch rel := b.Pattern.compare(a.Pattern); {
			case rel == equivalent && a.Pattern.String() == b.Pattern.String():
				c.add(b.Line, "route %q is already at line %d; give each pattern one route", b.Pattern, a.Line)
			case rel == equivalent:
				c.add(b.Line, "route %q matches the same requests as route %q at line %d; keep one of them", b.Pattern, a.Pattern, a.Line)
			case rel == overlaps:
				c.add(b.Line, "route %q conflicts with route %q at line %d: %s; make one of them more specific, or keep them from overlapping",
					b.Pattern, a.Pattern, a.Line, describeConflict(b.Pattern, a.Pattern))
			}
		}
	}
}
