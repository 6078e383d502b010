package keyward

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Limits on rate limits, quotas and credits (docs/limits.md).
const (
	// MaxRateLimits is the most rate limits one list holds: a key's own
	// (or its plan's for keys), and its tenant's (or its plan's for
	// tenants), so that a request is checked against at most twice as
	// many.
	MaxRateLimits = 4
	// MaxRateLimit is the largest limit of a rate limit or a quota.
	MaxRateLimit = 1_000_000_000
	// MinRatePeriod and MaxRatePeriod bound a rate limit's period.
	MinRatePeriod = time.Second
	MaxRatePeriod = 31 * 24 * time.Hour
	// MaxCredits is the most credits a key may hold, or be refilled with.
	MaxCredits = 1_000_000_000_000
)

// RateLimit allows Limit requests per Period, and at most Burst at once:
// a bucket of Burst requests that refills at Limit per Period (GCRA).
// Several apply to a request, and a request is allowed only if every one
// allows it; a refused request counts against none.
type RateLimit struct {
	// Name tells the limits of a list apart, in answers and in the
	// RateLimit headers, such as burst or hourly.
	Name   string   `json:"name"`
	Limit  int64    `json:"limit"`
	Period Duration `json:"period"`
	// Burst is the most requests at once; 0 means Limit.
	Burst int64 `json:"burst,omitempty"`
}

// Capacity returns the most requests the limit allows at once: Burst, or
// Limit when Burst is 0.
func (r RateLimit) Capacity() int64 {
	if r.Burst > 0 {
		return r.Burst
	}
	return r.Limit
}

// Duration is a time.Duration written in JSON as Go writes durations,
// such as "1s", "15m" or "24h".
type Duration time.Duration

// MarshalJSON writes d as a string such as "1h0m0s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a string such as "1s", "15m" or "24h".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a period is a string such as \"1s\", \"15m\" or \"24h\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a period; write one such as \"1s\", \"15m\" or \"24h\"", s)
	}
	*d = Duration(v)
	return nil
}

// JSONSchemaBytes describes a Duration in the OpenAPI document: a string.
func (Duration) JSONSchemaBytes() ([]byte, error) {
	return []byte(`{"type":"string","description":"a duration such as 1s, 15m or 24h","examples":["1s"]}`), nil
}

// String writes d as time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }

