package keyward

import "time"

// TenantStatus is whether a tenant's keys may be used.
type TenantStatus string

// Tenant statuses.
const (
	TenantActive    TenantStatus = "active"
	TenantSuspended TenantStatus = "suspended"
)

// SystemTenantID is the id of the built-in tenant that holds root keys.
const SystemTenantID = "ten_system"

// SystemTenantSlug is the slug of the built-in tenant.
const SystemTenantSlug = "system"

// Tenant is a customer account of the API.
type Tenant struct {
	ID     string       `json:"id"`
	Slug   string       `json:"slug"`
	Plan   string       `json:"plan"`
	Status TenantStatus `json:"status"`
	// RateLimits and Quota limit all the tenant's keys together; nil:
	// its plan's (Plan.TenantRateLimits, Plan.TenantQuota). An empty,
	// non-nil RateLimits is no rate limit at all.
	RateLimits []RateLimit `json:"rate_limits"`
	Quota      *Quota      `json:"quota"`
	// TimeZone is the IANA time zone whose calendar days and months
	// quotas and credit refills count in; "" is UTC.
	TimeZone  string    `json:"time_zone"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// TenantUpdate changes a tenant's limits; nil fields are left as they
// are. RateLimits set to a pointer to a nil slice, or Quota to a pointer
// to the zero Quota, gives the tenant its plan's again.
type TenantUpdate struct {
	RateLimits *[]RateLimit
	Quota      *Quota
	TimeZone   *string
}

// Check refuses, with a CodeInvalidRequest *Error naming the field at
// fault, limits out of bounds and a time zone that is not one.
func (u TenantUpdate) Check() error {
	if err := checkOverride(u.RateLimits, u.Quota); err != nil {
		return err
	}
	if u.TimeZone != nil {
		return CheckTimeZone("time_zone", *u.TimeZone)
	}
	return nil
}
