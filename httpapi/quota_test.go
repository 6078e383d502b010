package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// The harness's clock starts at 2026-11-24 12:00 UTC. The tests below
// count from it to the calendar boundaries of their tenants' time zones.
const (
	// untilNewYorkMidnight is from the start to 2026-11-25 00:00 in New
	// York (EST, UTC-5), 05:00 UTC: 17 hours. Midnight in UTC comes 12
	// hours earlier, so a day counted in UTC would reset too soon.
	untilNewYorkMidnight = 17 * time.Hour
	newYorkMidnight      = "2026-11-25T05:00:00Z"
	// untilTokyoDecember is from the start to 2026-12-01 00:00 in Tokyo
	// (UTC+9), 2026-11-30 15:00 UTC: 6 days and 3 hours. It is still
	// November in UTC then, so a month counted in UTC would not reset.
	untilTokyoDecember = 6*24*time.Hour + 3*time.Hour
	tokyoDecember      = "2026-11-30T15:00:00Z"
)

// zonedTenant creates tenant slug in time zone tz, with the tenant-wide
// quota quota unless it is nil, and returns its id.
func (h *harness) zonedTenant(slug, tz string, quota map[string]any) string {
	h.t.Helper()
	id := h.tenant(slug)
	body := map[string]any{"time_zone": tz}
	if quota != nil {
		body["quota"] = quota
	}
	h.must(http.StatusOK, "PATCH", "/v1/tenants/"+id, h.root, body)
	return id
}

// wantQuotaExceeded checks that a is a 429 quota_exceeded whose
// Retry-After is exactly retry, and whose detail holds each of want (the
// reset time among them).
func wantQuotaExceeded(t *testing.T, what string, a answer, retry time.Duration, want ...string) {
	t.Helper()
	d := problemOf(t, a, http.StatusTooManyRequests, keyward.CodeQuotaExceeded)
	if got, seconds := a.header.Get("Retry-After"), strconv.Itoa(int(retry/time.Second)); got != seconds {
		t.Errorf("%s: Retry-After %q, want %s (the seconds to the reset)", what, got, seconds)
	}
	for _, w := range want {
		if !strings.Contains(d, w) {
			t.Errorf("%s: detail %q does not say %q", what, d, w)
		}
	}
}

// wantVerifyRefused checks that v, an answer of /v1/verify, refuses the
// key 429 quota_exceeded with retry_after retry and a detail holding each
// of want. /v1/verify answers 200 either way; the outcome is in its body.
func wantVerifyRefused(t *testing.T, what string, v answer, retry time.Duration, want ...string) {
	t.Helper()
	if v.body["valid"] != false || v.str("code") != string(keyward.CodeQuotaExceeded) || v.body["status"] != float64(http.StatusTooManyRequests) ||
		v.body["retry_after"] != float64(retry/time.Second) {
		t.Errorf("%s: /v1/verify %s, want quota_exceeded, status 429, retry_after %d", what, v.raw, retry/time.Second)
	}
	for _, w := range want {
		if !strings.Contains(v.str("detail"), w) {
			t.Errorf("%s: /v1/verify detail %q does not say %q", what, v.str("detail"), w)
		}
	}
}

// wantRefused checks that key is refused quota_exceeded through
// forward-auth, /v1/whoami and /v1/verify alike, each saying to retry in
// left and with a detail holding each of want.
func wantRefused(t *testing.T, h *harness, what, key string, left time.Duration, want ...string) {
	t.Helper()
	wantQuotaExceeded(t, what+": forward-auth", h.call("GET", "/v1/forward-auth", key, nil), left, want...)
	wantQuotaExceeded(t, what+": whoami", h.call("GET", "/v1/whoami", key, nil), left, want...)
	wantVerifyRefused(t, what, h.must(http.StatusOK, "POST", "/v1/verify", h.root, map[string]any{"key": key}), left, want...)
}

// wantQuotaUsage checks a quota of a usage answer (the "quota" of
// GET /v1/api-keys/{id}/usage's key or tenant part, or of
// GET /v1/tenants/{id}/usage): its period, use and reset time.
func wantQuotaUsage(t *testing.T, what string, quota any, period string, used int, resets string) {
	t.Helper()
	q, _ := quota.(map[string]any)
	if q["current_period"] != period || q["used"] != float64(used) || q["resets_at"] != resets {
		t.Errorf("%s: quota %v, want period %s, %d used, reset at %s", what, quota, period, used, resets)
	}
}

