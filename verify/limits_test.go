package verify_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/verify"
)

// rate is a rate limit of limit per period, with burst (0: the limit).
func rate(name string, limit int64, period time.Duration, burst int64) keyward.RateLimit {
	return keyward.RateLimit{Name: name, Limit: limit, Period: keyward.Duration(period), Burst: burst}
}

// verifyLimited verifies key needing perms, with a decision to fill.
func (f *fixture) verifyLimited(key string, d *limit.Decision, perms ...string) verify.Result {
	return f.v.Verify(context.Background(), verify.Request{Key: key, IP: netip.MustParseAddr("192.0.2.10"), Permissions: perms, RateLimit: d})
}

// TestRateLimits: step 11. A key's rate limits come from its plan unless
// it has its own, its tenant's tenant-wide limits are shared by all its
// keys; a request is allowed only if every limit allows it, a refused one
// (rate_limited, or refused by an earlier step) consumes nothing, and the
// decision says when to retry.
func TestRateLimits(t *testing.T) {
	f := newFixture(t, verify.Options{})
	f.refresh()
	f.createPlan(&keyward.Plan{Name: "metered", APIAccess: true,
		KeyRateLimits:    []keyward.RateLimit{rate("burst", 3, time.Second, 0), rate("hourly", 100, time.Hour, 0)},
		TenantRateLimits: []keyward.RateLimit{rate("all", 5, time.Second, 0)}})
	f.movePlan("metered")
	a, _ := f.createKey(func(k *keyward.Key) { k.Permissions = []string{"contacts:read"} })
	b, _ := f.createKey(nil)
	own, _ := f.createKey(func(k *keyward.Key) { k.RateLimits = []keyward.RateLimit{} })

	var d limit.Decision
	for i := range 3 {
		r := f.verifyLimited(a, &d, "contacts:read")
		if !r.Valid() || r.RateLimit != &d || d.N != 3 || !d.Allowed {
			t.Fatalf("request %d of key a: %s %s, decision %+v", i+1, r.Code, r.Detail, d)
		}
	}
	if got := d.States[0]; got.Name != "burst" || got.Remaining != 0 || got.Limit != 3 {
		t.Errorf("the key's burst limit after 3 requests: %+v", got)
	}
	if got := d.States[2]; got.Name != "tenant-all" || got.Remaining != 2 {
		t.Errorf("the tenant's limit after 3 requests: %+v", got)
	}
	// Refused by an earlier step: nothing is consumed, and no decision.
	if r := f.verifyLimited(a, &d, "contacts:write"); r.Code != keyward.CodeInsufficientPermissions || r.RateLimit != nil {
		t.Fatalf("a request the key may not make: %s, decision %v", r.Code, r.RateLimit)
	}
	r := f.verifyLimited(a, &d, "contacts:read")
	if r.Code != keyward.CodeRateLimited || r.RetryAfter <= 0 || r.RetryAfter > time.Second || d.Allowed || r.Key == nil {
		t.Fatalf("the 4th request within a second: %s (retry after %v), decision %+v", r.Code, r.RetryAfter, d)
	}
	if !strings.Contains(r.Detail, `"burst"`) || !strings.Contains(r.Detail, "Retry in 1 seconds") {
		t.Errorf("the rate_limited detail: %q", r.Detail)
	}
	// The tenant's 5 per second are shared: key b gets the 2 left; the
	// refused request of key a took none of them.
	for i := range 2 {
		if r := f.verifyLimited(b, &d); !r.Valid() {
			t.Fatalf("request %d of key b: %s", i+1, r.Code)
		}
	}
	if r := f.verifyLimited(b, &d); r.Code != keyward.CodeRateLimited || d.States[d.Tightest].Name != "tenant-all" {
		t.Fatalf("key b past the tenant's limit: %s, tightest %+v", r.Code, d.States[d.Tightest])
	}
	// A refused request consumed nothing from b's own limits either.
	if got := d.States[0]; got.Name != "burst" || got.Remaining != 1 {
		t.Errorf("key b's burst limit after 2 allowed requests and one refused: %+v", got)
	}
	// A key without rate limits of its own is still bound by its tenant's.
	if r := f.verifyLimited(own, &d); r.Code != keyward.CodeRateLimited || d.N != 1 {
		t.Errorf("a key with no limits of its own, past the tenant's: %s, %d buckets", r.Code, d.N)
	}

	// A second later, the buckets have refilled.
	f.clock.Advance(time.Second)
	if r := f.verifyLimited(a, &d, "contacts:read"); !r.Valid() {
		t.Fatalf("a second later: %s", r.Code)
	}
	// Without a decision to fill, the limits still apply.
	f.clock.Advance(time.Second)
	for i := range 3 {
		if r := f.verify(a, "contacts:read"); !r.Valid() || r.RateLimit != nil {
			t.Fatalf("request %d without a decision: %s, %v", i+1, r.Code, r.RateLimit)
		}
	}
	if r := f.verify(a, "contacts:read"); r.Code != keyward.CodeRateLimited {
		t.Fatalf("past the limit without a decision: %s", r.Code)
	}
}

