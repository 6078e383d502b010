package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/forwardauth"
	"github.com/keyward/keyward/internal/forwarded"
	"github.com/keyward/keyward/internal/jsonbody"
	"github.com/keyward/keyward/internal/reqlog"
	"github.com/keyward/keyward/internal/requestid"
	"github.com/keyward/keyward/internal/verifyapi"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/verify"
	apiview "github.com/keyward/keyward/view"
)

// AuthConfig is what an AuthServer needs.
type AuthConfig struct {
	// ProblemBase is the start of the problem types of refusals
	// (problem.TypeURI): the instance's public URL; "" for URNs.
	ProblemBase string
	// Verifier verifies the keys, started by the caller, who closes it
	// once the server is done.
	Verifier *verify.Verifier
	// Routes is the route policy (serve --routes), or nil for none, when
	// the proxy's permissions parameter says what a location needs.
	Routes *policy.File
	// TrustedProxies are the proxies whose X-Forwarded-For and
	// X-Forwarded-Proto are believed: the proxies that ask.
	TrustedProxies []netip.Prefix
	// RequireTLS refuses an original request that did not come over TLS
	// 403 tls_required; HSTS, when more than 0, is the max-age of
	// Strict-Transport-Security on answers about a request over TLS.
	RequireTLS bool
	HSTS       time.Duration
	// TLSRequired is the refusal of RequireTLS: the HTTP API's, so that
	// both listeners answer alike.
	TLSRequired *keyward.Error
	// HeaderTimeout bounds the reading of a request, and IdleTimeout a
	// kept-alive connection's wait for its next one; 0 means
	// DefaultHeaderTimeout and DefaultIdleTimeout.
	HeaderTimeout, IdleTimeout time.Duration
	// Logger receives the proxies' mistakes in their settings (at WARN,
	// with the request id) and the failures to verify; nil discards
	// them. It never receives a key.
	Logger *slog.Logger
	// Logs is the request log, which every forward-auth and verify
	// request is added to; nil for none.
	Logs *reqlog.Log
}

// AuthServer answers the auth requests of proxies in front of an API
// (serve --auth-addr): /v1/forward-auth, decided by forwardauth.Checker,
// as the HTTP API decides it, and answered as the HTTP API answers it, on
// fasthttp: HTTP/1.1 only, at about two thirds of net/http's cost per
// request (docs/benchmarks.md). Any other path is answered 404. It is
// safe for concurrent use.
type AuthServer struct {
	listeners
	check     forwardauth.Checker
	proxies   forwarded.Proxies
	hsts      []byte
	ids       *requestid.Source
	log       *slog.Logger
	logs      *reqlog.Log
	untrusted forwarded.UntrustedWarning
	// problemBase is AuthConfig.ProblemBase.
	problemBase string
}

