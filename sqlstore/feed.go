package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/sqlrow"
)

// AuditLog lists the audit entries that match f, newest first: in the order
// they were written, last first.
func (s *Store) AuditLog(ctx context.Context, f keyward.AuditFilter, p keyward.Page) ([]*keyward.AuditEntry, string, error) {
	limit := sqlrow.PageLimit(p.Limit)
	var w conditions
	if f.TenantID != "" {
		w.add(`tenant_id = ?`, f.TenantID)
	}
	if f.Target != "" {
		w.add(`(target = ? OR related = ?)`, f.Target, f.Target)
	}
	if p.Cursor != "" {
		c, err := sqlrow.DecodeCursor(sqlrow.CursorAudit, p.Cursor)
		if err != nil {
			return nil, "", err
		}
		w.add(`id < ?`, c.N)
	}
	w.args = append(w.args, limit+1)
	rows, err := s.query(ctx, s.r, `SELECT id, at, actor, actor_ip, actor_member, action, tenant_id, target, related FROM audit_log`+w.where()+` ORDER BY id DESC LIMIT ?`, w.args...)
	if err != nil {
		return nil, "", s.err(err)
	}
	defer rows.Close()
	entries := []*keyward.AuditEntry{}
	for rows.Next() {
		var e keyward.AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.ActorIP, &e.ActorMember, &e.Action, &e.TenantID, &e.Target, &e.Related); err != nil {
			return nil, "", s.err(err)
		}
		e.At = sqlrow.FromMicros(at)
		entries = append(entries, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, "", s.err(err)
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
	rows, err := s.query(ctx, s.r,
		`SELECT seq, kind, id, at FROM changes WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, s.err(err)
	}
	defer rows.Close()
	changes := []keyward.Change{}
	for rows.Next() {
		var c keyward.Change
		var at int64
		if err := rows.Scan(&c.Seq, &c.Kind, &c.ID, &at); err != nil {
			return nil, s.err(err)
		}
		c.At = sqlrow.FromMicros(at)
		changes = append(changes, c)
	}
	if err := rows.Err(); err != nil {
		return nil, s.err(err)
	}
	return changes, nil
}

// LastChange returns the highest sequence number in the change feed, or zero
// when it is empty.
func (s *Store) LastChange(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.r.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM changes`).Scan(&seq); err != nil {
		return 0, s.err(err)
	}
	return seq, nil
}

// PruneChanges deletes the changes made before the given time, in batches
// of pruneBatch, each its own transaction, which does not take the write
// lock (on SQLite it waits for the single writer all the same), so that a
// large backlog makes no long transaction. Sequence numbers are never
// reused: SQLite's AUTOINCREMENT keeps the highest one ever given, and
// PostgreSQL's identity column never goes back.
func (s *Store) PruneChanges(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		var n int64
		err := s.inTx(ctx, false, func(tx *sql.Tx) error {
			res, err := s.exec(ctx, tx,
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
