package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/sqlrow"
)

// AuditLog lists the audit entries that match f, newest first: in the order
// they were written, last first.
func (s *Store) AuditLog(ctx context.Context, f keyward.AuditFilter, p keyward.Page) ([]*keyward.AuditEntry, string, error) {
	limit := sqlrow.PageLimit(p.Limit)
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return placeholder(len(args))
	}
	if f.TenantID != "" {
		where = append(where, `tenant_id = `+arg(f.TenantID))
	}
	if f.Target != "" {
		t := arg(f.Target)
		where = append(where, `(target = `+t+` OR related = `+t+`)`)
	}
	if p.Cursor != "" {
		c, err := sqlrow.DecodeCursor(sqlrow.CursorAudit, p.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, `id < `+arg(c.N))
	}
	query := `SELECT id, at, actor, actor_ip, action, tenant_id, target, related FROM audit_log`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	query += ` ORDER BY id DESC LIMIT ` + arg(limit+1)

	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, "", dbError(err)
	}
	defer rows.Close()
	entries := []*keyward.AuditEntry{}
	for rows.Next() {
		var e keyward.AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.ActorIP, &e.Action, &e.TenantID, &e.Target, &e.Related); err != nil {
			return nil, "", dbError(err)
		}
		e.At = sqlrow.FromMicros(at)
		entries = append(entries, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, "", dbError(err)
	}
	var next string
	if len(entries) > limit {
		entries = entries[:limit]
		next = sqlrow.EncodeCursor(sqlrow.CursorAudit, sqlrow.Cursor{N: entries[limit-1].ID})
	}
	return entries, next, nil
}

// Changes returns up to limit changes with a sequence number above after, in
// order. A limit of zero or less means keyward.DefaultPageLimit.
//
// A change is visible once the transaction that wrote it has committed, and
// writers commit in sequence order (see write): a follower that asks for the
// changes after the last number it saw misses none.
func (s *Store) Changes(ctx context.Context, after int64, limit int) ([]keyward.Change, error) {
	if limit <= 0 {
		limit = keyward.DefaultPageLimit
	}
	rows, err := s.pool.Query(ctx,
		`SELECT seq, kind, id, at FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
	if err != nil {
		return nil, dbError(err)
	}
	defer rows.Close()
	changes := []keyward.Change{}
	for rows.Next() {
		var c keyward.Change
		var at int64
		if err := rows.Scan(&c.Seq, &c.Kind, &c.ID, &at); err != nil {
			return nil, dbError(err)
		}
		c.At = sqlrow.FromMicros(at)
		changes = append(changes, c)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(err)
	}
	return changes, nil
}

// LastChange returns the highest sequence number in the change feed, or zero
// when it is empty.
func (s *Store) LastChange(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM changes`).Scan(&seq); err != nil {
		return 0, dbError(err)
	}
	return seq, nil
}

// PruneChanges deletes the changes made before the given time, in batches
// of pruneBatch, so that a large backlog makes no long transaction. The
// sequence is an identity column, whose numbers are never reused.
func (s *Store) PruneChanges(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		tag, err := s.pool.Exec(ctx,
			`DELETE FROM changes WHERE seq IN (SELECT seq FROM changes WHERE at < $1 ORDER BY seq LIMIT $2)`,
			before.UnixMicro(), pruneBatch)
		if err != nil {
			return total, dbError(err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < pruneBatch {
			return total, nil
		}
	}
}

// pruneBatch is the most changes PruneChanges deletes in one statement.
const pruneBatch = 10_000
