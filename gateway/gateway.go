// Package gateway is Keyward in front of an API (serve --gateway-addr): a
// server that verifies every request exactly as forward-auth does, with
// the route policy, and proxies the requests that pass to the upstream:
// the key removed, the identity headers added (X-Keyward-*),
// X-Forwarded-For, -Host and -Proto and X-Request-Id set. A refused
// request is answered as forward-auth answers it (problem+json,
// WWW-Authenticate, RateLimit headers, Retry-After) and never reaches the
// upstream. Bodies stream both ways; Expect: 100-continue, upgrades
// (WebSocket) and server-sent events pass through. docs/gateway.md
// describes it for operators.
//
// The checks (Checker) are apart from the HTTP stack (Gateway). Gateway
// serves HTTP/1.1 with github.com/valyala/fasthttp, its server and its
// upstream client, which costs about half of net/http with
// httputil.ReverseProxy per request (docs/benchmarks.md, "The gateway's
// proxy path"); no fasthttp type is part of this package's API.
package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keyward/keyward/internal/reqlog"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/verify"
)

// Config is what a Gateway needs.
type Config struct {
	// ProblemBase is the start of the problem types of refusals
	// (problem.TypeURI): the instance's public URL; "" for URNs.
	ProblemBase string
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
	// UpstreamCAs are the certificate authorities that an https
	// upstream's certificate is verified against; nil for the system's.
	// Verification is never turned off.
	UpstreamCAs *x509.CertPool
	// UpstreamTimeout is the longest the upstream may stay silent: from
	// the request sent to its response's header, and between two reads
	// of its body, as nginx's proxy_read_timeout. Past it, before the
	// response began, 504 upstream_timeout; after, the connection is
	// cut. A body that streams for longer, a little at a time, is not
	// cut. The silence is cut after UpstreamTimeout at least and a
	// quarter more at most (the deadline moves only when less than
	// UpstreamTimeout is left). 0 means DefaultUpstreamTimeout.
	UpstreamTimeout time.Duration
	// HeaderTimeout bounds the reading of a request's header, and
	// IdleTimeout a kept-alive connection's wait for its next request;
	// 0 means DefaultHeaderTimeout and DefaultIdleTimeout. A request's
	// body may stream for as long as it takes (up to BodyTimeout).
	HeaderTimeout, IdleTimeout time.Duration
	// BodyTimeout bounds the reading of a request's body, from the end
	// of its header; 0 means DefaultBodyTimeout.
	BodyTimeout time.Duration
	// MaxUpstreamConns bounds the connections to each upstream; a
	// request that finds none free within DialTimeout is answered 502.
	// 0 means DefaultMaxUpstreamConns.
	MaxUpstreamConns int
	// Logger receives the upstream's failures (at WARN, with the request
	// id) and the verification's; nil discards them. It never receives
	// a key.
	Logger *slog.Logger
	// Logs is the request log, which every request is added to; nil for
	// none.
	Logs *reqlog.Log
}

// Defaults of Config.
const (
	// DefaultUpstreamTimeout is how long the upstream may stay silent.
	DefaultUpstreamTimeout = 30 * time.Second
	// DefaultHeaderTimeout bounds the reading of a request's header.
	DefaultHeaderTimeout = 10 * time.Second
	// DefaultIdleTimeout bounds a kept-alive connection's wait.
	DefaultIdleTimeout = 90 * time.Second
	// DefaultBodyTimeout bounds the reading of a request's body.
	DefaultBodyTimeout = time.Hour
	// DefaultMaxUpstreamConns bounds the connections to one upstream.
	DefaultMaxUpstreamConns = 1024
	// MaxHeaderBytes is the largest request header the gateway reads: a
	// larger one is answered 431.
	MaxHeaderBytes = 16 << 10
	// dialTimeout bounds a connection to the upstream, and the wait for
	// a free one.
	dialTimeout = 5 * time.Second
)

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

// Gateway verifies and proxies requests: Serve serves it on a listener.
// It is safe for concurrent use.
type Gateway struct {
	*front
	listeners
}

// New returns the Gateway of c.
func New(c Config) (*Gateway, error) {
	f, err := newFront(c)
	if err != nil {
		return nil, err
	}
	return &Gateway{front: f, listeners: listeners{srv: f.server()}}, nil
}

// Shutdown stops the gateway: it closes its listeners, lets the
// requests in flight finish until ctx ends, then closes the idle
// connections to the upstreams. A connection taken over by an upgrade
// lives on until either side closes it.
func (g *Gateway) Shutdown(ctx context.Context) error {
	err := g.listeners.Shutdown(ctx)
	g.Close()
	return err
}

// listeners serves a fasthttp.Server on listeners until Shutdown: the
// gateway's and the AuthServer's.
type listeners struct {
	srv *fasthttp.Server

	// mu guards shut and lns: a Shutdown that comes before Serve has
	// begun still stops it.
	mu   sync.Mutex
	shut bool
	lns  []net.Listener
}

// Serve serves on ln until Shutdown, and returns nil then, or the error
// that stopped it. A *tls.Conn of ln (tls.NewListener) is a TLS
// connection; the server speaks HTTP/1.1 on it, so its tls.Config's
// NextProtos must not offer h2 (ServeTLS sees to it).
func (l *listeners) Serve(ln net.Listener) error {
	l.mu.Lock()
	if l.shut {
		l.mu.Unlock()
		ln.Close()
		return nil
	}
	l.lns = append(l.lns, ln)
	l.mu.Unlock()
	err := l.srv.Serve(ln)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shut {
		return nil
	}
	return err
}

// ServeTLS serves on ln over TLS with a copy of cfg that offers HTTP/1.1
// alone (ALPN): its certificate comes from cfg's Certificates or
// GetCertificate, so a reload reaches new handshakes.
func (l *listeners) ServeTLS(ln net.Listener, cfg *tls.Config) error {
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"http/1.1"}
	return l.Serve(tls.NewListener(ln, cfg))
}

// Shutdown closes the listeners and lets the requests in flight finish
// until ctx ends.
func (l *listeners) Shutdown(ctx context.Context) error {
	l.mu.Lock()
	l.shut = true
	for _, ln := range l.lns {
		ln.Close()
	}
	l.mu.Unlock()
	err := l.srv.ShutdownWithContext(ctx)
	if errors.Is(err, net.ErrClosed) {
		return nil // the listeners closed above
	}
	return err
}

// Close closes the idle connections to the upstreams.
func (g *Gateway) Close() {
	g.front.closeIdle()
}
