package verify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keyward/keyward"
)

// feedBatch is the most changes read from the feed at once.
const feedBatch = 500

// refreshTimeout bounds one background read of the feed, so that a store
// that hangs does not stop the poller for good.
const refreshTimeout = 10 * time.Second

// Notifier is implemented by a store that can tell when the change feed may
// have grown, such as the PostgreSQL store (LISTEN/NOTIFY). Notifications
// returns a channel that receives a signal after changes are committed, and
// once more whenever changes may have gone unsignalled (after a lost
// connection, for instance); it is closed when ctx ends. A signal is only a
// hint to read the feed now: the feed stays the source of truth.
type Notifier interface {
	Notifications(ctx context.Context) <-chan struct{}
}

// pruneInterval is how often a started verifier prunes the change feed.
const pruneInterval = time.Hour

// Start reads the position of the change feed and starts three goroutines:
// one applies the feed every PollInterval, and at once on each signal when
// the store is a Notifier; one writes pending usage every FlushInterval; one
// prunes the feed at once and then every hour (PruneChanges). ctx bounds only the first read; the goroutines run until
// Close. Start fails if the feed cannot be read, or if the verifier was
// started or closed before.
func (v *Verifier) Start(ctx context.Context) error {
	v.lifeMu.Lock()
	defer v.lifeMu.Unlock()
	if v.closed {
		return errors.New("verify: Start after Close")
	}
	if v.started {
		return errors.New("verify: Start called twice")
	}
	if err := v.initFeed(ctx); err != nil {
		return err
	}

	loop, stop := context.WithCancel(context.WithoutCancel(ctx))
	v.started = true
	v.stop = stop
	v.done = make(chan struct{})
	var wake <-chan struct{}
	if n, ok := v.store.(Notifier); ok {
		wake = n.Notifications(loop)
	}
	polled, flushed, pruned := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(polled)
		v.pollLoop(loop, wake)
	}()
	go func() {
		defer close(flushed)
		v.flushLoop(loop)
	}()
	go func() {
		defer close(pruned)
		// Once at start, so that nodes restarted more often than hourly
		// prune too, then every hour.
		if err := v.PruneChanges(loop); err != nil && loop.Err() == nil {
			v.log.WarnContext(loop, "verify: could not prune the change feed; retrying", "err", err)
		}
		v.every(loop, pruneInterval, nil, "verify: could not prune the change feed; retrying", v.PruneChanges)
	}()
	go func() {
		<-polled
		<-flushed
		<-pruned
		close(v.done)
	}()
	return nil
}

// Close stops the goroutines that Start started, waits for the batch of
// spends under way (and those queued behind it) to be counted, then
// writes all pending usage, so that no use is lost. If that write fails,
// Close returns the error. Call it once; later calls do nothing and
// return nil. Verify still answers after Close, each spend of a metered
// key in a transaction of its own, but uses recorded then are not
// written.
func (v *Verifier) Close(ctx context.Context) error {
	v.lifeMu.Lock()
	if v.closed {
		v.lifeMu.Unlock()
		return nil
	}
	v.closed = true
	stop, done := v.stop, v.done
	v.lifeMu.Unlock()

	var errs []error
	if stop != nil {
		stop()
		select {
		case <-done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("verify: waiting for the poller and the flusher: %w", ctx.Err()))
		}
	}
	if err := v.spender.close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("verify: waiting for the spends of metered keys under way: %w", err))
	}
	if err := v.Flush(ctx); err != nil {
		errs = append(errs, err)
	}
	v.keys.StopAllGoroutines()
	v.tenants.cache.StopAllGoroutines()
	v.members.cache.StopAllGoroutines()
	v.plans.cache.StopAllGoroutines()
	if v.attempts != nil {
		v.attempts.close()
	}
	v.cacheClock.Stop()
	return errors.Join(errs...)
}

