// Package httpapi owns Keyward's HTTP surface: the management API under /v1,
// the verify and forward-auth endpoints, health checks and the OpenAPI
// document generated from the route table in routes.go. Errors are answered
// as RFC 9457 problem+json in one place (errors.go).
package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/dashboard"
	"github.com/keyward/keyward/internal/forwardauth"
	"github.com/keyward/keyward/internal/forwarded"
	"github.com/keyward/keyward/internal/jsonbody"
	"github.com/keyward/keyward/internal/reqlog"
	"github.com/keyward/keyward/internal/requestid"
	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/verify"
)

// Config holds what the HTTP server needs.
type Config struct {
	Service  *manage.Service
	Verifier *verify.Verifier
	Store    keyward.Store
	Logger   *slog.Logger
	// TrustedProxies are the addresses whose X-Forwarded-For is believed.
	// Empty: the client address is always the connection's peer.
	TrustedProxies []netip.Prefix
	// StorageTimeout bounds how long a management call waits for the
	// store before it is answered 503 storage_unavailable;
	// verify.DefaultStorageTimeout when zero. The verifier bounds its own
	// lookups (verify.Options.StorageTimeout).
	StorageTimeout time.Duration
	// Routes is the route policy file (serve --routes) that forward-auth
	// and POST /v1/verify decide by; nil for none. Its current policy is
	// read at each request, so a reload applies at once.
	Routes *policy.File
	// RequireTLS answers a request that did not come over TLS (nor from
	// a trusted proxy that says, in X-Forwarded-Proto, that it did) 403
	// tls_required (serve --require-tls); forward-auth applies it to the
	// original request.
	RequireTLS bool
	// HSTS, when more than 0, is the max-age of the
	// Strict-Transport-Security header set on answers over TLS (serve
	// --hsts).
	HSTS time.Duration
	// Logs is the request log, which every request that verifies a key
	// is added to; nil for none.
	Logs *reqlog.Log
	// Metrics serves GET /metrics (metrics.Metrics.Handler); nil for
	// none.
	Metrics http.Handler
	// ProblemBase is the start of the problem types (problem.TypeURI):
	// the instance's public URL, or its listener's address; "" for URNs.
	ProblemBase string
	// PublicURL is the base URL the instance is reached at
	// (serve --public-url), for the links it makes; "" when unknown.
	PublicURL string
	// Dashboard serves the web pages at the paths of
	// dashboard.Patterns; nil for none (their paths are then 404s, as
	// any path without a route).
	Dashboard http.Handler
	// Done, when closed, ends the change streams (GET /v1/changes), so
	// that a server shutting down need not wait for them; nil for never.
	Done <-chan struct{}
}

type server struct {
	svc      *manage.Service
	verifier *verify.Verifier
	store    keyward.Store
	log      *slog.Logger
	// now is the clock that decides which keys show as expired: the
	// management service's, so that tests that move it see the same.
	now     keyward.Clock
	trusted forwarded.Proxies
	// untrusted says, once, that X-Forwarded-For came from a peer that
	// is not a trusted proxy.
	untrusted forwarded.UntrustedWarning
	// storageTimeout bounds each management call's work with the store.
	storageTimeout time.Duration
	// forward decides forward-auth's requests.
	forward *forwardauth.Checker
	// policyFile is Config.Routes.
	policyFile *policy.File
	// requireTLS is Config.RequireTLS, and hsts the header that
	// Config.HSTS makes, nil for none.
	requireTLS bool
	hsts       []string
	// publicURL and problemBase are Config's.
	publicURL, problemBase string
	// done is Config.Done.
	done    <-chan struct{}
	logs    *reqlog.Log
	metrics http.Handler
	openapi []byte
	// ids gives requests their ids, as the gateway's.
	ids *requestid.Source
	// bufs holds *bytes.Buffer values in which answers are encoded before
	// they are sent, so that an answer that cannot be encoded is never
	// half sent.
	bufs sync.Pool
	// streams counts the open change streams (GET /v1/changes).
	streams streamCounts
}

