package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/keyward/keyward"
)

// The statements that set each spend of a batch apart. The batch begins
// a savepoint; a spend that is kept releases it and begins the next
// spend's, in one round trip; one that is undone rolls back to it, which
// leaves it in place for the next. So a batch holds one savepoint at a
// time, however long it is: PostgreSQL slows every session down once one
// holds more than 64 subtransactions.
const (
	beginSpend = `SAVEPOINT spend`
	keepSpend  = `RELEASE SAVEPOINT spend; SAVEPOINT spend`
	undoSpend  = `ROLLBACK TO SAVEPOINT spend`
)

// SpendBatch takes the cost of each request of a batch from its key's
// credits and from its key's and its tenant's quota counters, in one
// write transaction (group commit: one commit, and on SQLite one sync,
// for the whole batch). Each spend runs inside a savepoint: one that a
// counter refuses, a Check, or one whose statements fail is rolled back
// to it, alone, and the others are kept. Each counter is changed by a
// conditional statement (credits stay at 0 or more, a count at its limit
// or less), not read and written back, so that spends on several nodes at
// once never overspend, and a change of the key's credits by the API is
// not undone by a spend under way. A failed commit takes nothing.
//
// The spends are applied in the order of their tenant and key (and, for
// one key, in the batch's order), and each takes its tenant's quota row,
// then its key's, then its key's credits: every batch locks rows in one
// order, so that two batches on two PostgreSQL nodes that touch the same
// keys wait for each other rather than deadlock. A deadlock all the same
// (a quota that only one node's cache knows yet) fails the spend that
// the server picks, which is rolled back to its savepoint: its request is
// refused and took nothing.
func (s *Store) SpendBatch(ctx context.Context, spends []keyward.Spend) ([]keyward.Spent, error) {
	if len(spends) == 1 {
		return s.spendAlone(ctx, spends[0])
	}
	out := make([]keyward.Spent, len(spends))
	if len(spends) == 0 {
		return out, nil
	}
	order := lockOrder(spends)
	// No change is recorded, so the feed's write lock is not taken: spends
	// on PostgreSQL run at once, each counter's row locked by its update.
	err := s.inTx(ctx, false, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, beginSpend); err != nil {
			return err
		}
		for n, i := range order {
			spent, keep, err := s.spendOne(ctx, tx, spends[i])
			if err != nil {
				spent, keep = keyward.Spent{Err: s.err(err)}, false
			}
			out[i] = spent
			next := undoSpend
			if keep {
				if n == len(order)-1 {
					break // the commit keeps it
				}
				next = keepSpend
			}
			if _, err := tx.ExecContext(ctx, next); err != nil {
				return err // the transaction is lost: nothing is taken
			}
		}
		return nil
	})
	if err != nil {
		return nil, s.err(err)
	}
	return out, nil
}

// errUndo rolls back the transaction of a spend alone that is not kept.
var errUndo = errors.New("sqlstore: spend not kept")

// spendAlone is SpendBatch of the one spend sp. The transaction is the
// spend's own, so it needs no savepoint: one that is not kept rolls the
// transaction back. A lone request (a node at low load) so costs the
// round trips it did before spends were batched.
func (s *Store) spendAlone(ctx context.Context, sp keyward.Spend) ([]keyward.Spent, error) {
	out := make([]keyward.Spent, 1)
	err := s.inTx(ctx, false, func(tx *sql.Tx) error {
		spent, keep, err := s.spendOne(ctx, tx, sp)
		if err != nil {
			spent = keyward.Spent{Err: s.err(err)}
		}
		out[0] = spent
		if err != nil || !keep {
			return errUndo
		}
		return nil
	})
	if err != nil && !errors.Is(err, errUndo) {
		return nil, err
	}
	return out, nil
}

// lockOrder returns the indexes of spends in the order SpendBatch applies
// them: by tenant, then key, and in the batch's order for one key.
func lockOrder(spends []keyward.Spend) []int {
	order := make([]int, len(spends))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Or(strings.Compare(spends[a].TenantID, spends[b].TenantID), strings.Compare(spends[a].KeyID, spends[b].KeyID))
	})
	return order
}

// spendOne runs one spend of a batch in tx: the tenant's quota, the key's
// quota, then the key's credits, each refusing the spend when it cannot
// take its part. It reports whether what the spend took is to be kept:
// not when it was refused, or is a Check. When refused, Spent holds the
// refusing counter as it is; the others' parts are rolled back by the
// caller.
func (s *Store) spendOne(ctx context.Context, tx *sql.Tx, sp keyward.Spend) (keyward.Spent, bool, error) {
	out := keyward.Spent{Allowed: true}
	if q := sp.TenantQuota; q != nil {
		used, ok, err := s.spendQuota(ctx, tx, keyward.QuotaSubject('t', sp.TenantID), q, 1) // a quota counts requests
		if err != nil || !ok {
			return keyward.Spent{Refused: keyward.SpentTenantQuota, TenantQuotaUsed: used}, false, err
		}
		out.TenantQuotaUsed = used
	}
	if q := sp.KeyQuota; q != nil {
		used, ok, err := s.spendQuota(ctx, tx, keyward.QuotaSubject('k', sp.KeyID), q, 1)
		if err != nil || !ok {
			return keyward.Spent{Refused: keyward.SpentKeyQuota, KeyQuotaUsed: used}, false, err
		}
		out.KeyQuotaUsed = used
	}
	var credits *creditsLeft
	if sp.Credits {
		left, ok, err := s.spendCredits(ctx, tx, sp)
		if err != nil || !ok {
			return keyward.Spent{Refused: keyward.SpentCredits, CreditsRemaining: left.remaining}, false, err
		}
		out.CreditsRemaining = left.remaining
		if left.taken {
			credits = &left
		}
	}
	// A Check decided the spend; the caller rolls back what it took.
	if sp.Check {
		return out, false, nil
	}
	return out, true, s.emitMeterEvents(ctx, tx, sp, out, credits)
}

