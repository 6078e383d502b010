package sqlite

import (
	"context"
	"database/sql"
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
	if f.TenantID != "" {
		where = append(where, `tenant_id = ?`)
		args = append(args, f.TenantID)
	}
	if f.Target != "" {
		where = append(where, `(target = ? OR related = ?)`)
		args = append(args, f.Target, f.Target)
	}
	if p.Cursor != "" {
		c, err := sqlrow.DecodeCursor(sqlrow.CursorAudit, p.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, `id < ?`)
		args = append(args, c.N)
	}
	query := `SELECT id, at, actor, actor_ip, action, tenant_id, target, related FROM audit_log`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	query += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit+1)

	rows, err := s.r.QueryContext(ctx, query, args...)
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
func (s *Store) Changes(ctx context.Context, after int64, limit int) ([]keyward.Change, error) {
	if limit <= 0 {
		limit = keyward.DefaultPageLimit
	}
	rows, err := s.r.QueryContext(ctx,
		`SELECT seq, kind, id, at FROM changes WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
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
	if err := s.r.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM changes`).Scan(&seq); err != nil {
		return 0, dbError(err)
	}
	return seq, nil
}

// PruneChanges deletes the changes made before the given time, in batches
// of pruneBatch, each its own transaction, so that a large backlog does not
// hold the write lock for long. AUTOINCREMENT keeps the highest sequence
// number ever given, so numbers are never reused.
func (s *Store) PruneChanges(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		var n int64
		err := s.write(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx,
				`DELETE FROM changes WHERE seq IN (SELECT seq FROM changes WHERE at < ? ORDER BY seq LIMIT ?)`,
				before.UnixMicro(), pruneBatch)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		total += n
		if err != nil || n < pruneBatch {
			return total, err
		}
	}
}

// pruneBatch is the most changes PruneChanges deletes in one transaction.
const pruneBatch = 10_000
