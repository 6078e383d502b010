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
	ID        string       `json:"id"`
	Slug      string       `json:"slug"`
	Plan      string       `json:"plan"`
	Status    TenantStatus `json:"status"`
	CreatedAt time.Time    `json:"created_at"`
	UpdatedAt time.Time    `json:"updated_at"`
}
