package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/forwarded"
	"github.com/keyward/keyward/internal/identity"
	"github.com/keyward/keyward/internal/problem"
	"github.com/keyward/keyward/internal/reqlog"
	"github.com/keyward/keyward/internal/requestid"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/verify"
)

// front is the gateway on fasthttp: its server's handler, and a client
// per upstream. Every decision is the Checker's; front turns a fasthttp
// request into a Request, writes the refusal or the request that goes
// upstream, and copies the answer back.
type front struct {
	check   *Checker
	proxies forwarded.Proxies
	hsts    []byte
	ids     *requestid.Source
	log     *slog.Logger
	cfg     Config
	// untrusted says, once, that X-Forwarded-For came from a peer that
	// is not a trusted proxy, as the API's server does.
	untrusted forwarded.UntrustedWarning

	// clients are the upstream clients, one per scheme and host:
	// the route policy may name new upstreams when it is reloaded.
	mu      sync.RWMutex
	clients map[upstreamKey]*fasthttp.HostClient
}

// upstreamKey names an upstream's client.
type upstreamKey struct{ scheme, host string }

func newFront(c Config) (*front, error) {
	chk, err := NewChecker(c)
	if err != nil {
		return nil, err
	}
	if c.UpstreamTimeout <= 0 {
		c.UpstreamTimeout = DefaultUpstreamTimeout
	}
	if c.HeaderTimeout <= 0 {
		c.HeaderTimeout = DefaultHeaderTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.BodyTimeout <= 0 {
		c.BodyTimeout = DefaultBodyTimeout
	}
	if c.MaxUpstreamConns <= 0 {
		c.MaxUpstreamConns = DefaultMaxUpstreamConns
	}
	f := &front{check: chk, proxies: c.TrustedProxies, ids: requestid.New(), log: c.Logger, cfg: c,
		clients: make(map[upstreamKey]*fasthttp.HostClient)}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	f.hsts = hstsValue(c.HSTS)
	return f, nil
}

// server returns the fasthttp.Server of the gateway.
func (f *front) server() *fasthttp.Server {
	// The largest request header taken is the read buffer; a larger one
	// gets 431.
	srv := newServer(f.handle, f.log, MaxHeaderBytes, 8<<10)
	// A request's header must come within HeaderTimeout; one with a body
	// then gets BodyTimeout for it, since uploads stream and may take
	// long (headerReceived).
	srv.ReadTimeout, srv.HeaderReceived, srv.IdleTimeout = f.cfg.HeaderTimeout, f.headerReceived, f.cfg.IdleTimeout
	// Bodies larger than the read buffer reach the handler as a stream,
	// which goes on to the upstream as it is read: no size limit, as the
	// upstream decides what it takes.
	srv.StreamRequestBody, srv.MaxRequestBodySize = true, 1<<62
	// Only a request that passes gets 100 Continue: a refused one never
	// sends its body.
	srv.ExpectHandler = f.expect
	return srv
}

// newServer returns a fasthttp.Server with the settings of every
// listener of this package: handler, log, and buffers of readBuf and
// writeBuf bytes.
func newServer(handler fasthttp.RequestHandler, log *slog.Logger, readBuf, writeBuf int) *fasthttp.Server {
	return &fasthttp.Server{
		Handler: handler,
		// What fasthttp reports of a request it could not read (a bad
		// header, a smuggling attempt) goes to the log, at debug level:
		// the clients' mistakes, not the server's.
		Logger:                       logger{log},
		ReadBufferSize:               readBuf,
		WriteBufferSize:              writeBuf,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		NoDefaultDate:                true,
		DisablePreParseMultipartForm: true,
		SecureErrorLogMessage:        true,
		// Header names are normalised (X-Api-Key): the key is found, and
		// removed, whatever case the client wrote it in.
		DisableHeaderNamesNormalizing: false,
		CloseOnShutdown:               true,
	}
}

// hstsValue is the value of Strict-Transport-Security for maxAge, nil
// for none; a positive maxAge under a second counts as one.
func hstsValue(maxAge time.Duration) []byte {
	if maxAge <= 0 {
		return nil
	}
	return []byte("max-age=" + strconv.FormatInt(max(int64(maxAge/time.Second), 1), 10))
}

// client returns the client of upstream u, made on first use.
func (f *front) client(u *url.URL) *fasthttp.HostClient {
	k := upstreamKey{u.Scheme, u.Host}
	f.mu.RLock()
	c := f.clients[k]
	f.mu.RUnlock()
	if c != nil {
		return c
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c = f.clients[k]; c != nil {
		return c
	}
	c = f.newClient(u)
	f.clients[k] = c
	return c
}

// newClient returns a client of upstream u.
func (f *front) newClient(u *url.URL) *fasthttp.HostClient {
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	timeout := f.cfg.UpstreamTimeout
	return &fasthttp.HostClient{
		Addr:  hostPort(u),
		IsTLS: u.Scheme == "https",
		// Each read from the upstream has its own deadline (idleConn):
		// fasthttp's request timeout would go on bounding a streamed
		// body, and cut a download or an event stream that outlives it.
		Dial: func(addr string) (net.Conn, error) {
			c, err := dialer.Dial("tcp", addr)
			if err != nil {
				return nil, err
			}
			return &idleConn{Conn: c, timeout: timeout}, nil
		},
		TLSConfig:           f.upstreamTLS(u),
		MaxConns:            f.cfg.MaxUpstreamConns,
		MaxConnWaitTimeout:  dialTimeout,
		ReadBufferSize:      16 << 10,
		WriteBufferSize:     8 << 10,
		MaxIdleConnDuration: 90 * time.Second,
		// The path goes to the upstream as the client sent it: the
		// route policy decided on it (verify refuses a path that could
		// be read two ways).
		DisablePathNormalizing:        true,
		DisableHeaderNamesNormalizing: false,
		NoDefaultUserAgentHeader:      true,
		// Bodies stream: an upload or a download never sits whole in
		// memory, and an event stream reaches the client as it comes.
		StreamResponseBody:    true,
		RetryIfErr:            retryIfErr,
		SecureErrorLogMessage: true,
	}
}

// upstreamTLS is the TLS configuration of connections to the https
// upstream u: its certificate verified for its host name, against
// Config.UpstreamCAs or the system's authorities.
func (f *front) upstreamTLS(u *url.URL) *tls.Config {
	return &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12, RootCAs: f.cfg.UpstreamCAs}
}

// hostPort is u's host with its port, the scheme's by default.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// closeIdle closes the idle connections to the upstreams.
func (f *front) closeIdle() {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, c := range f.clients {
		c.CloseIdleConnections()
	}
}

// retryIfErr sends a request again once, on a new connection, when the
// kept-alive connection it went out on had been closed by the upstream
// (which fasthttp reports as io.EOF, or a reset): only an idempotent
// request without a streamed body, since the upstream may have begun it.
// A timeout is never retried: fasthttp's default would send a slow GET
// twice.
func retryIfErr(req *fasthttp.Request, attempts int, err error) (resetTimeout, retry bool) {
	if attempts >= 2 || req.IsBodyStream() {
		return false, false
	}
	h := &req.Header
	if !(h.IsGet() || h.IsHead() || h.IsOptions() || h.IsPut() || h.IsDelete()) {
		return false, false
	}
	return false, errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, fasthttp.ErrConnectionClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// headerReceived gives a request with a body BodyTimeout to send it,
// from the end of its header; one without keeps HeaderTimeout.
func (f *front) headerReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	if h.ContentLength() == 0 {
		return fasthttp.RequestConfig{}
	}
	return fasthttp.RequestConfig{ReadTimeout: f.cfg.BodyTimeout}
}

// pass is one request's state while it is served: the values that the
// Checker reads as net/http types, viewing the request's own bytes, and
// its decision.
type pass struct {
	views
	d       Decision
	in      Request
	secure  bool
	trusted bool // the peer is a trusted proxy
	peer    netip.Addr
	limited bool // the answer carries the gateway's RateLimit headers
	checked bool // Check ran (in expect)
	buf     []byte
	// code is the answer's code when the upstream failed.
	code  keyward.Code
	entry reqlog.Entry
}

// passes keeps the pass of each request while it is served.
var passes = sync.Pool{New: func() any { return &pass{views: views{h: make(http.Header, 4)}, buf: make([]byte, 0, 512)} }}

// views are the parts of a request that the checks read as net/http
// types, viewing the request's own bytes, and its id: the state both
// listeners keep per request.
type views struct {
	h       http.Header
	u       url.URL
	keys    [4]string
	auths   [4]string
	referer [1]string
	origin  [1]string
	xff     [4]string
	proto   [4]string
	idBuf   [80]byte
	id      []byte
}

// read sets the URL of path and query, and the headers that the checks
// read in every request (X-Api-Key, Authorization, Referer, Origin),
// viewed from rh.
func (v *views) read(rh *fasthttp.RequestHeader, path, query string) {
	v.u = url.URL{Path: path, RawQuery: query}
	setValues(v.h, "X-Api-Key", values(rh, hAPIKey, v.keys[:0]))
	setValues(v.h, "Authorization", values(rh, hAuthorization, v.auths[:0]))
	setValues(v.h, "Referer", values(rh, hReferer, v.referer[:0]))
	setValues(v.h, "Origin", values(rh, hOrigin, v.origin[:0]))
}

// reset drops every view of a request, for the pool.
func (v *views) reset() {
	clear(v.h)
	v.u = url.URL{}
	v.keys, v.auths, v.xff, v.proto = [4]string{}, [4]string{}, [4]string{}, [4]string{}
	v.referer, v.origin = [1]string{}, [1]string{}
}

// passKey is the user value of a request that expect checked.
type passKey struct{}

// handle verifies the request and proxies it, or answers its refusal.
func (f *front) handle(ctx *fasthttp.RequestCtx) {
	defer func() {
		if v := recover(); v != nil {
			id := ctx.Response.Header.PeekCanonical(hRequestID)
			if len(id) == 0 {
				id = f.ids.Append(nil)
			}
			answerPanic(ctx, f.log, "gateway", v, id, f.cfg.ProblemBase)
		}
	}()

	p, _ := ctx.UserValue(passKey{}).(*pass)
	if p == nil {
		p = passes.Get().(*pass)
		if !f.verify(ctx, p) {
			f.logRequest(ctx, p)
			f.release(p)
			return
		}
	} else {
		ctx.RemoveUserValue(passKey{})
	}
	defer f.release(p)
	defer f.logRequest(ctx, p)
	f.rewrite(ctx, p)
	if isUpgrade(&ctx.Request.Header) {
		f.upgrade(ctx, p)
		return
	}
	f.forward(ctx, p)
}

// logRequest adds the request's entry to the request log: its decision,
// and the status it was answered (the upstream's, when it went up; for a
// streamed body, once its header came).
func (f *front) logRequest(ctx *fasthttp.RequestCtx, p *pass) {
	if f.cfg.Logs == nil {
		return
	}
	rh := &ctx.Request.Header
	e := &p.entry
	*e = reqlog.Entry{At: ctx.Time(), RequestID: view(p.id), Method: method(rh.Method()), UserAgent: view(rh.UserAgent())}
	p.d.logged(e, keyward.SurfaceGateway)
	e.Status = ctx.Response.StatusCode()
	switch {
	case p.d.Refusal != nil:
		e.Code = p.d.Refusal.Code
	case p.code != "":
		e.Code = p.code
	}
	e.Latency = time.Since(e.At)
	f.cfg.Logs.Add(e)
}

// testPanic, when set (by the package's own tests only, through
// export_test.go), is called with the path of every request that passed,
// before it goes upstream: a way to make the request path panic.
var testPanic atomic.Pointer[func(path string)]

// release returns p to the pool, holding no view of a request.
func (f *front) release(p *pass) {
	p.reset()
	p.in = Request{}
	p.d.Result = verifyResultZero
	p.d.Refusal, p.d.Upstream = nil, nil
	p.checked = false
	p.code = ""
	p.entry = reqlog.Entry{}
	passes.Put(p)
}

// expect answers a request with Expect: 100-continue before its body is
// read: 100 when it passes, so that a refused client never sends its
// body; the refusal is answered here, and the handler is not called.
func (f *front) expect(ctx *fasthttp.RequestCtx) int {
	p := passes.Get().(*pass)
	if !f.verify(ctx, p) {
		f.logRequest(ctx, p)
		f.release(p)
		return ctx.Response.StatusCode()
	}
	p.checked = true
	ctx.SetUserValue(passKey{}, p)
	return fasthttp.StatusContinue
}

// verify sets the request id and checks the request into p: true when
// it passes. A refused request has its answer written.
func (f *front) verify(ctx *fasthttp.RequestCtx, p *pass) bool {
	req := &ctx.Request
	rh, wh := &req.Header, &ctx.Response.Header
	p.id = requestIDOf(ctx, f.ids, p.idBuf[:0])
	p.peer, p.trusted, p.secure = peerOf(ctx, f.proxies, f.hsts, p.proto[:0])
	// The checks read the request's own bytes, viewed as strings, which
	// live as long as the request.
	target := view(rh.RequestURI())
	if target == "" || target[0] != '/' {
		// An absolute-form target: its path is what the route policy
		// decides by, and what goes upstream.
		target = string(ctx.URI().RequestURI())
		req.SetRequestURI(target)
	}
	path, query, _ := strings.Cut(target, "?")
	p.read(rh, path, query)
	clientIP := p.peer
	if p.trusted {
		clientIP = f.proxies.ClientIPOf(p.peer, values(rh, hForwardedFor, p.xff[:0]))
	} else if !f.untrusted.Logged() && p.peer.IsValid() && len(rh.PeekCanonical(hForwardedFor)) > 0 {
		f.untrusted.Log(ctx, f.log, p.peer, len(f.proxies))
	}
	p.in = Request{Method: method(rh.Method()), Target: target, URL: &p.u, Header: p.h, ClientIP: clientIP, TLS: p.secure}
	f.check.Check(context.Background(), &p.in, &p.d) // not ctx: see AuthServer.forwardAuth
	rl := p.d.Result.RateLimit
	p.limited = rl != nil && rl.N > 0
	if p.limited {
		p.buf = setRateLimit(wh, rl, p.buf[:0])
	}
	p.buf = setNotice(wh, &p.d.Result.Notice, p.buf)
	e := p.d.Refusal
	if e == nil {
		return true
	}
	if e.Code.Status() >= 500 {
		f.log.ErrorContext(ctx, "gateway: could not verify a key", "request_id", string(p.id), "code", e.Code, "err", apikey.Redact(e.Error()))
	}
	writeProblem(ctx, e, p.id, f.cfg.ProblemBase)
	return false
}

// rewrite makes the request that goes upstream, in place: to the decided
// upstream, without the key, without the hop-by-hop headers (but those
// of an upgrade), Forwarded and the client's identity headers, with the
// identity headers, X-Request-Id and the forwarding headers.
func (f *front) rewrite(ctx *fasthttp.RequestCtx, p *pass) {
	h := &ctx.Request.Header
	up := p.d.Upstream
	host := h.Host()
	if p.trusted {
		if fh := h.PeekAll("X-Forwarded-Host"); len(fh) > 0 {
			host = fh[len(fh)-1]
		}
	}
	// X-Forwarded-For: a trusted proxy's list, with that proxy
	// appended; from anyone else, the peer alone, since a client's list
	// is its own invention.
	b := p.buf[len(p.buf):]
	if p.trusted {
		for i, v := range h.PeekAll("X-Forwarded-For") {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = append(b, v...)
		}
		if len(b) > 0 {
			b = append(b, ", "...)
		}
	}
	b = p.peer.AppendTo(b)
	xffEnd := len(b)
	b = append(b, host...)
	xff, fhost := b[:xffEnd], b[xffEnd:]
	p.buf = b[:0]

	if !isUpgrade(h) {
		removeHopByHop(h)
	}
	stripRequest(h)
	h.Del("Forwarded")
	h.Del("X-Forwarded-For")
	h.Del("X-Forwarded-Host")
	h.Del("X-Forwarded-Proto")
	h.Del("X-Api-Key")
	if auth := h.PeekCanonical(hAuthorization); len(auth) > 0 && f.carriesKey(h) {
		h.Del("Authorization")
	}
	h.SetCanonical(hForwardedFor, xff)
	h.SetCanonical(hForwardedHost, fhost)
	if p.secure {
		h.SetCanonical(hForwardedProto, []byte("https"))
	} else {
		h.SetCanonical(hForwardedProto, []byte("http"))
	}
	h.SetCanonical(hRequestID, p.id)
	if !p.d.Result.Public {
		setIdentity(h, &p.d.Result)
	}
	h.SetHost(up.Host)
	if base := strings.TrimSuffix(up.EscapedPath(), "/"); base != "" {
		// The Request's, not the header's: the URI is parsed again.
		ctx.Request.SetRequestURI(base + view(h.RequestURI()))
	}
}

// requestIDOf sets the answer's X-Request-Id: the request's own, when it
// has one of a safe shape (requestid.Safe), so that ids follow a request
// across services, else a new one; written into buf, which it returns.
func requestIDOf(ctx *fasthttp.RequestCtx, ids *requestid.Source, buf []byte) []byte {
	if v := ctx.Request.Header.PeekCanonical(hRequestID); requestid.Safe(view(v)) {
		buf = append(buf, v...)
	} else {
		buf = ids.Append(buf)
	}
	ctx.Response.Header.SetCanonical(hRequestID, buf)
	return buf
}

// peerOf returns the request's peer, whether it is one of the trusted
// proxies, and whether the request came over TLS, on its connection or
// as a trusted proxy says in X-Forwarded-Proto (read into proto); over
// TLS, hsts (when not nil) is set as Strict-Transport-Security.
func peerOf(ctx *fasthttp.RequestCtx, proxies forwarded.Proxies, hsts []byte, proto []string) (peer netip.Addr, trusted, secure bool) {
	peer = remoteIP(ctx)
	trusted = len(proxies) > 0 && proxies.Trusts(peer)
	secure = proxies.SecureOf(peer, values(&ctx.Request.Header, hForwardedProto, proto), ctx.IsTLS())
	if secure && hsts != nil {
		ctx.Response.Header.SetCanonical(hHSTS, hsts)
	}
	return peer, trusted, secure
}

// carriesKey reports whether the Authorization values carry a key of
// this instance in the Bearer scheme, which the upstream must not see:
// the verified key, or, on a public route, a key that was not checked.
// Another scheme, or a Bearer token of another kind, is the upstream's.
func (f *front) carriesKey(h *fasthttp.RequestHeader) bool {
	for _, a := range h.PeekAll("Authorization") {
		scheme, rest, _ := strings.Cut(strings.TrimLeft(view(a), " \t"), " ")
		if strings.EqualFold(scheme, "Bearer") && f.check.verifier.Format().Contains(rest) {
			return true
		}
	}
	return false
}

// setIdentity writes the identity headers of the key that res accepted
// (identity.Set's, in fasthttp's canonical form so that nothing
// normalises them again): on the request that goes upstream, or on
// forward-auth's answer.
func setIdentity[H interface{ SetCanonical(key, value []byte) }](h H, res *verify.Result) {
	k, a := res.Key, res.Access
	h.SetCanonical(hKeyID, bytesOf(k.ID))
	h.SetCanonical(hKeyName, bytesOf(k.Name))
	h.SetCanonical(hTenant, bytesOf(k.TenantID))
	h.SetCanonical(hTenantSlug, bytesOf(a.Tenant.Slug))
	h.SetCanonical(hPlan, bytesOf(a.Plan.Name))
	h.SetCanonical(hEnvironment, bytesOf(string(k.Environment)))
	h.SetCanonical(hPermissions, bytesOf(a.PermissionList))
	if k.MemberID != "" {
		h.SetCanonical(hMemberID, bytesOf(k.MemberID))
	}
}

// forward sends the request to the upstream and its response back: the
// gateway's request and response are the upstream's, so nothing is
// copied, and their bodies stream.
func (f *front) forward(ctx *fasthttp.RequestCtx, p *pass) {
	req, resp := &ctx.Request, &ctx.Response
	if hook := testPanic.Load(); hook != nil {
		(*hook)(p.u.Path)
	}
	if p.checked {
		// The client's 100 Continue was answered here (expect); the
		// upstream gets the body at once.
		req.Header.Del("Expect")
	}
	// The scheme of the upstream, not the client's connection's.
	req.URI().SetScheme(p.d.Upstream.Scheme)
	// Do replaces the answer's headers (the request id, RateLimit,
	// HSTS) with the upstream's; they are set again below.
	err := f.client(p.d.Upstream).Do(req, resp)
	h := &resp.Header
	if err != nil {
		resp.Reset()
		h.SetCanonical(hRequestID, p.id)
		if p.limited {
			p.buf = setRateLimit(h, p.d.Result.RateLimit, p.buf[:0])
		}
		p.buf = setNotice(h, &p.d.Result.Notice, p.buf)
		if p.secure && f.hsts != nil {
			h.SetCanonical(hHSTS, f.hsts)
		}
		f.upstreamFailed(ctx, p, err)
		return
	}
	removeHopByHopResponse(h)
	h.Del("X-Request-Id")
	h.SetCanonical(hRequestID, p.id)
	if p.limited {
		// Not Retry-After: a request that was proxied passed its
		// limits, so the gateway set none, and the upstream's (a 503 of
		// its own) is the client's to see.
		for _, name := range rateLimitHeaders {
			h.Del(name)
		}
		p.buf = setRateLimit(h, p.d.Result.RateLimit, p.buf[:0])
	}
	if !p.d.Result.Sunset.IsZero() {
		// The key's notice, not the upstream's own (of its API's
		// version, say), which the client sees for a key that has none.
		p.buf = setNotice(h, &p.d.Result.Notice, p.buf)
	}
	if p.secure && f.hsts != nil {
		h.SetCanonical(hHSTS, f.hsts)
	}
}

// setNotice sets on h the Deprecation and Sunset headers of n, when it
// has a sunset, with buf as scratch space, which it returns.
func setNotice(h *fasthttp.ResponseHeader, n *verify.Notice, buf []byte) []byte {
	if n.Sunset.IsZero() {
		return buf
	}
	buf = n.AppendDeprecation(buf[:0])
	h.SetCanonical(hDeprecation, buf)
	buf = n.AppendSunset(buf[:0])
	h.SetCanonical(hSunset, buf)
	return buf
}

// rateLimitHeaders are the names of the RateLimit headers but
// Retry-After.
var rateLimitHeaders = [...]string{"Ratelimit-Policy", "Ratelimit", "X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset"}

// setRateLimit sets on h the RateLimit headers of d (limit.SetHeaders's,
// with Retry-After when d refused), written into buf, which it returns.
func setRateLimit(h *fasthttp.ResponseHeader, d *limit.Decision, buf []byte) []byte {
	b := limit.AppendPolicy(buf[:0], d)
	h.SetCanonical(hRateLimitPolicy, b)
	b = limit.AppendRateLimit(b[:0], d)
	h.SetCanonical(hRateLimit, b)
	t := &d.States[d.Tightest]
	h.SetCanonical(hXRateLimitLimit, strconv.AppendInt(b[:0], t.Limit, 10))
	h.SetCanonical(hXRateLimitRemaining, strconv.AppendInt(b[:0], t.Remaining, 10))
	h.SetCanonical(hXRateLimitReset, strconv.AppendInt(b[:0], limit.Seconds(t.Reset), 10))
	if !d.Allowed {
		h.SetCanonical(hRetryAfter, strconv.AppendInt(b[:0], d.RetryAfterSeconds(), 10))
	}
	return b[:0]
}

// upgrade passes an upgrade (WebSocket or another protocol) through: the
// request's header goes to a connection of its own to the upstream, then
// the bytes go both ways untouched, the upstream's answer (101 or a
// refusal) included, until either side closes.
func (f *front) upgrade(ctx *fasthttp.RequestCtx, p *pass) {
	u := p.d.Upstream
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	var up net.Conn
	var err error
	if u.Scheme == "https" {
		up, err = (&tls.Dialer{NetDialer: d, Config: f.upstreamTLS(u)}).Dial("tcp", hostPort(u))
	} else {
		up, err = d.Dial("tcp", hostPort(u))
	}
	if err != nil {
		f.upstreamFailed(ctx, p, err)
		return
	}
	// The request is gone once the handler returns: its header is sent
	// now, before the connection is taken over.
	_ = up.SetWriteDeadline(time.Now().Add(f.cfg.UpstreamTimeout))
	if _, err := up.Write(ctx.Request.Header.Header()); err != nil {
		up.Close()
		f.upstreamFailed(ctx, p, err)
		return
	}
	_ = up.SetWriteDeadline(time.Time{})
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		defer up.Close()
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = io.Copy(up, c)
			if cw, ok := up.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			}
		}()
		_, _ = io.Copy(c, up)
		// The upstream is done: closing the client's side ends the copy
		// above too.
		_ = c.Close()
		<-done
	})
}

