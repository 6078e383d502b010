package gateway_test

import (
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/gateway"
)

// flip changes the last character of a key, breaking its checksum.
func flip(key string) string {
	c := byte('A')
	if key[len(key)-1] == 'A' {
		c = 'B'
	}
	return key[:len(key)-1] + string(c)
}

// keys are the keys of the outcome tests, one per outcome.
type keys struct {
	acmeID, basicID, memberID, goodID, plainID string

	good, plain, live, testEnv, ip, referrer, endpoint, revoked, expired, disabled, suspended, frozen, basic, unknown string
}

// world makes the tenants, plans, members and keys of the outcome tests:
// acme on a plan with m2m_api, basic on one without, frozen on one
// without API access, and other, suspended.
func world(t *testing.T, e *env) keys {
	t.Helper()
	var k keys
	e.call(201, "POST", "/v1/plans", map[string]any{"name": "pro", "capabilities": []string{"m2m_api"}})
	e.call(201, "POST", "/v1/plans", map[string]any{"name": "basic"})
	e.call(201, "POST", "/v1/plans", map[string]any{"name": "frozen"})
	k.acmeID = e.call(201, "POST", "/v1/tenants", map[string]any{"slug": "acme"})["id"].(string)
	e.call(200, "PATCH", "/v1/tenants/acme", map[string]any{"plan": "pro"})
	k.basicID = e.call(201, "POST", "/v1/tenants", map[string]any{"slug": "basic"})["id"].(string)
	e.call(200, "PATCH", "/v1/tenants/basic", map[string]any{"plan": "basic"})
	e.call(201, "POST", "/v1/tenants", map[string]any{"slug": "frozen"})
	e.call(200, "PATCH", "/v1/tenants/frozen", map[string]any{"plan": "frozen"})
	other := e.call(201, "POST", "/v1/tenants", map[string]any{"slug": "other"})["id"].(string)
	k.memberID = e.call(201, "POST", "/v1/members", map[string]any{"tenant_id": k.acmeID, "email": "zoe@acme.example", "name": "Zoë",
		"role": keyward.RoleOwner, "permissions": []string{"contacts:read"}})["id"].(string)

	sites := map[string]any{"resources": map[string][]string{"site": {"site_1"}}}
	k.good, k.goodID = e.key(map[string]any{"tenant_id": "acme", "member_id": k.memberID, "name": "Zoë's key",
		"permissions": []string{"contacts:read"}, "restrictions": sites})
	k.plain, k.plainID = e.key(map[string]any{"tenant_id": "acme", "name": "plain", "permissions": []string{"contacts:read", "sites:read"}})
	k.live, _ = e.key(map[string]any{"tenant_id": "acme", "name": "live"})
	k.testEnv, _ = e.key(map[string]any{"tenant_id": "acme", "name": "test", "environment": "test", "permissions": []string{"contacts:read"}, "restrictions": sites})
	k.ip, _ = e.key(map[string]any{"tenant_id": "acme", "name": "office", "permissions": []string{"contacts:read"},
		"restrictions": map[string]any{"ips": []string{"203.0.113.0/24"}}})
	k.referrer, _ = e.key(map[string]any{"tenant_id": "acme", "name": "browser", "permissions": []string{"contacts:read"},
		"restrictions": map[string]any{"referrers": []string{"https://app.example.com"}}})
	k.endpoint, _ = e.key(map[string]any{"tenant_id": "acme", "name": "one contact", "permissions": []string{"contacts:read"},
		"restrictions": map[string]any{"endpoints": []string{"GET /v1/contacts/1"}}})
	var revokedID, disabledID string
	k.revoked, revokedID = e.key(map[string]any{"tenant_id": "acme", "name": "revoked"})
	e.call(200, "DELETE", "/v1/api-keys/"+revokedID, nil)
	k.expired, _ = e.key(map[string]any{"tenant_id": "acme", "name": "expired", "expires": "1h"})
	k.disabled, disabledID = e.key(map[string]any{"tenant_id": "acme", "name": "disabled"})
	e.call(200, "PATCH", "/v1/api-keys/"+disabledID, map[string]any{"enabled": false})
	k.suspended, _ = e.key(map[string]any{"tenant_id": other, "name": "suspended"})
	e.call(200, "POST", "/v1/tenants/"+other+"/suspend", nil)
	k.frozen, _ = e.key(map[string]any{"tenant_id": "frozen", "name": "frozen", "permissions": []string{"contacts:read"}})
	e.call(200, "PATCH", "/v1/plans/frozen", map[string]any{"api_access": false})
	k.basic, _ = e.key(map[string]any{"tenant_id": "basic", "name": "basic", "permissions": []string{"contacts:read"}})
	e.clock.Advance(2 * time.Hour)
	format, _ := apikey.NewFormat(apikey.DefaultPrefix)
	unknown, err := format.Generate(keyward.Live)
	if err != nil {
		t.Fatal(err)
	}
	k.unknown = unknown
	return k
}

