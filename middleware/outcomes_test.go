package middleware_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/httpapi"
	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/middleware"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/verify"
)

// outcomeRoutes is the route policy of TestOutcomes: a route for each
// outcome that a route decides.
const outcomeRoutes = `default: authenticated
routes:
  - match: GET /public
    public: true
  - match: GET /billing/**
    tls: required
  - match: GET /contacts/**
    permissions: [contacts:read]
  - match: GET /live/**
    environments: [live]
  - match: GET /sites/{site}/**
    resources: [site]
  - match: GET /premium/**
    capabilities: [m2m_api]
`

// probe is one request of TestOutcomes, as a client sends it to the API.
type probe struct {
	target  string // path and query
	https   bool
	ip      string // the client's address
	headers map[string]string
}

// TestOutcomes runs a request of every outcome of SPEC §5 through
// forward-auth (as a proxy that the server trusts asks it) and through the
// middleware in process and remote (twice: the second answer may come from
// its cache), on the same server and route policy, and finds the same
// answer in each: status, problem, WWW-Authenticate, Retry-After,
// RateLimit headers, X-Request-Id, and the identity forward-auth's
// headers give.
func TestOutcomes(t *testing.T) {
	file := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(file, []byte(outcomeRoutes), 0o600); err != nil {
		t.Fatal(err)
	}
	routes, err := policy.Open(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvConfig(t, verify.Options{FailedAttempts: 3, FailedAttemptWindow: time.Hour}, func(c *httpapi.Config) {
		c.Routes = routes
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	ctx := context.Background()
	cli := manage.CommandLine()
	rm := e.remote(middleware.RemoteOptions{})
	inProcess := middleware.New(e.verifier, middleware.Options{Routes: routes, ClientIP: forwardedFor})
	remote := rm.Middleware(middleware.Options{ClientIP: forwardedFor})

	valid, _ := e.key(manage.CreateKeyInput{Name: "order-bot", Permissions: nil})
	member, err := e.svc.CreateMember(ctx, cli, manage.CreateMemberInput{TenantID: "acme", Email: "ann@example.com", Name: "Ann", Role: "owner"})
	if err != nil {
		t.Fatal(err)
	}
	ofMember, _ := e.key(manage.CreateKeyInput{Name: "ann's", MemberID: member.ID})
	testKey, _ := e.key(manage.CreateKeyInput{Environment: "test"})
	revoked, revokedID := e.key(manage.CreateKeyInput{})
	if _, err := e.svc.RevokeKey(ctx, cli, revokedID); err != nil {
		t.Fatal(err)
	}
	expires := "1s"
	expired, _ := e.key(manage.CreateKeyInput{Expires: &expires})
	disabled, disabledID := e.key(manage.CreateKeyInput{})
	off := false
	if _, err := e.svc.UpdateKey(ctx, cli, disabledID, manage.UpdateKeyInput{Enabled: &off}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateTenant(ctx, cli, manage.CreateTenantInput{Slug: "beta"}); err != nil {
		t.Fatal(err)
	}
	suspended, _ := e.key(manage.CreateKeyInput{TenantID: "beta"})
	if _, err := e.svc.SuspendTenant(ctx, cli, "beta"); err != nil {
		t.Fatal(err)
	}
	restricted, _ := e.key(manage.CreateKeyInput{Restrictions: &keyward.Restrictions{
		IPs: []string{"10.0.0.0/8"}, Referrers: []string{"https://app.example.com/*"},
		Endpoints: []string{"GET /sites/**", "GET /orders/**"}, Resources: map[string][]string{"site": {"s1"}},
	}})
	limited, _ := e.key(manage.CreateKeyInput{RateLimits: []keyward.RateLimit{{Name: "hourly", Limit: 1, Period: keyward.Duration(time.Hour)}}})
	withQuota, _ := e.key(manage.CreateKeyInput{Quota: &keyward.Quota{Limit: 1, Period: keyward.QuotaMonth}})
	withCredits, _ := e.key(manage.CreateKeyInput{Credits: &keyward.Credits{Remaining: 1}})
	unknown, err := e.verifier.Format().Generate(keyward.Live)
	if err != nil {
		t.Fatal(err)
	}
	// A key the blocked client sends next: one that would need a look-up.
	nextGuess, err := e.verifier.Format().Generate(keyward.Live)
	if err != nil {
		t.Fatal(err)
	}
	malformed := valid[:len(valid)-1] + "x"
	if valid[len(valid)-1] == 'x' {
		malformed = valid[:len(valid)-1] + "y"
	}
	// The keys of counted requests spend what they may, and a client
	// spends its failed attempts, before the surfaces are asked.
	for _, k := range []string{limited, withQuota, withCredits} {
		if r := e.forwardAuthProbe(probe{target: "/orders", ip: "198.51.100.1", headers: map[string]string{"X-API-Key": k}}); r.status != 200 {
			t.Fatalf("the first request of a counted key: %d %v", r.status, r.body)
		}
	}
	for range 3 {
		guess, err := e.verifier.Format().Generate(keyward.Live)
		if err != nil {
			t.Fatal(err)
		}
		e.forwardAuthProbe(probe{target: "/orders", ip: "203.0.113.66", headers: map[string]string{"X-API-Key": guess}})
	}
	e.caughtUp(rm)
	time.Sleep(time.Until(time.Now().Add(1100 * time.Millisecond))) // the key of 1s has expired

	key := func(k string) map[string]string { return map[string]string{"X-API-Key": k} }
	cases := []struct {
		name   string
		p      probe
		status int
		code   keyward.Code
	}{
		{"valid", probe{target: "/orders?page=2", headers: key(valid)}, 200, ""},
		{"valid, bearer", probe{target: "/orders", headers: map[string]string{"Authorization": "Bearer " + valid}}, 200, ""},
		{"valid, of a member", probe{target: "/orders", headers: key(ofMember)}, 200, ""},
		{"public", probe{target: "/public"}, 200, ""},
		{"public, Basic credentials for another", probe{target: "/public", headers: map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}}, 200, ""},
		{"public with a key", probe{target: "/public", headers: key(valid)}, 200, ""},
		{"tls required, over https", probe{target: "/billing/x", https: true, headers: key(valid)}, 200, ""},
		{"restricted, from inside", probe{target: "/sites/s1/x", ip: "10.1.2.3", headers: map[string]string{"X-API-Key": restricted, "Referer": "https://app.example.com/page"}}, 200, ""},

		{"missing", probe{target: "/orders"}, 401, keyward.CodeMissingAPIKey},
		{"malformed", probe{target: "/orders", headers: key(malformed)}, 401, keyward.CodeMalformedAPIKey},
		{"Basic credentials", probe{target: "/orders", headers: map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}}, 401, ""},
		{"key in the URL", probe{target: "/orders?api_key=" + valid}, 0, ""},
		{"key in the URL and header", probe{target: "/orders?key=" + valid, headers: key(valid)}, 0, ""},
		{"unknown", probe{target: "/orders", headers: key(unknown)}, 401, keyward.CodeInvalidAPIKey},
		{"revoked", probe{target: "/orders", headers: key(revoked)}, 401, keyward.CodeRevokedAPIKey},
		{"expired", probe{target: "/orders", headers: key(expired)}, 401, keyward.CodeExpiredAPIKey},
		{"tenant suspended", probe{target: "/orders", headers: key(suspended)}, 403, keyward.CodeAccountSuspended},
		{"disabled", probe{target: "/orders", headers: key(disabled)}, 403, keyward.CodeKeyDisabled},
		{"test key on a live route", probe{target: "/live/x", headers: key(testKey)}, 403, keyward.CodeEnvironmentMismatch},
		{"ip not allowed", probe{target: "/sites/s1/x", ip: "192.0.2.7", headers: map[string]string{"X-API-Key": restricted, "Referer": "https://app.example.com/page"}}, 403, keyward.CodeIPNotAllowed},
		{"referrer not allowed", probe{target: "/sites/s1/x", ip: "10.1.2.3", headers: map[string]string{"X-API-Key": restricted, "Referer": "https://evil.example.com/"}}, 403, keyward.CodeReferrerNotAllowed},
		{"endpoint not allowed", probe{target: "/contacts/1", ip: "10.1.2.3", headers: map[string]string{"X-API-Key": restricted, "Referer": "https://app.example.com/page"}}, 403, keyward.CodeEndpointNotAllowed},
		{"resource not allowed", probe{target: "/sites/s2/x", ip: "10.1.2.3", headers: map[string]string{"X-API-Key": restricted, "Referer": "https://app.example.com/page"}}, 404, keyward.CodeNotFound},
		{"plan not entitled", probe{target: "/premium/x", headers: key(valid)}, 403, keyward.CodePlanNotEntitled},
		{"insufficient permissions", probe{target: "/contacts/1", headers: key(valid)}, 403, keyward.CodeInsufficientPermissions},
		{"rate limited", probe{target: "/orders", headers: key(limited)}, 429, keyward.CodeRateLimited},
		{"quota exceeded", probe{target: "/orders", headers: key(withQuota)}, 429, keyward.CodeQuotaExceeded},
		{"credits spent", probe{target: "/orders", headers: key(withCredits)}, 429, ""},
		{"too many failed attempts", probe{target: "/orders", ip: "203.0.113.66", headers: key(nextGuess)}, 429, keyward.CodeTooManyFailedAttempts},
		{"tls required", probe{target: "/billing/x", headers: key(valid)}, 403, keyward.CodeTLSRequired},
		{"tls required, no key", probe{target: "/billing/x"}, 403, keyward.CodeTLSRequired},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.p.ip == "" {
				// An address of its own: the refused keys of one case
				// count no failed attempts against another's.
				c.p.ip = netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i)}).String()
			}
			if c.p.headers == nil {
				c.p.headers = map[string]string{}
			}
			c.p.headers["X-Request-Id"] = "probe-" + string(rune('a'+i%26)) + "-" + strings.Repeat("x", i/26)
			fa := e.forwardAuthProbe(c.p)
			if c.status != 0 && fa.status != c.status || c.code != "" && fa.body["code"] != string(c.code) {
				t.Errorf("forward-auth: %d %v, want %d %s", fa.status, fa.body, c.status, c.code)
			}
			for _, s := range []struct {
				mode string
				mw   func(http.Handler) http.Handler
			}{{"in process", inProcess}, {"remote", remote}, {"remote again", remote}} {
				got := serveProbe(t, s.mw, c.p)
				sameAnswer(t, s.mode, got, fa)
			}
		})
	}
}

