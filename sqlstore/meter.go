package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/keyward/keyward"
)

// errRefused rolls back the transaction of a Spend that a counter refused.
var errRefused = errors.New("sqlstore: spend refused")

// Spend takes a request's cost from the key's credits and from the key's
// and the tenant's quota counters, in one write transaction: a counter
// that refuses rolls the others back, so that a refused request costs
// nothing. Each counter is changed by a conditional statement (credits
// stay at 0 or more, a count at its limit or less), not read and written
// back, so that spends on several nodes at once never overspend, and a
// change of the key's credits by the API is not undone by a spend under
// way. A Check runs the same statements and rolls them all back.
func (s *Store) Spend(ctx context.Context, sp keyward.Spend) (keyward.Spent, error) {
	var out keyward.Spent
	// No change is recorded, so the feed's write lock is not taken: spends
	// on PostgreSQL run at once, each counter's row locked by its update.
	err := s.inTx(ctx, false, func(tx *sql.Tx) error {
		out = keyward.Spent{Allowed: true}
		if sp.Credits {
			remaining, ok, err := s.spendCredits(ctx, tx, sp)
			if err != nil {
				return err
			}
			if !ok {
				out = keyward.Spent{Refused: keyward.SpentCredits, CreditsRemaining: remaining}
				return errRefused
			}
			out.CreditsRemaining = remaining
		}
		for _, q := range []struct {
			quota   *keyward.QuotaSpend
			subject string
			used    *int64
			refused string
		}{
			{sp.KeyQuota, keyward.QuotaSubject('k', sp.KeyID), &out.KeyQuotaUsed, keyward.SpentKeyQuota},
			{sp.TenantQuota, keyward.QuotaSubject('t', sp.TenantID), &out.TenantQuotaUsed, keyward.SpentTenantQuota},
		} {
			if q.quota == nil {
				continue
			}
			used, ok, err := s.spendQuota(ctx, tx, q.subject, q.quota, 1) // a quota counts requests
			if err != nil {
				return err
			}
			*q.used = used
			if !ok {
				refused := keyward.Spent{Refused: q.refused, KeyQuotaUsed: out.KeyQuotaUsed, TenantQuotaUsed: out.TenantQuotaUsed}
				out = refused
				return errRefused
			}
		}
		if sp.Check {
			return errRefused // decided: roll back what it took
		}
		return nil
	})
	if errors.Is(err, errRefused) {
		return out, nil
	}
	return out, s.err(err)
}

// spendCredits takes sp.Cost from the key's credits, refilling them first
// when their refill interval began after their last refill. It returns
// the credits left, and false, with the credits as they are, when there
// are not enough. A key without credits (taken away since it was cached)
// is not refused.
func (s *Store) spendCredits(ctx context.Context, tx *sql.Tx, sp keyward.Spend) (int64, bool, error) {
	day, month, at := sp.DayStart.UnixMicro(), sp.MonthStart.UnixMicro(), sp.At.UnixMicro()
	// due is true when the credits are to be refilled before the spend.
	// The parameters are cast for PostgreSQL, which would take them for
	// text in a CASE.
	const due = `(credits_refill_amount IS NOT NULL AND COALESCE(credits_refilled_at, 0) <
		CASE credits_refill_interval WHEN 'day' THEN CAST(? AS BIGINT) ELSE CAST(? AS BIGINT) END)`
	var remaining int64
	err := s.row(ctx, tx, `UPDATE keys SET
		credits_remaining = CASE WHEN `+due+` THEN credits_refill_amount ELSE credits_remaining END - CAST(? AS BIGINT),
		credits_refilled_at = CASE WHEN `+due+` THEN CAST(? AS BIGINT) ELSE credits_refilled_at END
		WHERE id = ? AND credits_remaining IS NOT NULL
		AND CASE WHEN `+due+` THEN credits_refill_amount ELSE credits_remaining END >= CAST(? AS BIGINT)
		RETURNING credits_remaining`,
		day, month, sp.Cost, day, month, at, sp.KeyID, day, month, sp.Cost).Scan(&remaining)
	if err == nil {
		return remaining, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, false, err
	}
	// Not enough credits, or none at all.
	var left *int64
	err = s.row(ctx, tx, `SELECT credits_remaining FROM keys WHERE id = ?`, sp.KeyID).Scan(&left)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, false, keyward.Errorf(keyward.CodeNotFound, "Key %q was not found.", sp.KeyID)
	case err != nil:
		return 0, false, err
	case left == nil:
		return 0, true, nil
	}
	return *left, false, nil
}

// spendQuota counts cost against a subject's quota in its current period.
// It returns the count, and false, with the count as it is, when the
// limit would be passed.
func (s *Store) spendQuota(ctx context.Context, tx *sql.Tx, subject string, q *keyward.QuotaSpend, cost int64) (int64, bool, error) {
	if cost > q.Limit {
		used, err := s.quotaUsed(ctx, tx, subject, q.Period)
		return used, false, err
	}
	var used int64
	err := s.row(ctx, tx, `INSERT INTO quota_usage (subject, period, used) VALUES (?, ?, ?)
		ON CONFLICT (subject, period) DO UPDATE SET used = quota_usage.used + ?
		WHERE quota_usage.used + ? <= ?
		RETURNING used`,
		subject, q.Period, cost, cost, cost, q.Limit).Scan(&used)
	if errors.Is(err, sql.ErrNoRows) {
		used, err := s.quotaUsed(ctx, tx, subject, q.Period)
		return used, false, err
	}
	return used, err == nil, err
}

// QuotaUsed returns how many requests a subject made in a period: 0
// before the first.
func (s *Store) QuotaUsed(ctx context.Context, subject, period string) (int64, error) {
	used, err := s.quotaUsed(ctx, nil, subject, period)
	return used, s.err(err)
}

// quotaUsed is QuotaUsed in tx, or on the read pool when tx is nil.
func (s *Store) quotaUsed(ctx context.Context, tx *sql.Tx, subject, period string) (int64, error) {
	var q querier = s.r
	if tx != nil {
		q = tx
	}
	var used int64
	err := s.row(ctx, q, `SELECT used FROM quota_usage WHERE subject = ? AND period = ?`, subject, period).Scan(&used)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return used, err
}
