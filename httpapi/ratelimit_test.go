package httpapi

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// TestRateLimited: a key's rate limits through forward-auth, /v1/whoami
// and /v1/verify. Every answer carries RateLimit-Policy, RateLimit and
// X-RateLimit-*; a refused one is 429 rate_limited with Retry-After and a
// detail naming the limit. All or nothing over two limits: a request
// refused by one takes nothing from the other, and a request refused
// before the limits (403) counts against none.
func TestRateLimited(t *testing.T) { fronts(t, testRateLimited) }

func testRateLimited(t *testing.T, front harnessOption) {
	h := newHarness(t, front)
	h.tenant("acme")
	key, _ := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "limited", "permissions": []string{"contacts:read"},
		"rate_limits": []map[string]any{
			{"name": "burst", "limit": 2, "period": "1m"},
			{"name": "hourly", "limit": 10, "period": "1h"},
		}})

	wantHeaders := func(what string, a answer, remaining string) {
		t.Helper()
		if got := a.header.Get("RateLimit-Policy"); got != `"burst";q=2;w=60, "hourly";q=10;w=3600` {
			t.Errorf("%s: RateLimit-Policy %q", what, got)
		}
		if got := a.header.Get("RateLimit"); !strings.HasPrefix(got, `"burst";r=`+remaining+`;t=`) || !strings.Contains(got, `, "hourly";r=`) {
			t.Errorf("%s: RateLimit %q, want burst with %s remaining", what, got, remaining)
		}
		if a.header.Get("X-RateLimit-Limit") != "2" || a.header.Get("X-RateLimit-Remaining") != remaining || a.header.Get("X-RateLimit-Reset") == "" {
			t.Errorf("%s: X-RateLimit-* %q %q %q", what, a.header.Get("X-RateLimit-Limit"), a.header.Get("X-RateLimit-Remaining"), a.header.Get("X-RateLimit-Reset"))
		}
	}
	a := h.must(200, "GET", "/v1/forward-auth?permissions=contacts:read", key, nil)
	wantHeaders("the first request", a, "1")
	if a.header.Get("Retry-After") != "" {
		t.Errorf("an allowed answer has Retry-After %q", a.header.Get("Retry-After"))
	}
	// Refused before the limits: counts against none.
	a = h.call("GET", "/v1/forward-auth?permissions=contacts:write", key, nil)
	problemOf(t, a, 403, keyward.CodeInsufficientPermissions)
	if a.header.Get("RateLimit") != "" {
		t.Errorf("a 403 carries RateLimit %q", a.header.Get("RateLimit"))
	}
	a = h.must(200, "GET", "/v1/whoami", key, nil)
	wantHeaders("whoami", a, "0")

	a = h.call("GET", "/v1/forward-auth?permissions=contacts:read", key, nil)
	d := problemOf(t, a, 429, keyward.CodeRateLimited)
	wantHeaders("the refused request", a, "0")
	retry, err := strconv.Atoi(a.header.Get("Retry-After"))
	if err != nil || retry < 1 || retry > 30 {
		t.Errorf("Retry-After %q, want 1 to 30 seconds (burst refills one every 30 s)", a.header.Get("Retry-After"))
	}
	if !strings.Contains(d, `"burst"`) || !strings.Contains(d, "Retry in") {
		t.Errorf("detail %q", d)
	}
	problemOf(t, h.call("GET", "/v1/whoami", key, nil), 429, keyward.CodeRateLimited)
	// nginx's auth_request, then its error_page: the second ask refuses
	// again without counting, and answers 429 with the headers.
	if a := h.call("GET", "/v1/forward-auth?permissions=contacts:read&nginx=auth_request", key, nil); a.status != 401 {
		t.Errorf("auth_request: %d, want 401", a.status)
	}
	a = h.call("GET", "/v1/forward-auth?permissions=contacts:read&nginx=error_page", key, nil)
	problemOf(t, a, 429, keyward.CodeRateLimited)
	wantHeaders("error_page", a, "0")

	// All or nothing: the refused requests took nothing from hourly, which
	// counted the two allowed ones only.
	v := h.must(200, "POST", "/v1/verify", h.root, map[string]any{"key": key, "permissions": []string{"contacts:read"}})
	if v.body["valid"] != false || v.str("code") != string(keyward.CodeRateLimited) || v.body["status"] != float64(429) {
		t.Fatalf("/v1/verify of a limited key: %s", v.raw)
	}
	rl, _ := v.body["ratelimit"].(map[string]any)
	limits, _ := rl["limits"].([]any)
	if len(limits) != 2 {
		t.Fatalf("/v1/verify ratelimit: %v", v.body["ratelimit"])
	}
	hourly := limits[1].(map[string]any)
	if hourly["name"] != "hourly" || hourly["remaining"] != float64(8) || rl["remaining"] != float64(0) || rl["limit"] != float64(2) ||
		!strings.Contains(rl["policy"].(string), `"hourly";q=10;w=3600`) || v.body["retry_after"] == nil {
		t.Errorf("/v1/verify ratelimit: %v, retry_after %v; want hourly with 8 remaining", rl, v.body["retry_after"])
	}
	// A key without limits has none, and no headers.
	free, _ := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "free"})
	a = h.must(200, "GET", "/v1/forward-auth", free, nil)
	if a.header.Get("RateLimit") != "" || a.header.Get("X-RateLimit-Limit") != "" {
		t.Errorf("a key without limits: RateLimit %q", a.header.Get("RateLimit"))
	}
	v = h.must(200, "POST", "/v1/verify", h.root, map[string]any{"key": free})
	if v.body["valid"] != true || v.body["ratelimit"] != nil {
		t.Errorf("/v1/verify of a key without limits: %s", v.raw)
	}
}

