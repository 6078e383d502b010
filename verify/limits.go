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

// quotasOf returns the quotas that key k of tenant t on plan p counts
// against: the key's own (else its plan's per-key one), and the tenant's
// own (else its plan's tenant-wide one).
//
// The keys of the system tenant (the operator's root keys) are never
// limited: it is always on the default plan, and limits set on that plan
// for its customers must not lock the operator out.
func quotasOf(k *keyward.Key, t *keyward.Tenant, p *keyward.Plan) (key, tenant *keyward.Quota) {
	if k.TenantID == keyward.SystemTenantID {
		return nil, nil
	}
	key, tenant = k.Quota, t.Quota
	if key == nil {
		key = p.KeyQuota
	}
	if tenant == nil {
		tenant = p.TenantQuota
	}
	return key, tenant
}

// bindRateLimits binds the rate limits of key k in a (its own and its
// tenant's, as rateLimitsOf gives them) to the verifier's limiter: nil
// when there are none. Each bucket is named by the key's or the tenant's
// id and the rate's name; a tenant-wide rate shows in the headers as
// tenant-<name>, apart from a key's rate of the same name.
func (v *Verifier) bindRateLimits(k *keyward.Key, a *Access) (limit.Set, error) {
	if k.TenantID == keyward.SystemTenantID {
		return nil, nil // see quotasOf
	}
	key, tenant := rateLimitsOf(k, a.Tenant, a.Plan)
	if len(key)+len(tenant) == 0 {
		return nil, nil
	}
	id := meterID(k)
	buckets := make([]limit.Bucket, 0, len(key)+len(tenant))
	for _, r := range key {
		buckets = append(buckets, limit.Bucket{Key: "k:" + id + ":" + r.Name, Rate: rateOf(r.Name, r)})
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

// meterID is the key whose rate-limit buckets, credits and quota key k
// counts against: once rotated, during its grace period, the newest key of
// its chain, which RotatedTo names (the store points it on at each
// rotation of its successors) and which holds the chain's credits; else
// itself.
func meterID(k *keyward.Key) string {
	if k.RotatedTo != "" {
		return k.RotatedTo
	}
	return k.ID
}

// rateOf is r as the limiter takes it, named name.
func rateOf(name string, r keyward.RateLimit) limit.Rate {
	return limit.Rate{Name: name, Limit: r.Limit, Period: time.Duration(r.Period), Burst: r.Burst}
}

// decisions keeps the rate-limit decisions of verifications whose caller
// gave none to fill (Request.RateLimit): a Decision passed to a Set
// through its interface would otherwise be allocated for each one.
var decisions = sync.Pool{New: func() any { return new(limit.Decision) }}

// counts reports whether step 11 has anything to check for a's key: rate
// limits (or rate limits that could not be bound, which refuse), quotas or
// credits.
func (a *Access) counts() bool {
	return a.Metered()
}

// Metered reports whether the key's requests are counted: it has rate
// limits, a quota or credits, its own or its tenant's. The answer to such
// a key depends on the requests before it, so a remote verifier must ask
// about each one rather than answer from its cache.
func (a *Access) Metered() bool {
	return a.limits != nil || a.limitsErr != nil || a.metered
}

// Count is step 11 of Verify, for a request verified with CountLater into
// r, once the caller decided to serve it: it checks and counts the
// request against the key's rate limits, quotas and credits, with req as
// given to Verify (its RateLimit receives the decision). A refusal is
// written into r, as Verify would have; a result that is not valid, or
// of a public route, is left as it is.
func (v *Verifier) Count(ctx context.Context, req *Request, r *Result) {
	if !r.Valid() || r.Public || r.Access == nil || !r.Access.counts() {
		return
	}
	req.Counting = CountNow
	if code, detail := v.checkLimits(ctx, r.Access, req, r); code != "" {
		r.Code, r.Detail = code, detail
	}
}

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
	if a.limits == nil {
		return v.spend(ctx, a, req, r)
	}
	d := req.RateLimit
	if d == nil {
		d = decisions.Get().(*limit.Decision)
		defer decisions.Put(d)
	}
	decide := limit.Set.Allow
	if req.Counting == CheckOnly {
		decide = limit.Set.Check
	}
	if err := decide(a.limits, ctx, v.limitNow(), 1, d); err != nil {
		// A limiter that cannot decide (Redis without a fallback) lets no
		// request through unchecked.
		v.log.WarnContext(ctx, "verify: could not check a key's rate limits", "key_id", r.Key.ID, "err", err)
		return keyward.CodeStorageUnavailable, detailLimiter
	}
	if req.RateLimit != nil {
		r.RateLimit = d
	}
	if !d.Allowed {
		r.RetryAfter = d.RetryAfter
		return keyward.CodeRateLimited, rateLimitedDetail(d)
	}
	if !a.metered {
		return "", ""
	}
	code, detail := v.spend(ctx, a, req, r)
	if code != "" && req.Counting != CheckOnly {
		// Refused after the rate limits counted it: it costs nothing.
		if err := a.limits.Refund(ctx, v.limitNow(), 1, d); err != nil {
			v.log.WarnContext(ctx, "verify: could not give back a refused request to a key's rate limits", "key_id", r.Key.ID, "err", err)
		} else {
			for i := range d.States[:d.N] {
				d.States[i].Remaining = min(d.States[i].Remaining+1, d.States[i].Limit)
			}
		}
	}
	return code, detail
}

// spend counts a request that passed the rate limits against the key's
// credits and the quotas of the key and its tenant, in the store, all or
// nothing (keyward.Meter), or only checks them for a CheckOnly req. It
// returns
// quota_exceeded, with r.RetryAfter set to the start of the next period
// or refill when there is one, or storage_unavailable when the store
// cannot count: a metered key is never let through uncounted.
func (v *Verifier) spend(ctx context.Context, a *Access, req *Request, r *Result) (keyward.Code, string) {
	k := r.Key
	if !a.metered {
		return "", ""
	}
	now := v.now().In(a.loc)
	y, m, day := now.Date()
	// A request of a route takes the route's cost from the credits; a
	// quota counts requests, one each.
	cost := int64(1)
	if r.Route != nil && r.Route.Cost > 1 {
		cost = r.Route.Cost
	}
	sp := keyward.Spend{KeyID: meterID(k), TenantID: k.TenantID, Cost: cost, Credits: k.Credits != nil, At: now,
		DayStart: time.Date(y, m, day, 0, 0, 0, 0, a.loc), MonthStart: time.Date(y, m, 1, 0, 0, 0, 0, a.loc),
		Check: req.Counting == CheckOnly}
	if q := a.keyQuota; q != nil {
		name, _ := q.Period.PeriodOf(now, a.loc)
		sp.KeyQuota = &keyward.QuotaSpend{Limit: q.Limit, Period: name}
	}
	if q := a.tenantQuota; q != nil {
		name, _ := q.Period.PeriodOf(now, a.loc)
		sp.TenantQuota = &keyward.QuotaSpend{Limit: q.Limit, Period: name}
	}
	sctx, cancel := context.WithTimeout(ctx, v.storageTimeout)
	defer cancel()
	spent, err := v.spender.spend(sctx, sp)
	if err != nil {
		v.log.WarnContext(ctx, "verify: could not count a request against a key's quotas and credits", "key_id", k.ID, "err", err)
		return keyward.CodeStorageUnavailable, detailStorage
	}
	if spent.Allowed {
		return "", ""
	}
	var period keyward.QuotaPeriod
	var limitOf int64
	switch spent.Refused {
	case keyward.SpentKeyQuota:
		period, limitOf = a.keyQuota.Period, a.keyQuota.Limit
	case keyward.SpentTenantQuota:
		period, limitOf = a.tenantQuota.Period, a.tenantQuota.Limit
	default: // credits
		if k.Credits.Refill == nil {
			return keyward.CodeQuotaExceeded, detailNoCredits
		}
		period = k.Credits.Refill.Interval
	}
	_, next := period.PeriodOf(now, a.loc)
	r.RetryAfter = next.Sub(now)
	if spent.Refused == keyward.SpentCredits {
		return keyward.CodeQuotaExceeded, fmt.Sprintf("This key has no credits left; they are refilled to %d at %s. "+
			"Retry then (Retry-After), or ask for more credits.", k.Credits.Refill.Amount, formatTime(next))
	}
	whose := "this key"
	if spent.Refused == keyward.SpentTenantQuota {
		whose = "this account"
	}
	return keyward.CodeQuotaExceeded, fmt.Sprintf("The quota of %s, %d requests per %s, is used up; it resets at %s. "+
		"Retry then (Retry-After), or upgrade the plan.", whose, limitOf, period, formatTime(next))
}

// detailNoCredits is the detail of a key whose credits, never refilled,
// are spent.
const detailNoCredits = "This key has no credits left, and they are not refilled. Ask for more credits, or use another key."

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