// forwardedFor is the client address of the middleware's requests in
// TestOutcomes: the X-Forwarded-For that forward-auth trusts too.
func forwardedFor(r *http.Request) netip.Addr {
	a, _ := netip.ParseAddr(r.Header.Get("X-Forwarded-For"))
	return a
}

// forwardAuthProbe asks forward-auth about p as a trusted proxy would: the
// original method, URI, scheme and client address in X-Forwarded-*.
func (e *env) forwardAuthProbe(p probe) reply {
	e.t.Helper()
	req, err := http.NewRequest("GET", e.url+"/v1/forward-auth", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-Method", "GET")
	req.Header.Set("X-Forwarded-Uri", p.target)
	req.Header.Set("X-Forwarded-For", p.ip)
	req.Header.Set("X-Forwarded-Proto", "http")
	if p.https {
		req.Header.Set("X-Forwarded-Proto", "https")
	}
	for k, v := range p.headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	rp := reply{status: resp.StatusCode, header: resp.Header}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &rp.body); err != nil {
			e.t.Fatalf("forward-auth's body is not JSON: %v\n%s", err, raw)
		}
	}
	return rp
}

// serveProbe sends p through the middleware mw, as the client's own
// request to the API.
func serveProbe(t *testing.T, mw func(http.Handler) http.Handler, p probe) reply {
	t.Helper()
	scheme := "http://"
	if p.https {
		scheme = "https://"
	}
	req := httptest.NewRequest("GET", scheme+"api.example.com"+p.target, nil)
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set("X-Forwarded-For", p.ip)
	for k, v := range p.headers {
		req.Header.Set(k, v)
	}
	var c *middleware.Caller
	rec := httptest.NewRecorder()
	mw(echo(&c)).ServeHTTP(rec, req)
	rp := reply{status: rec.Code, header: rec.Header(), caller: c}
	if rec.Code != http.StatusOK || rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &rp.body); err != nil {
			t.Fatalf("the body is not JSON: %v\n%s", err, rec.Body)
		}
	}
	return rp
}