// TestCounting: a verification with CountLater leaves step 11 out, and
// Count then checks and counts the request; CheckOnly decides as step 11
// would and counts nothing, neither rate limits nor credits.
func TestCounting(t *testing.T) {
	f := newFixture(t, verify.Options{})
	f.refresh()
	key, stored := f.createKey(func(k *keyward.Key) {
		k.RateLimits = []keyward.RateLimit{rate("burst", 2, time.Minute, 0)}
		k.Credits = &keyward.Credits{Remaining: 5}
	})
	request := func(c verify.Counting) verify.Request {
		return verify.Request{Key: key, IP: netip.MustParseAddr("192.0.2.10"), Counting: c}
	}
	for range 5 {
		req := request(verify.CountLater)
		if r := f.v.Verify(context.Background(), req); !r.Valid() || r.RateLimit != nil {
			t.Fatalf("CountLater: %s, decision %v; want valid and not decided", r.Code, r.RateLimit)
		}
		if r := f.v.Verify(context.Background(), request(verify.CheckOnly)); !r.Valid() {
			t.Fatalf("CheckOnly of full limits: %s", r.Code)
		}
	}
	var d limit.Decision
	for i := range 3 {
		req := request(verify.CountLater)
		req.RateLimit = &d
		r := f.v.Verify(context.Background(), req)
		f.v.Count(context.Background(), &req, &r)
		if want := i < 2; r.Valid() != want || r.RateLimit != &d {
			t.Fatalf("request %d counted later: %s, decision %v; want valid %v, with the decision", i+1, r.Code, r.RateLimit, want)
		}
	}
	if r := f.v.Verify(context.Background(), request(verify.CheckOnly)); r.Code != keyward.CodeRateLimited || r.RetryAfter <= 0 {
		t.Fatalf("CheckOnly past the limit: %s, retry after %v", r.Code, r.RetryAfter)
	}
	if k, err := f.store.Key(context.Background(), stored.ID); err != nil || k.Credits == nil || k.Credits.Remaining != 3 {
		t.Fatalf("credits after 2 requests counted: %v, %v; want 3 left", k, err)
	}
}

// TestRateLimitsChange: a change of a plan's or a tenant's limits reaches
// verification with the change feed.
func TestRateLimitsChange(t *testing.T) {
	f := newFixture(t, verify.Options{})
	f.refresh()
	key, _ := f.createKey(nil)
	for range 10 {
		if r := f.verify(key); !r.Valid() {
			t.Fatalf("without limits: %s", r.Code)
		}
	}
	one := []keyward.RateLimit{rate("burst", 1, time.Minute, 0)}
	if _, err := f.store.UpdateTenant(context.Background(), f.tenant.ID, keyward.TenantUpdate{RateLimits: &one}, f.clock.Now(), keyward.CommandLineActor()); err != nil {
		t.Fatal(err)
	}
	f.refresh()
	if r := f.verify(key); !r.Valid() {
		t.Fatalf("the first request after the tenant's limit: %s", r.Code)
	}
	if r := f.verify(key); r.Code != keyward.CodeRateLimited {
		t.Fatalf("the second request after the tenant's limit: %s", r.Code)
	}
	var none []keyward.RateLimit
	if _, err := f.store.UpdateTenant(context.Background(), f.tenant.ID, keyward.TenantUpdate{RateLimits: &none}, f.clock.Now(), keyward.CommandLineActor()); err != nil {
		t.Fatal(err)
	}
	f.refresh()
	if r := f.verify(key); !r.Valid() {
		t.Fatalf("after the tenant's limit was lifted: %s", r.Code)
	}
}

// TestRateLimitedVerificationAllocatesNothing: a cached verification that
// passes two local rate limits allocates nothing, with a decision to fill
// and without.
func TestRateLimitedVerificationAllocatesNothing(t *testing.T) {
	f := newFixture(t, verify.Options{})
	f.refresh()
	key, _ := f.createKey(func(k *keyward.Key) {
		k.RateLimits = []keyward.RateLimit{rate("burst", 1_000_000, time.Second, 0), rate("daily", 1_000_000_000, 24*time.Hour, 0)}
	})
	var d limit.Decision
	if r := f.verifyLimited(key, &d); !r.Valid() || d.N != 2 {
		t.Fatalf("verify: %s, %d buckets", r.Code, d.N)
	}
	for name, fn := range map[string]func(){
		"with a decision":    func() { f.verifyLimited(key, &d) },
		"without a decision": func() { f.verify(key) },
	} {
		if n := testing.AllocsPerRun(200, fn); n != 0 {
			t.Errorf("%s: %v allocations per verification, want 0", name, n)
		}
	}
}

