package verify

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/limit"
)

// rateLimitsOf returns the rate limits that apply to key k of tenant t on
// plan p: the key's own (else its plan's per-key ones), then the tenant's
// own (else its plan's tenant-wide ones).
func rateLimitsOf(k *keyward.Key, t *keyward.Tenant, p *keyward.Plan) (key, tenant []keyward.RateLimit) {
	key, tenant = k.RateLimits, t.RateLimits
	if key == nil {
		key = p.KeyRateLimits
	}
	if tenant == nil {
		tenant = p.TenantRateLimits
	}
	return key, tenant
}

// bindRateLimits binds the rate limits of key k in a (its own and its
// tenant's, as rateLimitsOf gives them) to the verifier's limiter: nil
// when there are none. Each bucket is named by the key's or the tenant's
// id and the rate's name; a tenant-wide rate shows in the headers as
// tenant-<name>, apart from a key's rate of the same name.
func (v *Verifier) bindRateLimits(k *keyward.Key, a *Access) (limit.Set, error) {
	key, tenant := rateLimitsOf(k, a.Tenant, a.Plan)
	if len(key)+len(tenant) == 0 {
		return nil, nil
	}
	buckets := make([]limit.Bucket, 0, len(key)+len(tenant))
	for _, r := range key {
		buckets = append(buckets, limit.Bucket{Key: "k:" + k.ID + ":" + r.Name, Rate: rateOf(r.Name, r)})
	}
	for _, r := range tenant {
		buckets = append(buckets, limit.Bucket{Key: "t:" + k.TenantID + ":" + r.Name, Rate: rateOf("tenant-"+r.Name, r)})
	}
	set, err := v.limiter.Bind(buckets)
	if err != nil {
		return nil, fmt.Errorf("the rate limits of key %s: %w", k.ID, err)
	}
	return set, nil
}

// rateOf is r as the limiter takes it, named name.
func rateOf(name string, r keyward.RateLimit) limit.Rate {
	return limit.Rate{Name: name, Limit: r.Limit, Period: time.Duration(r.Period), Burst: r.Burst}
}

// decisions keeps the rate-limit decisions of verifications whose caller
// gave none to fill (Request.RateLimit): a Decision passed to a Set
// through its interface would otherwise be allocated for each one.
var decisions = sync.Pool{New: func() any { return new(limit.Decision) }}

// checkLimits is step 11 of Verify: the request passes every rate limit
// of the key and its tenant (a.limits), and is counted by them. The
// decision is written into req.RateLimit when the caller gave one, and r
// points to it. It returns the code and detail of a refusal, with
// r.RetryAfter set, or "" and "". Rate limits that could not be bound
// refuse every request: a key is never let through unlimited by mistake.
func (v *Verifier) checkLimits(ctx context.Context, a *Access, req *Request, r *Result) (keyward.Code, string) {
	if a.limitsErr != nil {
		v.log.ErrorContext(ctx, "verify: a key's rate limits cannot be used", "key_id", r.Key.ID, "err", a.limitsErr)
		return keyward.CodeInternal, detailBadLimits
	}
	d := req.RateLimit
	if d == nil {
		d = decisions.Get().(*limit.Decision)
		defer decisions.Put(d)
	}
	if err := a.limits.Allow(ctx, v.limitNow(), 1, d); err != nil {
		// A limiter that cannot decide (Redis without a fallback) lets no
		// request through unchecked.
		v.log.WarnContext(ctx, "verify: could not check a key's rate limits", "key_id", r.Key.ID, "err", err)
		return keyward.CodeStorageUnavailable, detailLimiter
	}
	if req.RateLimit != nil {
		r.RateLimit = d
	}
	if d.Allowed {
		return "", ""
	}
	r.RetryAfter = d.RetryAfter
	return keyward.CodeRateLimited, rateLimitedDetail(d)
}

// limitNow is the time rate limits are decided at: the coarse cache
// clock's (10 ms), unless a clock was injected. Reading the precise clock
// would cost a verification half of what its rate limits cost; a clock up
// to 10 ms behind only lets a bucket refill up to 10 ms late, so that it
// never allows more than its rate.
func (v *Verifier) limitNow() time.Time {
	if v.clockInjected {
		return v.now()
	}
	return time.Unix(0, v.cacheClock.NowNano())
}

// detailBadLimits is the detail of a verification whose rate limits
// cannot be used.
const detailBadLimits = "This key's rate limits cannot be applied, so it is refused; contact support."

// detailLimiter is the detail of a verification whose rate limits could
// not be checked.
const detailLimiter = "Could not check this key's rate limits because the rate limiter is unavailable; retry shortly."

// rateLimitedDetail is the detail of a rate_limited refusal: which limit,
// and when to retry.
func rateLimitedDetail(d *limit.Decision) string {
	s := d.States[d.Tightest]
	return fmt.Sprintf("Too many requests with this key: its rate limit %q allows %d requests per %s. Retry in %d seconds (Retry-After), and pace requests by the RateLimit headers.",
		s.Name, s.Limit, s.Window, d.RetryAfterSeconds())
}
