package policy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/keyward/keyward"
)

// Referrers are a key's referrer restrictions (restrictions.referrers):
// the web pages a browser may send the key from. The zero Referrers
// restricts nothing.
//
// A pattern is scheme://host[:port][/path]:
//
//   - the scheme matches exactly, in any case;
//   - the host matches exactly, in any case, or, written *.example.com,
//     matches every name one or more labels below example.com (not
//     example.com itself);
//   - the port matches exactly, a missing port standing for the scheme's
//     default (https://x is https://x:443, http://x is http://x:80);
//   - without a path (or with / or /*), the pattern matches every page of
//     the origin, and an Origin header; with a path, the page's path must
//     be that path, or start with it when it ends in *.
//
// The presented URL's query and fragment are ignored. A presented URL with
// user information (user@host), a host that is not a DNS name or an IP
// address, a . or .. path segment or a backslash matches nothing.
type Referrers struct {
	pats []referrer
}

// referrer is one compiled pattern.
type referrer struct {
	text     string
	scheme   string // lower case
	host     string // lower case; for a wildcard, the domain after "*."
	wildcard bool
	port     int // explicit, or the scheme's default; 0 when it has none
	path     pathMatch
	prefix   string // the path, or its prefix without the *
}

type pathMatch uint8

const (
	anyPath pathMatch = iota
	exactPath
	prefixPath
)

// ParseReferrers reads a key's referrer restrictions. Its error is a
// CodeInvalidRequest *keyward.Error naming the entry at fault, such as
// restrictions.referrers[0].
func ParseReferrers(entries []string) (Referrers, error) {
	const field = "restrictions.referrers"
	if len(entries) > MaxReferrers {
		return Referrers{}, keyward.FieldErrorf(field, "has %d entries; use at most %d", len(entries), MaxReferrers)
	}
	var r Referrers
	for i, s := range entries {
		f := fmt.Sprintf("%s[%d]", field, i)
		if len(s) > MaxEntryLen {
			return Referrers{}, keyward.FieldErrorf(f, "is %d bytes long; use at most %d", len(s), MaxEntryLen)
		}
		p, problem := parseReferrer(s)
		if problem != "" {
			return Referrers{}, keyward.FieldErrorf(f, "%q %s", s, problem)
		}
		r.pats = append(r.pats, p)
	}
	return r, nil
}

// parseReferrer reads one pattern; problem says what is wrong with it.
func parseReferrer(s string) (p referrer, problem string) {
	p.text = s
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c <= ' ' || c == 0x7f:
			return p, "contains a space or a control character"
		case c == '?' || c == '#':
			return p, "has a query or fragment; a pattern is an origin and an optional path, such as https://app.example.com/*"
		case c == '\\':
			return p, "contains a backslash; use /"
		case c >= 0x80:
			return p, "contains a character outside ASCII; write an international host name in its xn-- form"
		}
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return p, "has no scheme; write it as an origin such as https://app.example.com"
	}
	if !validScheme(scheme) {
		return p, fmt.Sprintf("has a scheme %q that is not one; use https:// or http://", scheme)
	}
	p.scheme = strings.ToLower(scheme)
	auth, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		auth, path = rest[:i], rest[i:]
	}
	if strings.Contains(auth, "@") {
		return p, "has user information (@); write the host alone"
	}
	host, port, problem := splitHostPort(auth)
	if problem != "" {
		return p, problem
	}
	p.port = defaultPort(p.scheme)
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '0' {
			return p, fmt.Sprintf("has a port %q that is not one; use a number from 1 to 65535", port)
		}
		p.port = n
	}
	host = strings.ToLower(host)
	switch {
	case host == "":
		return p, "has no host"
	case host == "*":
		return p, "matches every site; to allow every site, leave referrers empty"
	case strings.HasPrefix(host, "*."):
		p.wildcard, p.host = true, host[2:]
		if !validHostname(p.host) {
			return p, fmt.Sprintf("has a host %q that is not a host name; write *. and a domain, such as *.example.com", host)
		}
	case strings.Contains(host, "*"):
		return p, fmt.Sprintf("has a * in %q; a * may only start the host (*.example.com) or end the path (/app/*)", host)
	case host[0] == '[':
		a, err := netip.ParseAddr(host[1 : len(host)-1])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return p, fmt.Sprintf("has a host %q that is not an IPv6 address", host)
		}
		p.host = "[" + a.String() + "]"
	case !validHostname(host):
		return p, fmt.Sprintf("has a host %q that is not a host name", host)
	default:
		p.host = host
	}
	switch {
	case path == "" || path == "/" || path == "/*":
		p.path = anyPath
	case strings.Contains(path[:len(path)-1], "*"):
		return p, "has a * inside the path; a * may only end it, such as /app/*"
	case hasDotSegment(path):
		return p, "has a . or .. segment in its path, which no browser sends"
	case strings.HasSuffix(path, "*"):
		p.path, p.prefix = prefixPath, path[:len(path)-1]
	default:
		p.path, p.prefix = exactPath, path
	}
	return p, ""
}

