package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/sqlrow"
)

// requestLogColumns are the columns of request_logs that WriteRequestLogs
// fills, in the order of requestLogArgs.
const requestLogColumns = `at, request_id, surface, key_id, tenant_id, member_id, environment, method, route, path, status, code, client_ip, user_agent, referrer, latency_us, rl_limit, rl_remaining, rl_reset_ms`

// batchRows is the most rows of one INSERT: 19 placeholders each stay
// far below both engines' limits (SQLite's 32,766, PostgreSQL's 65,535).
const batchRows = 400

// WriteRequestLogs inserts the entries and adds the usage counts to those
// kept, batchRows to a statement, then writes the signals (signals.go),
// in one transaction that does not take the write lock of the management
// writes: none of it is part of the change feed. The counts are added in
// the order of their primary key, so that two nodes adding to the same
// counts lock them in one order and wait for each other rather than
// deadlock.
func (s *Store) WriteRequestLogs(ctx context.Context, b *keyward.LogBatch) error {
	logs, usage := b.Logs, b.Usage
	if len(logs) == 0 && len(usage) == 0 && len(b.Sightings) == 0 && len(b.Spikes) == 0 {
		return nil
	}
	slices.SortFunc(usage, func(a, b keyward.UsageCount) int {
		return cmp.Or(strings.Compare(a.TenantID, b.TenantID), strings.Compare(a.KeyID, b.KeyID),
			strings.Compare(string(a.Granularity), string(b.Granularity)), a.Start.Compare(b.Start), strings.Compare(string(a.Code), string(b.Code)))
	})
	return s.inTx(ctx, false, func(tx *sql.Tx) error {
		err := s.insertBatches(ctx, tx, `INSERT INTO request_logs (`+requestLogColumns+`) VALUES `, 19, ``, len(logs), func(args []any, i int) []any {
			return append(args, requestLogArgs(&logs[i])...)
		})
		if err != nil {
			return err
		}
		err = s.insertBatches(ctx, tx, `INSERT INTO usage_counts (tenant_id, key_id, granularity, start, code, count) VALUES `, 6,
			` ON CONFLICT (tenant_id, key_id, granularity, start, code) DO UPDATE SET count = usage_counts.count + excluded.count`,
			len(usage), func(args []any, i int) []any {
				u := &usage[i]
				return append(args, u.TenantID, u.KeyID, string(u.Granularity), u.Start.Unix(), string(u.Code), u.Count)
			})
		if err != nil {
			return err
		}
		return s.writeSignals(ctx, tx, b)
	})
}

// insertBatches runs head, then rows of width placeholders, then tail,
// for n rows, batchRows to a statement; args appends the values of row
// i.
func (s *Store) insertBatches(ctx context.Context, tx *sql.Tx, head string, width int, tail string, n int, args func([]any, int) []any) error {
	var full string
	for start := 0; start < n; start += batchRows {
		end := min(start+batchRows, n)
		query := full
		if end-start < batchRows || query == "" {
			query = s.rebind(valuesStatement(head, width, end-start, tail))
			if end-start == batchRows {
				full = query
			}
		}
		values := make([]any, 0, (end-start)*width)
		for i := start; i < end; i++ {
			values = args(values, i)
		}
		if _, err := tx.ExecContext(ctx, query, values...); err != nil {
			return err
		}
	}
	return nil
}

// valuesStatement is head, n rows of width placeholders, and tail.
func valuesStatement(head string, width, n int, tail string) string {
	row := "(" + strings.Repeat("?,", width-1) + "?)"
	var b strings.Builder
	b.WriteString(head)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	b.WriteString(tail)
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

// Usage returns the counts that match f, summed over its keys by bucket
// and code, in the order of their start.
func (s *Store) Usage(ctx context.Context, f keyward.UsageFilter) ([]keyward.UsageCount, error) {
	var w conditions
	w.add(`granularity = ?`, string(f.Granularity))
	if f.TenantID != "" {
		w.add(`tenant_id = ?`, f.TenantID)
	}
	if f.KeyID != "" {
		w.add(`key_id = ?`, f.KeyID)
	}
	if !f.From.IsZero() {
		w.add(`start >= ?`, f.From.Unix())
	}
	if !f.To.IsZero() {
		w.add(`start < ?`, f.To.Unix())
	}
	rows, err := s.query(ctx, s.r, `SELECT start, code, SUM(count) FROM usage_counts`+w.where()+` GROUP BY start, code ORDER BY start, code`, w.args...)
	if err != nil {
		return nil, s.err(err)
	}
	defer rows.Close()
	out := []keyward.UsageCount{}
	for rows.Next() {
		u := keyward.UsageCount{TenantID: f.TenantID, KeyID: f.KeyID, Granularity: f.Granularity}
		var start int64
		var code string
		if err := rows.Scan(&start, &code, &u.Count); err != nil {
			return nil, s.err(err)
		}
		u.Start, u.Code = time.Unix(start, 0).UTC(), keyward.Code(code)
		out = append(out, u)
	}
	return out, s.err(rows.Err())
}

// PruneUsage deletes up to limit of the counts whose bucket started
// before before, and returns how many it deleted.
func (s *Store) PruneUsage(ctx context.Context, before time.Time, limit int) (int64, error) {
	if limit <= 0 {
		return 0, nil
	}
	res, err := s.w.ExecContext(ctx, s.rebind(`DELETE FROM usage_counts WHERE (tenant_id, key_id, granularity, start, code) IN
		(SELECT tenant_id, key_id, granularity, start, code FROM usage_counts WHERE start < ? ORDER BY start LIMIT ?)`), before.Unix(), limit)
	if err != nil {
		return 0, s.err(err)
	}
	n, err := res.RowsAffected()
	return n, s.err(err)
}
