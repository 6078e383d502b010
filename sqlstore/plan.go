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

const planColumns = `name, capabilities, permissions, api_access, max_keys, created_at, updated_at,
	key_rate_limits, key_quota, tenant_rate_limits, tenant_quota`

func scanPlan(sc sqlrow.Scanner) (*keyward.Plan, error) {
	var p keyward.Plan
	var caps, perms, keyRates, keyQuota, tenantRates, tenantQuota string
	var created, updated int64
	if err := sc.Scan(&p.Name, &caps, &perms, &p.APIAccess, &p.MaxKeys, &created, &updated,
		&keyRates, &keyQuota, &tenantRates, &tenantQuota); err != nil {
		return nil, err
	}
	var err error
	if p.KeyRateLimits, err = sqlrow.ReadRateLimits(&keyRates); err != nil {
		return nil, fmt.Errorf("plan %s: key rate limits: %w", p.Name, err)
	}
	if p.KeyQuota, err = sqlrow.ReadQuota(&keyQuota); err != nil {
		return nil, fmt.Errorf("plan %s: key quota: %w", p.Name, err)
	}
	if p.TenantRateLimits, err = sqlrow.ReadRateLimits(&tenantRates); err != nil {
		return nil, fmt.Errorf("plan %s: tenant rate limits: %w", p.Name, err)
	}
	if p.TenantQuota, err = sqlrow.ReadQuota(&tenantQuota); err != nil {
		return nil, fmt.Errorf("plan %s: tenant quota: %w", p.Name, err)
	}
	if p.Capabilities, err = sqlrow.ReadList(caps); err != nil {
		return nil, fmt.Errorf("plan %s: capabilities: %w", p.Name, err)
	}
	if p.Permissions, err = sqlrow.ReadList(perms); err != nil {
		return nil, fmt.Errorf("plan %s: permissions: %w", p.Name, err)
	}
	p.CreatedAt = sqlrow.FromMicros(created)
	p.UpdatedAt = sqlrow.FromMicros(updated)
	return &p, nil
}

// Plan finds a plan by name.
func (s *Store) Plan(ctx context.Context, name string) (*keyward.Plan, error) {
	p, err := s.plan(ctx, s.r, name)
	return p, s.err(err)
}

// plan reads a plan by name, from the read pool or in a transaction.
func (s *Store) plan(ctx context.Context, q querier, name string) (*keyward.Plan, error) {
	p, err := scanPlan(s.row(ctx, q, `SELECT `+planColumns+` FROM plans WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, keyward.Errorf(keyward.CodeNotFound, "Plan %q was not found.", name)
	}
	return p, err
}

// Plans lists every plan, by name: a database has few, so the list has no
// pages.
func (s *Store) Plans(ctx context.Context) ([]*keyward.Plan, error) {
	plans, err := s.plans(ctx, s.r)
	return plans, s.err(err)
}

// plans reads every plan, by name, from the read pool or in a transaction.
func (s *Store) plans(ctx context.Context, q querier) ([]*keyward.Plan, error) {
	rows, err := s.query(ctx, q, `SELECT `+planColumns+` FROM plans ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	plans := []*keyward.Plan{}
	for rows.Next() {
		p, err := scanPlan(rows)
		if err != nil {
			return nil, err
		}
		plans = append(plans, p)
	}
	return plans, rows.Err()
}

// CreatePlan stores a new plan, its audit entry (plan.create, of no
// tenant) and its change. A taken name is a CodeConflict.
func (s *Store) CreatePlan(ctx context.Context, p *keyward.Plan, by keyward.Actor) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		cols, err := planJSON(p)
		if err != nil {
			return err
		}
		_, err = s.exec(ctx, tx, `INSERT INTO plans (`+planColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			p.Name, cols.caps, cols.perms, p.APIAccess, p.MaxKeys, p.CreatedAt.UnixMicro(), p.UpdatedAt.UnixMicro(),
			cols.keyRates, cols.keyQuota, cols.tenantRates, cols.tenantQuota)
		if s.d.Unique(err, "plans.name") {
			return &keyward.Error{Code: keyward.CodeConflict, Field: "name",
				Message: fmt.Sprintf("name: a plan named %q exists already; change it, or choose another name", p.Name), Err: err}
		}
		if err != nil {
			return err
		}
		return s.record(ctx, tx, p.CreatedAt, by, keyward.ActionPlanCreate, "", p.Name,
			keyward.Change{Kind: keyward.ChangePlan, ID: p.Name})
	})
}

// planText is the text columns of a plan: JSON lists and quotas.
type planText struct {
	caps, perms, keyRates, keyQuota, tenantRates, tenantQuota string
}

// planJSON returns the text columns of a plan: rate limits of none are
// stored as [], a quota of none as ”.
func planJSON(p *keyward.Plan) (c planText, err error) {
	if c.caps, err = sqlrow.WriteList(p.Capabilities); err != nil {
		return c, err
	}
	if c.perms, err = sqlrow.WriteList(p.Permissions); err != nil {
		return c, err
	}
	if c.keyRates, err = rateLimitsText(p.KeyRateLimits); err != nil {
		return c, err
	}
	if c.keyQuota, err = quotaText(p.KeyQuota); err != nil {
		return c, err
	}
	if c.tenantRates, err = rateLimitsText(p.TenantRateLimits); err != nil {
		return c, err
	}
	c.tenantQuota, err = quotaText(p.TenantQuota)
	return c, err
}

// rateLimitsText is a plan's rate limits as stored: [] for none.
func rateLimitsText(limits []keyward.RateLimit) (string, error) {
	if limits == nil {
		limits = []keyward.RateLimit{}
	}
	text, err := sqlrow.WriteRateLimits(limits)
	if err != nil {
		return "", err
	}
	return *text, nil
}

// quotaText is a plan's quota as stored: ” for none.
func quotaText(q *keyward.Quota) (string, error) {
	text, err := sqlrow.WriteQuota(q)
	if text == nil || err != nil {
		return "", err
	}
	return *text, nil
}

// UpdatePlan applies the non-nil fields of u, sets UpdatedAt to at, writes
// the audit entry (plan.update, of no tenant) and the change, and returns
// the plan as stored. An unknown plan is a CodeNotFound.
func (s *Store) UpdatePlan(ctx context.Context, name string, u keyward.PlanUpdate, at time.Time, by keyward.Actor) (*keyward.Plan, error) {
	var out *keyward.Plan
	err := s.write(ctx, func(tx *sql.Tx) error {
		p, err := s.plan(ctx, tx, name)
		if err != nil {
			return err
		}
		if u.Capabilities != nil {
			p.Capabilities = *u.Capabilities
		}
		if u.Permissions != nil {
			p.Permissions = *u.Permissions
		}
		if u.APIAccess != nil {
			p.APIAccess = *u.APIAccess
		}
		if u.MaxKeys != nil {
			p.MaxKeys = *u.MaxKeys
		}
		if u.KeyRateLimits != nil {
			p.KeyRateLimits = *u.KeyRateLimits
		}
		if u.TenantRateLimits != nil {
			p.TenantRateLimits = *u.TenantRateLimits
		}
		p.KeyQuota = updatedQuota(p.KeyQuota, u.KeyQuota)
		p.TenantQuota = updatedQuota(p.TenantQuota, u.TenantQuota)
		c, err := planJSON(p)
		if err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `UPDATE plans SET capabilities = ?, permissions = ?, api_access = ?, max_keys = ?,
			key_rate_limits = ?, key_quota = ?, tenant_rate_limits = ?, tenant_quota = ?, updated_at = ? WHERE name = ?`,
			c.caps, c.perms, p.APIAccess, p.MaxKeys, c.keyRates, c.keyQuota, c.tenantRates, c.tenantQuota,
			at.UnixMicro(), name); err != nil {
			return err
		}
		if err := s.record(ctx, tx, at, by, keyward.ActionPlanUpdate, "", name,
			keyward.Change{Kind: keyward.ChangePlan, ID: name}); err != nil {
			return err
		}
		out, err = s.plan(ctx, tx, name)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// updatedQuota is a quota as an update leaves it: old when the update
// has none, none when it is the zero Quota, else the update's.
func updatedQuota(old, u *keyward.Quota) *keyward.Quota {
	switch {
	case u == nil:
		return old
	case *u == (keyward.Quota{}):
		return nil
	}
	return u
}

// checkTenantPlan refuses, with a CodeInvalidRequest naming plan, a plan
// that does not exist, and any plan but the default one for the system
// tenant.
func (s *Store) checkTenantPlan(ctx context.Context, tx *sql.Tx, tenantID, plan string) error {
	if tenantID == keyward.SystemTenantID && plan != keyward.DefaultPlan {
		return keyward.FieldErrorf("plan", "the system tenant, which holds the root keys, stays on the %q plan, so that no plan can lock them out", keyward.DefaultPlan)
	}
	_, err := s.plan(ctx, tx, plan)
	if keyward.ErrorCode(err) != keyward.CodeNotFound {
		return err
	}
	plans, err := s.plans(ctx, tx)
	if err != nil {
		return err
	}
	names := make([]string, len(plans))
	for i, p := range plans {
		names[i] = fmt.Sprintf("%q", p.Name)
	}
	return keyward.FieldErrorf("plan", "no plan is named %q; choose one of %s, or create it first (POST /v1/plans, or keyward plans create)",
		plan, strings.Join(names, ", "))
}

// tenantExists returns a CodeNotFound unless a tenant has the id.
func (s *Store) tenantExists(ctx context.Context, tx *sql.Tx, id string) error {
	var exists bool
	if err := s.row(ctx, tx, `SELECT EXISTS (SELECT 1 FROM tenants WHERE id = ?)`, id).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		return keyward.Errorf(keyward.CodeNotFound, "Tenant %q was not found.", id)
	}
	return nil
}

// SetTenantPlan moves a tenant to a plan, sets its UpdatedAt to at, writes
// the audit entry (tenant.set_plan, whose Related is the plan's name) and
// the tenant's change, and returns the tenant as stored. An unknown tenant
// is a CodeNotFound; a plan that does not exist, or any plan but the
// default one for the system tenant, a CodeInvalidRequest naming plan.
func (s *Store) SetTenantPlan(ctx context.Context, tenantID, plan string, at time.Time, by keyward.Actor) (*keyward.Tenant, error) {
	var out *keyward.Tenant
	err := s.write(ctx, func(tx *sql.Tx) error {
		if err := s.tenantExists(ctx, tx, tenantID); err != nil {
			return err
		}
		if err := s.checkTenantPlan(ctx, tx, tenantID, plan); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `UPDATE tenants SET plan = ?, updated_at = ? WHERE id = ?`,
			plan, at.UnixMicro(), tenantID); err != nil {
			return err
		}
		if err := s.recordRelated(ctx, tx, at, by, keyward.ActionTenantSetPlan, tenantID, tenantID, plan,
			keyward.Change{Kind: keyward.ChangeTenant, ID: tenantID}); err != nil {
			return err
		}
		var err error
		out, err = s.tenant(ctx, tx, tenantID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