// NewServer returns the HTTP handler of the API, every route and middleware
// in place.
func NewServer(c Config) (http.Handler, error) {
	s := &server{svc: c.Service, verifier: c.Verifier, store: c.Store, log: c.Logger, trusted: c.TrustedProxies, storageTimeout: c.StorageTimeout, now: time.Now, policyFile: c.Routes,
		requireTLS: c.RequireTLS, hsts: hstsHeader(c.HSTS), done: c.Done, publicURL: c.PublicURL, problemBase: c.ProblemBase, logs: c.Logs, metrics: c.Metrics}
	s.forward = &forwardauth.Checker{Verifier: c.Verifier, Routes: c.Routes, RequireTLS: c.RequireTLS, TLSRequired: ErrTLSRequired}
	if c.Service != nil {
		s.now = c.Service.Now
	}
	s.bufs.New = func() any { return new(bytes.Buffer) }
	if s.storageTimeout <= 0 {
		s.storageTimeout = verify.DefaultStorageTimeout
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.ids = requestid.New()
	mux := http.NewServeMux()
	rts := s.routes()
	var forwardAuth http.Handler
	for _, rt := range rts {
		h := s.require(rt.need, rt.handler)
		mux.Handle(rt.pattern, h)
		if rt.pattern == forwardAuthPath {
			forwardAuth = h
		}
	}
	doc, err := openAPI(rts)
	if err != nil {
		return nil, fmt.Errorf("build OpenAPI document: %w", err)
	}
	s.openapi = doc
	if c.Dashboard != nil {
		for _, p := range dashboard.Patterns {
			mux.Handle(p, s.keyless(c.Dashboard))
		}
	}
	mux.Handle("/", s.keyless(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The path is not repeated: it may hold a key pasted by mistake.
		s.writeError(w, r, keyward.Errorf(keyward.CodeNotFound, "There is no route for this method and path; see /openapi.json for the API."))
	})))
	return s.withRequestID(s.withTransportRules(s.recoverPanics(hotPath(forwardAuth, mux)))), nil
}

// forwardAuthPath is forward-auth's pattern: an exact path, any method.
const forwardAuthPath = "/v1/forward-auth"

// hotPath finds forward-auth's handler without the mux, which the mux
// would choose for that path too (an exact path that is clean, and no
// other pattern that could take it), and hands every other request to the
// mux: the mux's search cost 0.45 µs of the 14.5 µs of CPU a
// forward-auth request takes under load.
func hotPath(forwardAuth, mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == forwardAuthPath {
			r.Pattern = forwardAuthPath
			forwardAuth.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// keyless refuses, for a route that takes no key, a request with a key of
// this instance anywhere in its URL (400), as the routes that take one do:
// the URL has leaked it, and its owner must hear so to replace it.
func (s *server) keyless(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := verify.CheckURL(r.URL, s.verifier.Format()); err != nil {
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// withRequestID gives every request an id and answers it in X-Request-Id,
// where the handlers read it back (requestID). An incoming id of a safe
// shape is kept, so ids follow a request across services.
func (s *server) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["X-Request-Id"] = []string{s.ids.Of(r.Header)}
		next.ServeHTTP(w, r)
	})
}

// requestID is the id withRequestID gave the request.
func requestID(w http.ResponseWriter) string {
	if v := w.Header()["X-Request-Id"]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// recoverPanics answers a panicking handler with a 500 problem instead of a
// dropped connection, and logs the panic.
func (s *server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.writeError(w, r, keyward.Internal(fmt.Errorf("panic: %v", v)))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// clientIP is the address of the client: the connection's peer, or, when the
// peer is a trusted proxy, the last address in X-Forwarded-For that is not a
// trusted proxy (forwarded.Proxies.ClientIP).
func (s *server) clientIP(r *http.Request) netip.Addr {
	if !s.untrusted.Logged() && len(r.Header["X-Forwarded-For"]) > 0 && !s.trusted.PeerTrusted(r) {
		if addr := forwarded.Peer(r); addr.IsValid() {
			s.untrusted.Log(r.Context(), s.log, addr, len(s.trusted))
		}
	}
	return s.trusted.ClientIP(r)
}

// ParseCIDRs reads a comma-separated list of CIDRs or addresses, as
// --trusted-proxies takes it.
func ParseCIDRs(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := keyward.ParseCIDR(f)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// maxBody bounds a request body of the management API.
const maxBody = 1 << 20

// bodies holds the *bytes.Buffer values that decode reads bodies into:
// one allocated per request was a tenth of what POST /v1/verify
// allocated, and the garbage collections it caused made the tail of its
// latency (docs/benchmarks.md, Tail latency). Decoding copies what it
// keeps out of the buffer.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// decode reads a JSON body into v strictly: unknown fields, trailing data, a
// wrong type or a body over 1 MiB are errors that say what to fix. A body
// that could not be read (too slow, or a broken connection) is told apart
// from one that is not JSON, and no error repeats the transport's own,
// which names the connection's addresses.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	buf := bodies.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledBuffer {
			bodies.Put(buf)
		}
	}()
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, maxBody))
	body := buf.Bytes()
	if err != nil {
		if rerr := readError(err); rerr != nil {
			return rerr
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return jsonbody.ErrCutShort
		}
		return &keyward.Error{Code: keyward.CodeInvalidRequest, Err: err,
			Message: "The body could not be read; send the request again."}
	}
	return jsonbody.Decode(body, v)
}

