package httpapi

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkForwardAuthHandler measures the server's own work for one
// /v1/forward-auth request with a cached key, without a network: routing,
// request id, presenting rules, verification and identity headers.
func BenchmarkForwardAuthHandler(b *testing.B) {
	benchForwardAuth(b, "/v1/forward-auth", nil, nil)
}

// BenchmarkForwardAuthHandlerRoutes is BenchmarkForwardAuthHandler with
// a route policy that decides by the original request, as nginx names it
// (scripts/load's forward-auth row).
func BenchmarkForwardAuthHandlerRoutes(b *testing.B) {
	benchForwardAuth(b, "/v1/forward-auth", []string{"X-Original-URI", "/v1/contacts/1", "X-Original-Method", "GET"}, withRoutes(b, issueRoutes))
}

// benchForwardAuth measures forward-auth requests to target, with a cached
// key with contacts:read in X-API-Key and the headers given in pairs.
func benchForwardAuth(b *testing.B, target string, header []string, opt harnessOption) {
	h := newHarness(b)
	h.tenant("acme")
	key, _ := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "bench", "permissions": []string{"contacts:read"}})
	c := Config{Service: h.svc, Verifier: h.verifier, Store: h.store}
	if opt != nil {
		var hc harnessConfig
		opt(&hc)
		c.Routes = hc.Routes
	}
	srv, err := NewServer(c)
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", target, nil)
	req.Header.Set("X-API-Key", key)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	req.RemoteAddr = "127.0.0.1:5555"
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

// BenchmarkVerifyHandler measures the server's own work for one
// POST /v1/verify of a cached key by a cached verifier key, without a
// network: authentication, decoding the body, verification and encoding
// the answer.
func BenchmarkVerifyHandler(b *testing.B) {
	h := newHarness(b)
	h.tenant("acme")
	key, _ := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "bench", "permissions": []string{"contacts:read"}})
	verifier, _ := h.key(h.root, map[string]any{"tenant_id": "system", "name": "verifier", "permissions": []string{"keyward:verify"}})
	srv, err := NewServer(Config{Service: h.svc, Verifier: h.verifier, Store: h.store})
	if err != nil {
		b.Fatal(err)
	}
	body := `{"key": "` + key + `", "permissions": ["contacts:read"]}`
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/v1/verify", strings.NewReader(body))
		req.Header.Set("X-API-Key", verifier)
		req.RemoteAddr = "127.0.0.1:5555"
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code != 200 || !strings.Contains(w.Body.String(), `"valid":true`) {
			b.Fatal(w.Code, w.Body.String())
		}
	}
}
