package policy

import (
	"fmt"
	"strings"
	"unique"
)

// MaxParams is the most wildcard segments ({name} or *) a pattern may
// have; Match holds their values in an array of this size.
const MaxParams = 8

// AnyMethod is the method of a pattern that matches every method.
const AnyMethod = "*"

// A Pattern is `METHOD /path/pattern`: the requests a route of the policy,
// or an entry of a key's endpoint restrictions, applies to. See the package
// documentation for the grammar.
type Pattern struct {
	text   string // as written, spaces between method and path made one
	method string // AnyMethod or an upper-case method token
	segs   []segment
	params []string // the name of each single wildcard, in order; "" for *
}

// segKind is what a pattern segment matches.
type segKind uint8

const (
	// segLiteral matches one path segment equal to lit. The empty
	// literal is a trailing slash, always the last segment.
	segLiteral segKind = iota
	// segWild, {name} or *, matches one non-empty segment.
	segWild
	// segMulti, **, always last, matches zero or more segments.
	segMulti
)

type segment struct {
	kind segKind
	lit  string // the decoded literal, for segLiteral
	name string // the parameter's name for {name}; "" for *
}

// PatternError says what is wrong with a pattern and where: Segment is the
// 1-based number of the path segment at fault, or 0 when the fault is not
// in one segment.
type PatternError struct {
	Pattern string
	Segment int
	Problem string
}

// Error reads `"GET /v1/{id": segment 2: "{" without "}"`.
func (e *PatternError) Error() string {
	if e.Segment > 0 {
		return fmt.Sprintf("%q: segment %d: %s", e.Pattern, e.Segment, e.Problem)
	}
	return fmt.Sprintf("%q: %s", e.Pattern, e.Problem)
}

// ParsePattern reads `METHOD /path/pattern`.
func ParsePattern(s string) (*Pattern, error) {
	fail := func(seg int, format string, args ...any) (*Pattern, error) {
		return nil, &PatternError{Pattern: s, Segment: seg, Problem: fmt.Sprintf(format, args...)}
	}
	text := strings.TrimSpace(s)
	if text == "" {
		return fail(0, "is empty; write a method and a path, such as GET /v1/contacts")
	}
	if text[0] == '/' {
		return fail(0, "has no method; write * %s to match every method, or a method such as GET %s", text, text)
	}
	i := strings.IndexAny(text, " \t")
	if i < 0 {
		return fail(0, "has no path; write a method, a space and a path, such as GET /v1/contacts")
	}
	method, path := text[:i], strings.TrimLeft(text[i:], " \t")
	if err := checkMethod(method); err != "" {
		return fail(0, "%s", err)
	}
	if path == "" || path[0] != '/' {
		return fail(0, "the path must start with /")
	}
	p := &Pattern{text: method + " " + path, method: method}
	for i, raw := range strings.Split(path[1:], "/") {
		seg, problem := parseSegment(raw)
		if problem != "" {
			return fail(i+1, "%s", problem)
		}
		p.segs = append(p.segs, seg)
	}
	// Checks on the segments as a whole.
	for i, seg := range p.segs {
		n := i + 1
		last := i == len(p.segs)-1
		switch {
		case seg.kind == segLiteral && seg.lit == "" && !last:
			return fail(n, "is empty (//); a request path with an empty segment is refused, so the pattern could never match")
		case seg.kind == segMulti && !last:
			return fail(n, "** must be the last segment")
		case seg.kind == segWild:
			if len(p.params) == MaxParams {
				return fail(n, "is wildcard number %d; a pattern may have at most %d ({name} or *)", MaxParams+1, MaxParams)
			}
			if seg.name != "" && p.param(seg.name) >= 0 {
				return fail(n, "{%s} is already a parameter of this pattern; give each parameter its own name", seg.name)
			}
			p.params = append(p.params, unique.Make(seg.name).Value()) // one copy, as the route names it
		}
	}
	return p, nil
}

// checkMethod returns what is wrong with a pattern's method, or "".
func checkMethod(m string) string {
	if m == AnyMethod {
		return ""
	}
	if len(m) > 32 {
		return fmt.Sprintf("method %.32q… is longer than 32 characters", m)
	}
	lower := false
	for i := 0; i < len(m); i++ {
		c := m[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		case c >= 'a' && c <= 'z':
			lower = true
		default:
			return fmt.Sprintf("method %q is not an HTTP method; use an upper-case method such as GET, or * for every method", m)
		}
	}
	if lower {
		return fmt.Sprintf("method %q must be upper case: %s", m, strings.ToUpper(m))
	}
	return ""
}

