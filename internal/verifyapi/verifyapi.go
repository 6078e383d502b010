// Package verifyapi is what the HTTP fronts of the API share beyond
// forward-auth, apart from any HTTP stack: the admission of a request to
// a route that needs a key (Admit, which the HTTP API applies to every
// such route), and POST /v1/verify (Verify), which the HTTP API (net/http)
// and the auth listener (gateway, fasthttp) both answer by, so that it
// answers the same on either.
package verifyapi

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"unsafe"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/verify"
)

// Admit verifies the key that a request to a route of the API presents,
// in its header h or its URL u, with what req says of the request (its
// own method, target, Referer, Origin, client address and TLS), has
// manage.Authorize decide whether the caller the key stands for meets
// need, and only then counts the request against the key's rate limits,
// quotas and credits, so that a request refused for its role costs
// nothing. addr is req.IP as text (AddrString), for the caller's audit
// entries. It returns the verification, whose RateLimit (in
// req.RateLimit, which the caller provides) holds the headers of the
// answer, whether admitted or not; the caller; and the refusal, if any.
func Admit(ctx context.Context, v *verify.Verifier, h http.Header, u *url.URL, req *verify.Request, addr string, need manage.Requirement) (verify.Result, manage.Caller, *keyward.Error) {
	req.Counting = verify.CountLater
	res := v.VerifyPresented(ctx, h, u, req)
	if !res.Valid() {
		return res, manage.Caller{}, res.Err()
	}
	c := manage.CallerOf(res, addr)
	if err := manage.Authorize(c, need); err != nil {
		return res, c, AsError(err)
	}
	v.Count(ctx, req, &res)
	if !res.Valid() {
		return res, c, res.Err()
	}
	return res, c, nil
}

// AddrString is a client address for the audit log: "" when unknown.
func AddrString(ip netip.Addr) string {
	if !ip.IsValid() {
		return ""
	}
	return ip.String()
}

// Body is the body of POST /v1/verify.
type Body struct {
	Key         string   `json:"key" description:"the key to check, as the client sent it"`
	Permissions []string `json:"permissions,omitempty" description:"permissions the request needs; all must be held"`
	IP          string   `json:"ip,omitempty" description:"the client's address, checked against the key's IP restrictions"`
	Method      string   `json:"method,omitempty" description:"the original request's method, checked against the key's endpoint restrictions and the route policy"`
	Path        string   `json:"path,omitempty" description:"the original request's path (and query string), as received: checked against the key's endpoint restrictions, and, when the server has a route policy (serve --routes), the policy decides what the request needs, beside permissions"`
	Referrer    string   `json:"referrer,omitempty" description:"the original request's Referer header, checked against the key's referrer restrictions"`
	Origin      string   `json:"origin,omitempty" description:"the original request's Origin header, checked against the key's referrer restrictions when there is no referrer"`
	TLS         bool     `json:"tls,omitempty" description:"true when the original request came over TLS (HTTPS): a route of the policy with tls: required refuses one without it, 403 tls_required"`
}

// Verify checks the key of in for caller c, through manage.Verify, as
// keyward verify does: the caller must be admitted as a manage.Verifier
// (keyward:verify, or a root key). The key's restrictions are checked
// against the method, path, referrer and origin in gives, and with a
// path, routes decides, if there is one (nil for none). The key's own
// outcome is in the result, whose RateLimit is in req.RateLimit when the
// caller provides one; the error is the caller's refusal, or a field of
// in that cannot be read.
func Verify(ctx context.Context, c manage.Caller, v *verify.Verifier, routes *policy.File, in *Body, req *verify.Request) (verify.Result, *keyward.Error) {
	*req = verify.Request{Key: in.Key, Permissions: in.Permissions, Method: in.Method, Target: in.Path, Referer: in.Referrer,
		Origin: in.Origin, TLS: in.TLS, RateLimit: req.RateLimit}
	if in.Path != "" && routes != nil {
		req.Policy = routes.Policy()
	}
	if in.IP != "" {
		ip, err := netip.ParseAddr(in.IP)
		if err != nil {
			return verify.Result{}, keyward.FieldErrorf("ip", "%q is not an IP address", in.IP)
		}
		req.IP = ip.Unmap()
	}
	res, err := manage.Verify(ctx, c, v, *req)
	if err != nil {
		return res, AsError(err)
	}
	return res, nil
}

