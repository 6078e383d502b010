// Package middleware verifies API keys inside a Go program's own HTTP
// server: a func(http.Handler) http.Handler that answers every request as
// Keyward's forward-auth would (the same refusals, as problem+json with the
// same status, code and detail, WWW-Authenticate, RateLimit headers,
// Deprecation and Sunset, and Retry-After), and hands the handlers behind
// it the verified key's identity (Identity).
//
// It verifies in one of two modes:
//
//   - in process (New), with a verify.Verifier on the program's own store
//     (package sqlite or postgres): the same cache and change feed as a
//     Keyward server, and no network round trip;
//   - remote (NewRemote), against a Keyward server's POST /v1/verify, with
//     a local cache of the answers that the server keeps fresh: it pushes
//     every change over GET /v1/changes, so that a revocation reaches the
//     program within a second, as it reaches the server's own nodes.
package middleware

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/problem"
	"github.com/keyward/keyward/internal/requestid"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/verify"
)

// Options say what the middleware asks of each request.
type Options struct {
	// ProblemBase is the public URL of the Keyward server whose pages
	// explain each refusal (serve --public-url): a refusal's problem type
	// is ProblemBase/problems/<code>. Empty: urn:keyward:error:<code>.
	ProblemBase string
	// Permissions are the permissions every request needs, beside those
	// its route needs.
	Permissions []string
	// Routes is the route policy (docs/policy.md) that decides what each
	// request needs, and which routes are public; nil for none. In
	// process only: in remote mode, the server's own route policy
	// (serve --routes) decides, and Routes must be nil.
	Routes *policy.File
	// ClientIP returns the address of the request's client, which the
	// key's IP restrictions and the failed-attempt limiter see; nil means
	// the connection's peer (Request.RemoteAddr). Behind a proxy, give
	// one that reads the proxy's X-Forwarded-For.
	ClientIP func(*http.Request) netip.Addr
	// TLS reports whether the client's request came over TLS (HTTPS),
	// which a route of the policy with tls: required asks for; nil means
	// the connection's own (Request.TLS). Behind a proxy that ends TLS,
	// give one that reads the scheme the proxy sets (X-Forwarded-Proto),
	// from your own proxy only.
	TLS func(*http.Request) bool
	// Logger receives the failures of the verification itself (the
	// store or the server cannot be reached); nil discards them. It
	// never receives a key.
	Logger *slog.Logger
}

// Caller is the key a request was verified with, and what it may do: what
// forward-auth's identity headers carry.
type Caller struct {
	// KeyID is the key's id (key_…), and KeyName its name.
	KeyID, KeyName string
	// TenantID (ten_…) and TenantSlug name the key's tenant.
	TenantID, TenantSlug string
	// MemberID is the member the key belongs to (mem_…), or "" for a key
	// of the tenant as a whole.
	MemberID string
	// Plan is the name of the tenant's plan.
	Plan string
	// Environment is the key's: live or test.
	Environment keyward.Environment
	// Permissions are the key's effective permissions: those it holds and
	// may use now. Shared with the verifier's cache: treat as read-only.
	Permissions []string
}

// callerKey is the context key of the request's Caller.
type callerKey struct{}

// Identity returns the key that the middleware verified the request of
// ctx with, and false when there is none: the request did not pass
// through the middleware, or its route is public.
func Identity(ctx context.Context) (*Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(*Caller)
	return c, ok
}

// checker verifies the request r, whose verification req holds what the
// request itself says (its key and policy excepted), for the middleware:
// it returns the Caller of an accepted key, nil for a public route, or the
// refusal. It sets the RateLimit headers of the key's decision on w.
type checker func(w http.ResponseWriter, r *http.Request, req *verify.Request) (*Caller, *keyward.Error)

// wrap returns the middleware that verifies every request with check.
func wrap(check checker, opts Options) func(http.Handler) http.Handler {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ids := requestid.New()
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := ids.Of(r.Header)
			w.Header()["X-Request-Id"] = []string{id}
			target := r.RequestURI
			if target == "" || target[0] != '/' {
				// An absolute-form or * target, or a request made
				// in process: the path the server routes by.
				target = r.URL.RequestURI()
			}
			req := verify.Request{
				Method: r.Method, Target: target, Referer: r.Header.Get("Referer"), Origin: r.Header.Get("Origin"),
				Permissions: opts.Permissions, IP: clientIP(r, opts.ClientIP), TLS: overTLS(r, opts.TLS),
			}
			c, err := check(w, r, &req)
			if err != nil {
				// A client that went away, and took the question to
				// the store or the server with it, is no failure.
				if err.Code.Status() >= 500 && r.Context().Err() == nil {
					log.ErrorContext(r.Context(), "middleware: could not verify a key", "request_id", id, "code", err.Code, "err", err)
				}
				problem.Write(w, err, id, opts.ProblemBase)
				return
			}
			if c != nil {
				r = r.WithContext(context.WithValue(r.Context(), callerKey{}, c))
			}
			next.ServeHTTP(w, r)
		})
	}
}

// clientIP is the client address of r: of, or the connection's peer.
func clientIP(r *http.Request, of func(*http.Request) netip.Addr) netip.Addr {
	if of != nil {
		return of(r)
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// overTLS reports whether r came over TLS: of, or the connection's own.
func overTLS(r *http.Request, of func(*http.Request) bool) bool {
	if of != nil {
		return of(r)
	}
	return r.TLS != nil
}

// New returns the middleware that verifies keys in process with v, which
// the caller made on its store (verify.New) and started (Verifier.Start),
// so that the change feed keeps its cache fresh, and closes when done.
func New(v *verify.Verifier, opts Options) func(http.Handler) http.Handler {
	return wrap(func(w http.ResponseWriter, r *http.Request, req *verify.Request) (*Caller, *keyward.Error) {
		return checkLocal(v, opts.Routes, w, r, req)
	}, opts)
}

// checkLocal verifies r with v as forward-auth does, with the route policy
// of routes (nil for none): a request without a key, or with an
// Authorization header meant for someone else, passes a public route, and
// is refused tls_required by a route with tls: required, as forward-auth
// refuses it.
func checkLocal(v *verify.Verifier, routes *policy.File, w http.ResponseWriter, r *http.Request, req *verify.Request) (*Caller, *keyward.Error) {
	if routes != nil {
		req.Policy = routes.Policy()
	}
	d := decisions.Get().(*limit.Decision)
	defer decisions.Put(d)
	req.RateLimit = d
	res := v.VerifyPresented(r.Context(), r.Header, r.URL, req)
	if res.RateLimit != nil {
		limit.SetHeaders(w.Header(), res.RateLimit)
	}
	res.Notice.SetHeaders(w.Header())
	switch {
	case !res.Valid():
		return nil, res.Err()
	case res.Public:
		return nil, nil
	}
	k, a := res.Key, res.Access
	return &Caller{
		KeyID: k.ID, KeyName: k.Name, TenantID: k.TenantID, TenantSlug: a.Tenant.Slug, MemberID: k.MemberID,
		Plan: a.Plan.Name, Environment: k.Environment, Permissions: a.Permissions,
	}, nil
}

// decisions keeps the rate-limit decisions of requests, which their
// headers are written from.
var decisions = sync.Pool{New: func() any { return new(limit.Decision) }}