// sameAnswer reports where the middleware's answer got differs from
// forward-auth's fa.
func sameAnswer(t *testing.T, mode string, got, fa reply) {
	t.Helper()
	if got.status != fa.status {
		t.Errorf("%s: status %d, forward-auth's %d: %v, forward-auth's %v", mode, got.status, fa.status, got.body, fa.body)
		return
	}
	for _, m := range []string{"type", "title", "status", "detail", "code", "success", "field"} {
		if got.body[m] != fa.body[m] {
			t.Errorf("%s: %s %v, forward-auth's %v", mode, m, got.body[m], fa.body[m])
		}
	}
	if got.body != nil && got.body["request_id"] != got.header.Get("X-Request-Id") {
		t.Errorf("%s: request_id %v, X-Request-Id %q", mode, got.body["request_id"], got.header.Get("X-Request-Id"))
	}
	for _, h := range []string{"X-Request-Id", "WWW-Authenticate", "Retry-After", "Content-Type", "Cache-Control",
		"RateLimit-Policy", "X-RateLimit-Limit"} {
		if g, f := got.header.Get(h), fa.header.Get(h); g != f {
			t.Errorf("%s: %s %q, forward-auth's %q", mode, h, g, f)
		}
	}
	// The remaining requests and the reset are counted anew by each.
	for _, h := range []string{"RateLimit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
		if g, f := got.header.Get(h) != "", fa.header.Get(h) != ""; g != f {
			t.Errorf("%s: %s %q, forward-auth's %q", mode, h, got.header.Get(h), fa.header.Get(h))
		}
	}
	if fa.status != http.StatusOK {
		if got.caller != nil {
			t.Errorf("%s: refused, yet the handler ran with %+v", mode, got.caller)
		}
		return
	}
	if fa.header.Get("X-Keyward-Key-Id") == "" {
		if got.caller != nil {
			t.Errorf("%s: a public route's request has the identity %+v", mode, got.caller)
		}
		return
	}
	c := got.caller
	if c == nil {
		t.Errorf("%s: no identity; forward-auth's %v", mode, fa.header)
		return
	}
	for h, v := range map[string]string{
		"X-Keyward-Key-Id": c.KeyID, "X-Keyward-Key-Name": c.KeyName, "X-Keyward-Tenant": c.TenantID,
		"X-Keyward-Tenant-Slug": c.TenantSlug, "X-Keyward-Member-Id": c.MemberID, "X-Keyward-Plan": c.Plan,
		"X-Keyward-Environment": string(c.Environment), "X-Keyward-Permissions": strings.Join(c.Permissions, ","),
	} {
		if fa.header.Get(h) != v {
			t.Errorf("%s: the identity's %s is %q, forward-auth's %q", mode, h, v, fa.header.Get(h))
		}
	}
}
