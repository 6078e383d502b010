package verify_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/verify"
)

// testPolicy is the route policy of issue 9's example, with a default that
// denies.
const testPolicy = `
default: deny
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
    permissions: [sites:read]
`

// parsePolicy compiles a routes file or fails the test.
func parsePolicy(t testing.TB, src string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(src))
	if err != nil {
		t.Fatalf("policy.Parse: %v", err)
	}
	return p
}

// TestRoutePolicyOutcomes: every outcome a route policy and a key's
// restrictions decide, in the order of SPEC §5, with the route that
// decided.
func TestRoutePolicyOutcomes(t *testing.T) {
	f := newFixture(t, verify.Options{})
	f.refresh()
	pol := parsePolicy(t, testPolicy)
	f.createPlan(&keyward.Plan{Name: "m2m", APIAccess: true, Capabilities: []string{"m2m_api"}})
	f.movePlan("m2m")
	perms := []string{"contacts:read", "sites:read"}
	key, _ := f.createKey(func(k *keyward.Key) {
		k.Permissions = perms
		k.Restrictions.Resources = map[string][]string{"site": {"site_1"}}
	})
	testKey, _ := f.createKeyIn(keyward.Test, func(k *keyward.Key) { k.Permissions = perms })
	referred, _ := f.createKey(func(k *keyward.Key) {
		k.Permissions = perms
		k.Restrictions.Referrers = []string{"https://app.example.com"}
	})
	endpointed, _ := f.createKey(func(k *keyward.Key) {
		k.Permissions = perms
		k.Restrictions.Endpoints = []string{"GET /v1/contacts/**"}
	})
	sites := "/v1/tenants/" + f.tenant.ID + "/sites/site_1/pages"
	for _, c := range []struct {
		name, key, method, target, referer string
		want                               keyward.Code
		route                              string
	}{
		{"public route, no key", "", "GET", "/health", "", "", "GET /health"},
		{"public route, bad key", "sk_live_nope", "GET", "/health?x=1", "", "", "GET /health"},
		{"missing key", "", "GET", "/v1/contacts", "", keyward.CodeMissingAPIKey, "GET /v1/contacts/**"},
		{"valid", key, "GET", "/v1/contacts/c_1?page=2", "", "", "GET /v1/contacts/**"},
		{"HEAD by a GET route", key, "HEAD", "/v1/contacts", "", "", "GET /v1/contacts/**"},
		{"insufficient permissions", key, "POST", "/v1/contacts", "", keyward.CodeInsufficientPermissions, "POST /v1/contacts"},
		{"default deny", key, "DELETE", "/v1/contacts", "", keyward.CodeEndpointNotAllowed, "default: deny"},
		{"bad path", key, "GET", "/v1/contacts/../admin", "", keyward.CodeInvalidRequest, ""},
		{"tenant by id and site allowed", key, "GET", sites, "", "", "GET /v1/tenants/{tenant}/sites/{site}/**"},
		{"tenant by slug", key, "GET", "/v1/tenants/" + f.tenant.Slug + "/sites/site_1", "", "", "GET /v1/tenants/{tenant}/sites/{site}/**"},
		{"another tenant", key, "GET", "/v1/tenants/ten_other/sites/site_1", "", keyward.CodeNotFound, "GET /v1/tenants/{tenant}/sites/{site}/**"},
		{"a site outside the key's", key, "GET", "/v1/tenants/" + f.tenant.ID + "/sites/site_2", "", keyward.CodeNotFound, "GET /v1/tenants/{tenant}/sites/{site}/**"},
		{"test key on a live route", testKey, "GET", sites, "", keyward.CodeEnvironmentMismatch, "GET /v1/tenants/{tenant}/sites/{site}/**"},
		{"test key elsewhere", testKey, "GET", "/v1/contacts", "", "", "GET /v1/contacts/**"},
		{"referrer allowed", referred, "GET", "/v1/contacts", "https://app.example.com/page", "", "GET /v1/contacts/**"},
		{"referrer refused", referred, "GET", "/v1/contacts", "https://evil.example/", keyward.CodeReferrerNotAllowed, "GET /v1/contacts/**"},
		{"no referrer", referred, "GET", "/v1/contacts", "", keyward.CodeReferrerNotAllowed, "GET /v1/contacts/**"},
		{"endpoint allowed", endpointed, "GET", "/v1/contacts/c_1", "", "", "GET /v1/contacts/**"},
		{"endpoint refused", endpointed, "GET", sites, "", keyward.CodeEndpointNotAllowed, "GET /v1/tenants/{tenant}/sites/{site}/**"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := f.v.Verify(context.Background(), verify.Request{Key: c.key, Method: c.method, Target: c.target,
				Referer: c.referer, Policy: pol, IP: netip.MustParseAddr("192.0.2.10")})
			if r.Code != c.want {
				t.Fatalf("code %q (%s), want %q", r.Code, r.Detail, c.want)
			}
			route := ""
			if r.Route != nil {
				route = r.Route.String()
			}
			if route != c.route {
				t.Errorf("route %q, want %q", route, c.route)
			}
			if r.Public != strings.HasPrefix(c.name, "public") {
				t.Errorf("public = %v", r.Public)
			}
		})
	}

	// The plan losing the capability: plan_not_entitled naming it.
	f.createPlan(&keyward.Plan{Name: "basic", APIAccess: true})
	f.movePlan("basic")
	r := f.v.Verify(context.Background(), verify.Request{Key: key, Method: "GET", Target: sites, Policy: pol})
	if r.Code != keyward.CodePlanNotEntitled || !strings.Contains(r.Detail, `"m2m_api"`) {
		t.Errorf("a route's capability missing from the plan: %s (%s), want plan_not_entitled naming m2m_api", r.Code, r.Detail)
	}

	// Without a target, a key with endpoint restrictions is refused, and
	// one without is checked for the request's permissions alone.
	if r := f.verify(endpointed, "contacts:read"); r.Code != keyward.CodeEndpointNotAllowed {
		t.Errorf("a key with endpoints, no target: %s, want endpoint_not_allowed", r.Code)
	}
	if r := f.v.Verify(context.Background(), verify.Request{Key: key, Permissions: []string{"contacts:read"}, Policy: pol}); !r.Valid() || r.Route != nil {
		t.Errorf("no target with a policy: %s, route %v; want valid, no route", r.Code, r.Route)
	}
}

