package policy

import (
	"fmt"
	"strings"
)

// relation is how the requests two patterns match compare, after
// net/http's pattern.go (Go 1.22's ServeMux), whose rules this file
// follows with two changes: a pattern always has a method, * standing for
// ServeMux's empty method, and ** matches zero or more segments where
// ServeMux's trailing {name...} matches one or more.
type relation uint8

const (
	equivalent   relation = iota // both match the same requests
	moreGeneral                  // p1 matches everything p2 does, and more
	moreSpecific                 // p2 matches everything p1 does, and more
	disjoint                     // no request matches both
	overlaps                     // some request matches both, neither is more specific
)

// compare returns the relation of p1 to p2.
func (p1 *Pattern) compare(p2 *Pattern) relation {
	m := compareMethods(p1.method, p2.method)
	if m == disjoint {
		return disjoint
	}
	return combine(m, comparePaths(p1.segs, p2.segs))
}

// conflicts reports whether p1 and p2 match some request alike with
// neither more specific: a policy cannot hold both, since nothing would
// say which of them decides that request.
func (p1 *Pattern) conflicts(p2 *Pattern) bool {
	r := p1.compare(p2)
	return r == equivalent || r == overlaps
}

// compareMethods compares two methods: * matches every method, GET matches
// GET and HEAD, any other method only itself.
func compareMethods(m1, m2 string) relation {
	switch {
	case m1 == m2:
		return equivalent
	case m1 == AnyMethod:
		return moreGeneral
	case m2 == AnyMethod:
		return moreSpecific
	case m1 == "GET" && m2 == "HEAD":
		return moreGeneral
	case m1 == "HEAD" && m2 == "GET":
		return moreSpecific
	}
	return disjoint
}

// comparePaths compares two paths segment by segment.
func comparePaths(s1, s2 []segment) relation {
	multi1 := s1[len(s1)-1].kind == segMulti
	multi2 := s2[len(s2)-1].kind == segMulti
	if len(s1) != len(s2) && !multi1 && !multi2 {
		return disjoint
	}
	rel := equivalent
	for ; len(s1) > 0 && len(s2) > 0; s1, s2 = s1[1:], s2[1:] {
		rel = combine(rel, compareSegments(s1[0], s2[0]))
		if rel == disjoint {
			return disjoint
		}
	}
	// What is left of the longer pattern meets the end of the shorter.
	// The shorter one must end in ** (which matches whatever is left), or
	// the longer one must have nothing left but its ** (which matches zero
	// segments, so matches where the shorter one ends).
	switch {
	case len(s1) == 0 && len(s2) == 0:
		return rel
	case len(s2) > 0 && multi1:
		return combine(rel, moreGeneral)
	case len(s1) > 0 && multi2:
		return combine(rel, moreSpecific)
	case len(s1) == 1 && multi1:
		return combine(rel, moreGeneral)
	case len(s2) == 1 && multi2:
		return combine(rel, moreSpecific)
	}
	return disjoint
}

// compareSegments compares two segments at the same place.
func compareSegments(a, b segment) relation {
	switch {
	case a.kind == segMulti && b.kind == segMulti:
		return equivalent
	case a.kind == segMulti:
		return moreGeneral
	case b.kind == segMulti:
		return moreSpecific
	case a.kind == segWild && b.kind == segWild:
		return equivalent
	case a.kind == segWild:
		if b.lit == "" {
			return disjoint // A wildcard matches no trailing slash.
		}
		return moreGeneral
	case b.kind == segWild:
		if a.lit == "" {
			return disjoint
		}
		return moreSpecific
	case a.lit == b.lit:
		return equivalent
	}
	return disjoint
}

// combine gives the relation of two patterns from the relations of two
// parts that together make them up: more general in one part and more
// specific in the other is an overlap.
func combine(r1, r2 relation) relation {
	switch r1 {
	case equivalent:
		return r2
	case disjoint:
		return disjoint
	case overlaps:
		if r2 == disjoint {
			return disjoint
		}
		return overlaps
	}
	switch r2 {
	case equivalent:
		return r1
	case inverse(r1):
		return overlaps
	}
	return r2
}

// inverse is the relation of p2 to p1 when r is that of p1 to p2.
func inverse(r relation) relation {
	switch r {
	case moreGeneral:
		return moreSpecific
	case moreSpecific:
		return moreGeneral
	}
	return r
}

// describeConflict says why two overlapping patterns conflict, with a
// request that both match.
func describeConflict(p1, p2 *Pattern) string {
	m := compareMethods(p1.method, p2.method)
	pr := comparePaths(p1.segs, p2.segs)
	example := commonMethod(p1.method, p2.method) + " " + commonPath(p1.segs, p2.segs)
	switch {
	case m == moreGeneral && pr == moreSpecific:
		return fmt.Sprintf("both match %s; %q matches more methods, but %q more paths, so neither is more specific", example, p1, p2)
	case m == moreSpecific && pr == moreGeneral:
		return fmt.Sprintf("both match %s; %q matches more paths, but %q more methods, so neither is more specific", example, p1, p2)
	}
	return fmt.Sprintf("both match %s, and neither is more specific than the other", example)
}

// commonMethod is a method both m1 and m2 match.
func commonMethod(m1, m2 string) string {
	switch {
	case m1 == m2 && m1 == AnyMethod:
		return "GET"
	case m1 == AnyMethod:
		return m2
	case m2 == AnyMethod, m1 == m2:
		return m1
	case m1 == "HEAD" || m2 == "HEAD":
		return "HEAD"
	}
	return m1
}

// commonPath is a path both patterns match; they must overlap.
func commonPath(s1, s2 []segment) string {
	var b strings.Builder
	for ; len(s1) > 0 && len(s2) > 0; s1, s2 = s1[1:], s2[1:] {
		switch a, c := s1[0], s2[0]; {
		case a.kind == segLiteral:
			writeExample(&b, a)
		case c.kind == segLiteral:
			writeExample(&b, c)
		case a.kind == segWild:
			writeExample(&b, a)
		default:
			writeExample(&b, c)
		}
	}
	for _, s := range s1 {
		writeExample(&b, s)
	}
	for _, s := range s2 {
		writeExample(&b, s)
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

// writeExample writes a path segment that s matches; nothing for **.
func writeExample(b *strings.Builder, s segment) {
	switch s.kind {
	case segLiteral:
		b.WriteString("/" + s.lit)
	case segWild:
		if s.name != "" {
			b.WriteString("/" + s.name)
		} else {
			b.WriteString("/x")
		}
	}
}
