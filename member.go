package keyward

import (
	"context"
	"slices"
	"time"
)

// Role is what a member may manage in their tenant (docs/access.md):
// viewer < developer < admin < owner.
type Role string

// Roles, from the least to the most.
const (
	RoleViewer    Role = "viewer"
	RoleDeveloper Role = "developer"
	RoleAdmin     Role = "admin"
	RoleOwner     Role = "owner"
)

// Roles lists every role, from the least to the most.
func Roles() []Role { return []Role{RoleViewer, RoleDeveloper, RoleAdmin, RoleOwner} }

// Valid reports whether r is one of the four roles.
func (r Role) Valid() bool { return r.Rank() > 0 }

// Rank orders the roles: 1 for viewer up to 4 for owner, 0 for anything
// else.
func (r Role) Rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleDeveloper:
		return 2
	case RoleAdmin:
		return 3
	case RoleOwner:
		return 4
	}
	return 0
}

// MemberStatus is whether a member's keys may use their permissions.
type MemberStatus string

// Member statuses.
const (
	MemberActive    MemberStatus = "active"
	MemberSuspended MemberStatus = "suspended"
)

// Member is a person in a tenant. A key that belongs to a member
// (Key.MemberID) may use only the permissions the member holds at the time
// of the request, and nothing while the member is suspended.
type Member struct {
	ID          string       `json:"id"`
	TenantID    string       `json:"tenant_id"`
	Email       string       `json:"email"`
	Name        string       `json:"name"`
	Role        Role         `json:"role"`
	Permissions []string     `json:"permissions"`
	ExternalID  string       `json:"external_id"` // the operator's own user id, or ""
	Status      MemberStatus `json:"status"`
	CreatedAt   time.Time    `json:"created_at"`
	UpdatedAt   time.Time    `json:"updated_at"`
}

// HasPermission reports whether the member holds permission p.
func (m *Member) HasPermission(p string) bool {
	return slices.Contains(m.Permissions, p)
}

// MemberUpdate changes a member; nil fields are left as they are.
type MemberUpdate struct {
	Email       *string
	Name        *string
	Role        *Role
	Permissions *[]string
	ExternalID  *string // "" clears it
	Status      *MemberStatus
}

// MemberRemoval is what removing a member did to the keys that belonged to
// them.
type MemberRemoval struct {
	Member *Member `json:"member"` // the member as it was before removal
	// Revoked is how many unrevoked keys of the member were revoked; Moved
	// how many were moved to the member named by TransferredTo instead.
	Revoked       int    `json:"revoked"`
	Moved         int    `json:"moved"`
	TransferredTo string `json:"transferred_to,omitempty"`
}

// MemberLookup finds one member: what a verifier needs of the members.
// Errors are those of Store.
type MemberLookup interface {
	// Member finds a member by id.
	Member(ctx context.Context, id string) (*Member, error)
}

// MemberStore keeps the members of tenants. Errors are those of Store.
// Every write keeps the rule that a tenant with members has at least one
// active owner: a change that would leave none is a CodeConflict.
type MemberStore interface {
	MemberLookup
	// Members lists a tenant's members, or every tenant's when tenantID is
	// "", oldest first.
	Members(ctx context.Context, tenantID string, p Page) (members []*Member, next string, err error)
	// CreateMember stores a new member. The caller fills every field. A
	// taken email (compared case-insensitively) or external id in the
	// tenant is a CodeConflict whose Field names it, as is a first member
	// who is not an active owner. An unknown tenant is a CodeNotFound; a
	// role or status that is not one of the constants a CodeInvalidRequest.
	CreateMember(ctx context.Context, m *Member, by Actor) error
	// UpdateMember applies the non-nil fields of u and returns the member as
	// stored. Demoting or suspending the last active owner is a
	// CodeConflict, as is a taken email or external id.
	UpdateMember(ctx context.Context, id string, u MemberUpdate, at time.Time, by Actor) (*Member, error)
	// RemoveMember deletes a member and, in the same transaction, revokes
	// every unrevoked key that belongs to them, or, when transferTo is not
	// "", moves those keys to that member (an active member of the same
	// tenant, else CodeInvalidRequest naming transfer_keys_to). Each key
	// revoked or moved gets its own audit entry (key.revoke, or
	// key.transfer whose Related is transferTo) and change, beside the
	// member's (member.remove). Removing the last active owner is a
	// CodeConflict.
	RemoveMember(ctx context.Context, id, transferTo string, at time.Time, by Actor) (*MemberRemoval, error)
}