// splitHostPort splits an authority into host (an IPv6 address keeps its
// brackets) and port ("" when there is none).
func splitHostPort(auth string) (host, port, problem string) {
	if strings.HasPrefix(auth, "[") {
		end := strings.IndexByte(auth, ']')
		if end < 0 {
			return "", "", "has \"[\" without \"]\" in its host"
		}
		host, rest := auth[:end+1], auth[end+1:]
		if rest == "" {
			return host, "", ""
		}
		if rest[0] != ':' {
			return "", "", "has something other than a port after its IPv6 address"
		}
		if rest == ":" {
			return "", "", "has a : without a port"
		}
		return host, rest[1:], ""
	}
	if i := strings.LastIndexByte(auth, ':'); i >= 0 {
		if i == len(auth)-1 {
			return "", "", "has a : without a port"
		}
		return auth[:i], auth[i+1:], ""
	}
	return auth, "", ""
}

// Len returns the number of entries; 0 restricts nothing.
func (r Referrers) Len() int { return len(r.pats) }

// Strings returns the entries as given.
func (r Referrers) Strings() []string {
	out := make([]string, len(r.pats))
	for i, p := range r.pats {
		out[i] = p.text
	}
	return out
}

// Allow reports whether a request with these Referer and Origin headers
// ("" when absent) may use the key: there are no entries, or the Referer,
// when present, matches one, or, when there is no Referer, the Origin
// matches one. A Referer that matches nothing refuses the request even
// when the Origin would match: a browser page can set neither header, and
// when it sends both they name the same site, so a disagreement only comes
// from a client that writes its own headers. Allow allocates nothing.
func (r Referrers) Allow(referer, origin string) bool {
	if len(r.pats) == 0 {
		return true
	}
	h := referer
	if h == "" {
		h = origin
	}
	// u is filled in place: returned, it would be copied through the
	// stack in a way that stalls the processor.
	var u presented
	if !parsePresented(h, &u) {
		return false
	}
	for i := range r.pats {
		if r.pats[i].match(&u) {
			return true
		}
	}
	return false
}

// presented is a Referer or Origin URL, its parts substrings of it.
type presented struct {
	scheme string
	host   string
	port   int
	path   string
}

