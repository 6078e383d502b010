package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/sqlrow"
)

const memberColumns = `id, tenant_id, email, name, role, permissions, external_id, status, created_at, updated_at`

func scanMember(sc sqlrow.Scanner) (*keyward.Member, error) {
	var m keyward.Member
	var perms string
	var created, updated int64
	if err := sc.Scan(&m.ID, &m.TenantID, &m.Email, &m.Name, &m.Role, &perms, &m.ExternalID, &m.Status, &created, &updated); err != nil {
		return nil, err
	}
	var err error
	if m.Permissions, err = sqlrow.ReadList(perms); err != nil {
		return nil, fmt.Errorf("member %s: permissions: %w", m.ID, err)
	}
	m.CreatedAt = sqlrow.FromMicros(created)
	m.UpdatedAt = sqlrow.FromMicros(updated)
	return &m, nil
}

// emailKey is how a member's email is compared with the others of its
// tenant (column email_lower): lowercased in Go, so that both engines, and
// every script, agree.
func emailKey(email string) string { return strings.ToLower(email) }

// checkMember refuses a role or status that is not one of keyward's.
func checkMember(role keyward.Role, status keyward.MemberStatus) error {
	if !role.Valid() {
		return keyward.FieldErrorf("role", "must be one of %s, not %q", rolesText(), role)
	}
	if status != keyward.MemberActive && status != keyward.MemberSuspended {
		return keyward.FieldErrorf("status", "must be %q or %q, not %q", keyward.MemberActive, keyward.MemberSuspended, status)
	}
	return nil
}

// rolesText lists the roles for a message: "viewer, developer, admin or owner".
func rolesText() string {
	roles := keyward.Roles()
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// activeOwner reports whether a member with this role and status counts
// for the rule that a tenant keeps an active owner.
func activeOwner(role keyward.Role, status keyward.MemberStatus) bool {
	return role == keyward.RoleOwner && status == keyward.MemberActive
}

// memberConflict turns the violation of a member's unique column into a
// CodeConflict that names the field, or returns err unchanged.
func (s *Store) memberConflict(err error, m *keyward.Member) error {
	switch {
	case s.d.Unique(err, "members.email_lower"):
		return &keyward.Error{Code: keyward.CodeConflict, Field: "email",
			Message: fmt.Sprintf("email: tenant %q has a member with email %q already (emails are compared without regard to case); give another", m.TenantID, m.Email), Err: err}
	case s.d.Unique(err, "members.external_id"):
		return &keyward.Error{Code: keyward.CodeConflict, Field: "external_id",
			Message: fmt.Sprintf("external_id: tenant %q has a member with external id %q already; give another", m.TenantID, m.ExternalID), Err: err}
	case s.d.Unique(err, "members.id"):
		return keyward.Errorf(keyward.CodeConflict, "A member with id %q exists.", m.ID)
	}
	return err
}

// Member finds a member by id.
func (s *Store) Member(ctx context.Context, id string) (*keyward.Member, error) {
	m, err := s.member(ctx, s.r, id)
	return m, s.err(err)
}

// member reads a member by id, from the read pool or in a transaction.
func (s *Store) member(ctx context.Context, q querier, id string) (*keyward.Member, error) {
	m, err := scanMember(s.row(ctx, q, `SELECT `+memberColumns+` FROM members WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, keyward.Errorf(keyward.CodeNotFound, "Member %q was not found.", id)
	}
	return m, err
}

// Members lists the members of a tenant, or of every tenant when tenantID
// is "", oldest first (by creation time, then by id).
func (s *Store) Members(ctx context.Context, tenantID string, p keyward.Page) ([]*keyward.Member, string, error) {
	limit := sqlrow.PageLimit(p.Limit)
	var w conditions
	if tenantID != "" {
		w.add(`tenant_id = ?`, tenantID)
	}
	if p.Cursor != "" {
		c, err := sqlrow.DecodeCursor(sqlrow.CursorMembers, p.Cursor)
		if err != nil {
			return nil, "", err
		}
		w.add(`(created_at, id) > (?, ?)`, c.N, c.ID)
	}
	w.args = append(w.args, limit+1)
	rows, err := s.query(ctx, s.r, `SELECT `+memberColumns+` FROM members`+w.where()+` ORDER BY created_at, id LIMIT ?`, w.args...)
	if err != nil {
		return nil, "", s.err(err)
	}
	defer rows.Close()
	members, next, err := sqlrow.ScanPage(rows, limit, sqlrow.CursorMembers, scanMember,
		func(x *keyward.Member) sqlrow.Cursor { return sqlrow.CreatedCursor(x.CreatedAt, x.ID) })
	if err != nil {
		return nil, "", s.err(err)
	}
	return members, next, nil
}

// activeOwners counts the active owners of a tenant in tx.
func (s *Store) activeOwners(ctx context.Context, tx *sql.Tx, tenantID string) (int, error) {
	var n int
	err := s.row(ctx, tx, `SELECT count(*) FROM members WHERE tenant_id = ? AND role = ? AND status = ?`,
		tenantID, string(keyward.RoleOwner), string(keyward.MemberActive)).Scan(&n)
	return n, err
}

// lastOwner is the CodeConflict of a change that would leave a tenant
// without an active owner; what says what the change was ("demote",
// "suspend", "remove").
func lastOwner(what string, m *keyward.Member) error {
	return keyward.Errorf(keyward.CodeConflict,
		"Member %q (%q) is the last active owner of tenant %q, and a tenant with members keeps at least one; make another member an owner first, then %s this one.",
		m.ID, m.Email, m.TenantID, what)
}

// CreateMember stores a new member, its audit entry (member.add) and its
// change. A taken id, email (compared case-insensitively) or external id
// in the tenant is a CodeConflict that names the field, as is a first
// member of a tenant who is not an active owner; an unknown tenant is a
// CodeNotFound; a role or status that is not one of keyward's a
// CodeInvalidRequest.
func (s *Store) CreateMember(ctx context.Context, m *keyward.Member, by keyward.Actor) error {
	if err := checkMember(m.Role, m.Status); err != nil {
		return err
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		if err := s.tenantExists(ctx, tx, m.TenantID); err != nil {
			return err
		}
		if !activeOwner(m.Role, m.Status) {
			var members int
			if err := s.row(ctx, tx, `SELECT count(*) FROM members WHERE tenant_id = ?`, m.TenantID).Scan(&members); err != nil {
				return err
			}
			if members == 0 {
				return keyward.Errorf(keyward.CodeConflict,
					"Tenant %q has no members yet, and its first member must be an active owner, so that someone can manage it; add %q as an active %s, or add an owner before them.",
					m.TenantID, m.Email, keyward.RoleOwner)
			}
		}
		perms, err := sqlrow.WriteList(m.Permissions)
		if err != nil {
			return err
		}
		_, err = s.exec(ctx, tx, `INSERT INTO members (`+memberColumns+`, email_lower) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			m.ID, m.TenantID, m.Email, m.Name, string(m.Role), perms, m.ExternalID, string(m.Status),
			m.CreatedAt.UnixMicro(), m.UpdatedAt.UnixMicro(), emailKey(m.Email))
		if err != nil {
			return s.memberConflict(err, m)
		}
		return s.record(ctx, tx, m.CreatedAt, by, keyward.ActionMemberAdd, m.TenantID, m.ID,
			keyward.Change{Kind: keyward.ChangeMember, ID: m.ID})
	})
}

