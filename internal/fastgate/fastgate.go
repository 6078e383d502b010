// Package fastgate is an experiment, not a part of Keyward that anything
// else may use: a prototype of the gateway's hot path (verify the key,
// then proxy to the upstream) on github.com/valyala/fasthttp, for issue 11.
// It exists to measure that path against nginx and httputil
// (internal/loadtarget, scripts/load) and to prove, with its tests, that
// the gateway's functional requirements hold on fasthttp: bodies streamed
// both ways, Expect: 100-continue, upgrades, server-sent events, 502 and
// 504 from the upstream. The real gateway lives in package gateway; see
// docs/benchmarks.md, "The gateway's proxy path: options measured".
package fastgate

import (
	"bytes"
	"context"
	"crypto/rand"
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
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/problem"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/verify"
)

// Defaults of Config.
const (
	DefaultMaxConns       = 512
	DefaultDialTimeout    = 5 * time.Second
	DefaultUpstreamTimout = 60 * time.Second
	DefaultHeaderTimeout  = 10 * time.Second
	DefaultBodyTimeout    = time.Hour
)

// Config configures a Gateway.
type Config struct {
	// Upstream is the upstream's host:port.
	Upstream string
	// Verifier checks the key of every request; nil lets every request
	// through unchecked (the bare proxy that scripts/load measures).
	Verifier *verify.Verifier
	// Routes is the route policy; nil for none.
	Routes *policy.File
	// UpstreamTimeout is the longest the upstream may stay silent: from
	// the request sent to the response's header, and between two reads
	// of its body, as nginx's proxy_read_timeout. Past it the client gets
	// 504 upstream_timeout (or, once the response began, a cut
	// connection). DefaultUpstreamTimeout when zero.
	UpstreamTimeout time.Duration
	// DialTimeout bounds a connection to the upstream: past it, or when
	// the upstream refuses, 502 upstream_unavailable.
	DialTimeout time.Duration
	// HeaderTimeout bounds the reading of a request's header
	// (DefaultHeaderTimeout), and BodyTimeout the reading of its body
	// from the end of its header (DefaultBodyTimeout).
	HeaderTimeout, BodyTimeout time.Duration
	// MaxConns bounds the connections to the upstream.
	MaxConns int
	// CopyStrings makes the verification copy the request's bytes into
	// new strings (what a careful first version does) instead of viewing
	// them in place: for measuring what the copies cost.
	CopyStrings bool
	// Logger receives the upstream's failures; nil discards them.
	Logger *slog.Logger
}

// Gateway verifies each request's key, then proxies it to the upstream.
type Gateway struct {
	cfg    Config
	client *fasthttp.HostClient
	log    *slog.Logger
	ids    requestIDs
	// scratch holds the per-request values that the verification needs
	// as net/http types (verify.KeyFrom reads an http.Header and a
	// url.URL), reused so that a request allocates none.
	scratch sync.Pool
}