// TestOutcomes sends every outcome of SPEC §5 through the gateway and
// asks forward-auth about the same request: the gateway answers each as
// forward-auth does (status, code, detail, WWW-Authenticate,
// Retry-After), proxies exactly the requests that forward-auth lets
// through, and no refused request reaches an upstream.
func TestOutcomes(t *testing.T) {
	e := newEnv(t)
	k := world(t, e)
	const (
		missing = `Bearer realm="keyward"`
		invalid = `error="invalid_token"`
		scope   = `Bearer realm="keyward", error="insufficient_scope"`
	)
	cases := []struct {
		name      string
		method    string
		uri       string
		key       string
		header    []string
		status    int
		code      keyward.Code // "" for a pass
		challenge string
	}{
		{"public route, no key", "GET", "/health", "", nil, 200, "", ""},
		{"public route, Basic authorization for the upstream", "GET", "/health", "", []string{"Authorization", "Basic dXNlcjpwYXNz"}, 200, "", ""},
		{"public route, key in the query", "GET", "/health?api_key=" + k.good, "", nil, 400, keyward.CodeInvalidRequest, ""},
		{"a path read two ways", "GET", "/v1//contacts", k.good, nil, 400, keyward.CodeInvalidRequest, ""},
		{"key in the query", "GET", "/v1/contacts/1?key=" + k.good, "", nil, 400, keyward.CodeInvalidRequest, ""},
		{"key in the path", "GET", "/v1/contacts/" + k.good, k.good, nil, 400, keyward.CodeInvalidRequest, ""},
		{"two different keys", "GET", "/v1/contacts/1", k.good, []string{"Authorization", "Bearer " + k.plain}, 400, keyward.CodeInvalidRequest, ""},
		{"1 missing", "GET", "/v1/contacts/1", "", nil, 401, keyward.CodeMissingAPIKey, missing},
		{"2 malformed", "GET", "/v1/contacts/1", flip(k.good), nil, 401, keyward.CodeMalformedAPIKey, invalid},
		{"2 malformed, Basic", "GET", "/v1/contacts/1", "", []string{"Authorization", "Basic dXNlcjpwYXNz"}, 401, keyward.CodeMalformedAPIKey, invalid},
		{"3 unknown", "GET", "/v1/contacts/1", k.unknown, nil, 401, keyward.CodeInvalidAPIKey, invalid},
		{"4 revoked", "GET", "/v1/contacts/1", k.revoked, nil, 401, keyward.CodeRevokedAPIKey, invalid},
		{"5 expired", "GET", "/v1/contacts/1", k.expired, nil, 401, keyward.CodeExpiredAPIKey, invalid},
		{"6 suspended", "GET", "/v1/contacts/1", k.suspended, nil, 403, keyward.CodeAccountSuspended, ""},
		{"6 disabled", "GET", "/v1/contacts/1", k.disabled, nil, 403, keyward.CodeKeyDisabled, ""},
		{"7 test key on a live-only route", "GET", "/v1/tenants/acme/sites/site_1/pages", k.testEnv, nil, 403, keyward.CodeEnvironmentMismatch, ""},
		{"8 ip", "GET", "/v1/contacts/1", k.ip, nil, 403, keyward.CodeIPNotAllowed, ""},
		{"8 referrer, none sent", "GET", "/v1/contacts/1", k.referrer, nil, 403, keyward.CodeReferrerNotAllowed, ""},
		{"8 referrer, another page", "GET", "/v1/contacts/1", k.referrer, []string{"Referer", "https://evil.example/x"}, 403, keyward.CodeReferrerNotAllowed, ""},
		{"8 endpoint", "GET", "/v1/contacts/2", k.endpoint, nil, 403, keyward.CodeEndpointNotAllowed, ""},
		{"8 default deny", "GET", "/v1/unlisted", k.good, nil, 403, keyward.CodeEndpointNotAllowed, ""},
		{"9 another tenant's id", "GET", "/v1/tenants/" + k.basicID + "/sites/site_1/pages", k.good, nil, 404, keyward.CodeNotFound, ""},
		{"9 a site outside the key's", "GET", "/v1/tenants/acme/sites/site_2/pages", k.good, nil, 404, keyward.CodeNotFound, ""},
		{"10 plan without API access", "GET", "/v1/contacts/1", k.frozen, nil, 403, keyward.CodePlanNotEntitled, ""},
		{"10 route capability missing", "GET", "/v1/tenants/basic/sites/site_1/pages", k.basic, nil, 403, keyward.CodePlanNotEntitled, ""},
		{"10 permission missing", "POST", "/v1/contacts", k.good, nil, 403, keyward.CodeInsufficientPermissions, scope},
		{"tls required over plain HTTP", "GET", "/v1/billing/invoices", k.good, nil, 403, keyward.CodeTLSRequired, ""},
		{"tls required, no key", "GET", "/v1/billing/invoices", "", nil, 403, keyward.CodeTLSRequired, ""},
		{"pass", "GET", "/v1/contacts/1?page=2", k.good, nil, 200, "", ""},
		{"pass, Bearer", "GET", "/v1/contacts/1", "", []string{"Authorization", "Bearer " + k.good}, 200, "", ""},
		{"pass, tenant by id", "GET", "/v1/tenants/" + k.acmeID + "/sites/site_1/pages", k.good, nil, 200, "", ""},
		{"pass, referrer", "GET", "/v1/contacts/1", k.referrer, []string{"Referer", "https://app.example.com/inbox"}, 200, "", ""},
		{"pass, endpoint", "GET", "/v1/contacts/1", k.endpoint, nil, 200, "", ""},
		{"pass, test key to the test upstream", "GET", "/v1/contacts/1", k.testEnv, nil, 200, "", ""},
	}
	secrets := []string{k.good, k.plain, k.revoked, k.expired, k.disabled, k.suspended, k.unknown, k.testEnv}
	var passes int64
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.counts()
			g := e.gateway(c.method, c.uri, c.key, c.header...)
			after := e.counts()
			reached := after != before
			if g.status != c.status {
				t.Fatalf("status %d, want %d\n%s", g.status, c.status, g.raw)
			}
			if c.code == "" {
				if !reached {
					t.Errorf("a pass did not reach an upstream")
				}
				passes++
			} else {
				if reached {
					t.Errorf("a refusal reached an upstream: %v → %v", before, after)
				}
				if g.str("code") != string(c.code) || g.header.Get("Content-Type") != "application/problem+json" ||
					g.str("request_id") != g.header.Get("X-Request-Id") || g.body["status"] != float64(c.status) {
					t.Errorf("the refusal: %s %v", g.raw, g.header)
				}
			}
			if got := g.header.Get("WWW-Authenticate"); got != "" && c.challenge == "" || !strings.Contains(got, c.challenge) {
				t.Errorf("WWW-Authenticate %q, want %q", got, c.challenge)
			}
			for _, s := range secrets {
				if strings.Contains(g.raw, s[8:]) {
					t.Errorf("the answer holds a key: %s", g.raw)
				}
			}
			// Forward-auth, asked about the same request, answers
			// alike.
			f := e.forwardAuth(c.method, c.uri, c.key, c.header...)
			if f.status != g.status || f.str("code") != g.str("code") || f.str("detail") != g.str("detail") ||
				f.header.Get("WWW-Authenticate") != g.header.Get("WWW-Authenticate") || f.header.Get("Retry-After") != g.header.Get("Retry-After") {
				t.Errorf("forward-auth answers %d %s %q %q, the gateway %d %s %q %q",
					f.status, f.str("code"), f.str("detail"), f.header.Get("WWW-Authenticate"),
					g.status, g.str("code"), g.str("detail"), g.header.Get("WWW-Authenticate"))
			}
		})
	}
	if got := e.live.count.Load() + e.test.count.Load(); got != passes {
		t.Errorf("the upstreams got %d requests, want the %d that passed", got, passes)
	}
}