// TestDefaultAuthenticated: a policy whose default is authenticated lets
// any valid key through on a route it does not list, asking for no
// permission.
func TestDefaultAuthenticated(t *testing.T) {
	f := newFixture(t, verify.Options{})
	f.refresh()
	pol := parsePolicy(t, "default: authenticated\nroutes:\n  - match: POST /v1/contacts\n    permissions: [contacts:write]\n")
	key, _ := f.createKey(nil)
	r := f.v.Verify(context.Background(), verify.Request{Key: key, Method: "GET", Target: "/anything", Policy: pol})
	if !r.Valid() || r.Route == nil || !r.Route.Default {
		t.Fatalf("%s (%s), route %v; want valid by the default route", r.Code, r.Detail, r.Route)
	}
	if r := f.v.Verify(context.Background(), verify.Request{Key: "", Method: "GET", Target: "/anything", Policy: pol}); r.Code != keyward.CodeMissingAPIKey {
		t.Errorf("no key on an unlisted route: %s, want missing_api_key", r.Code)
	}
}

// TestPolicyVerificationAllocatesNothing: a cached verification through a
// route policy with path parameters, a key with referrer, endpoint and
// resource restrictions and a member allocates nothing.
func TestPolicyVerificationAllocatesNothing(t *testing.T) {
	b := newPolicyBench(t)
	if r := b.verify(); !r.Valid() {
		t.Fatalf("%s: %s", r.Code, r.Detail)
	}
	if n := testing.AllocsPerRun(200, func() { b.verify() }); n != 0 {
		t.Errorf("%v allocations per verification, want 0", n)
	}
}

// policyBench is a cached key with every restriction, verified through a
// policy of 200 routes on a route with a tenant, a resource, a capability,
// an environment and a permission.
type policyBench struct {
	v   *verify.Verifier
	req verify.Request
}

func (b *policyBench) verify() verify.Result { return b.v.Verify(context.Background(), b.req) }

