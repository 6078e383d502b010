package policy

import (
	"fmt"

	"github.com/keyward/keyward"
)

// CleanPath turns a request target, as a proxy passes it on (nginx's
// $request_uri, Traefik's X-Forwarded-Uri), into the path that routes and
// endpoint restrictions match: the query string and fragment cut off, and
// percent escapes decoded (/v1/%63ontacts is /v1/contacts).
//
// It refuses, with a CodeInvalidRequest *keyward.Error that says what is
// wrong and never quotes the whole path, a target that is not an absolute
// path (absolute-form http://host/x, or *), and a path with an empty
// segment (//), a . or .. segment (encoded or not), an encoded slash
// (%2F), a backslash (encoded or not), a control character such as %00
// (encoded or not), or a bad escape. Matching a refused path could let
// the upstream read it differently from the policy, so the caller answers
// 400 invalid_request instead.
//
// The result is a substring of target, without allocating, unless target
// has a % escape in its path. Path.Clean does the same and keeps where
// the segments end, for Policy.MatchPath and Endpoints.AllowPath.
func CleanPath(target string) (string, error) {
	var p Path
	err := p.Clean(target)
	return p.s, err
}

// maxSegments is how many segment ends a Path keeps; the ends of further
// segments are looked for when a match gets that deep.
const maxSegments = 24

// Path is a clean request path with the ends of its first segments, found
// once by Clean so that the route policy and a key's endpoints, which
// both match the path, need not look for them again. The zero Path
// matches nothing; a Path is small enough to live on the stack.
type Path struct {
	s string
	// n is how many segment ends ends holds; ends[i] is the offset in s of
	// the end of segment i (0-based), a slash or len(s).
	n    int
	ends [maxSegments]uint16
}

// String returns the clean path.
func (p *Path) String() string { return p.s }

// Clean sets p to the clean path of a request target, as CleanPath
// returns it; on error p is the zero Path.
func (p *Path) Clean(target string) error {
	p.s, p.n = "", 0
	if target == "" || target[0] != '/' {
		return pathError("is not an absolute path: it must start with /")
	}
	// One pass over the bytes finds the end of the path, refuses what is
	// refused unencoded, checks each segment as it ends, and keeps where
	// it ends. An offset past a uint16 is not kept.
	keep := maxSegments
	if len(target) > 1<<16-1 {
		keep = 0
	}
	end, escaped, start, n := len(target), false, 1, 1
scan:
	for i := 1; i < len(target); i++ {
		c := target[i]
		if pathByte[c] == 0 {
			continue
		}
		switch {
		case c == '?' || c == '#':
			end = i
			break scan
		case c == '/':
			// Only a segment of two bytes or less can be refused.
			if i-start <= 2 {
				if err := checkSegment(target[start:i], n, false); err != nil {
					return err
				}
			}
			if n <= keep {
				p.ends[n-1] = uint16(i)
			}
			start, n = i+1, n+1
		case c == '%':
			escaped = true
		case c == '\\':
			return pathError("contains a backslash (\\)")
		default:
			return pathError("contains a control character")
		}
	}
	if err := checkSegment(target[start:end], n, true); err != nil {
		return err
	}
	if !escaped {
		if n <= keep {
			p.ends[n-1] = uint16(end)
		}
		p.s, p.n = target[:end], min(n, keep)
		return nil
	}
	path, problem := unescape(target[:end])
	if problem != "" {
		return pathError(problem)
	}
	// A decoded segment may be a dot segment (%2e%2e); it cannot be empty,
	// since an encoded slash is refused.
	start, n = 1, 1
	for {
		e := segmentEnd(path, start)
		if err := checkSegment(path[start:e], n, e == len(path)); err != nil {
			return err
		}
		if n <= keep {
			p.ends[n-1] = uint16(e)
		}
		if e == len(path) {
			break
		}
		start, n = e+1, n+1
	}
	p.s, p.n = path, min(n, keep)
	return nil
}

// end returns the end of segment i of the path, which starts at start.
func (p *Path) end(i, start int) int {
	if i < p.n {
		return int(p.ends[i])
	}
	return segmentEnd(p.s, start)
}

// segmentEnd returns the offset of the first slash of path at or after
// start, or len(path).
func segmentEnd(path string, start int) int {
	// Segments are short: a loop is faster than strings.IndexByte's call.
	for i := start; i < len(path); i++ {
		if path[i] == '/' {
			return i
		}
	}
	return len(path)
}

// pathByte marks the bytes CleanPath looks at: the ends of segments and of
// the path, escapes, backslashes and control characters.
var pathByte = func() (t [256]uint8) {
	for c := range 0x20 {
		t[c] = 1
	}
	for _, c := range "\x7f?#/%\\" {
		t[c] = 1
	}
	return t
}()

// checkSegment refuses the n-th segment of a path when it is empty (but
// for the last, a trailing slash) or a dot segment.
func checkSegment(seg string, n int, last bool) error {
	switch {
	case seg == "" && !last:
		return pathError(fmt.Sprintf("has an empty segment (//) at segment %d", n))
	case seg == "." || seg == "..":
		return pathError(fmt.Sprintf("has a %q segment at segment %d", seg, n))
	}
	return nil
}

// pathError is CleanPath's error.
func pathError(problem string) *keyward.Error {
	return keyward.Errorf(keyward.CodeInvalidRequest, "The request path %s; send a clean absolute path.", problem)
}

// unescape decodes the percent escapes of a path or of a pattern's
// segment; problem says what is wrong when it cannot. An escape that
// decodes to a slash, a backslash or a control character is refused: the
// first would change the segments, the others are refused unencoded too.
func unescape(s string) (decoded, problem string) {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			end := min(i+3, len(s))
			return "", fmt.Sprintf("has a bad percent escape %q: write %% as %%25, and escapes as %% and two hex digits", s[i:end])
		}
		c = unhex(s[i+1])<<4 | unhex(s[i+2])
		switch {
		case c == '/':
			return "", fmt.Sprintf("has an encoded slash (%s)", s[i:i+3])
		case c == '\\':
			return "", fmt.Sprintf("has an encoded backslash (%s)", s[i:i+3])
		case c < 0x20 || c == 0x7f:
			return "", fmt.Sprintf("has an encoded control character (%s)", s[i:i+3])
		}
		b = append(b, c)
		i += 2
	}
	return string(b), ""
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// CheckMethod refuses, with a CodeInvalidRequest *keyward.Error, a
// request's method that is not an HTTP method in upper case: a token of
// RFC 9110 without lower-case letters. Routes and endpoints match the
// method exactly, so get would match no GET route and fall to the
// default, while an upstream that reads it as GET (Werkzeug, for one)
// would serve the GET route. The error never quotes the method.
func CheckMethod(method string) error {
	if method == "" || len(method) > 32 {
		return methodError
	}
	for i := 0; i < len(method); i++ {
		c := method[i]
		if c >= 'a' && c <= 'z' || c >= 0x80 || !tokenByte[c] {
			return methodError
		}
	}
	return nil
}

// methodError is CheckMethod's refusal.
var methodError = keyward.Errorf(keyward.CodeInvalidRequest,
	"The request method is not an HTTP method in upper case (such as GET or POST); send the original request's method as the client sent it, and refuse lower-case ones at the proxy.")

// tokenByte marks the bytes of an HTTP token (RFC 9110, tchar).
var tokenByte = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c], t[c+'a'-'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()
