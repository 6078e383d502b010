package httpapi

import (
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// withTransport sets Config.RequireTLS and Config.HSTS.
func withTransport(requireTLS bool, hsts time.Duration) harnessOption {
	return func(c *harnessConfig) { c.RequireTLS, c.HSTS = requireTLS, hsts }
}

// TestRequireTLS: with RequireTLS, a request over plain HTTP is refused
// 403 tls_required before its key is read, unless a trusted proxy says
// in X-Forwarded-Proto (its last value) that it came over HTTPS; a peer
// that is not a trusted proxy is not believed; the health checks pass.
// The harness serves plain HTTP on loopback, so the peer is 127.0.0.1.
func TestRequireTLS(t *testing.T) { fronts(t, testRequireTLS) }

func testRequireTLS(t *testing.T, front harnessOption) {
	trusted := newHarness(t, front, withTransport(true, 0), withTrustedProxies("127.0.0.1"))
	untrusted := newHarness(t, front, withTransport(true, 0), withTrustedProxies("10.0.0.0/8"))
	for _, c := range []struct {
		name   string
		h      *harness
		header []string
		secure bool
	}{
		{"plain HTTP", trusted, nil, false},
		{"trusted proxy, https", trusted, []string{"X-Forwarded-Proto", "https"}, true},
		{"trusted proxy, HTTPS in capitals", trusted, []string{"X-Forwarded-Proto", "HTTPS"}, true},
		{"trusted proxy, http", trusted, []string{"X-Forwarded-Proto", "http"}, false},
		{"trusted proxy appended http to a client's https", trusted, []string{"X-Forwarded-Proto", "https, http"}, false},
		{"trusted proxy, two headers, the last http", trusted, []string{"X-Forwarded-Proto", "https", "X-Forwarded-Proto", "http"}, false},
		{"untrusted peer says https", untrusted, []string{"X-Forwarded-Proto", "https"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := c.h.call("GET", "/v1/whoami", c.h.root, nil, c.header...)
			if c.secure {
				if a.status != 200 {
					t.Fatalf("status %d, want 200\n%s", a.status, a.raw)
				}
				return
			}
			d := problemOf(t, a, 403, keyward.CodeTLSRequired)
			if d == "" {
				t.Error("no detail")
			}
			// A bad key is refused tls_required too: not looked up, so
			// the answer says nothing of it.
			problemOf(t, c.h.call("GET", "/v1/whoami", "sk_live_nope", nil, c.header...), 403, keyward.CodeTLSRequired)
			for _, path := range []string{"/healthz", "/readyz"} {
				if a := c.h.call("GET", path, "", nil, c.header...); a.status != 200 {
					t.Errorf("%s over plain HTTP: %d, want 200 (health checks need no TLS)", path, a.status)
				}
			}
		})
	}
}

// TestRequireTLSForwardAuth: forward-auth applies RequireTLS to the
// original request, whose scheme a trusted proxy gives in
// X-Forwarded-Proto, and answers as the proxy's mode asks.
func TestRequireTLSForwardAuth(t *testing.T) { fronts(t, testRequireTLSForwardAuth) }

func testRequireTLSForwardAuth(t *testing.T, front harnessOption) {
	h := newHarness(t, front, withTransport(true, 0), withTrustedProxies("127.0.0.1"))
	https := []string{"X-Forwarded-Proto", "https"}
	h.must(201, "POST", "/v1/tenants", h.root, map[string]any{"slug": "acme"}, https...)
	key := h.must(201, "POST", "/v1/api-keys", h.root, map[string]any{"tenant_id": "acme", "name": "c"}, https...).data()["key"].(string)
	h.must(200, "GET", "/v1/forward-auth?permissions=none", key, nil, https...)
	problemOf(t, h.call("GET", "/v1/forward-auth?permissions=none", key, nil, "X-Forwarded-Proto", "http"), 403, keyward.CodeTLSRequired)
	problemOf(t, h.call("GET", "/v1/forward-auth?permissions=none", key, nil), 403, keyward.CodeTLSRequired)
	// nginx: a bare 401 to auth_request, the problem to its error_page.
	if a := h.call("GET", "/v1/forward-auth?nginx=auth_request&permissions=none", key, nil, "X-Forwarded-Proto", "http"); a.status != 401 || a.raw != "" {
		t.Errorf("nginx=auth_request over plain HTTP: %d %q, want a bare 401", a.status, a.raw)
	}
	problemOf(t, h.call("GET", "/v1/forward-auth?nginx=error_page&permissions=none", key, nil, "X-Forwarded-Proto", "http"), 403, keyward.CodeTLSRequired)
}

// tlsRoutes is a route policy with routes that need TLS.
const tlsRoutes = `
default: deny
routes:
  - match: GET /status
    public: true
    tls: required
  - match: GET /v1/secrets/**
    tls: required
  - match: GET /v1/open
`

// TestRouteTLSForwardAuth: a route's tls: required refuses the original
// request unless a trusted proxy says it came over HTTPS, public routes
// too; a route without it takes plain HTTP; the server-wide RequireTLS is
// off.
func TestRouteTLSForwardAuth(t *testing.T) { fronts(t, testRouteTLSForwardAuth) }

func testRouteTLSForwardAuth(t *testing.T, front harnessOption) {
	h := newHarness(t, front, withRoutes(t, tlsRoutes), withTrustedProxies("127.0.0.1"))
	untrusted := newHarness(t, front, withRoutes(t, tlsRoutes))
	h.tenant("acme")
	key, _ := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "c"})
	for _, c := range []struct {
		name, uri, proto string
		h                *harness
		key              string
		status           int
		code             keyward.Code
	}{
		{"secret over https", "/v1/secrets/a", "https", h, key, 200, ""},
		{"secret over http", "/v1/secrets/a", "http", h, key, 403, keyward.CodeTLSRequired},
		{"secret, no proto", "/v1/secrets/a", "", h, key, 403, keyward.CodeTLSRequired},
		{"secret over http, bad key", "/v1/secrets/a", "http", h, "sk_live_nope", 403, keyward.CodeTLSRequired},
		{"secret, untrusted proxy says https", "/v1/secrets/a", "https", untrusted, "", 403, keyward.CodeTLSRequired},
		{"public over https", "/status", "https", h, "", 200, ""},
		{"public over http", "/status", "http", h, "", 403, keyward.CodeTLSRequired},
		{"open over http", "/v1/open", "http", h, key, 200, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			header := []string{"X-Original-Method", "GET", "X-Original-URI", c.uri}
			if c.proto != "" {
				header = append(header, "X-Forwarded-Proto", c.proto)
			}
			a := c.h.call("GET", "/v1/forward-auth", c.key, nil, header...)
			if c.code != "" {
				problemOf(t, a, c.status, c.code)
			} else if a.status != c.status {
				t.Fatalf("status %d, want %d\n%s", a.status, c.status, a.raw)
			}
		})
	}
}

