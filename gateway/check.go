package gateway

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/reqlog"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/verify"
)

// Checker is the gateway's verification of a request, apart from any HTTP
// stack: it decides whether the request passes and, if so, which upstream
// it goes to. Gateway serves it with net/http; another listener and
// upstream client (fasthttp, say) would fill a Request from its own
// request, call Check, and answer Decision.Refusal or proxy to
// Decision.Upstream with the identity headers, leaving these checks as
// they are. It is safe for concurrent use.
type Checker struct {
	verifier   *verify.Verifier
	routes     *policy.File
	requireTLS bool
	// upstream and upstreamTest are where live and test keys' requests
	// go when their route names no upstream of its own; upstreamTest is
	// nil when test keys have nowhere to go.
	upstream, upstreamTest *url.URL
}

// NewChecker returns the Checker of c's Verifier, Routes, RequireTLS,
// Upstream and UpstreamTest (the other fields are the HTTP front's).
func NewChecker(c Config) (*Checker, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	return &Checker{verifier: c.Verifier, routes: c.Routes, requireTLS: c.RequireTLS, upstream: c.Upstream, upstreamTest: c.UpstreamTest}, nil
}

// Request is what Check reads of an incoming request.
type Request struct {
	// Method is the request's method, and Target its request-target as
	// received (the path and query string, not decoded), which the route
	// policy decides by.
	Method, Target string
	// URL is Target parsed, whose path and query the presenting rules
	// search for a key (verify.KeyFrom).
	URL *url.URL
	// Header is the request's header, in canonical form: Check reads
	// X-Api-Key, Authorization, Referer and Origin. A front on another
	// HTTP stack may give those four alone.
	Header http.Header
	// ClientIP is the client's address, as the trusted proxies say it
	// (forwarded.Proxies.ClientIP); TLS whether the request came over
	// TLS, on its own connection or as a trusted proxy says
	// (forwarded.Proxies.Secure).
	ClientIP netip.Addr
	TLS      bool
}

// Decision is what Check decided of a request. A front may reuse one for
// another request once it is done with it: Check resets it.
type Decision struct {
	// Refusal is the answer to a refused request, to be written as
	// problem+json; nil when the request passes.
	Refusal *keyward.Error
	// Result is the verification: for a request that passes, the key
	// (Result.Key, Result.Access: the identity headers, identity.Set) or
	// a public route (Result.Public). Result.RateLimit, when not nil, is
	// the decision of the key's rate limits, whose headers
	// (limit.SetHeaders) go on the answer, whether refused or proxied.
	Result verify.Result
	// Upstream is where a request that passes goes.
	Upstream *url.URL

	req  verify.Request
	rate limit.Decision
}

// Public details of the gateway's own refusals.
const (
	detailTLSRequired    = "This gateway takes requests over HTTPS only; send the request again with https://, and, if it carried a key, consider replacing the key, which was sent in the clear."
	detailNoTestUpstream = "This is a test key, and the gateway has nowhere to send the requests of test keys for this route " +
		"(no upstream_test for a route with its own upstream, or no --upstream-test): test keys never reach live data. " +
		"Use a live key, or ask the operator for a test upstream."
)

// errTLSRequired is the answer to a request over plain HTTP to a gateway
// that requires TLS (serve --require-tls).
var errTLSRequired = &keyward.Error{Code: keyward.CodeTLSRequired, Message: detailTLSRequired}

// Check verifies in as forward-auth verifies the request a proxy asks it
// about, with the route policy, into d: the same outcomes in the same
// order (docs/outcomes.md), then the upstream. Counting (step 11) comes
// last, once the request has somewhere to go, so that a request the
// gateway cannot send is not counted.
//
// The request of a test key goes to its route's upstream_test, or, for a
// route without an upstream of its own, to the gateway's test upstream;
// with neither it is refused 403 environment_mismatch. That refusal
// stands at step 7 of the order, as a route's environments do: a
// refusal of the steps after it (IP, referrer, endpoint, tenant,
// resources, permissions) gives way to it.
func (c *Checker) Check(ctx context.Context, in *Request, d *Decision) {
	d.Refusal, d.Result, d.Upstream = nil, verify.Result{}, nil
	if c.requireTLS && !in.TLS {
		d.Refusal = errTLSRequired
		return
	}
	d.req = verify.Request{
		Method: in.Method, Target: in.Target, IP: in.ClientIP, TLS: in.TLS,
		Referer: headerValue(in.Header, "Referer"), Origin: headerValue(in.Header, "Origin"),
		Policy: c.routes.Policy(), Counting: verify.CountLater,
	}
	res := c.verifier.VerifyPresented(ctx, in.Header, in.URL, &d.req)
	route := res.Route
	switch {
	case res.Public:
		d.Result, d.Upstream = res, c.upstream
		if route != nil && route.Upstream != nil {
			d.Upstream = route.Upstream
		}
		return
	case res.Key != nil && (res.Valid() || afterEnvironment(res.Code)):
		d.Upstream = c.upstreamOf(route, res.Key.Environment)
		if d.Upstream == nil {
			d.Result = res
			d.Refusal = &keyward.Error{Code: keyward.CodeEnvironmentMismatch, Message: detailNoTestUpstream}
			return
		}
	}
	if res.Valid() {
		d.rate = limit.Decision{}
		d.req.RateLimit = &d.rate
		c.verifier.Count(ctx, &d.req, &res)
		d.req.RateLimit = nil
	}
	d.Result = res
	if !res.Valid() {
		d.Refusal, d.Upstream = res.Err(), nil
	}
}

// upstreamOf returns where the request of a key in env goes on route (nil
// for none): its route's upstream, or the gateway's; nil for a test key
// with no test upstream there.
func (c *Checker) upstreamOf(route *policy.Route, env keyward.Environment) *url.URL {
	own := route != nil && route.Upstream != nil
	if env == keyward.Test {
		switch {
		case route != nil && route.UpstreamTest != nil:
			return route.UpstreamTest
		case own:
			return nil
		}
		return c.upstreamTest
	}
	if own {
		return route.Upstream
	}
	return c.upstream
}

// afterEnvironment reports whether code is a refusal of a step after 7
// (docs/outcomes.md), which a refusal for the key's environment comes
// before.
func afterEnvironment(code keyward.Code) bool {
	switch code {
	case keyward.CodeIPNotAllowed, keyward.CodeReferrerNotAllowed, keyward.CodeEndpointNotAllowed,
		keyward.CodeNotFound, keyward.CodePlanNotEntitled, keyward.CodeInsufficientPermissions:
		return true
	}
	return false
}

// headerValue is h's first value under the canonical name, read without
// Header.Get's canonicalization.
func headerValue(h http.Header, name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// logged fills e with d's verification on surface, for the request log:
// the request as the checks read it, the key and the outcome.
func (d *Decision) logged(e *reqlog.Entry, surface string) {
	e.Verified(surface, &d.Result, &d.req)
}