// TestIdentity: the upstream gets the identity headers exactly as
// forward-auth's 200 has them, never the key, and never identity headers
// that the client sent itself.
func TestIdentity(t *testing.T) {
	e := newEnv(t)
	k := world(t, e)
	forged := []string{"X-Keyward-Tenant", "ten_forged", "x-keyward-plan", "enterprise", "X-Keyward-Permissions", "keyward:admin",
		"X_Keyward_Key_Id", "key_forged", "X-KEYWARD-MEMBER-ID", "mem_forged"}

	for _, c := range []struct {
		name   string
		key    string
		header []string
	}{
		{"X-API-Key", k.good, nil},
		{"Bearer", "", []string{"Authorization", "Bearer " + k.good}},
		{"both", k.good, []string{"Authorization", "Bearer " + k.good}},
	} {
		t.Run(c.name, func(t *testing.T) {
			header := append(append([]string{}, c.header...), forged...)
			a := e.gateway("GET", "/v1/contacts/1?page=2", c.key, header...)
			if a.status != 200 || a.header.Get("X-Upstream") != "live" {
				t.Fatalf("status %d from %q: %s", a.status, a.header.Get("X-Upstream"), a.raw)
			}
			up := e.live.lastRequest()
			f := e.forwardAuth("GET", "/v1/contacts/1?page=2", k.good)
			want := map[string][]string{}
			for name, v := range f.header {
				if strings.HasPrefix(name, "X-Keyward-") {
					want[name] = v
				}
			}
			if len(want) != 8 {
				t.Fatalf("forward-auth's identity headers: %v", want)
			}
			got := map[string][]string{}
			for name, v := range up.Header {
				if strings.HasPrefix(strings.ToLower(strings.ReplaceAll(name, "_", "-")), "x-keyward-") {
					got[name] = v
				}
			}
			if len(got) != len(want) {
				t.Errorf("the upstream got identity headers %v, want %v", got, want)
			}
			for name, v := range want {
				if g := got[name]; len(g) != 1 || g[0] != v[0] {
					t.Errorf("%s: the upstream got %q, forward-auth answers %q", name, g, v)
				}
			}
			if up.Header.Get("X-Keyward-Key-Name") != "Zoë's key" || up.Header.Get("X-Keyward-Member-Id") != k.memberID {
				t.Errorf("identity: %v", up.Header)
			}
			for name, v := range up.Header {
				for _, s := range v {
					if strings.Contains(s, k.good[8:]) {
						t.Errorf("the upstream got the key in %s", name)
					}
				}
			}
			if up.URL.RawQuery != "page=2" {
				t.Errorf("the query string went up as %q", up.URL.RawQuery)
			}
		})
	}

	t.Run("public route", func(t *testing.T) {
		a := e.gateway("GET", "/health", k.good, append([]string{"Authorization", "Bearer " + k.good}, forged...)...)
		if a.status != 200 {
			t.Fatalf("status %d: %s", a.status, a.raw)
		}
		up := e.live.lastRequest()
		for name := range up.Header {
			if strings.HasPrefix(strings.ToLower(strings.ReplaceAll(name, "_", "-")), "x-keyward-") || name == "X-Api-Key" || name == "Authorization" {
				t.Errorf("a public route passed %s on", name)
			}
		}
	})

	t.Run("another scheme is the upstream's", func(t *testing.T) {
		e.gateway("GET", "/v1/contacts/1", k.good, "Authorization", "Basic dXNlcjpwYXNz")
		up := e.live.lastRequest()
		if up.Header.Get("Authorization") != "Basic dXNlcjpwYXNz" || up.Header.Get("X-Api-Key") != "" {
			t.Errorf("Authorization %q, X-API-Key %q", up.Header.Get("Authorization"), up.Header.Get("X-Api-Key"))
		}
		e.gateway("GET", "/health", "", "Authorization", "Bearer some-jwt-of-the-api")
		if got := e.live.lastRequest().Header.Get("Authorization"); got != "Bearer some-jwt-of-the-api" {
			t.Errorf("a public route's Bearer token that is no key of Keyward's went up as %q", got)
		}
	})

	t.Run("forwarding headers", func(t *testing.T) {
		if strings.Contains(e.log.String(), "not a trusted proxy") {
			t.Fatalf("the untrusted X-Forwarded-For warning before any request sent one:\n%s", e.log.String())
		}
		a := e.gateway("GET", "/v1/contacts/1", k.good, "X-Forwarded-For", "198.51.100.9", "X-Forwarded-Proto", "https",
			"X-Forwarded-Host", "evil.example", "Forwarded", "for=198.51.100.9", "X-Request-Id", "trace-42")
		up := e.live.lastRequest()
		if got := up.Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "127.0.0.1" {
			t.Errorf("X-Forwarded-For %q: a client's own list is replaced by its address", got)
		}
		if up.Header.Get("X-Forwarded-Proto") != "http" || up.Header.Get("Forwarded") != "" ||
			up.Header.Get("X-Forwarded-Host") != strings.TrimPrefix(e.gwURL, "http://") {
			t.Errorf("X-Forwarded-Proto %q, -Host %q, Forwarded %q", up.Header.Get("X-Forwarded-Proto"), up.Header.Get("X-Forwarded-Host"), up.Header.Get("Forwarded"))
		}
		if up.Header.Get("X-Request-Id") != "trace-42" || a.header.Get("X-Request-Id") != "trace-42" {
			t.Errorf("X-Request-Id: upstream %q, answer %q", up.Header.Get("X-Request-Id"), a.header.Get("X-Request-Id"))
		}
		e.gateway("GET", "/v1/contacts/1", k.good)
		if id := e.live.lastRequest().Header.Get("X-Request-Id"); !strings.HasPrefix(id, "req_") {
			t.Errorf("X-Request-Id %q, want one of the gateway's", id)
		}
		// The operator hears, once, that a client's list was ignored: a
		// proxy left out of TrustedProxies would make every client look
		// like it.
		e.gateway("GET", "/v1/contacts/1", k.good, "X-Forwarded-For", "198.51.100.10")
		if got := e.log.String(); strings.Count(got, "not a trusted proxy") != 1 || !strings.Contains(got, `"peer":"127.0.0.1"`) ||
			!strings.Contains(got, "--trusted-proxies") || strings.Contains(got, k.good[8:]) {
			t.Errorf("the log after two requests with an untrusted X-Forwarded-For, want one warning naming the peer:\n%s", got)
		}
	})
}