// creditsLeft is what a spend of credits left: the credits remaining,
// and their refill amount (nil for none), when taken says that it took
// them; a key without credits took nothing.
type creditsLeft struct {
	remaining int64
	refill    *int64
	taken     bool
}

// spendCredits takes sp.Cost from the key's credits, refilling them first
// when their refill interval began after their last refill. It returns
// the credits left, and false, with the credits as they are, when there
// are not enough. A key without credits (taken away since it was cached)
// is not refused.
func (s *Store) spendCredits(ctx context.Context, tx *sql.Tx, sp keyward.Spend) (creditsLeft, bool, error) {
	day, month, at := sp.DayStart.UnixMicro(), sp.MonthStart.UnixMicro(), sp.At.UnixMicro()
	// due is true when the credits are to be refilled before the spend.
	// The parameters are cast for PostgreSQL, which would take them for
	// text in a CASE.
	const due = `(credits_refill_amount IS NOT NULL AND COALESCE(credits_refilled_at, 0) <
		CASE credits_refill_interval WHEN 'day' THEN CAST(? AS BIGINT) ELSE CAST(? AS BIGINT) END)`
	left := creditsLeft{taken: true}
	err := s.row(ctx, tx, `UPDATE keys SET
		credits_remaining = CASE WHEN `+due+` THEN credits_refill_amount ELSE credits_remaining END - CAST(? AS BIGINT),
		credits_refilled_at = CASE WHEN `+due+` THEN CAST(? AS BIGINT) ELSE credits_refilled_at END
		WHERE id = ? AND credits_remaining IS NOT NULL
		AND CASE WHEN `+due+` THEN credits_refill_amount ELSE credits_remaining END >= CAST(? AS BIGINT)
		RETURNING credits_remaining, credits_refill_amount`,
		day, month, sp.Cost, day, month, at, sp.KeyID, day, month, sp.Cost).Scan(&left.remaining, &left.refill)
	if err == nil {
		return left, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return creditsLeft{}, false, err
	}
	// Not enough credits, or none at all.
	var remaining *int64
	err = s.row(ctx, tx, `SELECT credits_remaining FROM keys WHERE id = ?`, sp.KeyID).Scan(&remaining)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return creditsLeft{}, false, keyward.Errorf(keyward.CodeNotFound, "Key %q was not found.", sp.KeyID)
	case err != nil:
		return creditsLeft{}, false, err
	case remaining == nil:
		return creditsLeft{}, true, nil
	}
	return creditsLeft{remaining: *remaining}, false, nil
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

// emitMeterEvents raises, in tx, the events of a kept spend: quota.threshold
// when the tenant's or the key's count reached a threshold exactly (each
// count is reached by one spend, so once per period), and credits.low when
// the spend took the key's credits from above its low mark to it or below.
func (s *Store) emitMeterEvents(ctx context.Context, tx *sql.Tx, sp keyward.Spend, out keyward.Spent, credits *creditsLeft) error {
	var events []keyward.Event
	add := func(typ string, data any) error {
		b, err := json.Marshal(data)
		events = append(events, keyward.Event{Type: typ, TenantID: sp.TenantID, At: sp.At, Data: b})
		return err
	}
	for _, q := range []struct {
		subject, key string
		spend        *keyward.QuotaSpend
		used         int64
	}{{keyward.SubjectTenant, "", sp.TenantQuota, out.TenantQuotaUsed}, {keyward.SubjectKey, sp.KeyID, sp.KeyQuota, out.KeyQuotaUsed}} {
		if q.spend == nil {
			continue
		}
		if p := keyward.Reached(q.used, q.spend.Limit); p > 0 {
			if err := add(keyward.EventQuotaThreshold, keyward.QuotaThreshold{Subject: q.subject, TenantID: sp.TenantID, KeyID: q.key,
				Percent: p, Used: q.used, Limit: q.spend.Limit, Period: q.spend.Period}); err != nil {
				return err
			}
		}
	}
	if c := credits; c != nil {
		if mark := keyward.LowMark(c.refill); c.remaining <= mark && c.remaining+sp.Cost > mark {
			if err := add(keyward.EventCreditsLow, keyward.CreditsLow{TenantID: sp.TenantID, KeyID: sp.KeyID,
				Remaining: c.remaining, LowMark: mark, Refill: c.refill}); err != nil {
				return err
			}
		}
	}
	for i := range events {
		if err := s.emit(ctx, tx, &events[i]); err != nil {
			return err
		}
	}
	return nil
}