// TestQuotaExceeded: a key past its quota is 429 quota_exceeded with
// Retry-After until the period resets, through forward-auth and
// /v1/verify, on SQLite and PostgreSQL.
func TestQuotaExceeded(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	key, _ := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "quota", "quota": map[string]any{"limit": 2, "period": "month"}})
	h.must(200, "GET", "/v1/forward-auth", key, nil)
	h.must(200, "GET", "/v1/forward-auth", key, nil)
	a := h.call("GET", "/v1/forward-auth", key, nil)
	d := problemOf(t, a, 429, keyward.CodeQuotaExceeded)
	if retry, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || retry < 1 || retry > 31*24*3600 {
		t.Errorf("Retry-After %q, want the seconds until next month", a.header.Get("Retry-After"))
	}
	if !strings.Contains(d, "2 requests per month") {
		t.Errorf("detail %q", d)
	}
	v := h.must(200, "POST", "/v1/verify", h.root, map[string]any{"key": key})
	if v.str("code") != string(keyward.CodeQuotaExceeded) || v.body["status"] != float64(429) || v.body["retry_after"] == nil {
		t.Errorf("/v1/verify past the quota: %s", v.raw)
	}
}

// TestUsage: what limits a key and a tenant now, readable by the tenant's
// own keys: the rate limits in effect and whose they are, the quota and
// how much of it this period used, the credits left.
func TestUsage(t *testing.T) {
	h := newHarness(t)
	h.must(201, "POST", "/v1/plans", h.root, map[string]any{"name": "pro",
		"key_rate_limits": []map[string]any{{"name": "burst", "limit": 10, "period": "1s"}},
		"key_quota":       map[string]any{"limit": 100, "period": "month"},
		"tenant_quota":    map[string]any{"limit": 1000, "period": "day"}})
	h.must(201, "POST", "/v1/tenants", h.root, map[string]any{"slug": "acme", "plan": "pro"})
	h.must(200, "PATCH", "/v1/tenants/acme", h.root, map[string]any{"rate_limits": []any{}})
	key, id := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "metered", "permissions": []string{keyward.PermManageKeys},
		"credits": map[string]any{"remaining": 50}})
	for range 3 {
		h.must(200, "GET", "/v1/forward-auth", key, nil)
	}
	// The usage call counts too: it authenticates the same key.
	u := h.must(200, "GET", "/v1/api-keys/"+id+"/usage", key, nil).data()
	k, tn := u["key"].(map[string]any), u["tenant"].(map[string]any)
	kq, tq := k["quota"].(map[string]any), tn["quota"].(map[string]any)
	if k["rate_limits_from"] != "plan" || len(k["rate_limits"].([]any)) != 1 || kq["used"] != float64(4) || kq["limit"] != float64(100) || kq["from"] != "plan" {
		t.Errorf("the key's limits: %v", k)
	}
	if tn["rate_limits_from"] != "tenant" || len(tn["rate_limits"].([]any)) != 0 || tq["used"] != float64(4) || tq["period"] != "day" || tq["resets_at"] == nil {
		t.Errorf("the tenant's limits: %v", tn)
	}
	if c := u["credits"].(map[string]any); c["remaining"] != float64(46) {
		t.Errorf("credits: %v, want 46 left (3 forward-auth requests and the usage call)", c)
	}
	tu := h.must(200, "GET", "/v1/tenants/acme/usage", h.root, nil).data()
	if tu["time_zone"] != "UTC" || tu["quota"].(map[string]any)["used"] != float64(4) {
		t.Errorf("the tenant's usage: %v", tu)
	}
}