// isUpgrade reports whether the request asks to switch protocols.
func isUpgrade(h *fasthttp.RequestHeader) bool {
	return len(h.PeekCanonical(hUpgrade)) > 0 && h.ConnectionUpgrade()
}

// Public details of the upstream's failures.
const (
	detailUpstreamUnavailable = "The API behind this gateway could not be reached, or failed before it answered; the request may not have been served. Try again shortly."
	detailUpstreamTimeout     = "The API behind this gateway did not answer in time; the request may or may not have been served. Try again shortly, and avoid repeating a request that must not run twice."
)

// upstreamFailed answers a request that the upstream did not answer: 504
// upstream_timeout when it did not begin its answer in time, 502
// upstream_unavailable for any other failure (refused, unreachable, no
// free connection), both logged at WARN with the request id.
func (f *front) upstreamFailed(ctx *fasthttp.RequestCtx, p *pass, err error) {
	code, detail := keyward.CodeUpstreamUnavailable, detailUpstreamUnavailable
	var ne net.Error
	var op *net.OpError
	if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.As(err, &ne) && ne.Timeout() && !(errors.As(err, &op) && op.Op == "dial") {
		code, detail = keyward.CodeUpstreamTimeout, detailUpstreamTimeout
	}
	p.code = code
	f.log.WarnContext(ctx, "gateway: the upstream failed", "request_id", string(p.id), "code", code, "upstream", p.d.Upstream.Host,
		"method", string(ctx.Method()), "err", apikey.Redact(err.Error()))
	writeProblem(ctx, &keyward.Error{Code: code, Message: detail, Err: err}, p.id, f.cfg.ProblemBase)
}