// TestTrustedProxy: behind a trusted proxy, the gateway appends to its
// X-Forwarded-For, believes its X-Forwarded-Proto (for tls: required) and
// checks the client's address, not the proxy's.
func TestTrustedProxy(t *testing.T) {
	e := newEnv(t, func(c *gateway.Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")} })
	k := world(t, e)
	office, _ := e.key(map[string]any{"tenant_id": "acme", "name": "office 2", "restrictions": map[string]any{"ips": []string{"203.0.113.0/24"}}})
	a := e.gateway("GET", "/v1/billing/x", office, "X-Forwarded-For", "203.0.113.7", "X-Forwarded-Proto", "https")
	if a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.raw)
	}
	up := e.live.lastRequest()
	if got := up.Header.Get("X-Forwarded-For"); got != "203.0.113.7, 127.0.0.1" {
		t.Errorf("X-Forwarded-For %q", got)
	}
	if up.Header.Get("X-Forwarded-Proto") != "https" {
		t.Errorf("X-Forwarded-Proto %q", up.Header.Get("X-Forwarded-Proto"))
	}
	if a := e.gateway("GET", "/v1/billing/x", office, "X-Forwarded-For", "198.51.100.1", "X-Forwarded-Proto", "https"); a.status != 403 || a.str("code") != "ip_not_allowed" {
		t.Errorf("a client outside the key's addresses: %d %s", a.status, a.raw)
	}
	if a := e.gateway("GET", "/v1/billing/x", k.good, "X-Forwarded-Proto", "http"); a.status != 403 || a.str("code") != "tls_required" {
		t.Errorf("plain HTTP by the proxy's word: %d %s", a.status, a.raw)
	}
}

