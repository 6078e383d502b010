package manage

import (
	"cmp"
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/keyward/keyward"
)

// authorizeLimits is the one rule for setting rate limits, quotas and
// credits, on a plan, a tenant or a key, at creation or later: only the
// operator (a root key) may, since they are what the plans sell, and a
// tenant that set its own could lift them. field names what the request
// asked to set.
func authorizeLimits(c Caller, field string) error {
	return operatorOnly(c, field, "sets rate limits, quotas and credits; they come from the account's plan otherwise")
}

// operatorOnly refuses, with 403 naming field, a caller that is not the
// operator (a root key) what only the operator does.
func operatorOnly(c Caller, field, does string) error {
	if c.Root() {
		return nil
	}
	return &keyward.Error{Code: keyward.CodeInsufficientPermissions, Field: field, Message: fmt.Sprintf(
		"%s: only the operator (a root key, of the system tenant with %q) %s.", field, keyward.PermAdmin, does)}
}

// unsetFields reads the unset list of a change: names among allowed, each
// once, none of them also given a value (given reports whether a field is
// given). It returns them as a set.
func unsetFields(unset []string, allowed []string, given func(field string) bool) (map[string]bool, error) {
	out := map[string]bool{}
	for i, f := range unset {
		field := fmt.Sprintf("unset[%d]", i)
		switch {
		case !slices.Contains(allowed, f):
			return nil, keyward.FieldErrorf(field, "%q cannot be unset; give one of %s", f, strings.Join(allowed, ", "))
		case out[f]:
			return nil, keyward.FieldErrorf(field, "%q is listed twice", f)
		case given(f):
			return nil, keyward.FieldErrorf(field, "%q is both given and unset; give a value, or unset it", f)
		}
		out[f] = true
	}
	return out, nil
}

// rateLimitsChange is a change of rate limits from a request: in (nil when
// absent) checked as field, or, when unset, a pointer to nil (the plan's
// again, or none on a plan). It returns nil for no change, and for a
// change to what cur holds already.
func rateLimitsChange(field string, in *[]keyward.RateLimit, unset bool, cur []keyward.RateLimit) (*[]keyward.RateLimit, error) {
	var next []keyward.RateLimit
	switch {
	case unset:
		if cur == nil {
			return nil, nil
		}
	case in == nil:
		return nil, nil
	default:
		if err := keyward.CheckRateLimits(field, *in); err != nil {
			return nil, err
		}
		next = append([]keyward.RateLimit{}, *in...) // [] stays none, not the plan's
		if cur != nil && reflect.DeepEqual(next, cur) {
			return nil, nil
		}
	}
	return &next, nil
}

// quotaChange is a change of a quota from a request: in (nil when absent)
// checked as field, or, when unset, a pointer to the zero Quota (the
// plan's again, or none on a plan). It returns nil for no change.
func quotaChange(field string, in *keyward.Quota, unset bool, cur *keyward.Quota) (*keyward.Quota, error) {
	switch {
	case unset:
		if cur == nil {
			return nil, nil
		}
		return &keyward.Quota{}, nil
	case in == nil:
		return nil, nil
	}
	if err := keyward.CheckQuota(field, in); err != nil {
		return nil, err
	}
	if cur != nil && *cur == *in {
		return nil, nil
	}
	q := *in
	return &q, nil
}

// authorizeLimitFields is authorizeLimits for the first of a key's
// limit fields (rate_limits, quota, credits) that a request sets or
// unsets (set[field]).
func authorizeLimitFields(c Caller, set map[string]bool) error {
	for _, f := range []string{"rate_limits", "quota", "credits"} {
		if set[f] {
			return authorizeLimits(c, f)
		}
	}
	return nil
}

// checkLimitable refuses limits given a value (set) for tenant tenantID
// or one of its keys when it is the system tenant: the operator's keys are
// never limited (verify), so limits set there would show in the usage and
// bind nothing. Unsetting them is let through.
func checkLimitable(tenantID string, set map[string]bool) error {
	if tenantID != keyward.SystemTenantID {
		return nil
	}
	for _, f := range []string{"rate_limits", "quota", "credits"} {
		if set[f] {
			return keyward.FieldErrorf(f, "the system tenant's keys (the operator's) are never limited, so they take no rate limits, quota or credits; "+
				"give limits to the keys of a customer's tenant")
		}
	}
	return nil
}

// Limits are the rate limits and quota in effect for a key, or for all of
// a tenant's keys together, where they come from, and how much of the
// quota the current period has used.
type Limits struct {
	RateLimits []keyward.RateLimit `json:"rate_limits" description:"the rate limits in effect; [] for none"`
	// From says whose the rate limits are.
	RateLimitsFrom string      `json:"rate_limits_from" enum:"key,tenant,plan,system" description:"whose rate limits they are: the key's or tenant's own, or its plan's; system for the system tenant, whose keys (the operator's) are never limited"`
	Quota          *QuotaUsage `json:"quota" description:"the quota in effect and its use this period; null for none"`
}