// TestRotationKeepsLimits: a successor keeps its predecessor's own rate
// limits and quota, and takes its credits; during the grace period both
// keys spend from the same credits, so a rotation neither sheds a limit
// nor doubles the credits.
func TestRotationKeepsLimits(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	old, id := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "metered",
		"rate_limits": []map[string]any{{"name": "burst", "limit": 100, "period": "1s"}},
		"credits":     map[string]any{"remaining": 5}})
	h.must(200, "GET", "/v1/forward-auth", old, nil)
	rot := h.must(201, "POST", "/v1/api-keys/"+id+"/rotate", h.root, map[string]any{"grace_period": "1h"})
	d := rot.data()
	next := d["key"].(string)
	if d["credits"].(map[string]any)["remaining"] != float64(4) || len(d["rate_limits"].([]any)) != 1 {
		t.Fatalf("the successor: credits %v, rate limits %v; want 4 left and the burst limit", d["credits"], d["rate_limits"])
	}
	allowed := 0
	for i := range 8 {
		key := old
		if i%2 == 1 {
			key = next
		}
		a := h.call("GET", "/v1/forward-auth", key, nil)
		switch {
		case a.status == 200:
			allowed++
		case a.status == 429 && a.str("code") == string(keyward.CodeQuotaExceeded):
		default:
			t.Fatalf("request %d: %d %s", i, a.status, a.raw)
		}
	}
	if allowed != 4 {
		t.Errorf("the old key and its successor together were allowed %d requests on 4 credits, want 4", allowed)
	}
}

