package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/sqlrow"
)

const tenantColumns = `id, slug, plan, status, created_at, updated_at, rate_limits, quota, time_zone`

func scanTenant(sc sqlrow.Scanner) (*keyward.Tenant, error) {
	var t keyward.Tenant
	var created, updated int64
	var rates, quota *string
	if err := sc.Scan(&t.ID, &t.Slug, &t.Plan, &t.Status, &created, &updated, &rates, &quota, &t.TimeZone); err != nil {
		return nil, err
	}
	var err error
	if t.RateLimits, err = sqlrow.ReadRateLimits(rates); err != nil {
		return nil, fmt.Errorf("tenant %s: rate limits: %w", t.ID, err)
	}
	if t.Quota, err = sqlrow.ReadQuota(quota); err != nil {
		return nil, fmt.Errorf("tenant %s: quota: %w", t.ID, err)
	}
	t.CreatedAt = sqlrow.FromMicros(created)
	t.UpdatedAt = sqlrow.FromMicros(updated)
	return &t, nil
}

// CreateTenant stores a new tenant, its audit entry and its change. A taken
// id or slug is a CodeConflict; a plan that does not exist, or any plan but
// the default one for the system tenant, a CodeInvalidRequest naming plan.
func (s *Store) CreateTenant(ctx context.Context, t *keyward.Tenant, by keyward.Actor) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if err := s.checkTenantPlan(ctx, tx, t.ID, t.Plan); err != nil {
			return err
		}
		rates, err := sqlrow.WriteRateLimits(t.RateLimits)
		if err != nil {
			return err
		}
		quota, err := sqlrow.WriteQuota(t.Quota)
		if err != nil {
			return err
		}
		_, err = s.exec(ctx, tx,
			`INSERT INTO tenants (`+tenantColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.Slug, t.Plan, string(t.Status), t.CreatedAt.UnixMicro(), t.UpdatedAt.UnixMicro(),
			rates, quota, t.TimeZone)
		switch {
		case s.d.Unique(err, "tenants.slug"):
			return keyward.Errorf(keyward.CodeConflict, "The tenant slug %q is taken; choose another.", t.Slug)
		case s.d.Unique(err, "tenants.id"):
			return keyward.Errorf(keyward.CodeConflict, "A tenant with id %q exists.", t.ID)
		case err != nil:
			return err
		}
		return s.record(ctx, tx, t.CreatedAt, by, keyward.ActionTenantCreate, t.ID, t.ID,
			keyward.Change{Kind: keyward.ChangeTenant, ID: t.ID})
	})
}

// Tenant finds a tenant by id or, when no tenant has that id, by slug.
func (s *Store) Tenant(ctx context.Context, idOrSlug string) (*keyward.Tenant, error) {
	t, err := s.tenant(ctx, s.r, idOrSlug)
	return t, s.err(err)
}

// tenant reads a tenant by id or slug, from the read pool or in a
// transaction.
func (s *Store) tenant(ctx context.Context, q querier, idOrSlug string) (*keyward.Tenant, error) {
	if idOrSlug == "" {
		return nil, keyward.Errorf(keyward.CodeNotFound, "No tenant was named; give a tenant id or slug.")
	}
	t, err := scanTenant(s.row(ctx, q,
		`SELECT `+tenantColumns+` FROM tenants WHERE id = ? OR slug = ? ORDER BY id = ? DESC LIMIT 1`,
		idOrSlug, idOrSlug, idOrSlug))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, keyward.Errorf(keyward.CodeNotFound, "Tenant %q was not found.", idOrSlug)
	}
	return t, err
}

