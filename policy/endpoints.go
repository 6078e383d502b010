package policy

import (
	"fmt"

	"github.com/keyward/keyward"
)

// Limits on a key's restrictions.
const (
	// MaxEndpoints is the most entries restrictions.endpoints may hold.
	MaxEndpoints = 100
	// MaxReferrers is the most entries restrictions.referrers may hold.
	MaxReferrers = 100
	// MaxEntryLen is the longest entry of either, in bytes.
	MaxEntryLen = 512
)

// Endpoints are a key's endpoint restrictions (restrictions.endpoints):
// the requests it may make, as patterns of the route policy's grammar.
// The zero Endpoints restricts nothing.
type Endpoints struct {
	pats []*Pattern
}

// ParseEndpoints reads a key's endpoint restrictions. Its error is a
// CodeInvalidRequest *keyward.Error naming the entry at fault, such as
// restrictions.endpoints[2].
func ParseEndpoints(entries []string) (Endpoints, error) {
	const field = "restrictions.endpoints"
	if len(entries) > MaxEndpoints {
		return Endpoints{}, keyward.FieldErrorf(field, "has %d entries; use at most %d", len(entries), MaxEndpoints)
	}
	var e Endpoints
	for i, s := range entries {
		f := fmt.Sprintf("%s[%d]", field, i)
		if len(s) > MaxEntryLen {
			return Endpoints{}, keyward.FieldErrorf(f, "is %d bytes long; use at most %d", len(s), MaxEntryLen)
		}
		p, err := ParsePattern(s)
		if err != nil {
			return Endpoints{}, keyward.FieldErrorf(f, "%v", err)
		}
		e.pats = append(e.pats, p)
	}
	return e, nil
}

// Len returns the number of entries; 0 restricts nothing.
func (e Endpoints) Len() int { return len(e.pats) }

// Strings returns the entries, each written as Pattern.String does.
func (e Endpoints) Strings() []string {
	out := make([]string, len(e.pats))
	for i, p := range e.pats {
		out[i] = p.String()
	}
	return out
}

// Allow reports whether a request with this method and clean path (a
// CleanPath result) is allowed: it matches one of the entries, or there
// are none. It allocates nothing.
func (e Endpoints) Allow(method, cleanPath string) bool {
	path := Path{s: cleanPath}
	return e.AllowPath(method, &path)
}

// AllowPath is Allow for a path cleaned by Path.Clean, whose segments it
// need not look for again.
func (e Endpoints) AllowPath(method string, path *Path) bool {
	if len(e.pats) == 0 {
		return true
	}
	for _, p := range e.pats {
		if p.matchMethod(method) && p.matchPath(path, nil) {
			return true
		}
	}
	return false
}

// Within reports whether e allows no more than outer: each entry of e
// matches only requests that some one entry of outer matches. When it
// does not, i is the first entry of e at fault, or -1 when e has no
// entries (so allows everything) and outer has some. An outer without
// entries allows everything, so anything is within it.
func (e Endpoints) Within(outer Endpoints) (i int, ok bool) {
	if len(outer.pats) == 0 {
		return 0, true
	}
	if len(e.pats) == 0 {
		return -1, false
	}
	for i, p := range e.pats {
		covered := false
		for _, o := range outer.pats {
			if r := p.compare(o); r == equivalent || r == moreSpecific {
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