// TestTLS: over TLS, a route with tls: required passes, answers carry
// HSTS, and the upstream hears https; RequireTLS refuses plain HTTP
// before any key is read.
func TestTLS(t *testing.T) {
	e := newEnv(t, func(c *gateway.Config) { c.HSTS = 365 * 24 * time.Hour })
	k := world(t, e)
	tlsURL, client := serveTLS(t, e.gw)
	req := e.request(tlsURL, "GET", "/v1/billing/invoices", k.good, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") != "max-age=31536000" {
		t.Errorf("over TLS: %d, HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
	}
	if got := e.live.lastRequest().Header.Get("X-Forwarded-Proto"); got != "https" {
		t.Errorf("X-Forwarded-Proto %q", got)
	}
	if a := e.gateway("GET", "/v1/contacts/1", k.good); a.header.Get("Strict-Transport-Security") != "" {
		t.Errorf("HSTS over plain HTTP")
	}

	strict := newEnv(t, func(c *gateway.Config) { c.RequireTLS = true })
	before := strict.counts()
	a := strict.gateway("GET", "/health", "")
	if a.status != 403 || a.str("code") != "tls_required" || !strings.Contains(a.str("detail"), "https://") {
		t.Errorf("RequireTLS, plain HTTP: %d %s", a.status, a.raw)
	}
	if strict.counts() != before {
		t.Errorf("a refusal reached the upstream")
	}
}

// TestRouting: test keys go to the test upstream, live keys and public
// routes to the live one, a route with upstreams of its own to those;
// with no test upstream for it, a test key is refused 403
// environment_mismatch, before the checks after step 7.
func TestRouting(t *testing.T) {
	e := newEnv(t)
	k := world(t, e)
	for _, c := range []struct {
		uri, key, upstream string
	}{
		{"/v1/contacts/1", k.good, "live"},
		{"/v1/contacts/1", k.testEnv, "test"},
		{"/health", "", "live"},
		{"/v1/reports/1", k.live, "reports-live"},
		{"/v1/reports/1", k.testEnv, "reports-test"},
		{"/v1/legacy/1", k.live, "legacy"},
	} {
		if a := e.gateway("GET", c.uri, c.key); a.status != 200 || a.header.Get("X-Upstream") != c.upstream {
			t.Errorf("GET %s: %d from %q, want 200 from %q", c.uri, a.status, a.header.Get("X-Upstream"), c.upstream)
		}
	}
	if got := e.test.lastRequest().Header.Get("X-Keyward-Environment"); got != "test" {
		t.Errorf("the test upstream got X-Keyward-Environment %q", got)
	}

	refused := func(e *env, uri, key string) {
		t.Helper()
		before := e.counts()
		a := e.gateway("GET", uri, key)
		if a.status != 403 || a.str("code") != "environment_mismatch" || !strings.Contains(a.str("detail"), "test key") {
			t.Errorf("GET %s with a test key: %d %s", uri, a.status, a.raw)
		}
		if e.counts() != before {
			t.Errorf("GET %s with a test key reached an upstream", uri)
		}
	}
	// The legacy route has an upstream of its own and no upstream_test.
	refused(e, "/v1/legacy/1", k.testEnv)

	// Without --upstream-test, test keys have nowhere to go, even with a
	// permission missing: environment_mismatch is step 7, before 10.
	noTest := newEnv(t, func(c *gateway.Config) { c.UpstreamTest = nil })
	k = world(t, noTest)
	refused(noTest, "/v1/contacts/1", k.testEnv)
	refused(noTest, "/v1/contacts/1", k.testEnv)
	testWriter, _ := noTest.key(map[string]any{"tenant_id": "acme", "name": "test writer", "environment": "test"})
	refused(noTest, "/v1/contacts", testWriter)
	// A refusal before step 7 stands.
	revoked, id := noTest.key(map[string]any{"tenant_id": "acme", "name": "test revoked", "environment": "test"})
	noTest.call(200, "DELETE", "/v1/api-keys/"+id, nil)
	if a := noTest.gateway("GET", "/v1/contacts/1", revoked); a.str("code") != "revoked_api_key" {
		t.Errorf("a revoked test key: %s", a.raw)
	}
	if a := noTest.gateway("GET", "/v1/reports/1", k.testEnv); a.header.Get("X-Upstream") != "reports-test" {
		t.Errorf("a route's upstream_test without --upstream-test: %d %s", a.status, a.raw)
	}
}

// TestRateLimits: every answer for a limited key carries its RateLimit
// headers, proxied or refused; a request past the limit is 429 with
// Retry-After and never reaches the upstream; a test key refused for
// want of a test upstream is not counted; a quota past its limit is 429
// quota_exceeded.
func TestRateLimits(t *testing.T) {
	e := newEnv(t, func(c *gateway.Config) { c.UpstreamTest = nil })
	e.call(201, "POST", "/v1/tenants", map[string]any{"slug": "acme"})
	key, _ := e.key(map[string]any{"tenant_id": "acme", "name": "limited",
		"rate_limits": []map[string]any{{"name": "burst", "limit": 2, "period": "1m"}}})
	for i, remaining := range []string{"1", "0"} {
		a := e.gateway("GET", "/v1/io/x", key)
		if a.status != 200 || a.header.Get("X-RateLimit-Remaining") != remaining || a.header.Get("RateLimit-Policy") != `"burst";q=2;w=60` ||
			!strings.HasPrefix(a.header.Get("RateLimit"), `"burst";r=`+remaining) {
			t.Errorf("request %d: %d, RateLimit %q, X-RateLimit-Remaining %q", i+1, a.status, a.header.Get("RateLimit"), a.header.Get("X-RateLimit-Remaining"))
		}
	}
	busy, _ := e.key(map[string]any{"tenant_id": "acme", "name": "busy",
		"rate_limits": []map[string]any{{"name": "burst", "limit": 5, "period": "1m"}}})
	a := e.gateway("GET", "/v1/io/busy", busy)
	if a.status != 503 || a.header.Get("Retry-After") != "7" || !strings.HasPrefix(a.header.Get("RateLimit"), `"burst";r=4`) ||
		len(a.header.Values("RateLimit")) != 1 || a.header.Get("X-Request-Id") == "upstream-id" {
		t.Errorf("the upstream's 503 for a limited key: %d %v", a.status, a.header)
	}
	before := e.counts()
	a = e.gateway("GET", "/v1/io/x", key)
	if a.status != 429 || a.str("code") != "rate_limited" || a.header.Get("Retry-After") == "" || a.header.Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("past the limit: %d %v %s", a.status, a.header, a.raw)
	}
	if e.counts() != before {
		t.Errorf("a request past the limit reached the upstream")
	}

	test, _ := e.key(map[string]any{"tenant_id": "acme", "name": "limited test", "environment": "test",
		"rate_limits": []map[string]any{{"name": "burst", "limit": 1, "period": "1m"}}})
	for range 3 {
		if a := e.gateway("GET", "/v1/io/x", test); a.str("code") != "environment_mismatch" {
			t.Errorf("a test key without a test upstream: %s", a.raw)
		}
	}

	quota, _ := e.key(map[string]any{"tenant_id": "acme", "name": "quota", "quota": map[string]any{"limit": 1, "period": "month"}})
	if a := e.gateway("GET", "/v1/io/x", quota); a.status != 200 {
		t.Errorf("within the quota: %d %s", a.status, a.raw)
	}
	before = e.counts()
	if a := e.gateway("GET", "/v1/io/x", quota); a.status != 429 || a.str("code") != "quota_exceeded" {
		t.Errorf("past the quota: %d %s", a.status, a.raw)
	}
	if e.counts() != before {
		t.Errorf("a request past the quota reached the upstream")
	}
}