// TestRotationChainGrace: a key rotated twice whose grace period has not
// ended works, names the newest key of its chain in rotated_to, spends from
// that key's credits and shares its per-key rate-limit bucket; when its
// grace period ends it is refused with a detail that names the newest key.
func TestRotationChainGrace(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	a, aid := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "metered",
		"rate_limits": []map[string]any{{"name": "hourly", "limit": 4, "period": "1h"}},
		"credits":     map[string]any{"remaining": 10}})
	credits := func(id string) any {
		t.Helper()
		return h.must(200, "GET", "/v1/api-keys/"+id+"/usage", h.root, nil).data()["credits"].(map[string]any)["remaining"]
	}
	// A is used before each rotation, so that the verifier holds it: the
	// rotations must reach the cache.
	h.must(200, "GET", "/v1/forward-auth", a, nil)
	_, bid := h.rotate(aid)
	h.must(200, "GET", "/v1/forward-auth", a, nil)
	h.clock.Advance(time.Minute)
	c, cid := h.rotate(bid)
	for _, id := range []string{aid, bid} {
		if got := h.must(200, "GET", "/v1/api-keys/"+id, h.root, nil).data()["rotated_to"]; got != cid {
			t.Errorf("key %s: rotated_to %v, want the newest key %s", id, got, cid)
		}
	}
	if got := credits(cid); got != float64(8) {
		t.Fatalf("C's credits after two requests: %v, want 8", got)
	}

	// C's bucket is fresh and holds 4: A and C together get 4, then both
	// are refused by the rate limit (not by credits).
	for i, want := range []int{200, 200, 200, 200, 429, 429} {
		key, name := a, "A"
		if i%2 == 1 {
			key, name = c, "C"
		}
		got := h.call("GET", "/v1/forward-auth", key, nil)
		if got.status != want || want == 429 && got.str("code") != string(keyward.CodeRateLimited) {
			t.Fatalf("request %d (key %s): %d %s; want %d (one bucket of 4 for the chain)", i, name, got.status, got.raw, want)
		}
	}
	if got := credits(cid); got != float64(4) {
		t.Errorf("C's credits after 4 more allowed requests through A and C: %v, want 4", got)
	}
	for _, id := range []string{aid, bid} {
		if got := credits(id); got != float64(0) {
			t.Errorf("key %s keeps credits %v of its own, want 0", id, got)
		}
	}

	// Past A's grace period (and B's), A is refused, pointed to C.
	h.clock.Advance(time.Hour)
	d := problemOf(t, h.call("GET", "/v1/forward-auth", a, nil), 401, keyward.CodeExpiredAPIKey)
	if !strings.Contains(d, "replaced by key "+cid) {
		t.Errorf("A's detail %q does not name the newest key %s", d, cid)
	}
}

// TestRotationChain: keys rotated twice, all three in their grace period,
// share one set of credits and one set of per-key rate limits; and limits
// on the default plan never bind the operator's root keys.
func TestRotationChain(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	a, id := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "metered",
		"rate_limits": []map[string]any{{"name": "hourly", "limit": 4, "period": "1h"}},
		"credits":     map[string]any{"remaining": 6}})
	b, bid := h.rotate(id)
	c, _ := h.rotate(bid)
	allowed := 0
	for i := range 9 {
		a := h.call("GET", "/v1/forward-auth", []string{a, b, c}[i%3], nil)
		if a.status == 200 {
			allowed++
		} else if a.status != 429 {
			t.Fatalf("request %d: %d %s", i, a.status, a.raw)
		}
	}
	if allowed != 4 {
		t.Errorf("three keys of one rotation chain were allowed %d requests on a limit of 4 an hour (and 6 credits), want 4", allowed)
	}

	h.must(200, "PATCH", "/v1/plans/default", h.root, map[string]any{"key_quota": map[string]any{"limit": 1, "period": "day"},
		"key_rate_limits": []map[string]any{{"name": "hourly", "limit": 1, "period": "1h"}}})
	for range 3 {
		h.must(200, "GET", "/v1/whoami", h.root, nil)
	}
}