// Refresh applies every change of the feed up to now before it returns, so
// that a change the caller has just written is seen by the next Verify. The
// API calls it after its own writes. Before Start, it takes the current end
// of the feed as its position and empties the cache.
func (v *Verifier) Refresh(ctx context.Context) error {
	v.feedMu.Lock()
	defer v.feedMu.Unlock()
	began := v.cacheClock.NowNano()
	if !v.feedInit {
		if err := v.initFeedLocked(ctx); err != nil {
			return err
		}
		v.synced(began)
		v.publish()
		return nil
	}
	defer v.publish()
	for {
		changes, err := v.store.Changes(ctx, v.seq, feedBatch)
		if err != nil {
			return fmt.Errorf("verify: read the change feed after %d: %w", v.seq, err)
		}
		for i, c := range changes {
			if !supersededIn(changes[i+1:], c) {
				if err := v.apply(ctx, c); err != nil {
					return fmt.Errorf("verify: apply change %d (%s %s): %w", c.Seq, c.Kind, c.ID, err)
				}
			}
			v.seq = c.Seq
		}
		if len(changes) < feedBatch {
			v.synced(began)
			return nil
		}
	}
}

// publish makes seq, the position of the last change applied, what
// Applied returns, and wakes those waiting for it to move on. The caller
// holds feedMu.
func (v *Verifier) publish() {
	v.appliedMu.Lock()
	defer v.appliedMu.Unlock()
	if v.seq == v.applied {
		return
	}
	v.applied = v.seq
	close(v.appliedCh)
	v.appliedCh = make(chan struct{})
}

// Applied returns the position in the change feed up to which every change
// is applied to the cache, and a channel closed once a later one is: what a
// server streams to remote verifiers (GET /v1/changes), which must learn of
// a change only once this verifier answers by it. Before the feed was
// first read, the position is zero.
func (v *Verifier) Applied() (int64, <-chan struct{}) {
	v.appliedMu.Lock()
	defer v.appliedMu.Unlock()
	return v.applied, v.appliedCh
}

// CacheStats returns how many lookups the key cache answered (hits), how
// many keys it read from the store instead (misses: a key not cached, or
// the refresh of one past the cache TTL), and how many keys it holds (an
// estimate).
func (v *Verifier) CacheStats() (hits, misses uint64, size int) {
	st := v.keys.Stats()
	return st.Hits, st.Loads(), v.keys.EstimatedSize()
}

// FeedLag returns how long ago the change feed was last read to its end:
// what a change made now may wait, at most, before this verifier answers
// by it; -1 before the feed was first read.
func (v *Verifier) FeedLag() time.Duration {
	last := v.lastSync.Load()
	if last == 0 {
		return -1
	}
	return time.Duration(v.cacheClock.NowNano() - last)
}

// CacheTTL returns the cache's time to live (Options.CacheTTL): how long a
// cached answer may be given when the change feed cannot be read.
func (v *Verifier) CacheTTL() time.Duration { return time.Duration(v.ttl) }

// synced records that the feed was read, up to its end, by a read that
// began at began on the cache clock: every cached entry was current then.
// The caller holds feedMu, so began only grows.
func (v *Verifier) synced(began int64) {
	v.lastSync.Store(began)
}

// initFeed takes the end of the feed as the position to read from, unless a
// Refresh has done so already.
func (v *Verifier) initFeed(ctx context.Context) error {
	v.feedMu.Lock()
	defer v.feedMu.Unlock()
	if v.feedInit {
		return nil
	}
	began := v.cacheClock.NowNano()
	if err := v.initFeedLocked(ctx); err != nil {
		return err
	}
	v.synced(began)
	v.publish()
	return nil
}

// initFeedLocked reads the end of the feed, then empties the caches: what
// they held may predate changes before that position, which will never be
// applied. The caller holds feedMu.
func (v *Verifier) initFeedLocked(ctx context.Context) error {
	seq, err := v.store.LastChange(ctx)
	if err != nil {
		return fmt.Errorf("verify: read the end of the change feed: %w", err)
	}
	v.seq = seq
	v.feedInit = true
	v.keys.InvalidateAll()
	v.tenants.cache.InvalidateAll()
	v.members.cache.InvalidateAll()
	v.plans.cache.InvalidateAll()
	v.accessEpoch.Add(1)
	return nil
}

// supersededIn reports whether a later change in rest is of the same tenant
// or key as c, so that applying c is wasted work.
func supersededIn(rest []keyward.Change, c keyward.Change) bool {
	for _, r := range rest {
		if r.Kind == c.Kind && r.ID == c.ID {
			return true
		}
	}
	return false
}

