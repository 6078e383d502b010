package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/keyward/keyward"
)

// secure reports whether r came over TLS: over a TLS connection to this
// server, or, when the peer is a trusted proxy that sends
// X-Forwarded-Proto, as that header says. The header's last value
// decides, the one the trusted peer itself set: one before it may come
// from a client (a proxy that appends to the header), and a client that
// is not a trusted proxy is never believed. For forward-auth, the
// header is the original request's scheme, which is what a route's
// tls: required and --require-tls are about.
func (s *server) secure(r *http.Request) bool {
	return s.trusted.Secure(r)
}

// tlsExempt reports whether --require-tls leaves the request to its
// handler or lets it through: forward-auth decides by the original
// request and answers as the proxy's mode asks (handleForwardAuth), and
// the health checks carry neither key nor data, and are often asked over
// plain HTTP by a load balancer in front of the TLS it terminates.
func tlsExempt(r *http.Request) bool {
	switch r.URL.Path {
	case "/v1/forward-auth", "/healthz", "/readyz":
		return true
	}
	return false
}

// ErrTLSRequired is the answer to a request over plain HTTP to a server
// that requires TLS (serve --require-tls), on every listener of serve.
var ErrTLSRequired = keyward.Errorf(keyward.CodeTLSRequired,
	"This server takes requests over HTTPS only; send the request again with https://, and, if it carried a key, consider replacing the key, which was sent in the clear.")

// withTransportRules answers a request over plain HTTP 403 tls_required
// when the server requires TLS (Config.RequireTLS), before its key is
// read, and sets Strict-Transport-Security on every answer over TLS when
// Config.HSTS asks: over plain HTTP the header means nothing to a
// browser (RFC 6797 §8.1), and a proxy that terminates TLS sets its own.
func (s *server) withTransportRules(next http.Handler) http.Handler {
	if !s.requireTLS && s.hsts == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secure := s.secure(r)
		if secure && s.hsts != nil {
			w.Header()["Strict-Transport-Security"] = s.hsts
		}
		if s.requireTLS && !secure && !tlsExempt(r) {
			s.writeError(w, r, ErrTLSRequired)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hstsHeader is the value of Strict-Transport-Security for maxAge, or nil
// for none (0). A part of a second is dropped; a positive maxAge under a
// second would be max-age=0, which tells a browser to forget the host, so
// it counts as one second.
func hstsHeader(maxAge time.Duration) []string {
	if maxAge <= 0 {
		return nil
	}
	secs := max(int64(maxAge/time.Second), 1)
	return []string{"max-age=" + strconv.FormatInt(secs, 10)}
}