// NewAuthServer returns the AuthServer of c.
func NewAuthServer(c AuthConfig) (*AuthServer, error) {
	if c.Verifier == nil {
		return nil, errors.New("gateway: AuthConfig.Verifier is nil")
	}
	if c.RequireTLS && c.TLSRequired == nil {
		return nil, errors.New("gateway: AuthConfig.TLSRequired is nil, and RequireTLS needs it")
	}
	if c.HeaderTimeout <= 0 {
		c.HeaderTimeout = DefaultHeaderTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	a := &AuthServer{problemBase: c.ProblemBase,
		check:   forwardauth.Checker{Verifier: c.Verifier, Routes: c.Routes, RequireTLS: c.RequireTLS, TLSRequired: c.TLSRequired},
		proxies: c.TrustedProxies, ids: requestid.New(), log: c.Logger, logs: c.Logs,
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.hsts = hstsValue(c.HSTS)
	// The API's limit on a header: a proxy passes the client's own on.
	a.srv = newServer(a.handle, a.log, MaxAuthHeaderBytes, 4<<10)
	a.srv.ReadTimeout, a.srv.IdleTimeout = c.HeaderTimeout, c.IdleTimeout
	a.srv.MaxRequestBodySize, a.srv.ErrorHandler = maxAuthBody, a.unreadable
	return a, nil
}

// MaxAuthHeaderBytes is the largest request header an AuthServer reads,
// as the HTTP API's: a larger one is answered 431.
const MaxAuthHeaderBytes = 64 << 10

// maxAuthBody bounds the body of a request, as the API's: that of
// POST /v1/verify; proxies send none with an auth request.
const maxAuthBody = 1 << 20

// The AuthServer's paths: forward-auth's, and POST /v1/verify's.
const (
	authPath   = "/v1/forward-auth"
	verifyPath = "/v1/verify"
)

// errAuthNotFound answers any other path.
var errAuthNotFound = &keyward.Error{Code: keyward.CodeNotFound,
	Message: "This listener (serve --auth-addr) answers only " + authPath + " (the auth requests of proxies) and POST " + verifyPath +
		"; the rest of the API is on serve --addr."}

// ask is one auth request's state while it is answered: the values that
// the Checker reads as net/http types, viewing the request's own bytes.
type ask struct {
	views
	a        forwardauth.Answer
	in       forwardauth.Request
	fwdURI   [2]string // two at most: a second is an error
	origURI  [2]string
	fwdMeth  [2]string
	origMeth [2]string
	buf      []byte
	secure   bool
	clientIP netip.Addr
	// POST /v1/verify's: the request of the caller and of the key it
	// gives, with their rate-limit decisions, and its body.
	req                 verify.Request
	callerRate, keyRate limit.Decision
	body                verifyapi.Body
	out                 apiview.Verification
	ipBuf               [48]byte
	// What the request log needs of a verify request: the caller's key,
	// the key the body gave and its verification (verified), or the code
	// of the refusal.
	callerKey *keyward.Key
	keyRes    verify.Result
	verified  bool
	code      keyward.Code
	entry     reqlog.Entry
}

// asks keeps the ask of each request while it is answered.
var asks = sync.Pool{New: func() any { return &ask{views: views{h: make(http.Header, 8)}, buf: make([]byte, 0, 256)} }}

// handle answers one request: forward-auth, POST /v1/verify, or 404.
func (s *AuthServer) handle(ctx *fasthttp.RequestCtx) {
	rh := &ctx.Request.Header
	q := asks.Get().(*ask)
	defer s.release(q)
	q.id = requestIDOf(ctx, s.ids, q.idBuf[:0])
	defer func() {
		if v := recover(); v != nil {
			answerPanic(ctx, s.log, "auth listener", v, q.id, s.problemBase)
		}
	}()

	target := view(rh.RequestURI())
	path, query, _ := strings.Cut(target, "?")
	verifying := path == verifyPath && rh.IsPost()
	if path != authPath && !verifying {
		writeProblem(ctx, errAuthNotFound, q.id, s.problemBase)
		return
	}
	peer, trusted, secure := peerOf(ctx, s.proxies, s.hsts, q.proto[:0])
	q.secure = secure
	q.clientIP = peer
	if trusted {
		q.clientIP = s.proxies.ClientIPOf(peer, values(rh, hForwardedFor, q.xff[:0]))
	} else if !s.untrusted.Logged() && peer.IsValid() && len(rh.PeekCanonical(hForwardedFor)) > 0 {
		s.untrusted.Log(ctx, s.log, peer, len(s.proxies))
	}
	q.read(rh, path, query)
	if verifying {
		s.verify(ctx, q, target)
	} else {
		s.forwardAuth(ctx, q)
	}
	s.logRequest(ctx, q, path, verifying)
}

// logRequest adds the request's entry to the request log: for
// forward-auth, the original request's; for POST /v1/verify, the key the
// body gave, or the caller's when it was refused before.
func (s *AuthServer) logRequest(ctx *fasthttp.RequestCtx, q *ask, path string, verifying bool) {
	if s.logs == nil {
		return
	}
	rh := &ctx.Request.Header
	e := &q.entry
	*e = reqlog.Entry{At: ctx.Time(), RequestID: view(q.id), Method: method(rh.Method()), Path: path, ClientIP: q.clientIP,
		UserAgent: view(rh.UserAgent()), Referrer: headerValue(q.h, "Referer")}
	status := ctx.Response.StatusCode()
	switch {
	case !verifying:
		q.a.Logged(e, status)
	case q.verified:
		e.Verified(keyward.SurfaceVerify, &q.keyRes, &q.req)
	default:
		e.Surface, e.Key, e.Status, e.Code, e.RateLimit = keyward.SurfaceVerify, q.callerKey, status, q.code, &q.callerRate
	}
	e.Latency = time.Since(e.At)
	s.logs.Add(e)
}

// forwardAuth answers a proxy's auth request as the HTTP API's
// /v1/forward-auth answers it.
func (s *AuthServer) forwardAuth(ctx *fasthttp.RequestCtx, q *ask) {
	rh, wh := &ctx.Request.Header, &ctx.Response.Header
	h := q.h
	setValues(h, "X-Forwarded-Uri", values(rh, hForwardedURI, q.fwdURI[:0]))
	setValues(h, "X-Original-Uri", values(rh, hOriginalURI, q.origURI[:0]))
	setValues(h, "X-Forwarded-Method", values(rh, hForwardedMethod, q.fwdMeth[:0]))
	setValues(h, "X-Original-Method", values(rh, hOriginalMethod, q.origMeth[:0]))
	q.in = forwardauth.Request{Method: method(rh.Method()), URL: &q.u, Header: h, ClientIP: q.clientIP, TLS: q.secure}
	a := &q.a
	// Not ctx: a fasthttp.RequestCtx is reused once the request is
	// answered, while a context derived from it (a storage read's
	// timeout) may still read it from a goroutine of its own when the
	// server stops (the race detector saw it). The checks take their own
	// timeouts.
	s.check.Check(context.Background(), &q.in, a)
	if rl := a.Result.RateLimit; rl != nil && rl.N > 0 {
		q.buf = setRateLimit(wh, rl, q.buf[:0])
	}
	q.buf = setNotice(wh, &a.Result.Notice, q.buf)
	if a.Misconfigured {
		s.log.WarnContext(ctx, "forward-auth: the proxy's settings are wrong", "request_id", string(q.id), "detail", apikey.Redact(a.Refusal.Message))
	}
	switch {
	case a.Refusal == nil:
		if !a.Result.Public {
			setIdentity(wh, &a.Result)
		}
	case a.Mode == forwardauth.AuthRequest:
		// No WWW-Authenticate: nginx would copy it into the answer of
		// its error_page location, beside the one that answer has.
		wh.SetCanonical(hCacheControl, noStore)
		ctx.SetStatusCode(http.StatusUnauthorized)
	default:
		s.refuse(ctx, q, a.Refusal)
	}
}

// verify answers POST /v1/verify as the HTTP API answers it: the caller
// admitted by verifyapi.Admit as a manage.Verifier, its body read by
// jsonbody.Decode, the key it gives checked by verifyapi.Verify.
func (s *AuthServer) verify(ctx *fasthttp.RequestCtx, q *ask, target string) {
	wh := &ctx.Response.Header
	// Before the key is read, as the API listener refuses it.
	if s.check.RequireTLS && !q.secure {
		s.refuse(ctx, q, s.check.TLSRequired)
		return
	}
	q.req = verify.Request{Method: http.MethodPost, Target: target, Referer: headerValue(q.h, "Referer"), Origin: headerValue(q.h, "Origin"),
		IP: q.clientIP, TLS: q.secure, RateLimit: &q.callerRate}
	// The caller's address as text views q's buffer: the caller lives as
	// long as the request.
	addr := view(q.clientIP.AppendTo(q.ipBuf[:0]))
	res, caller, err := verifyapi.Admit(context.Background(), s.check.Verifier, q.h, &q.u, &q.req, addr, manage.Verifier) // not ctx: see forwardAuth
	q.callerKey = res.Key
	if rl := res.RateLimit; rl != nil && rl.N > 0 {
		q.buf = setRateLimit(wh, rl, q.buf[:0])
	}
	if err != nil {
		s.refuse(ctx, q, err)
		return
	}
	// The body of nearly every request is read in place (DecodeSimple);
	// any other is read by jsonbody.Decode, which says what is wrong.
	// q.body is empty (release); DecodeSimple may have filled part of it
	// before it gave up.
	body := ctx.PostBody()
	if !q.body.DecodeSimple(body) {
		q.body = verifyapi.Body{Permissions: q.body.Permissions[:0]}
		if e := jsonbody.Decode(body, &q.body); e != nil {
			s.refuse(ctx, q, verifyapi.AsError(e))
			return
		}
	}
	q.req = verify.Request{RateLimit: &q.keyRate}
	res, err = verifyapi.Verify(context.Background(), caller, s.check.Verifier, s.check.Routes, &q.body, &q.req)
	if err != nil {
		s.refuse(ctx, q, err)
		return
	}
	q.keyRes, q.verified = res, true
	q.out = apiview.VerificationOf(res, view(q.id))
	enc := encoders.Get().(*encoder)
	defer encoders.Put(enc)
	enc.buf.Reset()
	if e := enc.enc.Encode(&q.out); e != nil {
		s.refuse(ctx, q, &keyward.Error{Code: keyward.CodeInternal, Err: fmt.Errorf("encode the answer: %w", e),
			Message: "The answer could not be encoded as JSON. Nothing was sent but this error; report the request_id to the operator, whose log has the cause."})
		return
	}
	wh.SetCanonical(hContentType, applicationJSON)
	wh.SetCanonical(hCacheControl, noStore)
	ctx.SetBody(enc.buf.Bytes())
}

// refuse answers e as problem+json, logging a failure of the server's
// own (5xx) with the request's id.
func (s *AuthServer) refuse(ctx *fasthttp.RequestCtx, q *ask, e *keyward.Error) {
	q.code = e.Code
	if e.Code.Status() >= 500 {
		s.log.ErrorContext(ctx, "request failed", "request_id", string(q.id), "method", string(ctx.Method()), "route", string(q.u.Path),
			"code", e.Code, "err", apikey.Redact(e.Error()))
	}
	writeProblem(ctx, e, q.id, s.problemBase)
}

// encoder encodes the answers of /v1/verify into its buffer.
type encoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

// encoders keep the encoders of answers being written.
var encoders = sync.Pool{New: func() any {
	e := new(encoder)
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false)
	return e
}}

// unreadable answers a request that fasthttp could not read: a body
// over maxAuthBody as the API's listener answers it; any other failure
// as fasthttp does (431 for a header too large, 400 for one it cannot
// parse, 408 for one that is too slow).
func (s *AuthServer) unreadable(ctx *fasthttp.RequestCtx, err error) {
	if !errors.Is(err, fasthttp.ErrBodyTooLarge) {
		var small *fasthttp.ErrSmallBuffer
		switch {
		case errors.As(err, &small):
			ctx.Error("Request Header Fields Too Large", http.StatusRequestHeaderFieldsTooLarge)
		case isTimeout(err):
			ctx.Error("Request timeout", http.StatusRequestTimeout)
		default:
			ctx.Error("Error when parsing request", http.StatusBadRequest)
		}
		return
	}
	id := s.ids.Append(nil)
	ctx.Response.Header.SetCanonical(hRequestID, id)
	writeProblem(ctx, keyward.Errorf(keyward.CodeInvalidRequest, "The body is larger than %d bytes.", maxAuthBody), id, s.problemBase)
}

// clear0 returns v emptied, holding no view of a request.
func clear0(v []string) []string {
	clear(v[:cap(v)])
	return v[:0]
}

// isTimeout reports whether err is a timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// release returns q to the pool, holding no view of a request.
func (s *AuthServer) release(q *ask) {
	q.reset()
	q.in = forwardauth.Request{}
	q.a.Reset()
	q.fwdURI, q.origURI, q.fwdMeth, q.origMeth = [2]string{}, [2]string{}, [2]string{}, [2]string{}
	q.req, q.body, q.out = verify.Request{}, verifyapi.Body{Permissions: clear0(q.body.Permissions)}, apiview.Verification{}
	q.callerKey, q.keyRes, q.verified, q.code, q.entry = nil, verifyResultZero, false, "", reqlog.Entry{}
	asks.Put(q)
}

// answerPanic answers a request whose serving panicked with v 500
// internal_error with its id, closes the connection, since what the panic
// left half done (a body half read or half sent) is unknown, and logs it
// with the id and without the key: fasthttp recovers no panic, and one
// would end the whole process.
func answerPanic(ctx *fasthttp.RequestCtx, log *slog.Logger, who string, v any, id []byte, base string) {
	id = append([]byte(nil), id...)
	log.Error(who+": panic while serving a request", "request_id", string(id), "panic", apikey.Redact(fmt.Sprint(v)))
	ctx.Response.Reset()
	ctx.Response.Header.SetCanonical(hRequestID, id)
	writeProblem(ctx, keyward.Internal(fmt.Errorf("%s: panic: %v", who, v)), id, base)
	ctx.SetConnectionClose()
}

var (
	hCacheControl    = []byte("Cache-Control")
	hForwardedURI    = []byte("X-Forwarded-Uri")
	hOriginalURI     = []byte("X-Original-Uri")
	hForwardedMethod = []byte("X-Forwarded-Method")
	hOriginalMethod  = []byte("X-Original-Method")
	hContentType     = []byte("Content-Type")
	noStore          = []byte("no-store")
	applicationJSON  = []byte("application/json")
)