// apply reloads what a change names and replaces its cache entry. A key's
// new entry is written under its hash whether or not it was cached, so that
// a created key replaces the cached answer that its hash matched no key.
func (v *Verifier) apply(ctx context.Context, c keyward.Change) error {
	switch c.Kind {
	case keyward.ChangeKey:
		k, err := v.store.Key(ctx, c.ID)
		if keyward.ErrorCode(err) == keyward.CodeNotFound {
			v.log.WarnContext(ctx, "verify: the change feed names a key that does not exist", "key_id", c.ID, "seq", c.Seq)
			return nil
		}
		if err != nil {
			return err
		}
		v.keys.Set(k.Hash, v.newEntry(k, v.ofFormat(k)))
	case keyward.ChangeTenant:
		if err := reload(ctx, v, v.tenants, c.ID, v.store.Tenant); err != nil {
			return err
		}
	case keyward.ChangeMember:
		if err := reload(ctx, v, v.members, c.ID, v.store.Member); err != nil {
			return err
		}
	case keyward.ChangePlan:
		if err := reload(ctx, v, v.plans, c.ID, v.store.Plan); err != nil {
			return err
		}
	default:
		v.log.DebugContext(ctx, "verify: skipping a change of unknown kind", "kind", c.Kind, "seq", c.Seq)
	}
	return nil
}

// reload reads the tenant, member or plan with the given id again for the
// records cache r, or drops it from r when it no longer exists, then moves
// the access epoch on: only after the cache is written, so that an Access
// worked out meanwhile is worked out again (see accessOf).
func reload[T any](ctx context.Context, v *Verifier, r records[T], id string, lookup func(context.Context, string) (*T, error)) error {
	x, err := lookup(ctx, id)
	switch {
	case keyward.ErrorCode(err) == keyward.CodeNotFound:
		r.cache.Invalidate(id)
	case err != nil:
		return err
	default:
		r.set(v, id, x)
	}
	v.accessEpoch.Add(1)
	return nil
}

// pollLoop applies the feed every poll interval, and on every signal of
// wake (nil when the store sends none), until ctx ends. A round that fails
// is logged and retried at the next tick or signal from the same position,
// so no change is skipped.
func (v *Verifier) pollLoop(ctx context.Context, wake <-chan struct{}) {
	v.every(ctx, v.pollInterval, wake, "verify: could not apply the change feed; retrying", func(ctx context.Context) error {
		rctx, cancel := context.WithTimeout(ctx, refreshTimeout)
		defer cancel()
		return v.Refresh(rctx)
	})
}

// PruneChanges deletes the changes older than the change retention from the
// feed; Start does it every hour. A node behind by more than the retention
// misses nothing it needs: every entry it caches was read from the store
// within MaxCacheTTL, after those changes, which is why the retention is
// many times MaxCacheTTL.
func (v *Verifier) PruneChanges(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	n, err := v.store.PruneChanges(ctx, v.now().Add(-ChangeRetention))
	if err != nil {
		return fmt.Errorf("verify: prune the change feed: %w", err)
	}
	if n > 0 {
		v.log.InfoContext(ctx, "verify: pruned the change feed", "changes", n, "retention", ChangeRetention.String())
	}
	return nil
}

// flushLoop writes pending usage every flush interval until ctx ends. Close
// writes what is left.
func (v *Verifier) flushLoop(ctx context.Context) {
	v.every(ctx, v.flushInterval, nil, "verify: could not write last-used times; they are kept and retried", v.Flush)
}

// every runs fn every interval, and on every signal of wake (which may be
// nil, and is no longer watched once closed), until ctx ends. A run of
// failures is logged with failMsg once, then every 50th time, and its end is
// logged too.
func (v *Verifier) every(ctx context.Context, interval time.Duration, wake <-chan struct{}, failMsg string, fn func(context.Context) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case _, ok := <-wake:
			if !ok {
				wake = nil
				continue
			}
		}
		err := fn(ctx)
		switch {
		case err == nil:
			if failures > 0 {
				v.log.InfoContext(ctx, "verify: recovered", "task", failMsg, "failed_rounds", failures)
			}
			failures = 0
		case ctx.Err() != nil:
			return
		default:
			failures++
			if failures%50 == 1 {
				v.log.WarnContext(ctx, failMsg, "err", err, "failed_rounds", failures)
			}
		}
	}
}
