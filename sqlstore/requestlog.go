package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/sqlrow"
)

// requestLogColumns are the columns of request_logs that WriteRequestLogs
// fills, in the order of requestLogArgs.
const requestLogColumns = `at, request_id, surface, key_id, tenant_id, member_id, environment, method, route, path, status, code, client_ip, user_agent, referrer, latency_us, rl_limit, rl_remaining, rl_reset_ms`

// requestLogRows is the most rows of one INSERT: 19 placeholders each stay
// far below both engines' limits (SQLite's 32,766, PostgreSQL's 65,535).
const requestLogRows = 400

// WriteRequestLogs inserts the entries, requestLogRows to a statement, in
// one transaction that does not take the write lock of the management
// writes: request logs are no part of the change feed.
func (s *Store) WriteRequestLogs(ctx context.Context, logs []keyward.RequestLog) error {
	if len(logs) == 0 {
		return nil
	}
	return s.inTx(ctx, false, func(tx *sql.Tx) error {
		var full string
		for start := 0; start < len(logs); start += requestLogRows {
			part := logs[start:min(start+requestLogRows, len(logs))]
			query := full
			if len(part) < requestLogRows || query == "" {
				query = s.rebind(insertRequestLogs(len(part)))
				if len(part) == requestLogRows {
					full = query
				}
			}
			args := make([]any, 0, len(part)*19)
			for i := range part {
				args = append(args, requestLogArgs(&part[i])...)
			}
			if _, err := tx.ExecContext(ctx, query, args...); err != nil {
				return err
			}
		}
		return nil
	})
}

// insertRequestLogs is the INSERT of n rows into request_logs.
func insertRequestLogs(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO request_logs (` + requestLogColumns + `) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`)
	}
	return b.String()
}

// requestLogArgs are the values of l's row, in the order of
// requestLogColumns.
func requestLogArgs(l *keyward.RequestLog) []any {
	var rlLimit, rlRemaining, rlReset sql.NullInt64
	if rl := l.RateLimit; rl != nil {
		rlLimit = sql.NullInt64{Int64: rl.Limit, Valid: true}
		rlRemaining = sql.NullInt64{Int64: rl.Remaining, Valid: true}
		rlReset = sql.NullInt64{Int64: rl.ResetMillis, Valid: true}
	}
	return []any{l.At.UnixMicro(), l.RequestID, l.Surface, l.KeyID, l.TenantID, l.MemberID, l.Environment, l.Method, l.Route, l.Path,
		l.Status, string(l.Code), l.ClientIP, l.UserAgent, l.Referrer, l.LatencyMicros, rlLimit, rlRemaining, rlReset}
}

// RequestLogs lists the entries that match f, newest first, or with
// f.After those after it, oldest first.
func (s *Store) RequestLogs(ctx context.Context, f keyward.RequestLogFilter, p keyward.Page) ([]*keyward.RequestLog, string, error) {
	limit := sqlrow.PageLimit(p.Limit)
	var w conditions
	for _, c := range []struct{ column, value string }{
		{"tenant_id", f.TenantID}, {"key_id", f.KeyID}, {"request_id", f.RequestID}, {"surface", f.Surface},
	} {
		if c.value != "" {
			w.add(c.column+` = ?`, c.value)
		}
	}
	switch f.Code {
	case "":
	case keyward.CodeAllowed:
		w.add(`code = ''`)
	default:
		w.add(`code = ?`, string(f.Code))
	}
	if f.Status != 0 {
		w.add(`status = ?`, f.Status)
	}
	if !f.From.IsZero() {
		w.add(`at >= ?`, f.From.UnixMicro())
	}
	if !f.To.IsZero() {
		w.add(`at < ?`, f.To.UnixMicro())
	}
	order := ` ORDER BY id DESC LIMIT ?`
	if f.After > 0 {
		w.add(`id > ?`, f.After)
		order = ` ORDER BY id LIMIT ?`
	} else if p.Cursor != "" {
		c, err := sqlrow.DecodeCursor(sqlrow.CursorLogs, p.Cursor)
		if err != nil {
			return nil, "", err
		}
		w.add(`id < ?`, c.N)
	}
	w.args = append(w.args, limit+1)
	rows, err := s.query(ctx, s.r, `SELECT id, `+requestLogColumns+` FROM request_logs`+w.where()+order, w.args...)
	if err != nil {
		return nil, "", s.err(err)
	}
	defer rows.Close()
	logs := []*keyward.RequestLog{}
	for rows.Next() {
		var (
			l                             keyward.RequestLog
			at                            int64
			code                          string
			rlLimit, rlRemaining, rlReset sql.NullInt64
		)
		if err := rows.Scan(&l.ID, &at, &l.RequestID, &l.Surface, &l.KeyID, &l.TenantID, &l.MemberID, &l.Environment, &l.Method, &l.Route, &l.Path,
			&l.Status, &code, &l.ClientIP, &l.UserAgent, &l.Referrer, &l.LatencyMicros, &rlLimit, &rlRemaining, &rlReset); err != nil {
			return nil, "", s.err(err)
		}
		l.At, l.Code = sqlrow.FromMicros(at), keyward.Code(code)
		if rlLimit.Valid {
			l.RateLimit = &keyward.LoggedRateLimit{Limit: rlLimit.Int64, Remaining: rlRemaining.Int64, ResetMillis: rlReset.Int64}
		}
		logs = append(logs, &l)
	}
	if err := rows.Err(); err != nil {
		return nil, "", s.err(err)
	}
	var next string
	if len(logs) > limit {
		logs = logs[:limit]
		if f.After == 0 {
			next = sqlrow.EncodeCursor(sqlrow.CursorLogs, sqlrow.Cursor{N: logs[limit-1].ID})
		}
	}
	return logs, next, nil
}

// PruneRequestLogs deletes up to limit of the entries written before
// before, oldest first, and returns how many it deleted.
func (s *Store) PruneRequestLogs(ctx context.Context, before time.Time, limit int) (int64, error) {
	if limit <= 0 {
		return 0, nil
	}
	res, err := s.w.ExecContext(ctx, s.rebind(`DELETE FROM request_logs WHERE id IN (SELECT id FROM request_logs WHERE at < ? ORDER BY at LIMIT ?)`), before.UnixMicro(), limit)
	if err != nil {
		return 0, s.err(err)
	}
	n, err := res.RowsAffected()
	return n, s.err(err)
}
