// Package gateway is Keyward in front of an API (serve --gateway-addr):
// an http.Handler that verifies every request exactly as forward-auth
// does, with the route policy, and proxies the requests that pass to the
// upstream with net/http/httputil.ReverseProxy: the key removed, the
// identity headers added (X-Keyward-*), X-Forwarded-For, -Host and -Proto
// and X-Request-Id set. A refused request is answered as forward-auth
// answers it (problem+json, WWW-Authenticate, RateLimit headers,
// Retry-After) and never reaches the upstream. Bodies stream both ways;
// Expect: 100-continue, upgrades (WebSocket) and server-sent events pass
// through. docs/gateway.md describes it for operators.
//
// The checks (Checker) are apart from the HTTP stack (Gateway): Gateway
// turns a net/http request into a Request, asks Checker.Check, and writes
// the refusal or proxies. A front on a faster HTTP stack would do the
// same with its own listener and upstream client, and share every check.
package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/forwarded"
	"github.com/keyward/keyward/internal/identity"
	"github.com/keyward/keyward/internal/problem"
	"github.com/keyward/keyward/internal/requestid"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/verify"
)

// Config is what a Gateway needs.
type Config struct {
	// Verifier verifies the keys, started (Verifier.Start) by the
	// caller, who closes it once the gateway is done.
	Verifier *verify.Verifier
	// Routes is the route policy (serve --routes), required: the gateway
	// is an API's only door, and without a policy every path of the API
	// would take any valid key. Its current policy is read at each
	// request, so a reload applies at once.
	Routes *policy.File
	// Upstream is where requests go (serve --upstream): those of live
	// keys and of public routes whose route names no upstream of its
	// own. Required; see policy.ParseUpstream.
	Upstream *url.URL
	// UpstreamTest is where the requests of test keys go (serve
	// --upstream-test); nil refuses them 403 environment_mismatch unless
	// their route has an upstream_test.
	UpstreamTest *url.URL
	// TrustedProxies are the proxies in front of the gateway whose
	// X-Forwarded-For and X-Forwarded-Proto are believed (serve
	// --trusted-proxies).
	TrustedProxies []netip.Prefix
	// RequireTLS refuses a request that did not come over TLS 403
	// tls_required (serve --require-tls); HSTS, when more than 0, is the
	// max-age of Strict-Transport-Security on answers over TLS.
	RequireTLS bool
	HSTS       time.Duration
	// UpstreamTimeout bounds the wait for the upstream's response
	// header, after the request (and its body) went up: past it, 504
	// upstream_timeout. A body that streams is not cut by it. 0 means
	// DefaultUpstreamTimeout.
	UpstreamTimeout time.Duration
	// Transport sends requests upstream; nil for NewTransport's.
	Transport http.RoundTripper
	// Logger receives the upstream's failures (at WARN, with the request
	// id) and the verification's; nil discards them. It never receives
	// a key.
	Logger *slog.Logger
}

// DefaultUpstreamTimeout is how long the gateway waits for the upstream's
// response header by default.
const DefaultUpstreamTimeout = 30 * time.Second

// check returns what is wrong with c, for the Checker.
func (c *Config) check() error {
	switch {
	case c.Verifier == nil:
		return errors.New("gateway: Config.Verifier is nil")
	case c.Routes == nil:
		return errors.New("gateway: Config.Routes is nil: the gateway needs a route policy (serve --routes)")
	case c.Upstream == nil:
		return errors.New("gateway: Config.Upstream is nil: the gateway needs an upstream (serve --upstream)")
	}
	return nil
}

// Gateway verifies and proxies requests. It is safe for concurrent use.
type Gateway struct {
	check     *Checker
	proxy     *httputil.ReverseProxy
	transport http.RoundTripper
	proxies   forwarded.Proxies
	hsts      []string
	ids       *requestid.Source
	log       *slog.Logger
}