// TestRouteTLSVerify: POST /v1/verify applies a route's tls: required to
// the original request as its body describes it (tls: true), not to the
// calling service's own connection.
func TestRouteTLSVerify(t *testing.T) { fronts(t, testRouteTLSVerify) }

func testRouteTLSVerify(t *testing.T, front harnessOption) {
	h := newHarness(t, front, withRoutes(t, tlsRoutes))
	h.tenant("acme")
	key, _ := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "c"})
	for _, c := range []struct {
		path string
		tls  bool
		code keyward.Code
	}{
		{"/v1/secrets/a", true, ""},
		{"/v1/secrets/a", false, keyward.CodeTLSRequired},
		{"/status", false, keyward.CodeTLSRequired},
		{"/v1/open", false, ""},
	} {
		v := h.must(200, "POST", "/v1/verify", h.root, map[string]any{"key": key, "method": "GET", "path": c.path, "tls": c.tls}).body
		if c.code == "" && v["valid"] != true || c.code != "" && (v["code"] != string(c.code) || v["status"] != float64(403)) {
			t.Errorf("%s, tls %v: %v, want code %q", c.path, c.tls, v, c.code)
		}
	}
}

// TestHSTS: Strict-Transport-Security is set on answers that came over
// TLS (here, from a trusted proxy that says so), refusals included, and
// never on plain HTTP or without HSTS.
func TestHSTS(t *testing.T) {
	h := newHarness(t, withTransport(false, 365*24*time.Hour), withTrustedProxies("127.0.0.1"))
	off := newHarness(t, withTrustedProxies("127.0.0.1"))
	const want = "max-age=31536000"
	for _, c := range []struct {
		name, path, key, proto string
		h                      *harness
		want                   string
	}{
		{"https", "/v1/whoami", h.root, "https", h, want},
		{"https refusal", "/v1/whoami", "", "https", h, want},
		{"https health", "/healthz", "", "https", h, want},
		{"plain HTTP", "/v1/whoami", h.root, "", h, ""},
		{"proxy says http", "/v1/whoami", h.root, "http", h, ""},
		{"HSTS off", "/v1/whoami", off.root, "https", off, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var header []string
			if c.proto != "" {
				header = []string{"X-Forwarded-Proto", c.proto}
			}
			a := c.h.call("GET", c.path, c.key, nil, header...)
			if got := a.header.Values("Strict-Transport-Security"); c.want == "" && len(got) != 0 || c.want != "" && (len(got) != 1 || got[0] != c.want) {
				t.Errorf("Strict-Transport-Security %q, want %q", got, c.want)
			}
		})
	}
	if got := hstsHeader(time.Millisecond); got[0] != "max-age=1" {
		t.Errorf("a max-age under a second gives %q, want max-age=1", got)
	}
}