// TestUpstreamFailures: an upstream that cannot be reached is 502
// upstream_unavailable, one that does not answer within the timeout 504
// upstream_timeout, both problem+json with X-Request-Id and logged at
// WARN with the request id and without the key; a body that streams
// longer than the timeout is not cut.
func TestUpstreamFailures(t *testing.T) {
	e := newEnv(t, func(c *gateway.Config) { c.UpstreamTimeout = 300 * time.Millisecond })
	e.call(201, "POST", "/v1/tenants", map[string]any{"slug": "acme"})
	key, _ := e.key(map[string]any{"tenant_id": "acme", "name": "k"})

	a := e.gateway("GET", "/v1/io/slow?wait=3s", key)
	if a.status != 504 || a.str("code") != "upstream_timeout" || a.str("request_id") != a.header.Get("X-Request-Id") ||
		a.header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("a slow upstream: %d %s", a.status, a.raw)
	}
	wantLogged(t, e, a.header.Get("X-Request-Id"), "upstream_timeout", key)

	a = e.gateway("GET", "/v1/io/trickle", key)
	if a.status != 200 || !strings.Contains(a.raw, "part 4") {
		t.Errorf("a body that streams past the timeout: %d %q", a.status, a.raw)
	}

	limited, _ := e.key(map[string]any{"tenant_id": "acme", "name": "limited",
		"rate_limits": []map[string]any{{"name": "burst", "limit": 100, "period": "1m"}}})
	e.live.srv.Close()
	a = e.gateway("GET", "/v1/io/x", limited)
	if a.status != 502 || a.header.Get("X-RateLimit-Remaining") != "99" || a.header.Get("RateLimit-Policy") == "" {
		t.Errorf("a limited key's 502 carries its RateLimit headers: %d %v", a.status, a.header)
	}
	a = e.gateway("GET", "/v1/io/x", key)
	if a.status != 502 || a.str("code") != "upstream_unavailable" || a.str("request_id") != a.header.Get("X-Request-Id") {
		t.Errorf("an upstream down: %d %s", a.status, a.raw)
	}
	wantLogged(t, e, a.header.Get("X-Request-Id"), "upstream_unavailable", key)
}