// responseWriter lets problem.Write answer through fasthttp: refusals
// and failures are not the hot path. A header it sets replaces the one
// of the same name already on the answer.
type responseWriter struct {
	ctx *fasthttp.RequestCtx
	h   http.Header
}

// writeProblem answers e as problem+json (problem.Write).
func writeProblem(ctx *fasthttp.RequestCtx, e *keyward.Error, id []byte, base string) {
	problem.Write(&responseWriter{ctx: ctx, h: make(http.Header, 4)}, e, string(id), base)
}

func (w *responseWriter) Header() http.Header { return w.h }

func (w *responseWriter) WriteHeader(status int) {
	for k, vs := range w.h {
		for i, v := range vs {
			if i == 0 {
				w.ctx.Response.Header.Set(k, v)
			} else {
				w.ctx.Response.Header.Add(k, v)
			}
		}
	}
	w.ctx.Response.SetStatusCode(status)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	return w.ctx.Response.BodyWriter().Write(b)
}

// verifyResultZero is the zero verification, for resetting a pass.
var verifyResultZero = Decision{}.Result

// Header names in fasthttp's canonical form (the first letter and each
// one after a dash upper case, the others lower case), for the calls
// that take them as they are (PeekCanonical, SetCanonical) and skip
// normalising a name at every request.
var (
	hRequestID           = []byte("X-Request-Id")
	hAPIKey              = []byte("X-Api-Key")
	hReferer             = []byte("Referer")
	hOrigin              = []byte("Origin")
	hAuthorization       = []byte("Authorization")
	hConnection          = []byte("Connection")
	hUpgrade             = []byte("Upgrade")
	hForwardedFor        = []byte("X-Forwarded-For")
	hForwardedHost       = []byte("X-Forwarded-Host")
	hForwardedProto      = []byte("X-Forwarded-Proto")
	hHSTS                = []byte("Strict-Transport-Security")
	hDeprecation         = []byte(verify.DeprecationHeader)
	hSunset              = []byte(verify.SunsetHeader)
	hRateLimitPolicy     = []byte("Ratelimit-Policy")
	hRateLimit           = []byte("Ratelimit")
	hXRateLimitLimit     = []byte("X-Ratelimit-Limit")
	hXRateLimitRemaining = []byte("X-Ratelimit-Remaining")
	hXRateLimitReset     = []byte("X-Ratelimit-Reset")
	hRetryAfter          = []byte("Retry-After")
	hKeyID               = []byte("X-Keyward-Key-Id")
	hKeyName             = []byte("X-Keyward-Key-Name")
	hTenant              = []byte("X-Keyward-Tenant")
	hTenantSlug          = []byte("X-Keyward-Tenant-Slug")
	hPlan                = []byte("X-Keyward-Plan")
	hEnvironment         = []byte("X-Keyward-Environment")
	hPermissions         = []byte("X-Keyward-Permissions")
	hMemberID            = []byte("X-Keyward-Member-Id")
)

