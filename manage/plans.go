package manage

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keyward/keyward"
)

// Limits on what a plan and a catalogue entry carry.
const (
	MaxCapabilities = 100
	// MaxPlanKeys is the highest key limit a plan may set.
	MaxPlanKeys = 1_000_000
	// MaxDescriptionLen is the longest description of a catalogued
	// permission, in characters.
	MaxDescriptionLen = 500
)

var capabilityPattern = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)

// CreatePlanInput asks for a new plan.
type CreatePlanInput struct {
	Name         string   `json:"name" description:"up to 64 lowercase letters, digits, dashes and underscores" example:"pro"`
	Capabilities []string `json:"capabilities,omitempty" description:"features the plan includes, which routes of the route policy may need" example:"[\"m2m_api\",\"webhooks\"]"`
	Permissions  []string `json:"permissions,omitempty" description:"the permissions its tenants' keys may use, from the catalogue; absent or empty: every one"`
	APIAccess    *bool    `json:"api_access,omitempty" description:"whether its tenants may use keys at all; default true"`
	MaxKeys      int      `json:"max_keys,omitempty" description:"the most unrevoked keys a tenant may hold; 0 or absent: no limit"`
	// Limits of each key of its tenants, and of each tenant's keys
	// together (docs/limits.md).
	KeyRateLimits    []keyward.RateLimit `json:"key_rate_limits,omitempty" description:"the rate limits of each key of its tenants, unless the key has its own"`
	KeyQuota         *keyward.Quota      `json:"key_quota,omitempty" description:"the quota of each key of its tenants, unless the key has its own"`
	TenantRateLimits []keyward.RateLimit `json:"tenant_rate_limits,omitempty" description:"the rate limits of all the keys of a tenant together, unless the tenant has its own"`
	TenantQuota      *keyward.Quota      `json:"tenant_quota,omitempty" description:"the quota of all the keys of a tenant together, unless the tenant has its own"`
}

// UpdatePlanInput changes a plan; absent fields stay as they are.
type UpdatePlanInput struct {
	Capabilities     *[]string            `json:"capabilities,omitempty" description:"replaces the capabilities"`
	Permissions      *[]string            `json:"permissions,omitempty" description:"replaces the permissions; empty: every one"`
	APIAccess        *bool                `json:"api_access,omitempty" description:"false: its tenants' keys are refused with 403 plan_not_entitled"`
	MaxKeys          *int                 `json:"max_keys,omitempty" description:"0: no limit; a lower limit keeps the keys a tenant holds working, and refuses new ones"`
	KeyRateLimits    *[]keyward.RateLimit `json:"key_rate_limits,omitempty" description:"replaces the rate limits of each key; [] for none"`
	KeyQuota         *keyward.Quota       `json:"key_quota,omitempty" description:"replaces the quota of each key"`
	TenantRateLimits *[]keyward.RateLimit `json:"tenant_rate_limits,omitempty" description:"replaces the rate limits of each tenant's keys together; [] for none"`
	TenantQuota      *keyward.Quota       `json:"tenant_quota,omitempty" description:"replaces the quota of each tenant's keys together"`
	Unset            []string             `json:"unset,omitempty" description:"quotas to take away: key_quota, tenant_quota"`
}

// CreatePermissionInput asks for a new entry of the permission catalogue.
type CreatePermissionInput struct {
	Name        string `json:"name" description:"lowercase words joined by colons" example:"contacts:write"`
	Description string `json:"description,omitempty" description:"what the permission allows, up to 500 characters" example:"Create and change contacts"`
}