// UpdateMember applies the non-nil fields of u, sets UpdatedAt to at,
// writes the audit entry (member.update) and the change, and returns the
// member as stored. Demoting or suspending the last active owner of the
// tenant is a CodeConflict, as is an email or external id that another
// member of the tenant has; a role or status that is not one of keyward's
// is a CodeInvalidRequest.
func (s *Store) UpdateMember(ctx context.Context, id string, u keyward.MemberUpdate, at time.Time, by keyward.Actor) (*keyward.Member, error) {
	var out *keyward.Member
	err := s.write(ctx, func(tx *sql.Tx) error {
		m, err := s.member(ctx, tx, id)
		if err != nil {
			return err
		}
		was := *m
		if u.Email != nil {
			m.Email = *u.Email
		}
		if u.Name != nil {
			m.Name = *u.Name
		}
		if u.Role != nil {
			m.Role = *u.Role
		}
		if u.Permissions != nil {
			m.Permissions = *u.Permissions
		}
		if u.ExternalID != nil {
			m.ExternalID = *u.ExternalID
		}
		if u.Status != nil {
			m.Status = *u.Status
		}
		if err := checkMember(m.Role, m.Status); err != nil {
			return err
		}
		if activeOwner(was.Role, was.Status) && !activeOwner(m.Role, m.Status) {
			owners, err := s.activeOwners(ctx, tx, m.TenantID)
			if err != nil {
				return err
			}
			if owners <= 1 {
				what := "demote"
				if m.Role == keyward.RoleOwner {
					what = "suspend"
				}
				return lastOwner(what, &was)
			}
		}
		perms, err := sqlrow.WriteList(m.Permissions)
		if err != nil {
			return err
		}
		_, err = s.exec(ctx, tx, `UPDATE members SET email = ?, email_lower = ?, name = ?, role = ?,
			permissions = ?, external_id = ?, status = ?, updated_at = ? WHERE id = ?`,
			m.Email, emailKey(m.Email), m.Name, string(m.Role), perms, m.ExternalID, string(m.Status), at.UnixMicro(), id)
		if err != nil {
			return s.memberConflict(err, m)
		}
		if err := s.record(ctx, tx, at, by, keyward.ActionMemberUpdate, m.TenantID, id,
			keyward.Change{Kind: keyward.ChangeMember, ID: id}); err != nil {
			return err
		}
		out, err = s.member(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RemoveMember deletes a member and, in the same transaction, revokes every
// unrevoked key that belongs to them, or, when transferTo is not "", moves
// those keys to that member. Each key revoked or moved gets its own audit
// entry (key.revoke, or key.transfer whose Related is the new member) and
// change; the member gets member.remove (Related: transferTo) and a change,
// written last. Revoked keys keep the removed member's id: it says whose
// they were.
//
// A member who does not exist is a CodeNotFound; the last active owner of
// the tenant a CodeConflict; a transferTo that is the member removed, or
// not an active member of the same tenant, a CodeInvalidRequest naming
// transfer_keys_to. Nothing is changed then.
func (s *Store) RemoveMember(ctx context.Context, id, transferTo string, at time.Time, by keyward.Actor) (*keyward.MemberRemoval, error) {
	var out *keyward.MemberRemoval
	err := s.write(ctx, func(tx *sql.Tx) error {
		m, err := s.member(ctx, tx, id)
		if err != nil {
			return err
		}
		if activeOwner(m.Role, m.Status) {
			owners, err := s.activeOwners(ctx, tx, m.TenantID)
			if err != nil {
				return err
			}
			if owners <= 1 {
				return lastOwner("remove", m)
			}
		}
		if transferTo != "" {
			if err := s.checkTransfer(ctx, tx, m, transferTo); err != nil {
				return err
			}
		}
		removal := &keyward.MemberRemoval{Member: m, TransferredTo: transferTo}
		// The keys' audit entries and changes first, while the keys still
		// show what they were, then the keys themselves.
		action, related := keyward.ActionKeyRevoke, ""
		if transferTo != "" {
			action, related = keyward.ActionKeyTransfer, transferTo
		}
		const ofMember = ` FROM keys WHERE member_id = ? AND member_id <> '' AND status <> ? ORDER BY id`
		revoked := string(keyward.KeyRevoked)
		if _, err := s.exec(ctx, tx, `INSERT INTO audit_log (at, actor, actor_ip, actor_member, action, tenant_id, target, related)
			SELECT CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), tenant_id, id, CAST(? AS TEXT)`+ofMember,
			at.UnixMicro(), by.ID, by.IP, by.MemberID, action, related, id, revoked); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO changes (kind, id, at)
			SELECT CAST(? AS TEXT), id, CAST(? AS BIGINT)`+ofMember,
			keyward.ChangeKey, at.UnixMicro(), id, revoked); err != nil {
			return err
		}
		// The keys' ids, for their webhook events once they changed.
		ids, err := s.ids(ctx, tx, `SELECT id`+ofMember, id, revoked)
		if err != nil {
			return err
		}
		var res sql.Result
		if transferTo == "" {
			res, err = s.exec(ctx, tx, `UPDATE keys SET status = ?, revoked_at = ?, updated_at = ?
				WHERE member_id = ? AND member_id <> '' AND status <> ?`,
				revoked, at.UnixMicro(), at.UnixMicro(), id, revoked)
		} else {
			res, err = s.exec(ctx, tx, `UPDATE keys SET member_id = ?, updated_at = ?
				WHERE member_id = ? AND member_id <> '' AND status <> ?`,
				transferTo, at.UnixMicro(), id, revoked)
		}
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if transferTo == "" {
			removal.Revoked = int(n)
		} else {
			removal.Moved = int(n)
		}
		keyAction := keyward.ActionKeyRevoke
		if transferTo != "" {
			keyAction = keyward.ActionKeyUpdate
		}
		for _, keyID := range ids {
			if err := s.emitKeyEvent(ctx, tx, at, by, keyAction, keyID, ""); err != nil {
				return err
			}
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM members WHERE id = ?`, id); err != nil {
			return err
		}
		if err := s.recordRelated(ctx, tx, at, by, keyward.ActionMemberRemove, m.TenantID, id, transferTo,
			keyward.Change{Kind: keyward.ChangeMember, ID: id}); err != nil {
			return err
		}
		out = removal
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// checkTransfer refuses to move the keys of m to transferTo unless it is
// another active member of m's tenant.
func (s *Store) checkTransfer(ctx context.Context, tx *sql.Tx, m *keyward.Member, transferTo string) error {
	if transferTo == m.ID {
		return keyward.FieldErrorf("transfer_keys_to", "is the member being removed; name another member of tenant %q, or none to revoke the keys", m.TenantID)
	}
	to, err := s.member(ctx, tx, transferTo)
	switch {
	case keyward.ErrorCode(err) == keyward.CodeNotFound || (err == nil && to.TenantID != m.TenantID):
		return keyward.FieldErrorf("transfer_keys_to", "tenant %q has no member %q; name one of its members", m.TenantID, transferTo)
	case err != nil:
		return err
	case to.Status != keyward.MemberActive:
		return keyward.FieldErrorf("transfer_keys_to", "member %q is %s, and keys can only be moved to an active member; resume them first, or name another", transferTo, to.Status)
	}
	return nil
}
