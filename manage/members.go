package manage

import (
	"context"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// Limits on what a member carries.
const (
	// MaxEmailLen is the longest email address, in bytes (RFC 5321's
	// path limit less its angle brackets).
	MaxEmailLen = 254
	// MaxExternalIDLen is the longest external id, in characters.
	MaxExternalIDLen = 128
)

// CreateMemberInput asks for a new member of a tenant.
type CreateMemberInput struct {
	TenantID    string   `json:"tenant_id,omitempty" description:"tenant id or slug; a tenant's key may leave it out (its own tenant)"`
	Email       string   `json:"email" description:"the member's email address, unique in the tenant (compared case-insensitively)" example:"ada@example.com"`
	Name        string   `json:"name" description:"the member's name, 1 to 100 characters of visible text" example:"Ada Lovelace"`
	Role        string   `json:"role" enum:"owner,admin,developer,viewer" description:"what the member may manage; the first member of a tenant must be an owner"`
	Permissions []string `json:"permissions,omitempty" description:"what the member's keys may use, from the permission catalogue" example:"[\"contacts:write\"]"`
	ExternalID  string   `json:"external_id,omitempty" description:"the member's id in your own user system: 1 to 128 visible characters, unique in the tenant" example:"user_8812"`
}

// UpdateMemberInput changes a member; absent fields stay as they are.
type UpdateMemberInput struct {
	Email       *string   `json:"email,omitempty"`
	Name        *string   `json:"name,omitempty"`
	Role        *string   `json:"role,omitempty" enum:"owner,admin,developer,viewer"`
	Permissions *[]string `json:"permissions,omitempty" description:"replaces the member's permissions; every key of the member loses at once what the member loses"`
	ExternalID  *string   `json:"external_id,omitempty" description:"\"\" removes it"`
	Status      *string   `json:"status,omitempty" enum:"active,suspended" description:"suspended: the member's keys may use nothing, and manage nothing, until the member is active again"`
}

// CreateMember adds a member to a tenant: the given one for root (required),
// the caller's own for a tenant's key.
func (s *Service) CreateMember(ctx context.Context, c Caller, in CreateMemberInput) (*keyward.Member, error) {
	if err := Authorize(c, Manager); err != nil {
		return nil, err
	}
	tenant, err := s.memberTenant(ctx, c, in.TenantID)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	m := &keyward.Member{ID: apikey.NewID("mem"), TenantID: tenant.ID, Status: keyward.MemberActive, CreatedAt: now, UpdatedAt: now}
	if m.Role, err = checkRole(in.Role); err != nil {
		return nil, err
	}
	if err := authorizeMember(c, memberAdd, nil, m.Role); err != nil {
		return nil, err
	}
	if m.Email, err = checkEmail(in.Email); err != nil {
		return nil, err
	}
	if m.Name, err = checkLabel("name", in.Name, `the member's name, such as "Ada Lovelace"`); err != nil {
		return nil, err
	}
	if m.ExternalID, err = checkExternalID(in.ExternalID); err != nil {
		return nil, err
	}
	if m.Permissions, err = s.checkMemberPermissions(ctx, c, in.Permissions, nil); err != nil {
		return nil, err
	}
	if err := s.store.CreateMember(ctx, m, c.Actor); err != nil {
		return nil, err
	}
	s.changed(ctx)
	return m, nil
}

// memberTenant resolves the tenant a member operation is about, as
// tenantFor does; the system tenant, whose keys are the operator's, has no
// members.
func (s *Service) memberTenant(ctx context.Context, c Caller, idOrSlug string) (*keyward.Tenant, error) {
	t, err := s.tenantFor(ctx, c, idOrSlug)
	if err != nil {
		return nil, err
	}
	if t.ID == keyward.SystemTenantID && !c.Root() {
		return nil, keyward.FieldErrorf("tenant_id", "the system tenant's members are the operator's staff, whom only a root key adds; name a customer's tenant")
	}
	return t, nil
}

// Member returns one member of the caller's reach.
func (s *Service) Member(ctx context.Context, c Caller, id string) (*keyward.Member, error) {
	if err := Authorize(c, Manager); err != nil {
		return nil, err
	}
	m, err := s.store.Member(ctx, id)
	if keyward.ErrorCode(err) == keyward.CodeNotFound || (err == nil && !c.inScope(m.TenantID)) {
		return nil, errNotFound("member", id)
	}
	return m, err
}

// Members lists members, oldest first: those of the given tenant, or, for
// root without one, of every tenant; a tenant's key sees its own tenant's.
func (s *Service) Members(ctx context.Context, c Caller, tenantID string, p keyward.Page) ([]*keyward.Member, string, error) {
	if err := Authorize(c, Manager); err != nil {
		return nil, "", err
	}
	if tenantID != "" || !c.Root() {
		t, err := s.tenantFor(ctx, c, tenantID)
		if err != nil {
			return nil, "", err
		}
		tenantID = t.ID
	}
	if err := checkPage(p); err != nil {
		return nil, "", err
	}
	return s.store.Members(ctx, tenantID, p)
}

// UpdateMember changes a member of the caller's reach. What the member
// loses, its keys lose on every node within a second (the change feed).
func (s *Service) UpdateMember(ctx context.Context, c Caller, id string, in UpdateMemberInput) (*keyward.Member, error) {
	m, err := s.Member(ctx, c, id)
	if err != nil {
		return nil, err
	}
	var u keyward.MemberUpdate
	var role keyward.Role
	if in.Role != nil {
		if role, err = checkRole(*in.Role); err != nil {
			return nil, err
		}
		if role != m.Role {
			u.Role = &role
		} else {
			role = ""
		}
	}
	if err := authorizeMember(c, memberChange, m, role); err != nil {
		return nil, err
	}
	if in.Email != nil {
		e, err := checkEmail(*in.Email)
		if err != nil {
			return nil, err
		}
		if e != m.Email {
			u.Email = &e
		}
	}
	if in.Name != nil {
		n, err := checkLabel("name", *in.Name, `the member's name, such as "Ada Lovelace"`)
		if err != nil {
			return nil, err
		}
		if n != m.Name {
			u.Name = &n
		}
	}
	if in.ExternalID != nil {
		x, err := checkExternalID(*in.ExternalID)
		if err != nil {
			return nil, err
		}
		if x != m.ExternalID {
			u.ExternalID = &x
		}
	}
	if in.Permissions != nil {
		p, err := s.checkMemberPermissions(ctx, c, *in.Permissions, m)
		if err != nil {
			return nil, err
		}
		if !sameSet(p, m.Permissions) {
			u.Permissions = &p
		}
	}
	if in.Status != nil {
		st := keyward.MemberStatus(*in.Status)
		if st != keyward.MemberActive && st != keyward.MemberSuspended {
			return nil, keyward.FieldErrorf("status", "%q is not a member's status; use \"active\" or \"suspended\"", *in.Status)
		}
		if st != m.Status {
			u.Status = &st
		}
	}
	if u == (keyward.MemberUpdate{}) {
		return nil, keyward.Errorf(keyward.CodeInvalidRequest,
			"Nothing to change: the request gives no field, or only values the member has already. Send at least one of email, name, role, permissions, external_id or status with a new value.")
	}
	m, err = s.store.UpdateMember(ctx, id, u, s.now().UTC().Truncate(time.Microsecond), c.Actor)
	if err != nil {
		return nil, err
	}
	s.changed(ctx)
	return m, nil
}

// RemoveMember removes a member of the caller's reach and, in the same
// transaction, revokes every unrevoked key that belongs to them, or moves
// those keys to the member transferTo ("" for none), an active member of
// the same tenant. Every node refuses the revoked keys within a second.
func (s *Service) RemoveMember(ctx context.Context, c Caller, id, transferTo string) (*keyward.MemberRemoval, error) {
	m, err := s.Member(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if err := authorizeMember(c, memberRemove, m, ""); err != nil {
		return nil, err
	}
	if transferTo != "" {
		to, err := s.store.Member(ctx, transferTo)
		switch {
		case keyward.ErrorCode(err) == keyward.CodeNotFound || (err == nil && to.TenantID != m.TenantID):
			return nil, keyward.FieldErrorf("transfer_keys_to", "no member with id %q is in this member's tenant; name an active member of the same tenant, or leave it out to revoke the keys", transferTo)
		case err != nil:
			return nil, err
		case to.ID == m.ID:
			return nil, keyward.FieldErrorf("transfer_keys_to", "names the member being removed; name another active member of the tenant, or leave it out to revoke the keys")
		case to.Status != keyward.MemberActive:
			return nil, keyward.FieldErrorf("transfer_keys_to", "member %s is suspended, and its keys could use nothing; resume the member first, or name an active one", to.ID)
		}
		if err := s.authorizeTransfer(ctx, c, m, to); err != nil {
			return nil, err
		}
	}
	r, err := s.store.RemoveMember(ctx, id, transferTo, s.now().UTC().Truncate(time.Microsecond), c.Actor)
	if err != nil {
		return nil, err
	}
	s.changed(ctx)
	return r, nil
}

// authorizeTransfer refuses a caller that is not root the move of member
// m's keys to member to when one of them holds keys:manage and to outranks
// the caller: the key would manage with to's role (authorizeActingAs), and
// its plaintext may be the caller's, who made it or is m.
func (s *Service) authorizeTransfer(ctx context.Context, c Caller, m, to *keyward.Member) error {
	if c.Root() || to.Role.Rank() <= c.Role.Rank() {
		return nil
	}
	p := keyward.Page{Limit: keyward.MaxPageLimit}
	for {
		keys, next, err := s.store.Keys(ctx, keyward.KeyFilter{TenantID: m.TenantID, MemberID: m.ID}, p)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if k.Status == keyward.KeyRevoked {
				continue
			}
			if err := authorizeActingAs(c, to, k.Permissions, "transfer_keys_to"); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		p.Cursor = next
	}
}

// checkMemberPermissions validates the permissions a caller gives a
// member (was: the member as it is, nil for a new one): well-formed, not
// Keyward's own, catalogued once the catalogue has entries, and, for a
// caller that is not root, held by the caller's key when the member did
// not hold them before: a key grants no more than it holds, to a key or to
// a person.
func (s *Service) checkMemberPermissions(ctx context.Context, c Caller, perms []string, was *keyward.Member) ([]string, error) {
	out, err := checkPermissionNames("permissions", perms, "a member")
	if err != nil {
		return nil, err
	}
	if err := checkOwnPermissionsAbsent("permissions", perms, "a member"); err != nil {
		return nil, err
	}
	if err := s.checkCatalogued(ctx, "permissions", perms); err != nil {
		return nil, err
	}
	if c.Root() {
		return out, nil
	}
	for i, p := range perms {
		if (was == nil || !was.HasPermission(p)) && !slices.Contains(c.Permissions, p) {
			field := fmt.Sprintf("permissions[%d]", i)
			return nil, &keyward.Error{Code: keyward.CodeInsufficientPermissions, Field: field,
				Message: fmt.Sprintf("%s: you cannot give a member %q: your key does not hold it, and a key grants only permissions it holds; use a key that holds it, or a root key", field, p)}
		}
	}
	return out, nil
}

// checkRole reads a member's role.
func checkRole(role string) (keyward.Role, error) {
	r := keyward.Role(role)
	switch {
	case role == "":
		return "", keyward.FieldErrorf("role", "is required: owner, admin, developer or viewer")
	case !r.Valid():
		return "", keyward.FieldErrorf("role", "%q is not a role; use owner, admin, developer or viewer", role)
	}
	return r, nil
}

// checkEmail validates an email address: one address alone (no display
// name, no list), local part @ domain, the domain with a dot in it, at
// most MaxEmailLen bytes, in visible text. It is stored as given, trimmed;
// uniqueness in the tenant, regardless of case, is the store's.
func checkEmail(email string) (string, error) {
	e := strings.TrimSpace(email)
	if e == "" {
		return "", keyward.FieldErrorf("email", "is required: the member's email address, such as ada@example.com")
	}
	if err := checkText("email", "", e); err != nil {
		return "", err
	}
	if len(e) > MaxEmailLen {
		return "", keyward.FieldErrorf("email", "is %d bytes long; an email address has at most %d", len(e), MaxEmailLen)
	}
	local, domain, _ := strings.Cut(e, "@")
	a, err := mail.ParseAddress(e)
	if err != nil || a.Name != "" || a.Address != e || strings.ContainsAny(e, " <>") ||
		!strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") ||
		local == "" || len(local) > 64 {
		return "", keyward.FieldErrorf("email", "%q is not an email address; give one address alone, such as ada@example.com", e)
	}
	return e, nil
}

// checkExternalID validates a member's external id: "" for none, or 1 to
// MaxExternalIDLen visible characters without spaces.
func checkExternalID(id string) (string, error) {
	if id == "" {
		return "", nil
	}
	if err := checkText("external_id", "", id); err != nil {
		return "", err
	}
	if n := utf8.RuneCountInString(id); n > MaxExternalIDLen {
		return "", keyward.FieldErrorf("external_id", "is %d characters long; use at most %d", n, MaxExternalIDLen)
	}
	if i := strings.IndexFunc(id, unicode.IsSpace); i >= 0 {
		return "", keyward.FieldErrorf("external_id", "contains a space at character %d; give the id exactly as your user system has it, without spaces", utf8.RuneCountInString(id[:i])+1)
	}
	return id, nil
}