// wantLogged checks that the log has a WARN line for the request id with
// code, and nowhere the key.
func wantLogged(t *testing.T, e *env, id string, code keyward.Code, key string) {
	t.Helper()
	log := e.log.String()
	found := false
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, `"request_id":"`+id+`"`) && strings.Contains(line, `"level":"WARN"`) && strings.Contains(line, string(code)) {
			found = true
		}
	}
	if !found {
		t.Errorf("no WARN line with request id %s and %s in the log:\n%s", id, code, log)
	}
	if strings.Contains(log, key[8:]) {
		t.Errorf("the log holds the key")
	}
}

// TestConfig: a gateway needs a verifier, a policy and an upstream.
func TestConfig(t *testing.T) {
	e := newEnv(t)
	for _, c := range []gateway.Config{
		{Routes: e.routes, Upstream: e.live.url},
		{Verifier: e.verifier, Upstream: e.live.url},
		{Verifier: e.verifier, Routes: e.routes},
	} {
		if _, err := gateway.New(c); err == nil {
			t.Errorf("gateway.New(%+v) passed", c)
		}
	}
	_ = http.StatusOK
	_ = loopback
}

// TestUpstreamPath: an upstream URL with a path prefixes the request's
// path, and a request in absolute form goes up by its path, decided by
// it.
func TestUpstreamPath(t *testing.T) {
	e := newEnv(t)
	base := newEnv(t, func(c *gateway.Config) { c.Upstream = mustURL(t, e.live.url.String()+"/base/") })
	base.call(201, "POST", "/v1/tenants", map[string]any{"slug": "acme"})
	key, _ := base.key(map[string]any{"tenant_id": "acme", "name": "k"})
	if a := base.gateway("GET", "/v1/io/x?a=1", key); a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.raw)
	}
	if up := e.live.lastRequest(); up.URL.Path != "/base/v1/io/x" || up.URL.RawQuery != "a=1" || up.Host != e.live.url.Host ||
		up.Header.Get("X-Forwarded-Host") != strings.TrimPrefix(base.gwURL, "http://") {
		t.Errorf("the upstream got %s, Host %s, X-Forwarded-Host %s", up.URL, up.Host, up.Header.Get("X-Forwarded-Host"))
	}
	_, r := base.rawRequest("GET http://elsewhere/v1/io/y HTTP/1.1\r\nHost: api\r\nX-API-Key: " + key + "\r\n\r\n")
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if up := e.live.lastRequest(); resp.StatusCode != 200 || up.URL.Path != "/base/v1/io/y" || up.Host != e.live.url.Host {
		t.Errorf("absolute form: %d, the upstream got %s, Host %s", resp.StatusCode, up.URL, up.Host)
	}
}

// TestPanic: a panic on the request path (which fasthttp would let end
// the process) is answered 500 internal problem+json with the request's
// id, on a connection then closed; it is logged with that id and without
// the key, and the gateway goes on serving.
func TestPanic(t *testing.T) {
	e := newEnv(t)
	k := world(t, e)
	gateway.SetTestPanic(func(path string) {
		if path == "/v1/contacts/boom" {
			panic("boom while holding " + k.good)
		}
	})
	t.Cleanup(func() { gateway.SetTestPanic(nil) })
	before := e.counts()
	a := e.gateway("GET", "/v1/contacts/boom", k.good, "X-Request-Id", "trace-panic")
	if a.status != 500 || a.str("code") != "internal_error" || a.header.Get("X-Request-Id") != "trace-panic" ||
		!strings.HasPrefix(a.header.Get("Content-Type"), "application/problem+json") {
		t.Fatalf("a panic: %d %v %s", a.status, a.header, a.raw)
	}
	_, r := e.rawRequest("GET /v1/contacts/boom HTTP/1.1\r\nHost: api\r\nX-API-Key: " + k.good + "\r\n\r\n")
	if status, header := readStatus(t, r); status != "HTTP/1.1 500 Internal Server Error" || !slices.Contains(header, "Connection: close") {
		t.Errorf("a panic's answer on the wire: %q %q; want the connection closed", status, header)
	}
	if strings.Contains(a.raw, "boom") || strings.Contains(a.raw, k.good[8:]) {
		t.Errorf("the answer repeats the panic: %s", a.raw)
	}
	if e.counts() != before {
		t.Errorf("the request that panicked before going upstream reached it")
	}
	if got := e.log.String(); !strings.Contains(got, "panic") || !strings.Contains(got, "trace-panic") || strings.Contains(got, k.good[8:]) {
		t.Errorf("the log of the panic, want it with the request id and without the key:\n%s", got)
	}
	if a := e.gateway("GET", "/v1/contacts/1", k.good); a.status != 200 {
		t.Errorf("after a panic: %d %s", a.status, a.raw)
	}
}