// TestQuotasAndCredits: after the rate limits, a request counts against
// the key's credits and the quotas of the key and its tenant, in the
// store; one refused by them is quota_exceeded with the time its period
// resets, and gives back what it took from the rate limits. A quota
// counts afresh at the start of the next period, in the tenant's time
// zone (injected clock, no sleeping).
func TestQuotasAndCredits(t *testing.T) {
	f := newFixture(t, verify.Options{})
	f.refresh()
	zone := "Asia/Tokyo"
	if _, err := f.store.UpdateTenant(context.Background(), f.tenant.ID, keyward.TenantUpdate{TimeZone: &zone}, f.clock.Now(), keyward.CommandLineActor()); err != nil {
		t.Fatal(err)
	}
	f.createPlan(&keyward.Plan{Name: "metered", APIAccess: true,
		KeyRateLimits: []keyward.RateLimit{rate("hourly", 100, time.Hour, 0)},
		KeyQuota:      &keyward.Quota{Limit: 3, Period: keyward.QuotaDay}})
	f.movePlan("metered")
	key, _ := f.createKey(nil)
	var d limit.Decision
	for i := range 3 {
		if r := f.verifyLimited(key, &d); !r.Valid() {
			t.Fatalf("request %d: %s %s", i+1, r.Code, r.Detail)
		}
	}
	r := f.verifyLimited(key, &d)
	tokyo, _ := time.LoadLocation(zone)
	now := f.clock.Now().In(tokyo)
	midnight := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, tokyo)
	if r.Code != keyward.CodeQuotaExceeded || r.RetryAfter != midnight.Sub(now) || !strings.Contains(r.Detail, "3 requests per day") {
		t.Fatalf("the 4th request of the day: %s (retry after %v, want %v) %q", r.Code, r.RetryAfter, midnight.Sub(now), r.Detail)
	}
	// The refused requests gave back their count to the hourly rate
	// limit, and its headers say so.
	if got := d.States[0].Remaining; got != 97 {
		t.Errorf("the hourly limit after 3 allowed and 1 refused: %d remaining, want 97", got)
	}
	if r := f.verifyLimited(key, &d); r.Code != keyward.CodeQuotaExceeded || d.States[0].Remaining != 97 {
		t.Errorf("another refused request: %s, hourly at %d; want 97 again", r.Code, d.States[0].Remaining)
	}
	// At midnight in Tokyo, a new day.
	f.clock.Advance(midnight.Sub(now))
	if r := f.verifyLimited(key, &d); !r.Valid() {
		t.Fatalf("the first request of the next day: %s %s", r.Code, r.Detail)
	}

	// Credits: exact, refused when spent, with no retry when not refilled.
	metered, _ := f.createKey(func(k *keyward.Key) {
		k.Quota = &keyward.Quota{Limit: 1000, Period: keyward.QuotaMonth}
		k.Credits = &keyward.Credits{Remaining: 2}
	})
	for i := range 2 {
		if r := f.verify(metered); !r.Valid() {
			t.Fatalf("credit %d: %s %s", i+1, r.Code, r.Detail)
		}
	}
	if r := f.verify(metered); r.Code != keyward.CodeQuotaExceeded || r.RetryAfter != 0 || !strings.Contains(r.Detail, "no credits left") {
		t.Fatalf("with no credits left: %s (retry after %v) %q", r.Code, r.RetryAfter, r.Detail)
	}
	// The store is down: a metered key is refused, never let through
	// uncounted.
	f.spy.failSpend.Store(true)
	if r := f.verify(key); r.Code != keyward.CodeStorageUnavailable {
		t.Fatalf("a metered key with the store down: %s", r.Code)
	}
}

// TestRouteCost: a route's cost is what a request of it takes from a
// key's credits; the default route and a route without one cost 1.
func TestRouteCost(t *testing.T) {
	f := newFixture(t, verify.Options{})
	f.refresh()
	pol := parsePolicy(t, "default: authenticated\nroutes:\n  - match: POST /v1/reports\n    cost: 5\n")
	key, _ := f.createKey(func(k *keyward.Key) { k.Credits = &keyward.Credits{Remaining: 12} })
	report := func() verify.Result {
		return f.v.Verify(context.Background(), verify.Request{Key: key, Method: "POST", Target: "/v1/reports", Policy: pol})
	}
	for i := range 2 {
		if r := report(); !r.Valid() || r.Route.Cost != 5 {
			t.Fatalf("report %d: %s %s", i+1, r.Code, r.Detail)
		}
	}
	if r := report(); r.Code != keyward.CodeQuotaExceeded {
		t.Fatalf("a report of 5 with 2 credits left: %s", r.Code)
	}
	for i := range 2 {
		if r := f.v.Verify(context.Background(), verify.Request{Key: key, Method: "GET", Target: "/v1/other", Policy: pol}); !r.Valid() {
			t.Fatalf("request %d of the default route with 2 credits left: %s", i+1, r.Code)
		}
	}
	if r := f.verify(key); r.Code != keyward.CodeQuotaExceeded {
		t.Fatalf("with no credits left: %s", r.Code)
	}
}