// rateLimitName is the shape of a rate limit's name.
var rateLimitName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,23}$`)

// CheckRateLimits refuses, with a CodeInvalidRequest *Error naming the
// entry at fault (such as rate_limits[1].period), a list of rate limits
// that is too long, has two of one name, or has a limit out of bounds.
func CheckRateLimits(field string, limits []RateLimit) error {
	if len(limits) > MaxRateLimits {
		return FieldErrorf(field, "has %d rate limits; give at most %d", len(limits), MaxRateLimits)
	}
	for i, r := range limits {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case !rateLimitName.MatchString(r.Name):
			return FieldErrorf(f+".name", "%q is not a rate limit name: use a lowercase letter, then up to 23 lowercase letters, digits, - or _, such as burst or hourly", r.Name)
		case r.Limit < 1 || r.Limit > MaxRateLimit:
			return FieldErrorf(f+".limit", "is %d; give a number of requests from 1 to %d", r.Limit, MaxRateLimit)
		case time.Duration(r.Period) < MinRatePeriod || time.Duration(r.Period) > MaxRatePeriod:
			return FieldErrorf(f+".period", "is %s; give a period from 1s to 744h (31 days), such as \"1s\", \"1m\" or \"1h\"; for days and months use a quota", time.Duration(r.Period))
		case time.Duration(r.Period)%time.Second != 0:
			return FieldErrorf(f+".period", "is %s; give whole seconds, such as \"1s\", \"90s\" or \"1h\"", time.Duration(r.Period))
		case time.Duration(r.Period)/time.Duration(r.Limit) < time.Microsecond:
			return FieldErrorf(f+".limit", "%d per %s is more than one request per microsecond; lower the limit or lengthen the period", r.Limit, time.Duration(r.Period))
		case r.Burst < 0 || r.Burst > MaxRateLimit:
			return FieldErrorf(f+".burst", "is %d; give the most requests at once, from 1 to %d, or 0 for the limit itself", r.Burst, MaxRateLimit)
		case r.Capacity() > int64(MaxRatePeriod/(time.Duration(r.Period)/time.Duration(r.Limit))):
			return FieldErrorf(f+".burst", "%d at %d per %s takes longer than 744h (31 days) to refill; lower the burst", r.Burst, r.Limit, time.Duration(r.Period))
		}
		for _, o := range limits[:i] {
			if o.Name == r.Name {
				return FieldErrorf(f+".name", "%q names two rate limits; give each its own name", r.Name)
			}
		}
	}
	return nil
}

// checkOverride refuses, with a CodeInvalidRequest *Error naming the
// field at fault, a change of a tenant's or a key's own rate limits and
// quota that is out of bounds; nil fields, and the zero Quota (the plan's
// again), pass.
func checkOverride(rates *[]RateLimit, quota *Quota) error {
	if rates != nil {
		if err := CheckRateLimits("rate_limits", *rates); err != nil {
			return err
		}
	}
	if quota != nil && *quota != (Quota{}) {
		return CheckQuota("quota", quota)
	}
	return nil
}

// QuotaPeriod is the calendar period of a quota or of a credit refill.
type QuotaPeriod string

// Quota periods: a calendar day or month, in UTC or in the tenant's time
// zone (Tenant.TimeZone).
const (
	QuotaDay   QuotaPeriod = "day"
	QuotaMonth QuotaPeriod = "month"
)

// Valid reports whether p is a known period.
func (p QuotaPeriod) Valid() bool { return p == QuotaDay || p == QuotaMonth }

// Quota allows Limit requests per calendar day or month.
type Quota struct {
	Limit  int64       `json:"limit"`
	Period QuotaPeriod `json:"period"`
}

// CheckQuota refuses, with a CodeInvalidRequest *Error naming the field at
// fault, a quota out of bounds; nil is no quota and passes.
func CheckQuota(field string, q *Quota) error {
	switch {
	case q == nil:
		return nil
	case q.Limit < 1 || q.Limit > MaxRateLimit:
		return FieldErrorf(field+".limit", "is %d; give a number of requests from 1 to %d", q.Limit, MaxRateLimit)
	case !q.Period.Valid():
		return FieldErrorf(field+".period", "is %q; give %q or %q", q.Period, QuotaDay, QuotaMonth)
	}
	return nil
}

// Credits are the uses a key has left: each allowed request costs one, or
// the cost its route declares. Refill, when set, puts Remaining back to
// Refill.Amount at the start of every calendar day or month.
type Credits struct {
	Remaining int64   `json:"remaining"`
	Refill    *Refill `json:"refill,omitempty"`
}

// Refill is how a key's credits are refilled.
type Refill struct {
	Amount   int64       `json:"amount"`
	Interval QuotaPeriod `json:"interval"`
}

// CheckCredits refuses, with a CodeInvalidRequest *Error naming the field
// at fault, credits out of bounds; nil is unlimited and passes.
func CheckCredits(field string, c *Credits) error {
	switch {
	case c == nil:
		return nil
	case c.Remaining < 0 || c.Remaining > MaxCredits:
		return FieldErrorf(field+".remaining", "is %d; give a number of uses from 0 to %d", c.Remaining, int64(MaxCredits))
	case c.Refill == nil:
		return nil
	case c.Refill.Amount < 1 || c.Refill.Amount > MaxCredits:
		return FieldErrorf(field+".refill.amount", "is %d; give a number of uses from 1 to %d", c.Refill.Amount, int64(MaxCredits))
	case !c.Refill.Interval.Valid():
		return FieldErrorf(field+".refill.interval", "is %q; give %q or %q", c.Refill.Interval, QuotaDay, QuotaMonth)
	}
	return nil
}

// CheckTimeZone refuses, with a CodeInvalidRequest *Error naming field, a
// time zone that is not an IANA name such as Europe/Paris; "" is UTC.
func CheckTimeZone(field, tz string) error {
	if tz == "" {
		return nil
	}
	if _, err := time.LoadLocation(tz); err != nil || tz == "Local" || strings.HasPrefix(tz, "/") {
		return FieldErrorf(field, "%q is not a time zone; give an IANA name such as UTC, Europe/Paris or America/New_York", tz)
	}
	return nil
}

// PeriodOf returns the calendar period of p that t falls in, as a quota's
// counter names it (2026-11-28 for a day, 2026-11 for a month), and when
// the next one starts, both in loc (UTC when nil).
func (p QuotaPeriod) PeriodOf(t time.Time, loc *time.Location) (name string, next time.Time) {
	if loc == nil {
		loc = time.UTC
	}
	t = t.In(loc)
	y, m, d := t.Date()
	if p == QuotaMonth {
		return t.Format("2006-01"), time.Date(y, m+1, 1, 0, 0, 0, 0, loc)
	}
	return t.Format("2006-01-02"), time.Date(y, m, d+1, 0, 0, 0, 0, loc)
}

// Spend is what one allowed request takes from the counters of a key and
// of its tenant, all or nothing: Cost (its route's) from the key's credits
// (when it has some), and one request from the key's and the tenant's
// quota for their current period (when set).
type Spend struct {
	KeyID, TenantID string
	Cost            int64
	// Credits says that the key has credits to take from. DayStart and
	// MonthStart are when the current day and month began in the
	// tenant's time zone: credits refilled daily or monthly that were last
	// refilled before are refilled first.
	Credits               bool
	DayStart, MonthStart  time.Time
	KeyQuota, TenantQuota *QuotaSpend
	At                    time.Time
	// Check decides as Spend would without taking anything: for asking
	// again about a request that was refused and counted already
	// (nginx's error_page). Spent is what the spend would have done.
	Check bool
}

// QuotaSpend is a quota a request counts against: its limit, and the name
// of its current period (QuotaPeriod.PeriodOf).
type QuotaSpend struct {
	Limit  int64
	Period string
}

// What refused a Spend.
const (
	SpentCredits     = "credits"
	SpentKeyQuota    = "key_quota"
	SpentTenantQuota = "tenant_quota"
)

// Spent is what a Spend did: when allowed, the counters after it; when
// refused, Refused names what refused it (SpentCredits, SpentKeyQuota or
// SpentTenantQuota), with that counter as it is, and nothing was taken.
type Spent struct {
	Allowed bool
	Refused string
	// CreditsRemaining is the key's credits after the spend (when it has
	// some); KeyQuotaUsed and TenantQuotaUsed the quotas' counts.
	CreditsRemaining              int64
	KeyQuotaUsed, TenantQuotaUsed int64
	// Err, when not nil, is why this spend alone could not be decided
	// (a *Error, such as a key that no longer exists, or a conflict with
	// another transaction): it took nothing, and Allowed is false.
	Err error
}

// Meter keeps the counters of quotas and credits, exact across every node
// that shares the store. Errors are those of Store.
type Meter interface {
	// SpendBatch takes the cost of each request of a batch from the
	// counters its Spend names, each spend all or nothing, in one write
	// transaction: a spend that is refused, or is a Check, or fails
	// (Spent.Err) takes nothing, and the others are taken together. The
	// spends of one key are applied in their order in the batch, so
	// that a later one sees what an earlier one took. It returns what
	// each spend did, in the order of spends, or an error when the
	// batch as a whole failed, and then nothing was taken. A key that
	// has no credits (any more) is not refused for them.
	SpendBatch(ctx context.Context, spends []Spend) ([]Spent, error)
	// QuotaUsed returns how many requests a subject (QuotaSubject) made in
	// a period (QuotaPeriod.PeriodOf): 0 before the first.
	QuotaUsed(ctx context.Context, subject, period string) (int64, error)
}

// QuotaSubject names the counter of a key's quota ("k:" and its id) or a
// tenant's ("t:" and its id).
func QuotaSubject(kind byte, id string) string { return string(kind) + ":" + id }
