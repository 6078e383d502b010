package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/sqlrow"
)

// batchRows is the most rows of one INSERT: their placeholders (6 a row at
// most) stay far below both engines' limits (SQLite's 32,766,
// PostgreSQL's 65,535).
const batchRows = 400

// WriteRequestLogs adds the usage counts to those kept, batchRows to a
// statement, writes the signals (signals.go), then the entries in blocks
// (writeBlocks), in one transaction that does not take the write lock of the management
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
		err := s.insertBatches(ctx, tx, `INSERT INTO usage_counts (tenant_id, key_id, granularity, start, code, count) VALUES `, 6,
			` ON CONFLICT (tenant_id, key_id, granularity, start, code) DO UPDATE SET count = usage_counts.count + excluded.count`,
			len(usage), func(args []any, i int) []any {
				u := &usage[i]
				return append(args, u.TenantID, u.KeyID, string(u.Granularity), u.Start.Unix(), string(u.Code), u.Count)
			})
		if err != nil {
			return err
		}
		if err := s.writeSignals(ctx, tx, b); err != nil {
			return err
		}
		// Last, as it takes the entries' ids under the counter's row lock,
		// which PostgreSQL holds to the commit: writes of several nodes
		// wait for each other only for their blocks, and commit in the
		// order of their ids.
		return s.writeBlocks(ctx, tx, logs)
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