// parsePresented reads a Referer or Origin URL into u without
// allocating; it returns false when it is not one this package matches.
// The scheme is not checked: one that is not a scheme equals no
// pattern's.
func parsePresented(s string, u *presented) (ok bool) {
	// A scheme is short: a loop is cheaper than strings.IndexByte's call.
	i := 0
	for i < len(s) && s[i] != ':' {
		i++
	}
	if i == len(s) {
		i = -1
	}
	if i <= 0 || len(s) < i+3 || s[i+1] != '/' || s[i+2] != '/' {
		return false
	}
	u.scheme = s[:i]
	rest := s[i+3:]
	// The host runs to a port, path, query or fragment.
	end := 0
	if rest != "" && rest[0] == '[' {
		end = strings.IndexByte(rest, ']') + 1
		if end < 4 || !validIPv6Text(rest[:end]) {
			return false
		}
	} else {
		// A DNS name: no empty label (.. is looked for on the way), and
		// short enough.
		for end < len(rest) && hostByte[rest[end]] != 0 {
			if rest[end] == '.' && end > 0 && rest[end-1] == '.' {
				return false
			}
			end++
		}
		h := rest[:end]
		if h == "" || h[0] == '.' || h[len(h)-1] == '.' || len(h) > 63 && !validHostname(h) {
			return false
		}
	}
	u.host, rest = rest[:end], rest[end:]
	u.port = defaultPortFold(u.scheme)
	if rest != "" && rest[0] == ':' {
		n, k := 0, 1
		for ; k < len(rest) && k <= 6; k++ {
			c := rest[k]
			if c < '0' || c > '9' {
				break
			}
			n = n*10 + int(c-'0')
		}
		if k == 1 || k > 6 {
			return false
		}
		u.port, rest = n, rest[k:]
	}
	u.path = "/"
	switch {
	case rest == "":
	case rest[0] == '?' || rest[0] == '#':
		return !hasControl(rest)
	case rest[0] == '/':
		u.path = rest
		if !checkPresentedPath(&u.path) {
			return false
		}
		// The query and fragment are not matched, but a URL with a
		// control character anywhere is malformed, and matches nothing.
		return !hasControl(rest[len(u.path):])
	default:
		return false // @, a space, a % escape, anything else after the host.
	}
	return true
}

// hasControl reports whether s holds an ASCII control character (below
// 0x20, or DEL), which no well-formed URL does.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// hostByte marks the bytes a DNS name may hold.
var hostByte = func() (t [256]uint8) {
	for c := range 256 {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			t[c] = 1
		}
	}
	return t
}()

// presentedPathByte marks the bytes checkPresentedPath looks at: the ends
// of segments and of the path, and what a path may not hold.
var presentedPathByte = func() (t [256]uint8) {
	for c := range 256 {
		if c <= ' ' || c == 0x7f || c == '\\' || c == '/' || c == '?' || c == '#' {
			t[c] = 1
		}
	}
	return t
}()

// checkPresentedPath cuts the query and fragment off a presented path and
// reports whether what is left has no control character, space, backslash
// or dot segment.
func checkPresentedPath(path *string) bool {
	p, start := *path, 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		if presentedPathByte[c] == 0 {
			continue
		}
		switch c {
		case '?', '#':
			*path = p[:i]
			return !isDotSegment(p[start:i])
		case '/':
			if i-start <= 6 && isDotSegment(p[start:i]) {
				return false
			}
			start = i + 1
		default:
			return false
		}
	}
	return !isDotSegment(p[start:])
}

// isDotSegment reports whether seg is . or .., written plainly or with %2e.
func isDotSegment(seg string) bool {
	switch len(seg) {
	case 1:
		return seg == "."
	case 2:
		return seg == ".."
	case 3:
		return equalFold(seg, "%2e")
	case 4:
		return equalFold(seg, ".%2e") || equalFold(seg, "%2e.")
	case 6:
		return equalFold(seg, "%2e%2e")
	}
	return false
}

// match reports whether the pattern matches a presented URL.
func (p *referrer) match(u *presented) bool {
	if u.port != p.port {
		return false
	}
	// Most browsers send lower case: == first, then any case.
	if p.wildcard {
		n := len(u.host) - len(p.host)
		if n < 2 || u.host[n-1] != '.' || u.host[n:] != p.host && !equalLower(u.host[n:], p.host) {
			return false
		}
	} else if u.host != p.host && !equalLower(u.host, p.host) {
		return false
	}
	if u.scheme != p.scheme && !equalLower(u.scheme, p.scheme) {
		return false
	}
	switch p.path {
	case exactPath:
		return u.path == p.prefix
	case prefixPath:
		return strings.HasPrefix(u.path, p.prefix)
	}
	return true
}