// Tenants lists tenants, oldest first (by creation time, then by id).
func (s *Store) Tenants(ctx context.Context, p keyward.Page) ([]*keyward.Tenant, string, error) {
	limit := sqlrow.PageLimit(p.Limit)
	query := `SELECT ` + tenantColumns + ` FROM tenants`
	var args []any
	if p.Cursor != "" {
		c, err := sqlrow.DecodeCursor(sqlrow.CursorTenants, p.Cursor)
		if err != nil {
			return nil, "", err
		}
		query += ` WHERE (created_at, id) > (?, ?)`
		args = append(args, c.N, c.ID)
	}
	query += ` ORDER BY created_at, id LIMIT ?`
	args = append(args, limit+1)

	rows, err := s.query(ctx, s.r, query, args...)
	if err != nil {
		return nil, "", s.err(err)
	}
	defer rows.Close()
	tenants, next, err := sqlrow.ScanPage(rows, limit, sqlrow.CursorTenants, scanTenant,
		func(x *keyward.Tenant) sqlrow.Cursor { return sqlrow.CreatedCursor(x.CreatedAt, x.ID) })
	if err != nil {
		return nil, "", s.err(err)
	}
	return tenants, next, nil
}

// SetTenantStatus suspends or resumes a tenant, writing its audit entry
// (tenant.suspend or tenant.resume) and its change, and returns the tenant as
// stored. A status other than active or suspended is a CodeInvalidRequest.
func (s *Store) SetTenantStatus(ctx context.Context, id string, status keyward.TenantStatus, at time.Time, by keyward.Actor) (*keyward.Tenant, error) {
	var action string
	switch status {
	case keyward.TenantActive:
		action = keyward.ActionTenantResume
	case keyward.TenantSuspended:
		action = keyward.ActionTenantSuspend
	default:
		return nil, keyward.FieldErrorf("status", "must be %q or %q, not %q", keyward.TenantActive, keyward.TenantSuspended, status)
	}
	var out *keyward.Tenant
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx,
			`UPDATE tenants SET status = ?, updated_at = ? WHERE id = ?`,
			string(status), at.UnixMicro(), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return keyward.Errorf(keyward.CodeNotFound, "Tenant %q was not found.", id)
		}
		out, err = s.recordTenant(ctx, tx, at, by, action, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// recordTenant writes the audit entry (action) and the change of a
// change of tenant id in tx, and returns the tenant as stored.
func (s *Store) recordTenant(ctx context.Context, tx *sql.Tx, at time.Time, by keyward.Actor, action, id string) (*keyward.Tenant, error) {
	if err := s.record(ctx, tx, at, by, action, id, id,
		keyward.Change{Kind: keyward.ChangeTenant, ID: id}); err != nil {
		return nil, err
	}
	return s.tenant(ctx, tx, id)
}

// UpdateTenant applies the non-nil fields of u, sets UpdatedAt to at,
// writes the audit entry (tenant.update) and the tenant's change, and
// returns the tenant as stored. An unknown tenant is a CodeNotFound.
func (s *Store) UpdateTenant(ctx context.Context, id string, u keyward.TenantUpdate, at time.Time, by keyward.Actor) (*keyward.Tenant, error) {
	if err := u.Check(); err != nil {
		return nil, err
	}
	var out *keyward.Tenant
	err := s.write(ctx, func(tx *sql.Tx) error {
		t, err := s.tenant(ctx, tx, id)
		if err != nil {
			return err
		}
		if t.ID != id { // found by slug: the API and the command line give ids
			return keyward.Errorf(keyward.CodeNotFound, "Tenant %q was not found.", id)
		}
		if u.RateLimits != nil {
			t.RateLimits = *u.RateLimits
		}
		t.Quota = updatedQuota(t.Quota, u.Quota)
		if u.TimeZone != nil {
			t.TimeZone = *u.TimeZone
		}
		rates, err := sqlrow.WriteRateLimits(t.RateLimits)
		if err != nil {
			return err
		}
		quota, err := sqlrow.WriteQuota(t.Quota)
		if err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `UPDATE tenants SET rate_limits = ?, quota = ?, time_zone = ?, updated_at = ? WHERE id = ?`,
			rates, quota, t.TimeZone, at.UnixMicro(), id); err != nil {
			return err
		}
		out, err = s.recordTenant(ctx, tx, at, by, keyward.ActionTenantUpdate, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
