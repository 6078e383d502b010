package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/forwardauth"
	"github.com/keyward/keyward/internal/forwarded"
	"github.com/keyward/keyward/internal/requestid"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/verify"
)

// AuthConfig is what an AuthServer needs.
type AuthConfig struct {
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
	untrusted forwarded.UntrustedWarning
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
	a := &AuthServer{
		check:   forwardauth.Checker{Verifier: c.Verifier, Routes: c.Routes, RequireTLS: c.RequireTLS, TLSRequired: c.TLSRequired},
		proxies: c.TrustedProxies, ids: requestid.New(), log: c.Logger,
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if c.HSTS > 0 {
		a.hsts = []byte("max-age=" + strconv.FormatInt(max(int64(c.HSTS/time.Second), 1), 10))
	}
	a.srv = &fasthttp.Server{
		Handler: a.handle,
		Logger:  logger{a.log},
		// The API's limit: a proxy passes the client's own headers on.
		ReadBufferSize:                MaxAuthHeaderBytes,
		WriteBufferSize:               4 << 10,
		ReadTimeout:                   c.HeaderTimeout,
		IdleTimeout:                   c.IdleTimeout,
		MaxRequestBodySize:            maxAuthBody,
		NoDefaultServerHeader:         true,
		NoDefaultContentType:          true,
		NoDefaultDate:                 true,
		DisablePreParseMultipartForm:  true,
		SecureErrorLogMessage:         true,
		DisableHeaderNamesNormalizing: false,
		CloseOnShutdown:               true,
	}
	return a, nil
}

// MaxAuthHeaderBytes is the largest request header an AuthServer reads,
// as the HTTP API's: a larger one is answered 431.
const MaxAuthHeaderBytes = 64 << 10

// maxAuthBody bounds the body of an auth request, which nothing reads:
// proxies send none.
const maxAuthBody = 64 << 10

// authPath is forward-auth's path, the AuthServer's only one.
const authPath = "/v1/forward-auth"

// errAuthNotFound answers any other path.
var errAuthNotFound = &keyward.Error{Code: keyward.CodeNotFound,
	Message: "This listener (serve --auth-addr) answers only " + authPath + ", the auth requests of proxies; the rest of the API is on serve --addr."}

// ask is one auth request's state while it is answered: the values that
// the Checker reads as net/http types, viewing the request's own bytes.
type ask struct {
	a        forwardauth.Answer
	in       forwardauth.Request
	h        http.Header
	u        url.URL
	keys     [4]string
	auths    [4]string
	referer  [1]string
	origin   [1]string
	fwdURI   [2]string // two at most: a second is an error
	origURI  [2]string
	fwdMeth  [2]string
	origMeth [2]string
	xff      [4]string
	proto    [4]string
	idBuf    [80]byte
	buf      []byte
}

// asks keeps the ask of each request while it is answered.
var asks = sync.Pool{New: func() any { return &ask{h: make(http.Header, 8), buf: make([]byte, 0, 256)} }}

// handle answers one auth request.
func (s *AuthServer) handle(ctx *fasthttp.RequestCtx) {
	rh, wh := &ctx.Request.Header, &ctx.Response.Header
	q := asks.Get().(*ask)
	defer s.release(q)
	id := q.idBuf[:0]
	if v := rh.PeekCanonical(hRequestID); requestid.Safe(view(v)) {
		id = append(id, v...)
	} else {
		id = s.ids.Append(id)
	}
	wh.SetCanonical(hRequestID, id)
	defer func() {
		if v := recover(); v != nil {
			answerPanic(ctx, s.log, "forward-auth", v, id)
		}
	}()

	path, query, _ := strings.Cut(view(rh.RequestURI()), "?")
	if path != authPath {
		writeProblem(ctx, errAuthNotFound, id)
		return
	}
	peer := remoteIP(ctx)
	trusted := len(s.proxies) > 0 && s.proxies.Trusts(peer)
	secure := s.proxies.SecureOf(peer, values(rh, hForwardedProto, q.proto[:0]), ctx.IsTLS())
	if secure && s.hsts != nil {
		wh.SetCanonical(hHSTS, s.hsts)
	}
	clientIP := peer
	if trusted {
		clientIP = s.proxies.ClientIPOf(peer, values(rh, hForwardedFor, q.xff[:0]))
	} else if !s.untrusted.Logged() && peer.IsValid() && len(rh.PeekCanonical(hForwardedFor)) > 0 {
		s.untrusted.Log(ctx, s.log, peer, len(s.proxies))
	}
	q.u = url.URL{Path: path, RawQuery: query}
	h := q.h
	setValues(h, "X-Api-Key", values(rh, hAPIKey, q.keys[:0]))
	setValues(h, "Authorization", values(rh, hAuthorization, q.auths[:0]))
	setValues(h, "Referer", values(rh, hReferer, q.referer[:0]))
	setValues(h, "Origin", values(rh, hOrigin, q.origin[:0]))
	setValues(h, "X-Forwarded-Uri", values(rh, hForwardedURI, q.fwdURI[:0]))
	setValues(h, "X-Original-Uri", values(rh, hOriginalURI, q.origURI[:0]))
	setValues(h, "X-Forwarded-Method", values(rh, hForwardedMethod, q.fwdMeth[:0]))
	setValues(h, "X-Original-Method", values(rh, hOriginalMethod, q.origMeth[:0]))
	q.in = forwardauth.Request{Method: method(rh.Method()), URL: &q.u, Header: h, ClientIP: clientIP, TLS: secure}
	a := &q.a
	s.check.Check(ctx, &q.in, a)
	if rl := a.Result.RateLimit; rl != nil && rl.N > 0 {
		q.buf = setRateLimit(wh, rl, q.buf[:0])
	}
	if a.Misconfigured {
		s.log.WarnContext(ctx, "forward-auth: the proxy's settings are wrong", "request_id", string(id), "detail", apikey.Redact(a.Refusal.Message))
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
		if a.Refusal.Code.Status() >= 500 {
			s.log.ErrorContext(ctx, "forward-auth: could not verify a key", "request_id", string(id), "code", a.Refusal.Code, "err", apikey.Redact(a.Refusal.Error()))
		}
		writeProblem(ctx, a.Refusal, id)
	}
}

// release returns q to the pool, holding no view of a request.
func (s *AuthServer) release(q *ask) {
	clear(q.h)
	q.u, q.in = url.URL{}, forwardauth.Request{}
	q.a.Result, q.a.Refusal = verifyResultZero, nil
	q.keys, q.auths, q.xff, q.proto = [4]string{}, [4]string{}, [4]string{}, [4]string{}
	q.referer, q.origin = [1]string{}, [1]string{}
	q.fwdURI, q.origURI, q.fwdMeth, q.origMeth = [2]string{}, [2]string{}, [2]string{}, [2]string{}
	asks.Put(q)
}

// answerPanic answers a request whose serving panicked with v 500
// internal_error with its id, closes the connection, since what the panic
// left half done (a body half read or half sent) is unknown, and logs it
// with the id and without the key: fasthttp recovers no panic, and one
// would end the whole process.
func answerPanic(ctx *fasthttp.RequestCtx, log *slog.Logger, who string, v any, id []byte) {
	id = append([]byte(nil), id...)
	log.Error(who+": panic while serving a request", "request_id", string(id), "panic", apikey.Redact(fmt.Sprint(v)))
	ctx.Response.Reset()
	ctx.Response.Header.SetCanonical(hRequestID, id)
	writeProblem(ctx, keyward.Internal(fmt.Errorf("%s: panic: %v", who, v)), id)
	ctx.SetConnectionClose()
}

var (
	hCacheControl    = []byte("Cache-Control")
	hForwardedURI    = []byte("X-Forwarded-Uri")
	hOriginalURI     = []byte("X-Original-Uri")
	hForwardedMethod = []byte("X-Forwarded-Method")
	hOriginalMethod  = []byte("X-Original-Method")
	noStore          = []byte("no-store")
)