// New returns the Gateway of c.
func New(c Config) (*Gateway, error) {
	chk, err := NewChecker(c)
	if err != nil {
		return nil, err
	}
	if c.UpstreamTimeout <= 0 {
		c.UpstreamTimeout = DefaultUpstreamTimeout
	}
	if c.Transport == nil {
		c.Transport = NewTransport(c.UpstreamTimeout)
	}
	g := &Gateway{check: chk, transport: c.Transport, proxies: c.TrustedProxies, ids: requestid.New(), log: c.Logger}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if c.HSTS > 0 {
		g.hsts = []string{"max-age=" + strconv.FormatInt(max(int64(c.HSTS/time.Second), 1), 10)}
	}
	g.proxy = &httputil.ReverseProxy{
		Rewrite:        g.rewrite,
		Transport:      c.Transport,
		BufferPool:     buffers{},
		ModifyResponse: modifyResponse,
		ErrorHandler:   g.upstreamFailed,
		ErrorLog:       slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
	return g, nil
}

// NewTransport returns the transport that the gateway sends requests
// upstream with by default: a pool of kept-alive connections sized for
// many concurrent requests to a few upstreams, HTTP/1.1 (an upgrade
// needs it), the client's Accept-Encoding passed on as it is and answers
// left compressed, and timeout to wait for the response header.
func NewTransport(timeout time.Duration) *http.Transport {
	return &http.Transport{
		// No proxy from the environment: the upstream is named outright.
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: timeout,
		DisableCompression:    true,
		WriteBufferSize:       32 << 10,
		ReadBufferSize:        32 << 10,
	}
}

// Close closes the idle connections to the upstreams.
func (g *Gateway) Close() {
	if t, ok := g.transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}

// pass is what the proxy needs of a request that passed.
type pass struct {
	d       Decision
	id      string
	secure  bool
	trusted bool // the peer is a trusted proxy
	peer    netip.Addr
	limited bool // the answer carries the gateway's RateLimit headers
}

// passes keeps the pass of each request while it is served.
var passes = sync.Pool{New: func() any { return new(pass) }}

// passKey is the context key of a request's pass, for rewrite.
type passKey struct{}

// ServeHTTP verifies r and proxies it, or answers its refusal.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := passes.Get().(*pass)
	defer passes.Put(p)
	p.id = g.ids.Of(r.Header)
	h := w.Header()
	h["X-Request-Id"] = []string{p.id}
	p.secure = g.proxies.Secure(r)
	if p.secure && g.hsts != nil {
		h["Strict-Transport-Security"] = g.hsts
	}
	target := r.RequestURI
	if target == "" || target[0] != '/' {
		// An absolute-form or * target: the path the server routed by.
		target = r.URL.RequestURI()
	}
	p.peer = forwarded.Peer(r)
	p.trusted = len(g.proxies) > 0 && g.proxies.Trusts(p.peer)
	in := Request{Method: r.Method, Target: target, URL: r.URL, Header: r.Header, ClientIP: g.proxies.ClientIP(r), TLS: p.secure}
	g.check.Check(r.Context(), &in, &p.d)
	p.limited = p.d.Result.RateLimit != nil && p.d.Result.RateLimit.N > 0
	if p.d.Result.RateLimit != nil {
		limit.SetHeaders(h, p.d.Result.RateLimit)
	}
	if e := p.d.Refusal; e != nil {
		if e.Code.Status() >= 500 {
			g.log.ErrorContext(r.Context(), "gateway: could not verify a key", "request_id", p.id, "code", e.Code, "err", apikey.Redact(e.Error()))
		}
		problem.Write(w, e, p.id)
		return
	}
	g.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), passKey{}, p)))
}

// rewrite makes the request that goes upstream: to the decided upstream,
// without the key, with the identity headers and the forwarding headers.
// ReverseProxy has removed the hop-by-hop headers, Forwarded and
// X-Forwarded-* from it already.
func (g *Gateway) rewrite(pr *httputil.ProxyRequest) {
	p := pr.In.Context().Value(passKey{}).(*pass)
	out := pr.Out
	pr.SetURL(p.d.Upstream)
	h := out.Header
	delete(h, "X-Api-Key")
	if auth := h["Authorization"]; len(auth) > 0 && g.carriesKey(auth) {
		delete(h, "Authorization")
	}
	identity.Strip(h)
	if !p.d.Result.Public {
		identity.Set(h, &p.d.Result)
	}
	h["X-Request-Id"] = []string{p.id}
	// X-Forwarded-For: a trusted proxy's list, with that proxy appended;
	// from anyone else, the peer alone, since a client's list is its own
	// invention.
	peer := p.peer.String()
	if xff := pr.In.Header["X-Forwarded-For"]; p.trusted && len(xff) > 0 {
		h["X-Forwarded-For"] = []string{strings.Join(xff, ", ") + ", " + peer}
	} else {
		h["X-Forwarded-For"] = []string{peer}
	}
	host := pr.In.Host
	if fh := pr.In.Header["X-Forwarded-Host"]; p.trusted && len(fh) > 0 {
		host = fh[len(fh)-1]
	}
	h["X-Forwarded-Host"] = []string{host}
	if p.secure {
		h["X-Forwarded-Proto"] = []string{"https"}
	} else {
		h["X-Forwarded-Proto"] = []string{"http"}
	}
}