// TestQuotaResetsAtLocalMidnight: a key's quota of 3 a day, of a tenant in
// New York, is counted by forward-auth, /v1/verify and /v1/whoami alike.
// The 4th request of the day is 429 quota_exceeded, with Retry-After the
// seconds to midnight in New York and a detail naming that time; one
// second before midnight it is still refused (Retry-After: 1); at midnight
// the quota counts afresh, and the key's usage shows the new day.
func TestQuotaResetsAtLocalMidnight(t *testing.T) {
	h := newHarness(t)
	h.zonedTenant("acme", "America/New_York", nil)
	key, id := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "daily", "quota": map[string]any{"limit": 3, "period": "day"}})

	// useDay spends the day's 3 requests, one on each surface, and checks
	// that further ones are refused, to be retried in left, when the quota
	// resets (at resets), and that the key's usage says so.
	useDay := func(day string, left time.Duration, resets string) {
		t.Helper()
		h.must(http.StatusOK, "GET", "/v1/forward-auth", key, nil)
		if v := h.must(http.StatusOK, "POST", "/v1/verify", h.root, map[string]any{"key": key}); v.body["valid"] != true {
			t.Errorf("%s: the 2nd request, through /v1/verify: %s", day, v.raw)
		}
		h.must(http.StatusOK, "GET", "/v1/whoami", key, nil)
		wantRefused(t, h, day, key, left, "3 requests per day", resets)
		u := h.must(http.StatusOK, "GET", "/v1/api-keys/"+id+"/usage", h.root, nil).data()
		wantQuotaUsage(t, day+": the key's usage", u["key"].(map[string]any)["quota"], day, 3, resets)
	}
	useDay("2026-11-24", untilNewYorkMidnight, newYorkMidnight)

	// 04:59:59 UTC is the next day in UTC, but not yet in New York.
	h.clock.Advance(untilNewYorkMidnight - time.Second)
	wantRefused(t, h, "one second before midnight", key, time.Second, newYorkMidnight)

	// Midnight itself starts the new day, which counts afresh and ends at
	// the next midnight, 24 hours on.
	h.clock.Advance(time.Second)
	useDay("2026-11-25", 24*time.Hour, "2026-11-26T05:00:00Z")
}

// TestQuotaResetsAtLocalMonth: a tenant's quota of 2 a month, in Tokyo,
// is shared by its keys; it is used up until the first of the month in
// Tokyo (still November in UTC), and counts afresh from then on, as the
// tenant's usage shows.
func TestQuotaResetsAtLocalMonth(t *testing.T) {
	h := newHarness(t)
	tenant := h.zonedTenant("acme", "Asia/Tokyo", map[string]any{"limit": 2, "period": "month"})
	a, _ := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "a"})
	b, bid := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "b"})

	h.must(http.StatusOK, "GET", "/v1/forward-auth", a, nil)
	h.must(http.StatusOK, "GET", "/v1/forward-auth", b, nil)
	wantRefused(t, h, "November", a, untilTokyoDecember, "this account", "2 requests per month", tokyoDecember)
	wantQuotaUsage(t, "November: the tenant's usage", h.must(http.StatusOK, "GET", "/v1/tenants/"+tenant+"/usage", h.root, nil).data()["quota"],
		"2026-11", 2, tokyoDecember)

	h.clock.Advance(untilTokyoDecember - time.Second)
	wantRefused(t, h, "one second before December", b, time.Second, tokyoDecember)

	h.clock.Advance(time.Second)
	h.must(http.StatusOK, "GET", "/v1/forward-auth", b, nil)
	u := h.must(http.StatusOK, "GET", "/v1/api-keys/"+bid+"/usage", h.root, nil).data()
	// December in Tokyo has 31 days: it ends at 2027-01-01 00:00 JST.
	wantQuotaUsage(t, "December: the tenant's usage seen from key b", u["tenant"].(map[string]any)["quota"], "2026-12", 1, "2026-12-31T15:00:00Z")
	h.must(http.StatusOK, "GET", "/v1/whoami", a, nil)
	wantRefused(t, h, "December", a, 31*24*time.Hour, "2026-12-31T15:00:00Z")
}

// TestCreditsRefillAtLocalMidnight: a key's credits, refilled to 2 each
// day in New York, are spent; the next request is 429 quota_exceeded
// with Retry-After the seconds to midnight in New York and a detail
// naming the refill; one second before midnight it is still refused; at
// each midnight the credits are put back to 2, not added to what is left.
func TestCreditsRefillAtLocalMidnight(t *testing.T) {
	h := newHarness(t)
	h.zonedTenant("acme", "America/New_York", nil)
	key, id := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "metered",
		"credits": map[string]any{"remaining": 3, "refill": map[string]any{"amount": 2, "interval": "day"}}})
	credits := func() any {
		t.Helper()
		return h.must(http.StatusOK, "GET", "/v1/api-keys/"+id+"/usage", h.root, nil).data()["credits"].(map[string]any)["remaining"]
	}

	for range 3 {
		h.must(http.StatusOK, "GET", "/v1/forward-auth", key, nil)
	}
	wantRefused(t, h, "no credits left", key, untilNewYorkMidnight, "refilled to 2", newYorkMidnight)
	if got := credits(); got != float64(0) {
		t.Errorf("credits left after 3 requests on 3: %v, want 0", got)
	}

	h.clock.Advance(untilNewYorkMidnight - time.Second)
	wantRefused(t, h, "one second before midnight", key, time.Second, newYorkMidnight)

	// At midnight the credits are refilled to 2, and one is left after a
	// request. At the next midnight they are refilled to 2 again, not
	// given 2 more: one is left after a request again.
	h.clock.Advance(time.Second)
	for _, day := range []string{"2026-11-25", "2026-11-26"} {
		h.must(http.StatusOK, "GET", "/v1/forward-auth", key, nil)
		if got := credits(); got != float64(1) {
			t.Errorf("%s: credits left after the refill to 2 and one request: %v, want 1", day, got)
		}
		h.clock.Advance(24 * time.Hour)
	}
	h.must(http.StatusOK, "GET", "/v1/whoami", key, nil)
	h.must(http.StatusOK, "GET", "/v1/whoami", key, nil)
	wantRefused(t, h, "2026-11-27: the refilled credits spent", key, 24*time.Hour, "refilled to 2", "2026-11-28T05:00:00Z")
}