// TestNotCountedTwice: what is asked about twice, or refused before it
// is served, is counted once or not at all. nginx's error_page ask, about
// a request its auth_request ask refused (and counted), checks again
// without counting: no rate-limit request, credit or quota is taken by it,
// even when the limits have refilled in between (it then answers 409,
// passed now). On the management API, a request refused for its role
// (403) costs nothing.
func TestNotCountedTwice(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	key, id := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "limited",
		"rate_limits": []map[string]any{{"name": "minute", "limit": 1, "period": "1m"}},
		"credits":     map[string]any{"remaining": 3},
		"quota":       map[string]any{"limit": 100, "period": "day"}})
	usage := func() (credits, quota float64) {
		t.Helper()
		u := h.must(200, "GET", "/v1/api-keys/"+id+"/usage", h.root, nil).data()
		c, _ := u["credits"].(map[string]any)
		k, _ := u["key"].(map[string]any)
		q, _ := k["quota"].(map[string]any)
		if c == nil || q == nil {
			t.Fatalf("usage: %v", u)
		}
		return c["remaining"].(float64), q["used"].(float64)
	}
	const ask, again = "/v1/forward-auth?nginx=auth_request", "/v1/forward-auth?nginx=error_page"
	h.must(200, "GET", ask, key, nil)
	if a := h.call("GET", ask, key, nil); a.status != 401 {
		t.Fatalf("auth_request past the rate limit: %d, want 401", a.status)
	}
	for range 3 {
		a := h.call("GET", again, key, nil)
		problemOf(t, a, 429, keyward.CodeRateLimited)
		if a.header.Get("X-RateLimit-Remaining") != "0" || a.header.Get("Retry-After") == "" {
			t.Errorf("error_page: X-RateLimit-Remaining %q, Retry-After %q", a.header.Get("X-RateLimit-Remaining"), a.header.Get("Retry-After"))
		}
	}
	// The limit refills before nginx asks again: the answer says so, and
	// takes neither the refilled request nor a credit.
	h.clock.Advance(time.Minute)
	problemOf(t, h.call("GET", again, key, nil), 409, keyward.CodeConflict)
	if c, q := usage(); c != 2 || q != 1 {
		t.Fatalf("after one request served and four asked again: %v credits, quota used %v; want 2 and 1", c, q)
	}
	h.must(200, "GET", ask, key, nil) // the refilled request is still there
	h.clock.Advance(time.Minute)
	h.must(200, "GET", ask, key, nil)
	h.clock.Advance(time.Minute)
	if a := h.call("GET", ask, key, nil); a.status != 401 {
		t.Fatalf("auth_request with no credits left: %d, want 401", a.status)
	}
	for range 2 {
		problemOf(t, h.call("GET", again, key, nil), 429, keyward.CodeQuotaExceeded)
	}
	if c, q := usage(); c != 0 || q != 3 {
		t.Fatalf("after three requests served: %v credits, quota used %v; want 0 and 3", c, q)
	}

	// The management API: refused for its role, a request is not counted.
	h.clock.Advance(time.Minute)
	user, _ := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "no manager",
		"rate_limits": []map[string]any{{"name": "minute", "limit": 2, "period": "1m"}}})
	for range 5 {
		a := h.call("GET", "/v1/api-keys", user, nil)
		problemOf(t, a, 403, keyward.CodeInsufficientPermissions)
		if a.header.Get("RateLimit") != "" {
			t.Errorf("a 403 for the role carries RateLimit %q: it was counted", a.header.Get("RateLimit"))
		}
	}
	if a := h.must(200, "GET", "/v1/whoami", user, nil); a.header.Get("X-RateLimit-Remaining") != "1" {
		t.Errorf("whoami after five 403s: X-RateLimit-Remaining %q, want 1 (the 403s took nothing)", a.header.Get("X-RateLimit-Remaining"))
	}
	h.must(200, "GET", "/v1/whoami", user, nil)
	problemOf(t, h.call("GET", "/v1/whoami", user, nil), 429, keyward.CodeRateLimited)
}

// rotate rotates key id with a grace period of an hour, and returns the
// successor's key and id.
func (h *harness) rotate(id string) (key, newID string) {
	h.t.Helper()
	d := h.must(201, "POST", "/v1/api-keys/"+id+"/rotate", h.root, map[string]any{"grace_period": "1h"}).data()
	return d["key"].(string), d["id"].(string)
}