// CreatePlan stores a new plan; only root may.
func (s *Service) CreatePlan(ctx context.Context, c Caller, in CreatePlanInput) (*keyward.Plan, error) {
	if err := Authorize(c, Root); err != nil {
		return nil, err
	}
	if err := checkPlanName(in.Name); err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	p := &keyward.Plan{Name: in.Name, APIAccess: in.APIAccess == nil || *in.APIAccess, CreatedAt: now, UpdatedAt: now}
	var err error
	if p.Capabilities, err = checkCapabilities(in.Capabilities); err != nil {
		return nil, err
	}
	if p.Permissions, err = s.checkPlanPermissions(ctx, in.Permissions); err != nil {
		return nil, err
	}
	if p.MaxKeys, err = checkMaxKeys(in.MaxKeys); err != nil {
		return nil, err
	}
	p.KeyRateLimits, p.KeyQuota = in.KeyRateLimits, in.KeyQuota
	p.TenantRateLimits, p.TenantQuota = in.TenantRateLimits, in.TenantQuota
	if p.KeyRateLimits == nil {
		p.KeyRateLimits = []keyward.RateLimit{}
	}
	if p.TenantRateLimits == nil {
		p.TenantRateLimits = []keyward.RateLimit{}
	}
	if err := p.CheckLimits(); err != nil {
		return nil, err
	}
	if err := s.store.CreatePlan(ctx, p, c.Actor); err != nil {
		if keyward.ErrorCode(err) == keyward.CodeConflict {
			return nil, &keyward.Error{Code: keyward.CodeConflict, Field: "name", Message: "name: a plan named " + quote(p.Name) + " exists already; change it (PATCH /v1/plans/" + p.Name + ") or choose another name", Err: err}
		}
		return nil, err
	}
	s.changed(ctx)
	return p, nil
}

// Plan returns a plan by name; only root may.
func (s *Service) Plan(ctx context.Context, c Caller, name string) (*keyward.Plan, error) {
	if err := Authorize(c, Root); err != nil {
		return nil, err
	}
	p, err := s.store.Plan(ctx, name)
	if keyward.ErrorCode(err) == keyward.CodeNotFound {
		return nil, s.noPlan(ctx, "", name)
	}
	return p, err
}

// Plans lists every plan, by name; only root may.
func (s *Service) Plans(ctx context.Context, c Caller) ([]*keyward.Plan, error) {
	if err := Authorize(c, Root); err != nil {
		return nil, err
	}
	return s.store.Plans(ctx)
}

// UpdatePlan changes a plan; only root may. What its tenants' keys lose,
// they lose on every node within a second (the change feed).
func (s *Service) UpdatePlan(ctx context.Context, c Caller, name string, in UpdatePlanInput) (*keyward.Plan, error) {
	p, err := s.Plan(ctx, c, name)
	if err != nil {
		return nil, err
	}
	var u keyward.PlanUpdate
	if in.Capabilities != nil {
		caps, err := checkCapabilities(*in.Capabilities)
		if err != nil {
			return nil, err
		}
		if !sameSet(caps, p.Capabilities) {
			u.Capabilities = &caps
		}
	}
	if in.Permissions != nil {
		perms, err := s.checkPlanPermissions(ctx, *in.Permissions)
		if err != nil {
			return nil, err
		}
		if !sameSet(perms, p.Permissions) {
			u.Permissions = &perms
		}
	}
	if in.APIAccess != nil && *in.APIAccess != p.APIAccess {
		u.APIAccess = in.APIAccess
	}
	if in.MaxKeys != nil {
		n, err := checkMaxKeys(*in.MaxKeys)
		if err != nil {
			return nil, err
		}
		if n != p.MaxKeys {
			u.MaxKeys = &n
		}
	}
	given := map[string]bool{"key_quota": in.KeyQuota != nil, "tenant_quota": in.TenantQuota != nil}
	unset, err := unsetFields(in.Unset, []string{"key_quota", "tenant_quota"}, func(f string) bool { return given[f] })
	if err != nil {
		return nil, err
	}
	if u.KeyRateLimits, err = rateLimitsChange("key_rate_limits", in.KeyRateLimits, false, p.KeyRateLimits); err != nil {
		return nil, err
	}
	if u.KeyQuota, err = quotaChange("key_quota", in.KeyQuota, unset["key_quota"], p.KeyQuota); err != nil {
		return nil, err
	}
	if u.TenantRateLimits, err = rateLimitsChange("tenant_rate_limits", in.TenantRateLimits, false, p.TenantRateLimits); err != nil {
		return nil, err
	}
	if u.TenantQuota, err = quotaChange("tenant_quota", in.TenantQuota, unset["tenant_quota"], p.TenantQuota); err != nil {
		return nil, err
	}
	if u == (keyward.PlanUpdate{}) {
		return nil, keyward.Errorf(keyward.CodeInvalidRequest,
			"Nothing to change: the request gives no field, or only values the plan has already. Send at least one of capabilities, permissions, api_access, max_keys, key_rate_limits, key_quota, tenant_rate_limits, tenant_quota or unset with a new value.")
	}
	p, err = s.store.UpdatePlan(ctx, name, u, s.now().UTC().Truncate(time.Microsecond), c.Actor)
	if err != nil {
		return nil, err
	}
	s.changed(ctx)
	return p, nil
}

// noPlan is the error for a plan name that does not exist, in field (""
// for a name in the path): it names the plans that do.
func (s *Service) noPlan(ctx context.Context, field, name string) *keyward.Error {
	names := []string{}
	if plans, err := s.store.Plans(ctx); err == nil {
		for _, p := range plans {
			names = append(names, p.Name)
		}
	}
	msg := fmt.Sprintf("no plan is named %s; the plans are %s. Create it first (POST /v1/plans, keyward plans create)", quote(name), strings.Join(names, ", "))
	if field == "" {
		return keyward.Errorf(keyward.CodeNotFound, "%s.", strings.ToUpper(msg[:1])+msg[1:])
	}
	return keyward.FieldErrorf(field, "%s", msg)
}

// checkPlanName validates a plan's name.
func checkPlanName(name string) error {
	switch {
	case name == "":
		return keyward.FieldErrorf("name", "is required: a short name such as \"pro\"")
	case !planPattern.MatchString(name):
		return keyward.FieldErrorf("name", "%q is not valid: use up to 64 lowercase letters, digits, dashes and underscores, starting with a letter or digit", name)
	}
	return nil
}

// checkCapabilities validates a plan's capabilities and returns them
// without repeats.
func checkCapabilities(caps []string) ([]string, error) {
	if len(caps) > MaxCapabilities {
		return nil, keyward.FieldErrorf("capabilities", "has %d entries; a plan may have at most %d", len(caps), MaxCapabilities)
	}
	out := []string{}
	for i, c := range caps {
		if !capabilityPattern.MatchString(c) {
			return nil, keyward.FieldErrorf(fmt.Sprintf("capabilities[%d]", i), "%q is not a capability: use up to 64 lowercase letters, digits, dashes and underscores, starting with a letter, such as m2m_api", c)
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// checkPlanPermissions validates the permissions of a plan: well-formed,
// not Keyward's own, and catalogued once the catalogue has entries.
func (s *Service) checkPlanPermissions(ctx context.Context, perms []string) ([]string, error) {
	out, err := checkPermissionNames("permissions", perms, "a plan")
	if err != nil {
		return nil, err
	}
	if err := checkOwnPermissionsAbsent("permissions", perms, "a plan"); err != nil {
		return nil, err
	}
	if err := s.checkCatalogued(ctx, "permissions", perms); err != nil {
		return nil, err
	}
	return out, nil
}

// checkMaxKeys validates a plan's key limit.
func checkMaxKeys(n int) (int, error) {
	if n < 0 || n > MaxPlanKeys {
		return 0, keyward.FieldErrorf("max_keys", "%d is out of range; use 0 (no limit) to %d", n, MaxPlanKeys)
	}
	return n, nil
}

// entitled refuses to make a key for tenant t when its plan does not
// include API access: 403 plan_not_entitled. The system tenant's plan
// includes everything, always. The plan's key limit is the store's to
// enforce (CreateKey), counting in the transaction that writes the key, so
// that keys made at once cannot pass it together.
func (s *Service) entitled(ctx context.Context, t *keyward.Tenant) error {
	p, err := s.store.Plan(ctx, t.Plan)
	if err != nil {
		if keyward.ErrorCode(err) == keyward.CodeNotFound {
			return keyward.Internal(fmt.Errorf("the plan %q of tenant %s does not exist", t.Plan, t.ID))
		}
		return err
	}
	if !p.APIAccess {
		return keyward.Errorf(keyward.CodePlanNotEntitled,
			"The plan of this account (%s) does not include API access, so no key can be made for it; move the account to a plan with API access.", p.Name)
	}
	return nil
}

// AddPermission adds an entry to the permission catalogue; only root may.
// Once the catalogue has an entry, keys, members and plans may hold only
// catalogued permissions.
func (s *Service) AddPermission(ctx context.Context, c Caller, in CreatePermissionInput) (*keyward.Permission, error) {
	if err := Authorize(c, Root); err != nil {
		return nil, err
	}
	if in.Name == "" {
		return nil, keyward.FieldErrorf("name", "is required: a permission such as contacts:write")
	}
	if err := checkPermissionName("name", in.Name); err != nil {
		return nil, err
	}
	if keyward.BuiltIn(in.Name) {
		return nil, keyward.FieldErrorf("name", "%q is one of Keyward's own permissions, which are built in and never catalogued", in.Name)
	}
	desc := strings.TrimSpace(in.Description)
	if err := checkText("description", "", desc); err != nil {
		return nil, err
	}
	if n := utf8.RuneCountInString(desc); n > MaxDescriptionLen {
		return nil, keyward.FieldErrorf("description", "is %d characters long; use at most %d", n, MaxDescriptionLen)
	}
	p := &keyward.Permission{Name: in.Name, Description: desc, CreatedAt: s.now().UTC().Truncate(time.Microsecond)}
	if err := s.store.CreatePermission(ctx, p, c.Actor); err != nil {
		if keyward.ErrorCode(err) == keyward.CodeConflict {
			return nil, &keyward.Error{Code: keyward.CodeConflict, Field: "name", Message: "name: " + quote(p.Name) + " is in the catalogue already", Err: err}
		}
		return nil, err
	}
	return p, nil
}

// Permissions lists the permission catalogue, by name; only root may.
func (s *Service) Permissions(ctx context.Context, c Caller) ([]*keyward.Permission, error) {
	if err := Authorize(c, Root); err != nil {
		return nil, err
	}
	return s.store.Permissions(ctx)
}

// RemovePermission removes an entry from the catalogue; only root may. A
// permission held by an unrevoked key, a member or a plan stays: the 409
// says where it is used.
func (s *Service) RemovePermission(ctx context.Context, c Caller, name string) error {
	if err := Authorize(c, Root); err != nil {
		return err
	}
	if keyward.BuiltIn(name) {
		return keyward.Errorf(keyward.CodeInvalidRequest, "%s is one of Keyward's own permissions, which are built in: it is not in the catalogue and cannot be removed.", quote(name))
	}
	_, err := s.store.DeletePermission(ctx, name, s.now().UTC().Truncate(time.Microsecond), c.Actor)
	if keyward.ErrorCode(err) == keyward.CodeNotFound {
		return keyward.Errorf(keyward.CodeNotFound, "No permission named %s is in the catalogue.", quote(name))
	}
	return err
}

// checkCatalogued refuses, once the catalogue has any entry, a permission
// of field that is not in it: 400 naming the field and the permission.
// Keyward's own permissions are built in and always pass.
func (s *Service) checkCatalogued(ctx context.Context, field string, perms []string) error {
	if !slices.ContainsFunc(perms, func(p string) bool { return !keyward.BuiltIn(p) }) {
		return nil
	}
	cat, err := s.store.Permissions(ctx)
	if err != nil || len(cat) == 0 {
		return err
	}
	for i, p := range perms {
		if keyward.BuiltIn(p) || slices.ContainsFunc(cat, func(e *keyward.Permission) bool { return e.Name == p }) {
			continue
		}
		return keyward.FieldErrorf(fmt.Sprintf("%s[%d]", field, i),
			"%q is not in the permission catalogue; use one that is (GET /v1/permissions, keyward permissions list), or have the operator add it first", p)
	}
	return nil
}
