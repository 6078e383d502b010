package httpapi

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/policy"
)

// issueRoutes is the routes file of issue 9, with a default that denies.
const issueRoutes = `default: deny
routes:
  - match: GET /health
    public: true
  - match: GET /v1/contacts/**
    permissions: [contacts:read]
  - match: POST /v1/contacts
    permissions: [contacts:write]
  - match: GET /v1/tenants/{tenant}/sites/{site}/**
    tenant: tenant
    resources: [site]
    capabilities: [m2m_api]
    environments: [live]
`

// withRoutes gives the server the route policy in a file holding routes.
func withRoutes(t testing.TB, routes string) harnessOption {
	name := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(name, []byte(routes), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := policy.Open(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	return func(c *harnessConfig) { c.Routes = f }
}

// policyKeys are the keys of the route policy tests, one per outcome.
type policyKeys struct {
	acmeID, basicID, memberID, goodID, plainID string

	good, plain, testEnv, ip, referrer, endpoint, revoked, expired, disabled, suspended, frozen, basic, unknown string
}

// policyWorld makes the tenants, plans, members and keys of the route
// policy tests: acme on a plan with m2m_api, basic on one without,
// frozen on one without API access, and other, suspended.
func policyWorld(t *testing.T, h *harness) policyKeys {
	t.Helper()
	var k policyKeys
	h.must(201, "POST", "/v1/plans", h.root, map[string]any{"name": "pro", "capabilities": []string{"m2m_api"}})
	h.must(201, "POST", "/v1/plans", h.root, map[string]any{"name": "basic"})
	h.must(201, "POST", "/v1/plans", h.root, map[string]any{"name": "frozen"})
	k.acmeID = h.tenant("acme")
	h.must(200, "PATCH", "/v1/tenants/acme", h.root, map[string]any{"plan": "pro"})
	k.basicID = h.tenant("basic")
	h.must(200, "PATCH", "/v1/tenants/basic", h.root, map[string]any{"plan": "basic"})
	h.tenant("frozen")
	h.must(200, "PATCH", "/v1/tenants/frozen", h.root, map[string]any{"plan": "frozen"})
	other := h.tenant("other")

	k.memberID = h.member(k.acmeID, "zoe@acme.example", keyward.RoleOwner, "contacts:read")
	sites := map[string]any{"resources": map[string][]string{"site": {"site_1"}}}
	// The name is visible text beyond ASCII: it reaches the upstream as
	// its UTF-8 bytes.
	k.good, k.goodID = h.key(h.root, map[string]any{"tenant_id": "acme", "member_id": k.memberID, "name": "Zoë's key",
		"permissions": []string{"contacts:read"}, "restrictions": sites})
	k.plain, k.plainID = h.key(h.root, map[string]any{"tenant_id": "acme", "name": "plain", "permissions": []string{"contacts:read", "sites:read"}})
	k.testEnv, _ = h.key(h.root, map[string]any{"tenant_id": "acme", "name": "test", "environment": "test", "restrictions": sites})
	k.ip, _ = h.key(h.root, map[string]any{"tenant_id": "acme", "name": "office", "permissions": []string{"contacts:read"},
		"restrictions": map[string]any{"ips": []string{"203.0.113.0/24"}}})
	k.referrer, _ = h.key(h.root, map[string]any{"tenant_id": "acme", "name": "browser", "permissions": []string{"contacts:read"},
		"restrictions": map[string]any{"referrers": []string{"https://app.example.com"}}})
	k.endpoint, _ = h.key(h.root, map[string]any{"tenant_id": "acme", "name": "one contact", "permissions": []string{"contacts:read"},
		"restrictions": map[string]any{"endpoints": []string{"GET /v1/contacts/1"}}})
	var revokedID, disabledID string
	k.revoked, revokedID = h.key(h.root, map[string]any{"tenant_id": "acme", "name": "revoked"})
	h.must(200, "DELETE", "/v1/api-keys/"+revokedID, h.root, nil)
	k.expired, _ = h.key(h.root, map[string]any{"tenant_id": "acme", "name": "expired", "expires": "1h"})
	k.disabled, disabledID = h.key(h.root, map[string]any{"tenant_id": "acme", "name": "disabled"})
	h.must(200, "PATCH", "/v1/api-keys/"+disabledID, h.root, map[string]any{"enabled": false})
	k.suspended, _ = h.key(h.root, map[string]any{"tenant_id": other, "name": "suspended"})
	h.must(200, "POST", "/v1/tenants/"+other+"/suspend", h.root, nil)
	k.frozen, _ = h.key(h.root, map[string]any{"tenant_id": "frozen", "name": "frozen", "permissions": []string{"contacts:read"}})
	h.must(200, "PATCH", "/v1/plans/frozen", h.root, map[string]any{"api_access": false})
	k.basic, _ = h.key(h.root, map[string]any{"tenant_id": "basic", "name": "basic", "permissions": []string{"contacts:read"}})
	h.clock.Advance(2 * 60 * 60 * 1e9)
	format, _ := apikey.NewFormat(apikey.DefaultPrefix)
	unknown, err := format.Generate(keyward.Live)
	if err != nil {
		t.Fatal(err)
	}
	k.unknown = unknown
	return k
}

// policyCase is one request of the route policy tests and its outcome.
type policyCase struct {
	name      string
	method    string
	uri       string
	key       string
	header    []string // more headers of the original request
	status    int
	code      keyward.Code // "" for a pass
	challenge string       // WWW-Authenticate, "" for none
	route     string       // the route that decided, as /v1/verify says it
}

// policyCases are SPEC §5's rows 1–10 (and the M2M guide's table) under
// issueRoutes.
func policyCases(k policyKeys) []policyCase {
	const (
		missing  = `Bearer realm="keyward"`
		invalid  = `error="invalid_token"`
		scope    = `Bearer realm="keyward", error="insufficient_scope"`
		contacts = "GET /v1/contacts/**"
		sites    = "GET /v1/tenants/{tenant}/sites/{site}/**"
	)
	return []policyCase{
		{"public route, no key", "GET", "/health", "", nil, 200, "", "", "GET /health"},
		{"a path read two ways", "GET", "/v1//contacts", k.good, nil, 400, keyward.CodeInvalidRequest, "", ""},
		{"1 missing", "GET", "/v1/contacts/1", "", nil, 401, keyward.CodeMissingAPIKey, missing, contacts},
		{"2 malformed", "GET", "/v1/contacts/1", flip(k.good), nil, 401, keyward.CodeMalformedAPIKey, invalid, contacts},
		{"3 invalid", "GET", "/v1/contacts/1", k.unknown, nil, 401, keyward.CodeInvalidAPIKey, invalid, contacts},
		{"4 revoked", "GET", "/v1/contacts/1", k.revoked, nil, 401, keyward.CodeRevokedAPIKey, invalid, contacts},
		{"5 expired", "GET", "/v1/contacts/1", k.expired, nil, 401, keyward.CodeExpiredAPIKey, invalid, contacts},
		{"6 suspended", "GET", "/v1/contacts/1", k.suspended, nil, 403, keyward.CodeAccountSuspended, "", contacts},
		{"6 disabled", "GET", "/v1/contacts/1", k.disabled, nil, 403, keyward.CodeKeyDisabled, "", contacts},
		{"7 test key on a live-only route", "GET", "/v1/tenants/acme/sites/site_1/pages", k.testEnv, nil, 403, keyward.CodeEnvironmentMismatch, "", sites},
		{"8 ip", "GET", "/v1/contacts/1", k.ip, nil, 403, keyward.CodeIPNotAllowed, "", contacts},
		{"8 referrer, none sent", "GET", "/v1/contacts/1", k.referrer, nil, 403, keyward.CodeReferrerNotAllowed, "", contacts},
		{"8 referrer, another page", "GET", "/v1/contacts/1", k.referrer, []string{"Referer", "https://evil.example/x"}, 403, keyward.CodeReferrerNotAllowed, "", contacts},
		{"8 endpoint", "GET", "/v1/contacts/2", k.endpoint, nil, 403, keyward.CodeEndpointNotAllowed, "", contacts},
		{"8 endpoint, another method", "DELETE", "/v1/contacts/1", k.endpoint, nil, 403, keyward.CodeEndpointNotAllowed, "", "default: deny"},
		{"8 default deny", "GET", "/v1/unlisted", k.good, nil, 403, keyward.CodeEndpointNotAllowed, "", "default: deny"},
		{"9 another tenant's id", "GET", "/v1/tenants/" + k.basicID + "/sites/site_1/pages", k.good, nil, 404, keyward.CodeNotFound, "", sites},
		{"9 a site outside the key's", "GET", "/v1/tenants/acme/sites/site_2/pages", k.good, nil, 404, keyward.CodeNotFound, "", sites},
		{"10 plan without API access", "GET", "/v1/contacts/1", k.frozen, nil, 403, keyward.CodePlanNotEntitled, "", contacts},
		{"10 route capability missing", "GET", "/v1/tenants/basic/sites/site_1/pages", k.basic, nil, 403, keyward.CodePlanNotEntitled, "", sites},
		{"10 permission missing", "POST", "/v1/contacts", k.good, nil, 403, keyward.CodeInsufficientPermissions, scope, "POST /v1/contacts"},
		{"pass", "GET", "/v1/contacts/1?page=2", k.good, nil, 200, "", "", contacts},
		{"pass, tenant by id", "GET", "/v1/tenants/" + k.acmeID + "/sites/site_1/pages", k.good, nil, 200, "", "", sites},
		{"pass, tenant by slug, no resource restrictions", "GET", "/v1/tenants/acme/sites/site_9/pages", k.plain, nil, 200, "", "", sites},
		{"pass, referrer", "GET", "/v1/contacts/1", k.referrer, []string{"Referer", "https://app.example.com/inbox"}, 200, "", "", contacts},
		{"pass, origin", "GET", "/v1/contacts/1", k.referrer, []string{"Origin", "https://app.example.com"}, 200, "", "", contacts},
		{"pass, endpoint", "GET", "/v1/contacts/1", k.endpoint, nil, 200, "", "", contacts},
	}
}

// TestForwardAuthPolicy: forward-auth with a route policy answers every
// outcome of SPEC §5 rows 1–10 with its status, code and WWW-Authenticate,
// a public route with a bare 200, and a pass with every identity header.
func TestForwardAuthPolicy(t *testing.T) { fronts(t, testForwardAuthPolicy) }

func testForwardAuthPolicy(t *testing.T, front harnessOption) {
	h := newHarness(t, front, withRoutes(t, issueRoutes))
	k := policyWorld(t, h)
	for _, c := range policyCases(k) {
		t.Run(c.name, func(t *testing.T) {
			header := append([]string{"X-Original-Method", c.method, "X-Original-URI", c.uri}, c.header...)
			a := h.call("GET", "/v1/forward-auth", c.key, nil, header...)
			if c.code != "" {
				problemOf(t, a, c.status, c.code)
			} else if a.status != c.status {
				t.Fatalf("status %d, want %d\n%s", a.status, c.status, a.raw)
			}
			if got := a.header.Get("WWW-Authenticate"); c.challenge == "" && got != "" ||
				c.challenge != "" && (got == "" || !strings.Contains(got, c.challenge)) {
				t.Errorf("WWW-Authenticate %q, want %q", got, c.challenge)
			}
			if c.status != 200 || c.key == "" {
				for name := range a.header {
					if len(name) > 10 && name[:10] == "X-Keyward-" {
						t.Errorf("identity header %s on a refusal or a public route", name)
					}
				}
			}
		})
	}

	// A pass carries every identity header; the member's only with one.
	a := h.must(200, "GET", "/v1/forward-auth", k.good, nil, "X-Original-Method", "GET", "X-Original-URI", "/v1/contacts/1")
	want := map[string]string{
		"X-Keyward-Key-Id": k.goodID, "X-Keyward-Key-Name": "Zoë's key", "X-Keyward-Tenant": k.acmeID,
		"X-Keyward-Tenant-Slug": "acme", "X-Keyward-Member-Id": k.memberID, "X-Keyward-Plan": "pro",
		"X-Keyward-Environment": "live", "X-Keyward-Permissions": "contacts:read",
	}
	for name, v := range want {
		if got := a.header.Values(name); len(got) != 1 || got[0] != v {
			t.Errorf("%s: %q, want %q", name, got, v)
		}
	}
	a = h.must(200, "GET", "/v1/forward-auth", k.plain, nil, "X-Original-Method", "GET", "X-Original-URI", "/v1/contacts/1")
	if a.header.Get("X-Keyward-Key-Id") != k.plainID || a.header.Get("X-Keyward-Permissions") != "contacts:read,sites:read" {
		t.Errorf("a key of the tenant as a whole: %v", a.header)
	}
	if _, ok := a.header["X-Keyward-Member-Id"]; ok {
		t.Errorf("X-Keyward-Member-Id for a key without a member: %q", a.header.Get("X-Keyward-Member-Id"))
	}

	// The policy decides: permissions in the query string are a 400 that
	// says so, and so is a request without the original URI.
	for _, q := range []string{"?permissions=contacts:write", "?permissions=none"} {
		d := problemOf(t, h.call("GET", "/v1/forward-auth"+q, k.good, nil, "X-Original-URI", "/v1/contacts/1"), 400, keyward.CodeInvalidRequest)
		if !strings.Contains(d, "route policy") {
			t.Errorf("%s beside a policy: %q", q, d)
		}
	}
	d := problemOf(t, h.call("GET", "/v1/forward-auth", k.good, nil), 400, keyward.CodeInvalidRequest)
	if !strings.Contains(d, "original request's URI") {
		t.Errorf("no original URI beside a policy: %q", d)
	}
	// Without X-Original-Method, the policy would decide by the auth
	// request's method, which nginx's auth_request sends as GET whatever
	// the original was (a POST would pass as a GET): a 400 that says so.
	for _, m := range []string{"GET", "POST"} {
		d = problemOf(t, h.call(m, "/v1/forward-auth", k.good, nil, "X-Forwarded-Uri", "/v1/contacts"), 400, keyward.CodeInvalidRequest)
		if !strings.Contains(d, "original request's method") {
			t.Errorf("no original method beside a policy: %q", d)
		}
	}
	// nginx's auth_request mode hides every refusal behind a bare 401,
	// a public route included in none.
	if a := h.call("GET", "/v1/forward-auth?nginx=auth_request", "", nil, "X-Original-Method", "GET", "X-Original-URI", "/health"); a.status != 200 {
		t.Errorf("a public route in auth_request mode: %d", a.status)
	}
}

// TestVerifyPolicy: POST /v1/verify with a method and path decides by the
// server's route policy, with the same outcomes as forward-auth, and says
// the route that decided.
func TestVerifyPolicy(t *testing.T) { fronts(t, testVerifyPolicy) }

func testVerifyPolicy(t *testing.T, front harnessOption) {
	h := newHarness(t, front, withRoutes(t, issueRoutes))
	k := policyWorld(t, h)
	for _, c := range policyCases(k) {
		t.Run(c.name, func(t *testing.T) {
			body := map[string]any{"key": c.key, "method": c.method, "path": c.uri}
			for i := 0; i+1 < len(c.header); i += 2 {
				switch c.header[i] {
				case "Referer":
					body["referrer"] = c.header[i+1]
				case "Origin":
					body["origin"] = c.header[i+1]
				}
			}
			if c.key == k.ip {
				body["ip"] = "127.0.0.1"
			}
			v := h.must(200, "POST", "/v1/verify", h.root, body).body
			if v["valid"] != (c.code == "") || v["status"] != float64(c.status) || c.code != "" && v["code"] != string(c.code) {
				t.Errorf("valid %v, status %v, code %v; want status %d, code %q", v["valid"], v["status"], v["code"], c.status, c.code)
			}
			if got, _ := v["route"].(string); got != c.route {
				t.Errorf("route %q, want %q", got, c.route)
			}
		})
	}
	// Without a path, the policy does not decide: the body's permissions
	// do, and a key with endpoint restrictions is refused.
	v := h.must(200, "POST", "/v1/verify", h.root, map[string]any{"key": k.good, "permissions": []string{"contacts:read"}}).body
	if v["valid"] != true || v["route"] != nil {
		t.Errorf("no path: %v", v)
	}
	v = h.must(200, "POST", "/v1/verify", h.root, map[string]any{"key": k.endpoint}).body
	if v["code"] != string(keyward.CodeEndpointNotAllowed) {
		t.Errorf("a key with endpoints, no path: %v", v)
	}
	// The body's permissions count beside the route's.
	v = h.must(200, "POST", "/v1/verify", h.root, map[string]any{"key": k.good, "method": "GET", "path": "/v1/contacts/1", "permissions": []string{"contacts:write"}}).body
	if v["code"] != string(keyward.CodeInsufficientPermissions) {
		t.Errorf("a permission beside the route's: %v", v)
	}
}

// TestWhoamiRestrictions: /v1/whoami checks a key against its own
// request, without a route policy: its referrers, its endpoints and its
// plan.
func TestWhoamiRestrictions(t *testing.T) {
	h := newHarness(t, withRoutes(t, issueRoutes))
	k := policyWorld(t, h)
	problemOf(t, h.call("GET", "/v1/whoami", k.referrer, nil), 403, keyward.CodeReferrerNotAllowed)
	h.must(200, "GET", "/v1/whoami", k.referrer, nil, "Referer", "https://app.example.com/")
	problemOf(t, h.call("GET", "/v1/whoami", k.endpoint, nil), 403, keyward.CodeEndpointNotAllowed)
	problemOf(t, h.call("GET", "/v1/whoami", k.frozen, nil), 403, keyward.CodePlanNotEntitled)
	// No route policy applies: a test key is not held to live-only routes.
	h.must(http.StatusOK, "GET", "/v1/whoami", k.testEnv, nil)
}

// TestForwardAuthRestrictionsNoPolicy: without a policy, forward-auth
// keeps its permissions parameter and checks the key's own restrictions
// against the original method, URI, Referer and Origin.
func TestForwardAuthRestrictionsNoPolicy(t *testing.T) {
	fronts(t, testForwardAuthRestrictionsNoPolicy)
}

func testForwardAuthRestrictionsNoPolicy(t *testing.T, front harnessOption) {
	h := newHarness(t, front)
	k := policyWorld(t, h)
	fa := func(key, query string, header ...string) answer {
		return h.call("GET", "/v1/forward-auth"+query, key, nil, header...)
	}
	h.must(200, "GET", "/v1/forward-auth?permissions=contacts:read", k.endpoint, nil, "X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/v1/contacts/1")
	problemOf(t, fa(k.endpoint, "", "X-Forwarded-Method", "POST", "X-Forwarded-Uri", "/v1/contacts/1"), 403, keyward.CodeEndpointNotAllowed)
	problemOf(t, fa(k.endpoint, ""), 403, keyward.CodeEndpointNotAllowed)
	problemOf(t, fa(k.referrer, "", "X-Forwarded-Uri", "/x", "Origin", "https://evil.example"), 403, keyward.CodeReferrerNotAllowed)
	h.must(200, "GET", "/v1/forward-auth", k.referrer, nil, "X-Forwarded-Uri", "/x", "Origin", "https://app.example.com")
	problemOf(t, fa(k.good, "?permissions=contacts:write", "X-Forwarded-Uri", "/x"), 403, keyward.CodeInsufficientPermissions)
	// An absolute URI's path is what the endpoints see.
	h.must(200, "GET", "/v1/forward-auth", k.endpoint, nil, "X-Forwarded-Uri", "https://api.example.com/v1/contacts/1?x=1")
}

// TestRoutesReload: a reload of the routes file applies at the next
// request; a bad file keeps the policy in use.
func TestRoutesReload(t *testing.T) {
	name := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(name, []byte(issueRoutes), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := policy.Open(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c *harnessConfig) { c.Routes = f })
	h.must(200, "GET", "/v1/forward-auth", "", nil, "X-Original-Method", "GET", "X-Original-URI", "/health")
	if err := os.WriteFile(name, []byte("default: deny\nroutes:\n  - match: GET /status\n    public: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	problemOf(t, h.call("GET", "/v1/forward-auth", "", nil, "X-Original-Method", "GET", "X-Original-URI", "/health"), 401, keyward.CodeMissingAPIKey)
	h.must(200, "GET", "/v1/forward-auth", "", nil, "X-Original-Method", "GET", "X-Original-URI", "/status")
	if err := os.WriteFile(name, []byte("default: maybe\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.Reload(); err == nil {
		t.Fatal("a bad file reloaded")
	}
	h.must(200, "GET", "/v1/forward-auth", "", nil, "X-Original-Method", "GET", "X-Original-URI", "/status")
}
