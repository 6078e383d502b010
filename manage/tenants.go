package manage

import (
	"context"
	"regexp"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// CreateTenantInput asks for a new tenant.
type CreateTenantInput struct {
	Slug string `json:"slug" description:"lowercase letters, digits and dashes; unique" example:"acme"`
	Plan string `json:"plan,omitempty" description:"the name of an existing plan; default \"default\"" example:"pro"`
}

// UpdateTenantInput changes a tenant; absent fields stay as they are.
type UpdateTenantInput struct {
	Plan       *string              `json:"plan,omitempty" description:"move the tenant to this plan, which must exist; its keys are bound by it on every node within a second" example:"pro"`
	RateLimits *[]keyward.RateLimit `json:"rate_limits,omitempty" description:"the rate limits of all the tenant's keys together, instead of its plan's; [] for none at all"`
	Quota      *keyward.Quota       `json:"quota,omitempty" description:"the quota of all the tenant's keys together, instead of its plan's"`
	TimeZone   *string              `json:"time_zone,omitempty" description:"the IANA time zone whose calendar days and months its quotas and credit refills count in; \"\" for UTC" example:"Europe/Paris"`
	Unset      []string             `json:"unset,omitempty" description:"fields to give back the plan's values: rate_limits, quota"`
}

var (
	slugPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`)
	planPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
)

// DefaultPlan is the plan of a tenant created without one.
const DefaultPlan = keyward.DefaultPlan

// CreateTenant creates a tenant; only a root key may.
func (s *Service) CreateTenant(ctx context.Context, c Caller, in CreateTenantInput) (*keyward.Tenant, error) {
	if err := Authorize(c, Root); err != nil {
		return nil, err
	}
	slug := in.Slug
	switch {
	case slug == "":
		return nil, keyward.FieldErrorf("slug", "is required: a short name such as \"acme\"")
	case !slugPattern.MatchString(slug):
		return nil, keyward.FieldErrorf("slug", "%q is not valid: use 2 to 63 lowercase letters, digits and dashes, starting with a letter or digit", slug)
	case slug == keyward.SystemTenantSlug:
		return nil, keyward.FieldErrorf("slug", "%q is reserved for Keyward's own tenant; choose another", slug)
	}
	plan := in.Plan
	if plan == "" {
		plan = DefaultPlan
	}
	if !planPattern.MatchString(plan) {
		return nil, keyward.FieldErrorf("plan", "%q is not valid: use up to 64 lowercase letters, digits, dashes and underscores", plan)
	}
	if _, err := s.store.Plan(ctx, plan); keyward.ErrorCode(err) == keyward.CodeNotFound {
		return nil, s.noPlan(ctx, "plan", plan)
	} else if err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	t := &keyward.Tenant{ID: apikey.NewID("ten"), Slug: slug, Plan: plan, Status: keyward.TenantActive, CreatedAt: now, UpdatedAt: now}
	if err := s.store.CreateTenant(ctx, t, c.Actor); err != nil {
		if keyward.ErrorCode(err) == keyward.CodeConflict {
			return nil, &keyward.Error{Code: keyward.CodeConflict, Field: "slug", Message: "slug: a tenant with slug " + quote(slug) + " exists already; choose another", Err: err}
		}
		return nil, err
	}
	s.changed(ctx)
	return t, nil
}

// Tenant returns a tenant by id or slug. A tenant's key sees its own only.
func (s *Service) Tenant(ctx context.Context, c Caller, idOrSlug string) (*keyward.Tenant, error) {
	if err := Authorize(c, Manager); err != nil {
		return nil, err
	}
	t, err := s.store.Tenant(ctx, idOrSlug)
	if keyward.ErrorCode(err) == keyward.CodeNotFound || (err == nil && !c.inScope(t.ID)) {
		return nil, errNotFound("tenant", idOrSlug)
	}
	return t, err
}

// Tenants lists tenants: all of them for a root key, its own for a tenant's.
func (s *Service) Tenants(ctx context.Context, c Caller, p keyward.Page) ([]*keyward.Tenant, string, error) {
	if err := Authorize(c, Manager); err != nil {
		return nil, "", err
	}
	if !c.Root() {
		t, err := s.store.Tenant(ctx, c.TenantID)
		if err != nil {
			return nil, "", err
		}
		return []*keyward.Tenant{t}, "", nil
	}
	if err := checkPage(p); err != nil {
		return nil, "", err
	}
	return s.store.Tenants(ctx, p)
}

// UpdateTenant changes a tenant: it moves it to another plan, and sets
// its limits and time zone. Only root may; the system tenant stays on the
// default plan. A plan and limits in one request are written one after
// the other, the plan first.
func (s *Service) UpdateTenant(ctx context.Context, c Caller, idOrSlug string, in UpdateTenantInput) (*keyward.Tenant, error) {
	if err := Authorize(c, Root); err != nil {
		return nil, err
	}
	t, err := s.Tenant(ctx, c, idOrSlug)
	if err != nil {
		return nil, err
	}
	u, err := tenantLimitsChange(t, in)
	if err != nil {
		return nil, err
	}
	if in.Plan == nil && u == (keyward.TenantUpdate{}) {
		return nil, keyward.Errorf(keyward.CodeInvalidRequest, "Nothing to change: send the plan to move the tenant to, such as {\"plan\": \"pro\"}, or its rate_limits, quota, time_zone or unset with a new value.")
	}
	if in.Plan != nil {
		if err := s.checkTenantPlanChange(ctx, t, *in.Plan); err != nil {
			return nil, err
		}
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	if in.Plan != nil {
		if t, err = s.store.SetTenantPlan(ctx, t.ID, *in.Plan, now, c.Actor); err != nil {
			return nil, err
		}
	}
	if u != (keyward.TenantUpdate{}) {
		if t, err = s.store.UpdateTenant(ctx, t.ID, u, now, c.Actor); err != nil {
			return nil, err
		}
	}
	s.changed(ctx)
	return t, nil
}

// tenantLimitsChange is the change of limits and time zone that in asks
// of tenant t; fields that would stay as they are are left out.
func tenantLimitsChange(t *keyward.Tenant, in UpdateTenantInput) (keyward.TenantUpdate, error) {
	var u keyward.TenantUpdate
	given := map[string]bool{"rate_limits": in.RateLimits != nil, "quota": in.Quota != nil}
	unset, err := unsetFields(in.Unset, []string{"rate_limits", "quota"}, func(f string) bool { return given[f] })
	if err != nil {
		return u, err
	}
	if err := checkLimitable(t.ID, given); err != nil {
		return u, err
	}
	if u.RateLimits, err = rateLimitsChange("rate_limits", in.RateLimits, unset["rate_limits"], t.RateLimits); err != nil {
		return u, err
	}
	if u.Quota, err = quotaChange("quota", in.Quota, unset["quota"], t.Quota); err != nil {
		return u, err
	}
	if in.TimeZone != nil && *in.TimeZone != t.TimeZone {
		if err := keyward.CheckTimeZone("time_zone", *in.TimeZone); err != nil {
			return u, err
		}
		u.TimeZone = in.TimeZone
	}
	return u, nil
}

// checkTenantPlanChange refuses a move of tenant t to plan that is not
// one: an empty or malformed name, the system tenant, the plan it is on,
// a plan that does not exist.
func (s *Service) checkTenantPlanChange(ctx context.Context, t *keyward.Tenant, plan string) error {
	switch {
	case plan == "":
		return keyward.FieldErrorf("plan", "is empty; give the name of the plan to move the tenant to")
	case !planPattern.MatchString(plan):
		return keyward.FieldErrorf("plan", "%q is not valid: use up to 64 lowercase letters, digits, dashes and underscores", plan)
	case t.ID == keyward.SystemTenantID:
		return keyward.FieldErrorf("plan", "the system tenant holds the root keys and stays on the %q plan, so that no plan can lock the operator out", keyward.DefaultPlan)
	case plan == t.Plan:
		return keyward.FieldErrorf("plan", "the tenant is on %s already", quote(plan))
	}
	if _, err := s.store.Plan(ctx, plan); keyward.ErrorCode(err) == keyward.CodeNotFound {
		return s.noPlan(ctx, "plan", plan)
	} else if err != nil {
		return err
	}
	return nil
}

// SuspendTenant stops every key of a tenant from working until it is resumed.
func (s *Service) SuspendTenant(ctx context.Context, c Caller, idOrSlug string) (*keyward.Tenant, error) {
	return s.setTenantStatus(ctx, c, idOrSlug, keyward.TenantSuspended)
}

// ResumeTenant lets a suspended tenant's keys work again.
func (s *Service) ResumeTenant(ctx context.Context, c Caller, idOrSlug string) (*keyward.Tenant, error) {
	return s.setTenantStatus(ctx, c, idOrSlug, keyward.TenantActive)
}

func (s *Service) setTenantStatus(ctx context.Context, c Caller, idOrSlug string, status keyward.TenantStatus) (*keyward.Tenant, error) {
	// Root is required once the tenant is found within the caller's
	// reach: a manager asking about another tenant is answered 404, as
	// for a tenant that does not exist, so ids cannot be probed.
	t, err := s.Tenant(ctx, c, idOrSlug)
	if err != nil {
		return nil, err
	}
	if err := Authorize(c, Root); err != nil {
		return nil, err
	}
	if t.ID == keyward.SystemTenantID && status == keyward.TenantSuspended {
		return nil, keyward.Errorf(keyward.CodeInvalidRequest, "The system tenant cannot be suspended: it holds the root keys.")
	}
	t, err = s.store.SetTenantStatus(ctx, t.ID, status, s.now().UTC().Truncate(time.Microsecond), c.Actor)
	if err != nil {
		return nil, err
	}
	s.changed(ctx)
	return t, nil
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }
