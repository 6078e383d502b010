package keyward

import (
	"context"
	"slices"
	"time"
)

// DefaultPlan is the name of the built-in plan, which includes everything:
// API access, no key limit, every permission. Every database has it, and
// the system tenant is always on it.
const DefaultPlan = "default"

// Plan is what a tenant's subscription allows its keys.
type Plan struct {
	Name string `json:"name"`
	// Capabilities are the features the plan includes, such as m2m_api; a
	// route of the route policy may need some.
	Capabilities []string `json:"capabilities"`
	// Permissions are those its tenants' keys may use; empty: every one.
	Permissions []string `json:"permissions"`
	// APIAccess says whether its tenants may use keys at all.
	APIAccess bool `json:"api_access"`
	// MaxKeys is the most unrevoked keys a tenant may hold; 0: no limit.
	MaxKeys int `json:"max_keys"`
	// KeyRateLimits and KeyQuota limit each key of its tenants, unless
	// the key has its own (Key.RateLimits, Key.Quota).
	KeyRateLimits []RateLimit `json:"key_rate_limits"`
	KeyQuota      *Quota      `json:"key_quota"`
	// TenantRateLimits and TenantQuota limit all the keys of a tenant
	// together, unless the tenant has its own (Tenant.RateLimits,
	// Tenant.Quota).
	TenantRateLimits []RateLimit `json:"tenant_rate_limits"`
	TenantQuota      *Quota      `json:"tenant_quota"`
	CreatedAt        time.Time   `json:"created_at"`
	UpdatedAt        time.Time   `json:"updated_at"`
}

// Allows reports whether the plan lets its tenants' keys use permission q:
// every permission when it lists none.
func (p *Plan) Allows(q string) bool {
	return len(p.Permissions) == 0 || slices.Contains(p.Permissions, q)
}

// PlanUpdate changes a plan; nil fields are left as they are. A quota set
// to a pointer to the zero Quota is removed.
type PlanUpdate struct {
	Capabilities     *[]string
	Permissions      *[]string
	APIAccess        *bool
	MaxKeys          *int
	KeyRateLimits    *[]RateLimit
	KeyQuota         *Quota
	TenantRateLimits *[]RateLimit
	TenantQuota      *Quota
}

// CheckLimits refuses, with a CodeInvalidRequest *Error naming the field
// at fault, rate limits or quotas out of bounds.
func (p *Plan) CheckLimits() error {
	if err := CheckRateLimits("key_rate_limits", p.KeyRateLimits); err != nil {
		return err
	}
	if err := CheckQuota("key_quota", p.KeyQuota); err != nil {
		return err
	}
	if err := CheckRateLimits("tenant_rate_limits", p.TenantRateLimits); err != nil {
		return err
	}
	return CheckQuota("tenant_quota", p.TenantQuota)
}

// PlanLookup finds one plan: what a verifier needs of the plans. Errors are
// those of Store.
type PlanLookup interface {
	// Plan finds a plan by name.
	Plan(ctx context.Context, name string) (*Plan, error)
}

// PlanStore keeps the plans, and which plan each tenant is on. Errors are
// those of Store.
type PlanStore interface {
	PlanLookup
	// Plans lists every plan, by name.
	Plans(ctx context.Context) ([]*Plan, error)
	// CreatePlan stores a new plan; a taken name is a CodeConflict. Its
	// audit entries, and those of UpdatePlan, belong to no tenant
	// (TenantID "").
	CreatePlan(ctx context.Context, p *Plan, by Actor) error
	// UpdatePlan applies the non-nil fields of u and returns the plan as
	// stored. Lowering MaxKeys below what a tenant holds revokes nothing.
	UpdatePlan(ctx context.Context, name string, u PlanUpdate, at time.Time, by Actor) (*Plan, error)
	// SetTenantPlan moves a tenant to a plan, which must exist
	// (CodeInvalidRequest naming plan otherwise), and returns the tenant as
	// stored. The system tenant stays on the default plan
	// (CodeInvalidRequest). Its audit entry (tenant.set_plan) has the
	// plan's name as Related.
	SetTenantPlan(ctx context.Context, tenantID, plan string, at time.Time, by Actor) (*Tenant, error)
	// CountKeys counts a tenant's unrevoked keys, expired ones included:
	// what the plan's key limit counts.
	CountKeys(ctx context.Context, tenantID string) (int, error)
}

// Permission is an entry of the permission catalogue: a permission the
// operator's API defines.
type Permission struct {
	Name        string    `json:"name"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
}

// PermissionUse says where a permission is held, when it cannot be
// removed from the catalogue.
type PermissionUse struct {
	Keys    int      `json:"keys"`    // unrevoked keys that hold it
	Members []string `json:"members"` // ids of members who hold it
	Plans   []string `json:"plans"`   // names of plans that list it
}

// InUse reports whether the permission is held anywhere.
func (u PermissionUse) InUse() bool { return u.Keys > 0 || len(u.Members) > 0 || len(u.Plans) > 0 }

// Catalogue keeps the permission catalogue. While it is empty, any
// well-formed permission is accepted; once it has an entry, only catalogued
// ones (Keyward's own are built in and never stored). Errors are those of
// Store.
type Catalogue interface {
	// Permissions lists the catalogue, by name.
	Permissions(ctx context.Context) ([]*Permission, error)
	// CreatePermission adds an entry; a taken name is a CodeConflict. Its
	// audit entries, and those of DeletePermission, belong to no tenant.
	CreatePermission(ctx context.Context, p *Permission, by Actor) error
	// DeletePermission removes an entry; one not in the catalogue is a
	// CodeNotFound. A permission held by an unrevoked key, a member or a
	// plan is not removed: the error is a CodeConflict whose message says
	// where it is used (the use is returned too).
	DeletePermission(ctx context.Context, name string, at time.Time, by Actor) (PermissionUse, error)
}