// writeBlocks writes logs in blocks of up to maxBlock entries, in tx,
// with the ids that request_log_ids gives them.
func (s *Store) writeBlocks(ctx context.Context, tx *sql.Tx, logs []keyward.RequestLog) error {
	if len(logs) == 0 {
		return nil
	}
	var next int64
	if err := s.row(ctx, tx, `UPDATE request_log_ids SET next = next + ? RETURNING next`, len(logs)).Scan(&next); err != nil {
		return err
	}
	first := next - int64(len(logs))
	js, packed := blockBuffers.Get().(*[]byte), blockBuffers.Get().(*[]byte)
	defer func() {
		blockBuffers.Put(js)
		blockBuffers.Put(packed)
	}()
	for start := 0; start < len(logs); start += maxBlock {
		block := logs[start:min(start+maxBlock, len(logs))]
		id := first + int64(start)
		minAt, maxAt := block[0].At, block[0].At
		for i := range block {
			minAt, maxAt = minTime(minAt, block[i].At), maxTime(maxAt, block[i].At)
		}
		*js = encodeBlock((*js)[:0], block, id)
		*packed = compressBlock(*packed, *js)
		if _, err := s.exec(ctx, tx, `INSERT INTO request_log_blocks (id, last_id, min_at, max_at, n, bloom, data) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			id, id+int64(len(block))-1, minAt.UnixMicro(), maxAt.UnixMicro(), len(block), bloomOf(block), *packed); err != nil {
			return err
		}
		needles := needlesOf(block)
		if err := s.insertBatches(ctx, tx, `INSERT INTO request_log_needles (needle, block_id) VALUES `, 2, ``, len(needles), func(args []any, i int) []any {
			return append(args, needles[i], id)
		}); err != nil {
			return err
		}
	}
	return nil
}

// blockBuffers hold the buffers that blocks are encoded into, kept from
// one write to the next.
var blockBuffers = sync.Pool{New: func() any { return new([]byte) }}

// minTime and maxTime are the earlier and the later of two times.
func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// blocksPerQuery is how many blocks RequestLogs lists at a time; when it
// looks for a request id, whose Bloom filters pass over most blocks
// without reading their entries, blocksPerFilterQuery.
const (
	blocksPerQuery       = 64
	blocksPerFilterQuery = 1024
)

// RequestLogs lists the entries that match f, newest first, or with
// f.After those after it, oldest first. It lists the blocks that may hold
// them (by the ids of the page, the time range, the tenant's and the
// key's needles, and the Bloom filter of a request id), a few at a time,
// and reads their entries until the page is full.
func (s *Store) RequestLogs(ctx context.Context, f keyward.RequestLogFilter, p keyward.Page) ([]*keyward.RequestLog, string, error) {
	limit := sqlrow.PageLimit(p.Limit)
	asc := f.After > 0
	var below int64 // newest first: ids below it; 0 for any
	if !asc && p.Cursor != "" {
		c, err := sqlrow.DecodeCursor(sqlrow.CursorLogs, p.Cursor)
		if err != nil {
			return nil, "", err
		}
		below = c.N
	}
	logs := []*keyward.RequestLog{}
	// With a key or a tenant, the blocks are listed from their needles,
	// in the order of the needles' primary key (needle, block_id): the
	// key's when given (fewer blocks), the tenant's checked beside it.
	from, id := ` FROM request_log_blocks b`, `b.id`
	var needles []string
	for _, n := range [...]string{"k:" + f.KeyID, "t:" + f.TenantID} {
		if len(n) > 2 {
			needles = append(needles, n)
		}
	}
	if len(needles) > 0 {
		from, id = ` FROM request_log_needles n JOIN request_log_blocks b ON b.id = n.block_id`, `n.block_id`
	}
	var last int64 // the last block listed
	for len(logs) <= limit {
		var w conditions
		for i, n := range needles {
			if i == 0 {
				w.add(`n.needle = ?`, n)
			} else {
				w.add(`EXISTS (SELECT 1 FROM request_log_needles m WHERE m.needle = ? AND m.block_id = b.id)`, n)
			}
		}
		if asc {
			w.add(`b.last_id > ?`, f.After)
			if last != 0 {
				w.add(id+` > ?`, last)
			}
		} else {
			if below != 0 {
				w.add(id+` < ?`, below)
			}
			if last != 0 {
				w.add(id+` < ?`, last)
			}
		}
		if !f.From.IsZero() {
			w.add(`b.max_at >= ?`, f.From.UnixMicro())
		}
		if !f.To.IsZero() {
			w.add(`b.min_at < ?`, f.To.UnixMicro())
		}
		order := ` ORDER BY ` + id + ` DESC LIMIT ?`
		if asc {
			order = ` ORDER BY ` + id + ` LIMIT ?`
		}
		per, bloom := blocksPerQuery, `NULL`
		if f.RequestID != "" {
			per, bloom = blocksPerFilterQuery, `b.bloom`
		}
		w.args = append(w.args, per)
		ids, err := s.listBlocks(ctx, `SELECT b.id, `+bloom+from+w.where()+order, f.RequestID, w.args...)
		if err != nil {
			return nil, "", s.err(err)
		}
		for _, id := range ids.match {
			var data []byte
			if err := s.row(ctx, s.r, `SELECT data FROM request_log_blocks WHERE id = ?`, id).Scan(&data); err != nil {
				if errors.Is(err, sql.ErrNoRows) {
					continue // pruned meanwhile
				}
				return nil, "", s.err(err)
			}
			entries, err := decodeBlock(data)
			if err != nil {
				return nil, "", fmt.Errorf("%s: block %d: %w", s.d.Name, id, err)
			}
			if !asc {
				slices.Reverse(entries)
			}
			for i := range entries {
				l := &entries[i]
				if asc && l.ID <= f.After || below != 0 && l.ID >= below || !matches(l, &f) {
					continue
				}
				logs = append(logs, l)
				if len(logs) > limit {
					break
				}
			}
			if len(logs) > limit {
				break
			}
		}
		if ids.n < per {
			break
		}
		last = ids.last
	}
	var next string
	if len(logs) > limit {
		logs = logs[:limit]
		if !asc {
			next = sqlrow.EncodeCursor(sqlrow.CursorLogs, sqlrow.Cursor{N: logs[limit-1].ID})
		}
	}
	return logs, next, nil
}

// listedBlocks are the blocks of one listing: how many were listed, the
// last, and those that may hold the request id asked for.
type listedBlocks struct {
	n     int
	last  int64
	match []int64
}

// listBlocks runs query, which lists blocks' ids and Bloom filters, and
// keeps those whose filter may hold requestID ("": every one).
func (s *Store) listBlocks(ctx context.Context, query, requestID string, args ...any) (listedBlocks, error) {
	var out listedBlocks
	rows, err := s.query(ctx, s.r, query, args...)
	if err != nil {
		return out, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id    int64
			bloom []byte
		)
		if err := rows.Scan(&id, &bloom); err != nil {
			return out, err
		}
		out.n, out.last = out.n+1, id
		if requestID == "" || bloomHas(bloom, requestID) {
			out.match = append(out.match, id)
		}
	}
	return out, rows.Err()
}

// PruneRequestLogs deletes the blocks whose every entry was written
// before the given time, oldest first, until it has deleted limit entries
// or more (at least one block), and returns how many entries it deleted.
func (s *Store) PruneRequestLogs(ctx context.Context, before time.Time, limit int) (int64, error) {
	if limit <= 0 {
		return 0, nil
	}
	var deleted int64
	err := s.inTx(ctx, false, func(tx *sql.Tx) error {
		deleted = 0
		rows, err := s.query(ctx, tx, `SELECT id, n FROM request_log_blocks WHERE max_at < ? ORDER BY id LIMIT ?`, before.UnixMicro(), limit)
		if err != nil {
			return err
		}
		var ids []any
		for rows.Next() && deleted < int64(limit) {
			var id, n int64
			if err := rows.Scan(&id, &n); err != nil {
				rows.Close()
				return err
			}
			ids, deleted = append(ids, id), deleted+n
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(ids) == 0 {
			return err
		}
		in := strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",")
		if _, err := s.exec(ctx, tx, `DELETE FROM request_log_needles WHERE block_id IN (`+in+`)`, ids...); err != nil {
			return err
		}
		// What was deleted: another node pruning at once may have
		// deleted some of the blocks first.
		deleted = 0
		gone, err := s.query(ctx, tx, `DELETE FROM request_log_blocks WHERE id IN (`+in+`) RETURNING n`, ids...)
		if err != nil {
			return err
		}
		defer gone.Close()
		for gone.Next() {
			var n int64
			if err := gone.Scan(&n); err != nil {
				return err
			}
			deleted += n
		}
		return gone.Err()
	})
	return deleted, s.err(err)
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