// New returns a Gateway of cfg.
func New(cfg Config) *Gateway {
	if cfg.UpstreamTimeout <= 0 {
		cfg.UpstreamTimeout = DefaultUpstreamTimout
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.HeaderTimeout <= 0 {
		cfg.HeaderTimeout = DefaultHeaderTimeout
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	g := &Gateway{cfg: cfg, log: cfg.Logger, ids: requestIDs{prefix: "req_" + rand.Text()[:10]}}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	g.scratch.New = func() any { return &scratch{h: make(http.Header, 2)} }
	dialer := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	timeout := cfg.UpstreamTimeout
	g.client = &fasthttp.HostClient{
		Addr: cfg.Upstream,
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
		MaxConns:            cfg.MaxConns,
		MaxConnWaitTimeout:  cfg.DialTimeout,
		ReadBufferSize:      8 << 10,
		WriteBufferSize:     8 << 10,
		MaxIdleConnDuration: 90 * time.Second,
		// The path goes to the upstream as the client sent it: the
		// route policy decided on it (verify refuses a path that could
		// be read two ways), and httputil passes it on as sent too.
		DisablePathNormalizing:   true,
		NoDefaultUserAgentHeader: true,
		// Bodies stream: an upload or a download never sits whole in
		// memory, and an event stream reaches the client as it comes.
		StreamResponseBody:    true,
		RetryIfErr:            retryIfErr,
		SecureErrorLogMessage: true,
	}
	return g
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

// Server returns a fasthttp.Server tuned for the gateway, with g's
// handler.
func (g *Gateway) Server() *fasthttp.Server {
	return &fasthttp.Server{
		Handler: g.Handle,
		// What fasthttp reports of a request it could not read (a bad
		// header, a smuggling attempt) goes to the gateway's log, not
		// to the standard logger.
		Logger: logger{g.log},
		// The largest request header taken is ReadBufferSize: 16 KiB,
		// against net/http's 1 MiB. A larger one gets 431.
		ReadBufferSize:  16 << 10,
		WriteBufferSize: 8 << 10,
		// A request's header must come within HeaderTimeout (a client
		// that sends it a byte at a time holds no connection for long);
		// one with a body then gets BodyTimeout for it, since uploads
		// stream and may take long (HeaderReceived).
		ReadTimeout:    g.cfg.HeaderTimeout,
		HeaderReceived: g.headerReceived,
		IdleTimeout:    90 * time.Second,
		// Bodies larger than the read buffer reach the handler as a
		// stream, which goes on to the upstream as it is read.
		StreamRequestBody:  true,
		MaxRequestBodySize: 1 << 62,
		// Only a request whose key passes gets 100 Continue: a refused
		// one never sends its body.
		ExpectHandler:                g.expect,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		NoDefaultDate:                true,
		DisablePreParseMultipartForm: true,
		SecureErrorLogMessage:        true,
		// Header names stay normalised (X-Api-Key): the key is found,
		// and removed, whatever case the client wrote it in.
		DisableHeaderNamesNormalizing: false,
	}
}

// headerReceived gives a request with a body BodyTimeout to send it,
// from the end of its header; one without keeps HeaderTimeout.
func (g *Gateway) headerReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	if h.ContentLength() == 0 {
		return fasthttp.RequestConfig{}
	}
	return fasthttp.RequestConfig{ReadTimeout: g.cfg.BodyTimeout}
}

// Handle verifies the request's key, then proxies the request.
func (g *Gateway) Handle(ctx *fasthttp.RequestCtx) {
	// fasthttp recovers no panic: one would end the whole process.
	defer func() {
		if p := recover(); p != nil {
			g.log.Error("fastgate: panic", "panic", p)
			ctx.Response.Reset()
			ctx.SetStatusCode(fasthttp.StatusInternalServerError)
			ctx.SetConnectionClose()
		}
	}()
	var idBuf [64]byte
	id := g.ids.of(ctx, idBuf[:0])
	ctx.Response.Header.SetCanonical(hRequestID, id)
	req := &ctx.Request
	if g.cfg.Verifier != nil {
		// A request with Expect: 100-continue was checked before its
		// body was read (expect).
		checked := req.MayContinue() && ctx.UserValue(checkedKey{}) != nil
		if !checked && !g.check(ctx, id) {
			return
		}
	} else {
		req.Header.Del("X-Api-Key")
		stripIncoming(&req.Header)
	}
	req.Header.SetCanonical(hRequestID, id)
	appendForwardedFor(ctx)
	if isUpgrade(&req.Header) {
		g.upgrade(ctx, id)
		return
	}
	g.forward(ctx, id)
}

// checkedKey marks, as a user value, a request that expect checked.
type checkedKey struct{}

// upgrade passes an upgrade (WebSocket or another protocol) through: the
// request's header goes to a connection of its own to the upstream, then
// the bytes go both ways untouched, the upstream's answer (101 or a
// refusal) included, until either side closes.
func (g *Gateway) upgrade(ctx *fasthttp.RequestCtx, id []byte) {
	up, err := net.DialTimeout("tcp", g.cfg.Upstream, g.cfg.DialTimeout)
	if err != nil {
		g.upstreamFailed(ctx, id, err)
		return
	}
	// The request is gone once the handler returns: its header is sent
	// now, before the connection is taken over.
	_ = up.SetWriteDeadline(time.Now().Add(g.cfg.UpstreamTimeout))
	if _, err := up.Write(ctx.Request.Header.Header()); err != nil {
		up.Close()
		g.upstreamFailed(ctx, id, err)
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
			if tc, ok := up.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
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

// forward sends the request to the upstream and its response back: the
// gateway's request and response are the upstream's, so nothing is
// copied, and their bodies stream.
func (g *Gateway) forward(ctx *fasthttp.RequestCtx, id []byte) {
	req, resp := &ctx.Request, &ctx.Response
	removeHopByHop(&req.Header)
	if req.MayContinue() {
		// The client's 100 Continue was answered here (expect); the
		// upstream gets the body at once.
		req.Header.Del("Expect")
	}
	err := g.client.Do(req, resp)
	if err != nil {
		g.upstreamFailed(ctx, id, err)
		return
	}
	removeHopByHopResponse(&resp.Header)
	resp.Header.SetCanonical(hRequestID, id)
}

// upstreamFailed answers 504 upstream_timeout when the upstream was too
// slow, 502 upstream_unavailable otherwise.
func (g *Gateway) upstreamFailed(ctx *fasthttp.RequestCtx, id []byte, err error) {
	code, status, title, detail := "upstream_unavailable", http.StatusBadGateway, "Upstream unavailable",
		"The API behind this gateway could not be reached; retry shortly."
	var ne net.Error
	if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		code, status, title, detail = "upstream_timeout", http.StatusGatewayTimeout, "Upstream timeout",
			"The API behind this gateway did not answer in time; retry shortly."
	}
	g.log.Warn("fastgate: upstream failed", "request_id", string(id), "code", code, "err", err)
	resp := &ctx.Response
	resp.Reset()
	resp.SetStatusCode(status)
	resp.Header.SetCanonical(hRequestID, id)
	resp.Header.Set("Content-Type", "application/problem+json")
	resp.Header.Set("Cache-Control", "no-store")
	if status == http.StatusBadGateway {
		resp.Header.Set("Retry-After", "1")
	}
	b := resp.BodyWriter()
	w := func(s string) { _, _ = io.WriteString(b, s) }
	w(`{"type":"urn:keyward:error:` + code + `","title":"` + title + `","status":`)
	w(strconv.Itoa(status))
	w(`,"detail":"` + detail + `","code":"` + code + `","request_id":"`)
	_, _ = b.Write(id) // a safe id: letters, digits, - _ .
	w(`","success":false}` + "\n")
}

// scratch is what one verification needs as net/http types.
type scratch struct {
	h      http.Header
	u      url.URL
	keys   [4]string
	auths  [4]string
	result verify.Result
	dec    limit.Decision
}

// check verifies the key of ctx's request, writes the identity headers
// to it and removes the key; or answers the refusal and returns false.
func (g *Gateway) check(ctx *fasthttp.RequestCtx, id []byte) bool {
	v := g.cfg.Verifier
	req := &ctx.Request
	stripIncoming(&req.Header)
	s := g.scratch.Get().(*scratch)
	defer g.scratch.Put(s)
	str := g.view
	if g.cfg.CopyStrings {
		str = copied
	}
	// The presenting rules are verify.KeyFrom's, on the request's own
	// bytes: the key headers and the URL, viewed as strings.
	uri := req.Header.RequestURI()
	path, query, _ := bytes.Cut(uri, []byte{'?'})
	s.u = url.URL{Path: str(path), RawQuery: str(query)}
	s.h["X-Api-Key"] = headerValues(&req.Header, "X-Api-Key", s.keys[:0], str)
	s.h["Authorization"] = headerValues(&req.Header, "Authorization", s.auths[:0], str)
	key, kerr := verify.KeyFrom(s.h, &s.u, v.Format())
	vreq := verify.Request{
		Key: key, Method: method(req.Header.Method(), str), Target: str(uri),
		Referer: str(req.Header.PeekCanonical(hReferer)), Origin: str(req.Header.PeekCanonical(hOrigin)),
		IP: remoteIP(ctx), RateLimit: &s.dec,
	}
	if g.cfg.Routes != nil {
		vreq.Policy = g.cfg.Routes.Policy()
	}
	if kerr != nil {
		if vreq.Policy != nil && (kerr.Code == keyward.CodeMissingAPIKey || kerr.Code == keyward.CodeMalformedAPIKey) {
			if res := v.Verify(context.Background(), verify.Request{Method: vreq.Method, Target: vreq.Target, Policy: vreq.Policy}); res.Public {
				req.Header.Del("X-Api-Key")
				return true
			}
		}
		refuse(ctx, kerr, id)
		return false
	}
	s.result = v.Verify(context.Background(), vreq)
	res := &s.result
	if !res.Valid() {
		refuse(ctx, res.Err(), id)
		return false
	}
	req.Header.Del("X-Api-Key")
	if res.Public {
		return true
	}
	// The key may also have come as Authorization: Bearer; it is not
	// passed on either. Another scheme is meant for the upstream.
	if a := req.Header.PeekCanonical(hAuthorization); len(a) > 7 && bytes.EqualFold(a[:7], []byte("Bearer ")) {
		req.Header.Del("Authorization")
	}
	k, a := res.Key, res.Access
	h := &req.Header
	// The names are written in fasthttp's canonical form, so that
	// nothing normalises them again; the values are still checked for
	// line breaks.
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
	return true
}

// expect answers a request with Expect: 100-continue before its body is
// read: 100 when its key passes, so that a refused client never sends
// its body. The refusal itself is answered by the handler, which checks
// the key again (from the cache), as fasthttp lets this hook give only a
// status.
func (g *Gateway) expect(ctx *fasthttp.RequestCtx) int {
	if g.cfg.Verifier == nil {
		return fasthttp.StatusContinue
	}
	var idBuf [64]byte
	id := g.ids.of(ctx, idBuf[:0])
	if g.check(ctx, id) {
		ctx.SetUserValue(checkedKey{}, true)
		// The handler keeps the same id.
		ctx.Request.Header.SetCanonical(hRequestID, id)
		return fasthttp.StatusContinue
	}
	return ctx.Response.StatusCode()
}

// view returns b as a string without copying: the string lives as long
// as the request's buffer, which outlives the verification (Verify keeps
// nothing of its Request).
func (g *Gateway) view(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func copied(b []byte) string { return string(b) }

// bytesOf returns the bytes of s without copying, for fasthttp calls
// that copy them (SetCanonical) or only read them.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// Header names in fasthttp's canonical form (the first letter and each
// one after a dash upper case, the others lower case), for the calls
// that take them as they are (PeekCanonical, SetCanonical) and skip
// normalising a name at every request.
var (
	hRequestID      = []byte("X-Request-Id")
	hReferer        = []byte("Referer")
	hOrigin         = []byte("Origin")
	hAuthorization  = []byte("Authorization")
	hConnection     = []byte("Connection")
	hUpgrade        = []byte("Upgrade")
	hForwardedFor   = []byte("X-Forwarded-For")
	hForwardedProto = []byte("X-Forwarded-Proto")
	hKeyID          = []byte("X-Keyward-Key-Id")
	hKeyName        = []byte("X-Keyward-Key-Name")
	hTenant         = []byte("X-Keyward-Tenant")
	hTenantSlug     = []byte("X-Keyward-Tenant-Slug")
	hPlan           = []byte("X-Keyward-Plan")
	hEnvironment    = []byte("X-Keyward-Environment")
	hPermissions    = []byte("X-Keyward-Permissions")
	hMemberID       = []byte("X-Keyward-Member-Id")
)

// headerValues appends to dst the values of header name of h.
func headerValues(h *fasthttp.RequestHeader, name string, dst []string, str func([]byte) string) []string {
	for _, v := range h.PeekAll(name) {
		dst = append(dst, str(v))
	}
	if len(dst) == 0 {
		return nil
	}
	return dst
}

// method returns the request's method as one of the usual constants, so
// that it needs no copy, or as str makes it.
func method(m []byte, str func([]byte) string) string {
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
	return str(m)
}

// remoteIP is the address of the connection's peer.
func remoteIP(ctx *fasthttp.RequestCtx) netip.Addr {
	if a, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

// refuse answers the refusal e, as forward-auth would (problem.Write).
func refuse(ctx *fasthttp.RequestCtx, e *keyward.Error, id []byte) {
	w := responseWriter{ctx: ctx, h: make(http.Header)}
	problem.Write(w, e, string(id))
}

// responseWriter lets problem.Write answer through fasthttp: refusals
// are not the hot path.
type responseWriter struct {
	ctx *fasthttp.RequestCtx
	h   http.Header
}

func (w responseWriter) Header() http.Header { return w.h }

func (w responseWriter) WriteHeader(status int) {
	for k, vs := range w.h {
		for _, v := range vs {
			w.ctx.Response.Header.Add(k, v)
		}
	}
	w.ctx.Response.SetStatusCode(status)
}

func (w responseWriter) Write(b []byte) (int, error) {
	return w.ctx.Response.BodyWriter().Write(b)
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

// stripIncoming removes the identity headers a client sent itself: only
// the gateway writes them.
func stripIncoming(h *fasthttp.RequestHeader) {
	found := false
	for k := range h.All() {
		if len(k) > 10 && bytes.EqualFold(k[:10], []byte("X-Keyward-")) {
			found = true
			break
		}
	}
	if !found {
		return
	}
	var names []string
	for k := range h.All() {
		if len(k) > 10 && bytes.EqualFold(k[:10], []byte("X-Keyward-")) {
			names = append(names, string(k))
		}
	}
	for _, n := range names {
		h.Del(n)
	}
}

// appendForwardedFor adds the client's address to X-Forwarded-For and
// sets X-Forwarded-Proto, as httputil does.
func appendForwardedFor(ctx *fasthttp.RequestCtx) {
	h := &ctx.Request.Header
	var buf [64]byte
	b := buf[:0]
	if prior := h.PeekCanonical(hForwardedFor); len(prior) > 0 {
		b = append(append(b, prior...), ", "...)
	}
	if a, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(a.IP)
		b = ip.Unmap().AppendTo(b)
	}
	h.SetCanonical(hForwardedFor, b)
	if ctx.IsTLS() {
		h.SetCanonical(hForwardedProto, []byte("https"))
	} else {
		h.SetCanonical(hForwardedProto, []byte("http"))
	}
}

// requestIDs gives requests ids, as the server does: an incoming
// X-Request-Id of a safe shape is kept; otherwise a prefix of the process
// and a counter.
type requestIDs struct {
	prefix  string
	counter atomic.Uint64
}

// of appends the id of ctx's request to dst.
func (ids *requestIDs) of(ctx *fasthttp.RequestCtx, dst []byte) []byte {
	if id := ctx.Request.Header.PeekCanonical(hRequestID); safeRequestID(id) {
		return append(dst, id...)
	}
	return strconv.AppendUint(append(dst, ids.prefix...), ids.counter.Add(1), 36)
}

// safeRequestID reports whether an incoming request id may be kept: 1 to
// 64 letters, digits, dashes, underscores and dots.
func safeRequestID(id []byte) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// logger is a fasthttp.Logger that writes to a slog.Logger, at debug
// level: these are the clients' mistakes, not the gateway's.
type logger struct{ log *slog.Logger }

func (l logger) Printf(format string, args ...any) {
	l.log.Debug("fastgate: " + fmt.Sprintf(format, args...))
}

// idleConn is a connection to the upstream whose every read must begin
// to return within timeout.
type idleConn struct {
	net.Conn
	timeout time.Duration
}

func (c *idleConn) Read(b []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

// SetReadDeadline is idleConn's own business: fasthttp would otherwise
// clear the deadline of each read.
func (c *idleConn) SetReadDeadline(time.Time) error { return nil }
