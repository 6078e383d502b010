package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/keyward/keyward"
)

// writeSignals writes the sightings and spikes of a batch in tx, the
// request logs' transaction: it flags the keys that the sharing rule now
// judges shared and raises their events, and the events of the spikes
// that start an episode. Each table is written in one order (keys by
// tenant then id, as the meter locks them), so that two nodes writing at
// once wait for each other rather than deadlock.
func (s *Store) writeSignals(ctx context.Context, tx *sql.Tx, b *keyward.LogBatch) error {
	sights := b.Sightings
	slices.SortFunc(sights, func(x, y keyward.Sighting) int {
		return cmp.Or(strings.Compare(x.TenantID, y.TenantID), strings.Compare(x.KeyID, y.KeyID), x.Day.Compare(y.Day),
			strings.Compare(x.Kind, y.Kind), strings.Compare(x.Value, y.Value))
	})
	err := s.insertBatches(ctx, tx, `INSERT INTO key_sightings (key_id, day, kind, value, tenant_id, first_at) VALUES `, 6,
		` ON CONFLICT DO NOTHING`, len(sights), func(args []any, i int) []any {
			g := &sights[i]
			return append(args, g.KeyID, g.Day.Unix(), g.Kind, g.Value, g.TenantID, g.At.UnixMicro())
		})
	if err != nil {
		return err
	}
	if b.Sharing.On() {
		for i := range sights {
			if i > 0 && sights[i].KeyID == sights[i-1].KeyID && sights[i].Day.Equal(sights[i-1].Day) {
				continue
			}
			if err := s.judgeSharing(ctx, tx, &sights[i], b); err != nil {
				return err
			}
		}
	}
	spikes := b.Spikes
	slices.SortFunc(spikes, func(x, y keyward.FailureSpike) int {
		return cmp.Or(strings.Compare(x.EpisodeOf(), y.EpisodeOf()), x.Minute.Compare(y.Minute))
	})
	for i := range spikes {
		if err := s.raiseSpike(ctx, tx, &spikes[i], b.SpikeQuiet); err != nil {
			return err
		}
	}
	return nil
}

// judgeSharing counts what key g.KeyID was seen from on g.Day and, when a
// kind passes its limit and the key was not flagged for that day yet,
// flags it with the evidence and raises key.sharing_suspected.
func (s *Store) judgeSharing(ctx context.Context, tx *sql.Tx, g *keyward.Sighting, b *keyward.LogBatch) error {
	rows, err := s.query(ctx, tx, `SELECT kind, value FROM key_sightings WHERE key_id = ? AND day = ? ORDER BY first_at, value`, g.KeyID, g.Day.Unix())
	if err != nil {
		return err
	}
	seen := map[string][]string{}
	counts := map[string]int{}
	for rows.Next() {
		var kind, value string
		if err := rows.Scan(&kind, &value); err != nil {
			rows.Close()
			return err
		}
		counts[kind]++
		if len(seen[kind]) < keyward.MaxEvidence {
			seen[kind] = append(seen[kind], value)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	sh := &keyward.Sharing{Day: g.Day.UTC(), FlaggedAt: b.At.UTC(), Reasons: []string{},
		Networks: orEmpty(seen[keyward.SightNetwork]), UserAgents: orEmpty(seen[keyward.SightUserAgent]), Referrers: orEmpty(seen[keyward.SightReferrer])}
	for _, kind := range keyward.SightingKinds {
		if limit := b.Sharing.Limit(kind); limit > 0 && counts[kind] > limit {
			sh.Reasons = append(sh.Reasons, kind)
		}
	}
	if len(sh.Reasons) == 0 {
		return nil
	}
	res, err := s.exec(ctx, tx, `INSERT INTO webhook_marks (kind, key_id, due) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
		keyward.EventSharingSuspected, g.KeyID, g.Day.UnixMicro())
	if err != nil {
		return err
	}
	if added, err := res.RowsAffected(); err != nil || added == 0 {
		return err // flagged for this day already, by this node or another
	}
	evidence, err := json.Marshal(sh)
	if err != nil {
		return err
	}
	if _, err := s.exec(ctx, tx, `UPDATE keys SET sharing = ? WHERE id = ?`, string(evidence), g.KeyID); err != nil {
		return err
	}
	k, err := s.key(ctx, tx, g.KeyID)
	var e *keyward.Error
	if errors.As(err, &e) && e.Code == keyward.CodeNotFound {
		return nil
	}
	if err != nil {
		return err
	}
	data, err := json.Marshal(map[string]any{"key": k, "sharing": sh})
	if err != nil {
		return err
	}
	return s.emit(ctx, tx, &keyward.Event{Type: keyward.EventSharingSuspected, TenantID: k.TenantID, At: b.At, Data: data})
}

// orEmpty is list, or [] for none: a list JSON shows as [], never null.
func orEmpty(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}

// raiseSpike records a minute of spike of its subject's episode: it
// starts a new episode, and raises auth.failure_spike, when the subject
// had none, or its last was seen more than quiet before this minute. On
// PostgreSQL the conditional update re-reads a row that another node
// changed, so two nodes never both start the same episode.
func (s *Store) raiseSpike(ctx context.Context, tx *sql.Tx, f *keyward.FailureSpike, quiet time.Duration) error {
	subject, minute := f.EpisodeOf(), f.Minute.UnixMicro()
	res, err := s.exec(ctx, tx, `INSERT INTO failure_episodes (subject, started, last) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, subject, minute, minute)
	if err != nil {
		return err
	}
	started, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if started == 0 {
		res, err := s.exec(ctx, tx, `UPDATE failure_episodes SET started = ?, last = ? WHERE subject = ? AND last < ?`,
			minute, minute, subject, f.Minute.Add(-quiet).UnixMicro())
		if err != nil {
			return err
		}
		if started, err = res.RowsAffected(); err != nil {
			return err
		}
	}
	if started == 0 {
		_, err := s.exec(ctx, tx, `UPDATE failure_episodes SET last = ? WHERE subject = ? AND last < ?`, minute, subject, minute)
		return err
	}
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return s.emit(ctx, tx, &keyward.Event{Type: keyward.EventAuthFailureSpike, TenantID: f.TenantID, At: f.Minute, Data: data})
}

// PruneSignals deletes up to limit sightings of days before before, and
// up to limit spike episodes last seen before it, and returns how many it
// deleted.
func (s *Store) PruneSignals(ctx context.Context, before time.Time, limit int) (int64, error) {
	if limit <= 0 {
		return 0, nil
	}
	return s.pruneEach(ctx, limit, []pruning{
		{`DELETE FROM key_sightings WHERE (key_id, day, kind, value) IN (SELECT key_id, day, kind, value FROM key_sightings WHERE day < ? LIMIT ?)`, before.Unix()},
		{`DELETE FROM failure_episodes WHERE subject IN (SELECT subject FROM failure_episodes WHERE last < ? LIMIT ?)`, before.UnixMicro()},
	})
}

// pruning is a DELETE of up to a limit of rows older than a bound: its
// two placeholders are the bound (arg) and the limit.
type pruning struct {
	query string
	arg   int64
}

// pruneEach runs each pruning with limit and returns how many rows they
// deleted together.
func (s *Store) pruneEach(ctx context.Context, limit int, ps []pruning) (int64, error) {
	var total int64
	for _, q := range ps {
		res, err := s.exec(ctx, s.w, q.query, q.arg, limit)
		if err != nil {
			return total, s.err(err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, s.err(err)
		}
		total += n
	}
	return total, nil
}