// Within reports whether r allows no more than outer: each entry of r
// matches only what some one entry of outer matches. When it does not, i
// is the first entry of r at fault, or -1 when r has no entries (so allows
// everything) and outer has some. An outer without entries allows
// everything, so anything is within it.
func (r Referrers) Within(outer Referrers) (i int, ok bool) {
	if len(outer.pats) == 0 {
		return 0, true
	}
	if len(r.pats) == 0 {
		return -1, false
	}
	for i := range r.pats {
		covered := false
		for j := range outer.pats {
			if r.pats[i].within(&outer.pats[j]) {
				covered = true
				break
			}
		}
		if !covered {
			return i, false
		}
	}
	return 0, true
}

// within reports whether every URL p matches, o matches too.
func (p *referrer) within(o *referrer) bool {
	if p.scheme != o.scheme || p.port != o.port {
		return false
	}
	switch {
	case !o.wildcard && (p.wildcard || p.host != o.host):
		return false
	case o.wildcard && !(p.wildcard && p.host == o.host) && !strings.HasSuffix(p.host, "."+o.host):
		return false
	}
	switch o.path {
	case exactPath:
		return p.path == exactPath && p.prefix == o.prefix
	case prefixPath:
		return p.path != anyPath && strings.HasPrefix(p.prefix, o.prefix)
	}
	return true
}

// validScheme reports whether s is a URL scheme: a letter, then letters,
// digits, +, - or . (RFC 3986, section 3.1).
func validScheme(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if !(c >= 'a' && c <= 'z' || i > 0 && (s[i] >= '0' && s[i] <= '9' || s[i] == '+' || s[i] == '-' || s[i] == '.')) {
			return false
		}
	}
	return true
}

// defaultPortFold is defaultPort for a scheme in any case.
func defaultPortFold(scheme string) int {
	switch scheme {
	case "https", "wss":
		return 443
	case "http", "ws":
		return 80
	}
	switch {
	case equalLower(scheme, "https"), equalLower(scheme, "wss"):
		return 443
	case equalLower(scheme, "http"), equalLower(scheme, "ws"):
		return 80
	}
	return 0
}

// defaultPort is the port a URL of the scheme (in lower case) has when it
// names none; 0 for a scheme without one.
func defaultPort(scheme string) int {
	switch scheme {
	case "https", "wss":
		return 443
	case "http", "ws":
		return 80
	}
	return 0
}

// validHostname reports whether s is a DNS name (an IPv4 address is one):
// labels of letters, digits, - and _, none empty, at most 63 bytes each
// and 253 in all.
func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			label++
			if label > 63 {
				return false
			}
		default:
			return false
		}
	}
	return label > 0
}

// validIPv6Text reports whether s is [ followed by hex digits, colons and
// dots, and ]: the text of a bracketed IPv6 address, compared as text.
func validIPv6Text(s string) bool {
	if len(s) < 4 || s[len(s)-1] != ']' {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		if c := s[i]; !(isHex(c) || c == ':' || c == '.') {
			return false
		}
	}
	return true
}

// hasDotSegment reports whether a path has a . or .. segment, written
// plainly or with %2e.
func hasDotSegment(path string) bool {
	for rest := path; rest != ""; {
		var seg string
		seg, rest, _ = strings.Cut(rest, "/")
		if isDotSegment(seg) {
			return true
		}
	}
	return false
}

// equalLower reports whether s is lower in ASCII, ignoring the case of
// s; lower must be in lower case.
func equalLower(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// equalFold reports whether a and b are equal in ASCII, ignoring case.
// Unlike strings.EqualFold it folds nothing outside ASCII (the Kelvin sign
// is not k).
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if x|0x20 != y|0x20 || x|0x20 < 'a' || x|0x20 > 'z' {
			return false
		}
	}
	return true
}