// carriesKey reports whether the Authorization values auth carry a key of
// this instance in the Bearer scheme, which the upstream must not see:
// the verified key, or, on a public route, a key that was not checked.
// Another scheme, or a Bearer token of another kind, is the upstream's.
func (g *Gateway) carriesKey(auth []string) bool {
	for _, a := range auth {
		scheme, rest, _ := strings.Cut(strings.TrimLeft(a, " \t"), " ")
		if strings.EqualFold(scheme, "Bearer") && g.check.verifier.Format().Contains(rest) {
			return true
		}
	}
	return false
}

// modifyResponse drops from the upstream's answer the headers that the
// gateway answers itself: its X-Request-Id, which would otherwise follow
// the gateway's as a second value, and, when the gateway set the key's
// RateLimit headers, the upstream's own RateLimit headers.
func modifyResponse(res *http.Response) error {
	h := res.Header
	delete(h, "X-Request-Id")
	if p, ok := res.Request.Context().Value(passKey{}).(*pass); ok && p.limited {
		// Not Retry-After: a request that was proxied passed its limits,
		// so the gateway set none, and the upstream's (a 503 of its
		// own) is the client's to see.
		for _, name := range [...]string{"Ratelimit-Policy", "Ratelimit", "X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset"} {
			delete(h, name)
		}
	}
	return nil
}

// Public details of the upstream's failures.
const (
	detailUpstreamUnavailable = "The API behind this gateway could not be reached, or failed before it answered; the request may not have been served. Try again shortly."
	detailUpstreamTimeout     = "The API behind this gateway did not answer in time; the request may or may not have been served. Try again shortly, and avoid repeating a request that must not run twice."
)

// upstreamFailed answers a request that the upstream did not answer: 504
// upstream_timeout when it did not begin its answer in time, 502
// upstream_unavailable for any other failure, both logged at WARN with the
// request id. A client that went away gets nothing.
func (g *Gateway) upstreamFailed(w http.ResponseWriter, r *http.Request, err error) {
	p, _ := r.Context().Value(passKey{}).(*pass)
	id := requestIDOf(w, p)
	if r.Context().Err() != nil {
		g.log.InfoContext(r.Context(), "gateway: the client went away before the upstream answered", "request_id", id)
		return
	}
	code, detail := keyward.CodeUpstreamUnavailable, detailUpstreamUnavailable
	var ne net.Error
	var op *net.OpError
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() && !(errors.As(err, &op) && op.Op == "dial") {
		code, detail = keyward.CodeUpstreamTimeout, detailUpstreamTimeout
	}
	upstream := ""
	if p != nil && p.d.Upstream != nil {
		upstream = p.d.Upstream.Host
	}
	g.log.WarnContext(r.Context(), "gateway: the upstream failed", "request_id", id, "code", code, "upstream", upstream,
		"method", r.Method, "err", apikey.Redact(err.Error()))
	problem.Write(w, &keyward.Error{Code: code, Message: detail, Err: err}, id)
}

// requestIDOf returns the id of the request being answered on w.
func requestIDOf(w http.ResponseWriter, p *pass) string {
	if p != nil {
		return p.id
	}
	if v := w.Header()["X-Request-Id"]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// buffers is the ReverseProxy's pool of copy buffers.
type buffers struct{}

var bufferPool = sync.Pool{New: func() any { return new([32 << 10]byte) }}

func (buffers) Get() []byte  { return bufferPool.Get().(*[32 << 10]byte)[:] }
func (buffers) Put(b []byte) { bufferPool.Put((*[32 << 10]byte)(b)) }