// readError is the answer to a body that could not be read, or nil when
// err is no such failure. It says why in words of its own: the transport's
// errors name the connection's addresses (read tcp
// 10.0.0.1:8080->203.0.113.7:51234: i/o timeout), which are not the
// caller's to see; the cause stays in Err, for the log.
func readError(err error) error {
	var (
		tooBig *http.MaxBytesError
		netErr net.Error
	)
	switch {
	case errors.As(err, &tooBig):
		return keyward.Errorf(keyward.CodeInvalidRequest, "The body is larger than %d bytes.", maxBody)
	case errors.As(err, &netErr) && netErr.Timeout():
		return &keyward.Error{Code: keyward.CodeInvalidRequest, Err: err,
			Message: "The body did not arrive in time; send it whole, with the request."}
	case errors.As(err, &netErr), errors.Is(err, net.ErrClosed), errors.Is(err, http.ErrBodyReadAfterClose):
		return &keyward.Error{Code: keyward.CodeInvalidRequest, Err: err,
			Message: "The body could not be read: the connection failed while it was being sent; send the request again."}
	}
	return nil
}

// decodeOptional is decode for a request whose body may be left out.
func decodeOptional(w http.ResponseWriter, r *http.Request, v any) error {
	if err := decode(w, r, v); err != jsonbody.ErrEmpty {
		return err
	}
	return nil
}

// maxPooledBuffer is the largest buffer kept for another answer: a rare
// large one is left to the garbage collector.
const maxPooledBuffer = 1 << 20

// encode writes v as JSON, with a final newline, into a buffer of the pool;
// the caller returns it with release. On error the buffer is released
// already and nil.
func (s *server) encode(v any) (*bytes.Buffer, error) {
	buf := s.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		s.release(buf)
		return nil, err
	}
	return buf, nil
}

// release returns a buffer of encode to the pool.
func (s *server) release(buf *bytes.Buffer) {
	if buf.Cap() <= maxPooledBuffer {
		s.bufs.Put(buf)
	}
}

// respond answers with status and v as JSON. It encodes v before it
// writes anything: when v cannot be encoded (a stored time after the year
// 9999, say), it writes nothing and returns an internal error for the
// caller to answer as a 500 problem, so that no success is ever answered
// with an empty or truncated body.
func (s *server) respond(w http.ResponseWriter, status int, v any) error {
	buf, err := s.encode(v)
	if err != nil {
		return &keyward.Error{Code: keyward.CodeInternal, Err: fmt.Errorf("encode the answer: %w", err),
			Message: "The answer could not be encoded as JSON: a stored value is out of range (such as a time after the year 9999). Nothing was sent but this error; report the request_id to the operator, whose log has the cause."}
	}
	defer s.release(buf)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
	return nil
}
