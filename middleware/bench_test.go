package middleware_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/middleware"
	"github.com/keyward/keyward/verify"
)

// BenchmarkMiddleware is the cost of a request of a cached key through the
// middleware, in process and remote (answered from its cache), against a
// bare handler in the same run.
func BenchmarkMiddleware(b *testing.B) {
	e := newEnv(b, verify.Options{})
	key, _ := e.key(manage.CreateKeyInput{})
	rm := e.remote(middleware.RemoteOptions{})
	e.caughtUp(rm)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	for _, m := range []struct {
		name string
		h    http.Handler
	}{
		{"bare", ok},
		{"in process", middleware.New(e.verifier, middleware.Options{})(ok)},
		{"remote, cached", rm.Middleware(middleware.Options{})(ok)},
	} {
		b.Run(m.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", "/api/x", nil)
			req.Header.Set("X-API-Key", key)
			w := httptest.NewRecorder()
			m.h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d", w.Code)
			}
			b.ReportAllocs()
			for b.Loop() {
				w := discard{h: http.Header{}}
				m.h.ServeHTTP(&w, req)
			}
		})
	}
}

// discard is a ResponseWriter that keeps only the headers.
type discard struct {
	h      http.Header
	status int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(s int)           { d.status = s }