// view returns b as a string without copying: the string lives as long
// as the request's buffer, which outlives the request's checks (the
// Checker keeps nothing of its Request).
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// bytesOf returns the bytes of s without copying, for fasthttp calls
// that copy them (SetCanonical) or only read them.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// values appends to dst the values of header name (canonical) of h,
// viewed; nil for none.
func values(h *fasthttp.RequestHeader, name []byte, dst []string) []string {
	for _, v := range h.PeekAll(view(name)) {
		if len(dst) == cap(dst) {
			break // more than a client has reason to send: the first ones
		}
		dst = append(dst, view(v))
	}
	if len(dst) == 0 {
		return nil
	}
	return dst
}

// setValues sets h[name] to v, or removes it for none.
func setValues(h http.Header, name string, v []string) {
	if v == nil {
		delete(h, name)
		return
	}
	h[name] = v
}

// method returns the request's method as one of the usual constants, so
// that it needs no copy, or viewed.
func method(m []byte) string {
	switch string(m) { // no allocation: compared in place
	case http.MethodGet:
		return http.MethodGet
	case http.MethodPost:
		return http.MethodPost
	case http.MethodPut:
		return http.MethodPut
	case http.MethodDelete:
		return http.MethodDelete
	case http.MethodPatch:
		return http.MethodPatch
	case http.MethodHead:
		return http.MethodHead
	case http.MethodOptions:
		return http.MethodOptions
	}
	return view(m)
}