func newPolicyBench(t testing.TB) *policyBench {
	f := newFixture(t, verify.Options{})
	f.refresh()
	var src strings.Builder
	src.WriteString("default: deny\nroutes:\n")
	for i := range 196 {
		switch i % 4 {
		case 0:
			fmt.Fprintf(&src, "  - match: GET /v1/res%d/**\n    permissions: [contacts:read]\n", i)
		case 1:
			fmt.Fprintf(&src, "  - match: POST /v1/res%d/{id}\n    permissions: [contacts:write]\n", i)
		case 2:
			fmt.Fprintf(&src, "  - match: \"* /v1/res%d/{id}/items/*\"\n    permissions: [contacts:read]\n", i)
		case 3:
			fmt.Fprintf(&src, "  - match: GET /v1/res%d\n    public: true\n", i)
		}
	}
	src.WriteString(testPolicy[strings.Index(testPolicy, "  - match"):])
	pol := parsePolicy(t, src.String())
	if n := len(pol.Routes()); n != 200 {
		t.Fatalf("%d routes, want 200", n)
	}
	f.createPlan(&keyward.Plan{Name: "m2m", APIAccess: true, Capabilities: []string{"reports", "m2m_api"},
		Permissions: []string{"contacts:read", "sites:read", "messages:send"}})
	f.movePlan("m2m")
	f.createMember("owner@example.com", keyward.RoleOwner, "contacts:read", "sites:read", "contacts:write")
	m := f.createMember("svc@example.com", keyward.RoleDeveloper, "contacts:read", "sites:read")
	key, _ := f.createKey(func(k *keyward.Key) {
		k.MemberID = m.ID
		k.Permissions = []string{"contacts:read", "sites:read", "contacts:write"}
		k.Restrictions = keyward.Restrictions{
			IPs:       []string{"192.0.2.0/24"},
			Referrers: []string{"https://app.example.com", "https://*.example.com/*"},
			Endpoints: []string{"GET /v1/contacts/**", "GET /v1/tenants/*/sites/**"},
			Resources: map[string][]string{"site": {"site_0", "site_1"}},
		}
	})
	v := verify.New(f.store, verify.Options{Format: f.format})
	t.Cleanup(func() { v.Close(context.Background()) })
	if err := v.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &policyBench{v: v, req: verify.Request{
		Key: key, IP: netip.MustParseAddr("192.0.2.10"),
		Method: "GET", Target: "/v1/tenants/" + f.tenant.ID + "/sites/site_1/pages?page=2",
		Referer: "https://eu.example.com/dashboard", Policy: pol,
	}}
}

// TestRouteTLSRequired: a route with tls: required refuses a request that
// did not come over TLS before anything else, a public route, a missing
// key and a bad key included, and takes one that did; a route without it
// takes both.
func TestRouteTLSRequired(t *testing.T) {
	f := newFixture(t, verify.Options{})
	f.refresh()
	pol := parsePolicy(t, `
routes:
  - match: GET /status
    public: true
    tls: required
  - match: GET /v1/secrets/**
    tls: required
  - match: GET /v1/open
`)
	key, _ := f.createKey(nil)
	for _, c := range []struct {
		name, key, target string
		tls               bool
		want              keyward.Code
	}{
		{"public over plain HTTP", "", "/status", false, keyward.CodeTLSRequired},
		{"public over TLS", "", "/status", true, ""},
		{"no key over plain HTTP", "", "/v1/secrets/a", false, keyward.CodeTLSRequired},
		{"bad key over plain HTTP", "sk_live_nope", "/v1/secrets/a", false, keyward.CodeTLSRequired},
		{"valid key over plain HTTP", key, "/v1/secrets/a", false, keyward.CodeTLSRequired},
		{"valid key over TLS", key, "/v1/secrets/a", true, ""},
		{"no key over TLS", "", "/v1/secrets/a", true, keyward.CodeMissingAPIKey},
		{"route without tls over plain HTTP", key, "/v1/open", false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := f.v.Verify(context.Background(), verify.Request{Key: c.key, Method: "GET", Target: c.target, Policy: pol, TLS: c.tls})
			if r.Code != c.want {
				t.Fatalf("code %q (%s), want %q", r.Code, r.Detail, c.want)
			}
			if r.Code == keyward.CodeTLSRequired && (r.Key != nil || r.Route == nil || !r.Route.TLS) {
				t.Errorf("tls_required with key %v, route %v: want no key looked up, the route that decided", r.Key, r.Route)
			}
		})
	}
}