// QuotaUsage is a quota in effect and its use in the current period.
type QuotaUsage struct {
	keyward.Quota
	From     string    `json:"from" enum:"key,tenant,plan" description:"whose quota it is: the key's or tenant's own, or its plan's"`
	Current  string    `json:"current_period" description:"the current period in the tenant's time zone" example:"2026-11"`
	Used     int64     `json:"used" description:"requests counted in the current period"`
	ResetsAt time.Time `json:"resets_at" description:"when the next period starts"`
}

// KeyUsage is what limits a key now: its own limits, its tenant's, and
// its credits.
type KeyUsage struct {
	KeyID   string           `json:"key_id"`
	Key     Limits           `json:"key" description:"the key's own rate limits and quota, or its plan's per-key ones"`
	Tenant  Limits           `json:"tenant" description:"the limits of all the tenant's keys together"`
	Credits *keyward.Credits `json:"credits" description:"the credits the key has left; null for no limit"`
}

// TenantUsage is what limits all of a tenant's keys together now.
type TenantUsage struct {
	TenantID string `json:"tenant_id"`
	TimeZone string `json:"time_zone" description:"the time zone of its days and months"`
	Limits
}

// KeyUsage returns what limits key id now, by the rule of reading the key.
func (s *Service) KeyUsage(ctx context.Context, c Caller, id string) (*KeyUsage, error) {
	k, err := s.Key(ctx, c, id)
	if err != nil {
		return nil, err
	}
	t, p, err := s.tenantAndPlan(ctx, k.TenantID)
	if err != nil {
		return nil, err
	}
	out := &KeyUsage{KeyID: k.ID, Credits: k.Credits}
	if k.TenantID == keyward.SystemTenantID {
		out.Credits = nil // not spent from: see limitsOf
	}
	now := s.now()
	if out.Key, err = s.limitsOf(ctx, keyward.QuotaSubject('k', k.ID), k.RateLimits, k.Quota, p.KeyRateLimits, p.KeyQuota, "key", t, now); err != nil {
		return nil, err
	}
	if out.Tenant, err = s.limitsOf(ctx, keyward.QuotaSubject('t', t.ID), t.RateLimits, t.Quota, p.TenantRateLimits, p.TenantQuota, "tenant", t, now); err != nil {
		return nil, err
	}
	return out, nil
}

// TenantUsage returns what limits all of tenant idOrSlug's keys together
// now, by the rule of reading the tenant.
func (s *Service) TenantUsage(ctx context.Context, c Caller, idOrSlug string) (*TenantUsage, error) {
	t, err := s.Tenant(ctx, c, idOrSlug)
	if err != nil {
		return nil, err
	}
	_, p, err := s.tenantAndPlan(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	l, err := s.limitsOf(ctx, keyward.QuotaSubject('t', t.ID), t.RateLimits, t.Quota, p.TenantRateLimits, p.TenantQuota, "tenant", t, s.now())
	if err != nil {
		return nil, err
	}
	return &TenantUsage{TenantID: t.ID, TimeZone: cmp.Or(t.TimeZone, "UTC"), Limits: l}, nil
}

// tenantAndPlan reads tenant id and its plan.
func (s *Service) tenantAndPlan(ctx context.Context, id string) (*keyward.Tenant, *keyward.Plan, error) {
	t, err := s.store.Tenant(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	p, err := s.store.Plan(ctx, t.Plan)
	if err != nil {
		return nil, nil, err
	}
	return t, p, nil
}

// limitsOf returns the limits in effect for subject: its own (whose
// names it) unless nil, else its plan's, and the use of the quota in the
// current period of tenant t's time zone at now.
func (s *Service) limitsOf(ctx context.Context, subject string, rates []keyward.RateLimit, quota *keyward.Quota,
	planRates []keyward.RateLimit, planQuota *keyward.Quota, whose string, t *keyward.Tenant, now time.Time) (Limits, error) {
	if t.ID == keyward.SystemTenantID {
		// The operator's keys are never limited, whatever the default
		// plan, which the system tenant is on, says (verify).
		return Limits{RateLimits: []keyward.RateLimit{}, RateLimitsFrom: "system"}, nil
	}
	l := Limits{RateLimits: rates, RateLimitsFrom: whose}
	if rates == nil {
		l.RateLimits, l.RateLimitsFrom = planRates, "plan"
	}
	if l.RateLimits == nil {
		l.RateLimits = []keyward.RateLimit{}
	}
	from := whose
	if quota == nil {
		quota, from = planQuota, "plan"
	}
	if quota == nil {
		return l, nil
	}
	loc := time.UTC
	if t.TimeZone != "" {
		var err error
		if loc, err = time.LoadLocation(t.TimeZone); err != nil {
			return l, keyward.Internal(err)
		}
	}
	period, next := quota.Period.PeriodOf(now, loc)
	used, err := s.store.QuotaUsed(ctx, subject, period)
	if err != nil {
		return l, err
	}
	l.Quota = &QuotaUsage{Quota: *quota, From: from, Current: period, Used: used, ResetsAt: next.UTC()}
	return l, nil
}