// remoteIP is the address of the connection's peer, unmapped.
func remoteIP(ctx *fasthttp.RequestCtx) netip.Addr {
	if a, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

// hopByHop are the headers of one connection, which a proxy does not
// pass on (RFC 9110, section 7.6.1, as httputil's list). fasthttp reads
// Connection, Content-Length and Transfer-Encoding itself, and writes its
// own.
var hopByHop = [...]string{"Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Upgrade"}

// removeHopByHop removes them from a request: one pass over its header
// names finds whether it has any, as it seldom does.
func removeHopByHop(h *fasthttp.RequestHeader) {
	if !anyHopByHop(h.All()) {
		return
	}
	for _, name := range connectionTokens(h.PeekCanonical(hConnection)) {
		h.DelBytes(name)
	}
	for _, name := range hopByHop {
		h.Del(name)
	}
}

// removeHopByHopResponse removes them from a response.
func removeHopByHopResponse(h *fasthttp.ResponseHeader) {
	if !anyHopByHop(h.All()) {
		return
	}
	for _, name := range connectionTokens(h.PeekCanonical(hConnection)) {
		h.DelBytes(name)
	}
	for _, name := range hopByHop {
		h.Del(name)
	}
}

// anyHopByHop reports whether a header has a name of hopByHop, or a
// Connection header other than fasthttp's own close or keep-alive
// (which may name more).
func anyHopByHop(all iter.Seq2[[]byte, []byte]) bool {
	for k, v := range all {
		if bytes.EqualFold(k, hConnection) {
			if connectionTokens(v) != nil {
				return true
			}
			continue
		}
		for _, name := range hopByHop {
			if len(k) == len(name) && bytes.EqualFold(k, bytesOf(name)) {
				return true
			}
		}
	}
	return false
}

// connectionTokens returns the header names that a Connection header
// lists, other than close and keep-alive (fasthttp's own).
func connectionTokens(v []byte) [][]byte {
	if len(v) == 0 || bytes.EqualFold(v, []byte("close")) || bytes.EqualFold(v, []byte("keep-alive")) {
		return nil
	}
	var names [][]byte
	for t := range bytes.SplitSeq(v, []byte{','}) {
		t = bytes.TrimSpace(t)
		if len(t) > 0 && !bytes.EqualFold(t, []byte("close")) && !bytes.EqualFold(t, []byte("keep-alive")) {
			names = append(names, t)
		}
	}
	return names
}

// stripRequest removes the identity headers a client sent itself, in
// any spelling (identity.Is): only the gateway writes them.
func stripRequest(h *fasthttp.RequestHeader) {
	found := false
	for k := range h.All() {
		if identity.Is(view(k)) {
			found = true
			break
		}
	}
	if !found {
		return
	}
	var names []string
	for k := range h.All() {
		if identity.Is(view(k)) {
			names = append(names, string(k))
		}
	}
	for _, n := range names {
		h.Del(n)
	}
}

// logger is a fasthttp.Logger that writes to a slog.Logger, at debug
// level: these are the clients' mistakes, not the gateway's.
type logger struct{ log *slog.Logger }

func (l logger) Printf(format string, args ...any) {
	// fasthttp's messages may quote a request it could not read, key
	// included: redacted like every other line that could hold one.
	l.log.Debug("gateway: " + apikey.Redact(fmt.Sprintf(format, args...)))
}

// idleConn is a connection to the upstream whose every read must begin
// to return within timeout, and may take up to a quarter more: a read
// moves the deadline only when less than timeout is left, to timeout and
// a quarter from now. Setting a deadline (a timer's change) on every read
// cost about 0.8 µs a request, 5 % of the gateway's CPU.
type idleConn struct {
	net.Conn
	timeout  time.Duration
	deadline time.Time // the read deadline set last
}

func (c *idleConn) Read(b []byte) (int, error) {
	if now := time.Now(); c.deadline.Sub(now) < c.timeout {
		c.deadline = now.Add(c.timeout + c.timeout/4)
		if err := c.Conn.SetReadDeadline(c.deadline); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(b)
}

// SetReadDeadline is idleConn's own business: fasthttp would otherwise
// clear the deadline of each read.
func (c *idleConn) SetReadDeadline(time.Time) error { return nil }