// parseSegment reads one path segment of a pattern; problem says what is
// wrong with it.
func parseSegment(raw string) (seg segment, problem string) {
	switch raw {
	case "**":
		return segment{kind: segMulti}, ""
	case "*":
		return segment{kind: segWild}, ""
	case ".", "..":
		return seg, fmt.Sprintf("%q: a request path with a . or .. segment is refused, so the pattern could never match", raw)
	}
	open, close := strings.IndexByte(raw, '{'), strings.IndexByte(raw, '}')
	switch {
	case open < 0 && close >= 0:
		return seg, `"}" without "{"`
	case open >= 0 && close < 0:
		return seg, `"{" without "}"`
	case open > 0 || open >= 0 && close != len(raw)-1:
		return seg, fmt.Sprintf("%q: a parameter is a whole segment, such as {id}", raw)
	case open == 0:
		name := raw[1 : len(raw)-1]
		if name == "" {
			return seg, "{} has no name; write a name such as {id}, or * for a segment that is not captured"
		}
		if !validParamName(name) {
			return seg, fmt.Sprintf("parameter name %q is not valid: use letters, digits and _, not starting with a digit", name)
		}
		return segment{kind: segWild, name: name}, ""
	case strings.Contains(raw, "*"):
		return seg, fmt.Sprintf("%q: * is a whole segment (* for one segment, ** for the rest of the path)", raw)
	}
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '?' || c == '#':
			return seg, fmt.Sprintf("%q: a pattern matches the path alone; remove the query or fragment (%c…)", raw, c)
		case c == ' ' || c == '\t':
			return seg, fmt.Sprintf("%q contains a space; write it as %%20", raw)
		case c < 0x20 || c == 0x7f:
			return seg, fmt.Sprintf("%q contains a control character", raw)
		case c == '\\':
			return seg, fmt.Sprintf("%q: a request path with \\ is refused, so the pattern could never match", raw)
		}
	}
	lit := raw
	if strings.IndexByte(raw, '%') >= 0 {
		d, problem := unescape(raw)
		if problem != "" {
			return seg, fmt.Sprintf("%q: %s", raw, problem)
		}
		if d == "." || d == ".." {
			return seg, fmt.Sprintf("%q is %q once decoded: a request path with a . or .. segment is refused, so the pattern could never match", raw, d)
		}
		lit = d
	}
	return segment{kind: segLiteral, lit: lit}, ""
}

// validParamName reports whether s is a Go-like identifier in ASCII.
func validParamName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// String returns the pattern as written, with one space after the method.
func (p *Pattern) String() string { return p.text }

// Method returns the pattern's method: AnyMethod or an upper-case token.
func (p *Pattern) Method() string { return p.method }

// Params returns the names of the pattern's {name} parameters, in order.
func (p *Pattern) Params() []string {
	var names []string
	for _, n := range p.params {
		if n != "" {
			names = append(names, n)
		}
	}
	return names
}

// param returns the index of parameter name among the wildcards, or -1.
func (p *Pattern) param(name string) int {
	for i, n := range p.params {
		if n == name {
			return i
		}
	}
	return -1
}

// Match reports whether the pattern matches a request with this method and
// clean path (a CleanPath result).
func (p *Pattern) Match(method, cleanPath string) bool {
	path := Path{s: cleanPath}
	return p.matchMethod(method) && p.matchPath(&path, nil)
}

// matchMethod reports whether the pattern's method matches method: * every
// method, GET also HEAD, and any other only itself.
func (p *Pattern) matchMethod(method string) bool {
	return p.method == method || p.method == AnyMethod || p.method == "GET" && method == "HEAD"
}

// matchPath reports whether the pattern's path matches a clean path, and
// puts the wildcards' values in vals when vals is not nil.
func (p *Pattern) matchPath(path *Path, vals *[MaxParams]string) bool {
	s := path.s
	if s == "" || s[0] != '/' {
		return false
	}
	// Segment i of the path starts at start; past len(s), none is left.
	i, start, wild := 0, 1, 0
	for k := range p.segs {
		g := &p.segs[k]
		if g.kind == segMulti {
			return true
		}
		if start > len(s) {
			return false
		}
		end := path.end(i, start)
		seg := s[start:end]
		if g.kind == segLiteral {
			if !equalSegment(seg, g.lit) {
				return false
			}
		} else {
			if seg == "" {
				return false
			}
			if vals != nil {
				vals[wild] = seg
			}
			wild++
		}
		i, start = i+1, end+1
	}
	return start > len(s)
}

// equalSegment reports whether a path segment is the literal lit: the
// length and the first byte are compared before the bytes are.
func equalSegment(seg, lit string) bool {
	return len(seg) == len(lit) && (lit == "" || seg[0] == lit[0] && seg == lit)
}