// AsError is err as a *keyward.Error, an internal one if it is none.
func AsError(err error) *keyward.Error {
	var e *keyward.Error
	if !errors.As(err, &e) {
		e = keyward.Internal(err)
	}
	return e
}

// DecodeSimple decodes body into b, as jsonbody.Decode would, when body
// is a JSON object of Body's fields in their own spelling, each at most
// once, whose strings hold printable ASCII without escapes, and whose
// values are of their field's type (no null): the body of nearly every
// request. It reports false for any other body, and b is then to be
// decoded by jsonbody.Decode, which says what is wrong with it, if
// anything. The strings of b view body, without a copy: b is good only as
// long as body is, and body must not change meanwhile.
// TestDecodeSimple holds it to jsonbody.Decode's answers.
func (b *Body) DecodeSimple(body []byte) bool {
	p := simpleParser{in: body}
	var seen [8]bool
	p.ws()
	if !p.byte('{') {
		return false
	}
	p.ws()
	if p.byte('}') {
		return p.end()
	}
	for {
		name, ok := p.str()
		if !ok {
			return false
		}
		p.ws()
		if !p.byte(':') {
			return false
		}
		p.ws()
		i := slices.Index(bodyFields[:], name)
		if i < 0 || seen[i] {
			return false
		}
		seen[i] = true
		switch name {
		case "permissions":
			if b.Permissions, ok = p.strs(b.Permissions[:0]); !ok {
				return false
			}
		case "tls":
			if b.TLS, ok = p.bool(); !ok {
				return false
			}
		default:
			v, ok := p.str()
			if !ok {
				return false
			}
			*b.field(name) = v
		}
		p.ws()
		if p.byte('}') {
			return p.end()
		}
		if !p.byte(',') {
			return false
		}
		p.ws()
	}
}

// bodyFields are the names of Body's fields in JSON.
var bodyFields = [...]string{"key", "permissions", "ip", "method", "path", "referrer", "origin", "tls"}

// field returns the string field of b named name in JSON.
func (b *Body) field(name string) *string {
	switch name {
	case "key":
		return &b.Key
	case "ip":
		return &b.IP
	case "method":
		return &b.Method
	case "path":
		return &b.Path
	case "referrer":
		return &b.Referrer
	}
	return &b.Origin
}

// simpleParser reads the JSON that DecodeSimple takes.
type simpleParser struct {
	in []byte
	i  int
}

// ws skips JSON's white space.
func (p *simpleParser) ws() {
	for p.i < len(p.in) {
		switch p.in[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// byte consumes c if it comes next.
func (p *simpleParser) byte(c byte) bool {
	if p.i < len(p.in) && p.in[p.i] == c {
		p.i++
		return true
	}
	return false
}

// end reports whether only white space is left.
func (p *simpleParser) end() bool {
	p.ws()
	return p.i == len(p.in)
}

// str reads a string of printable ASCII without escapes, viewed.
func (p *simpleParser) str() (string, bool) {
	if !p.byte('"') {
		return "", false
	}
	start := p.i
	for p.i < len(p.in) {
		switch c := p.in[p.i]; {
		case c == '"':
			s := p.in[start:p.i]
			p.i++
			return unsafe.String(unsafe.SliceData(s), len(s)), true
		case c < 0x20 || c > 0x7e || c == '\\':
			return "", false
		}
		p.i++
	}
	return "", false
}

// strs reads an array of such strings, appended to dst.
func (p *simpleParser) strs(dst []string) ([]string, bool) {
	if !p.byte('[') {
		return dst, false
	}
	p.ws()
	if p.byte(']') {
		return dst, true
	}
	for {
		s, ok := p.str()
		if !ok {
			return dst, false
		}
		dst = append(dst, s)
		p.ws()
		if p.byte(']') {
			return dst, true
		}
		if !p.byte(',') {
			return dst, false
		}
		p.ws()
	}
}

// bool reads true or false.
func (p *simpleParser) bool() (bool, bool) {
	rest := p.in[p.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		p.i += 4
		return true, true
	case len(rest) >= 5 && string(rest[:5]) == "false":
		p.i += 5
		return false, true
	}
	return false, false
}
