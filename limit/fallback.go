package limit

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultTimeout is how long a Fallback waits for its shared limiter before
// deciding locally.
const DefaultTimeout = 50 * time.Millisecond

// retryShared is how long a Fallback decides locally, without asking the
// shared limiter, after the shared limiter failed; then one request asks it
// again.
const retryShared = time.Second

// logEvery is how often a Fallback logs, at most, that its shared limiter
// still fails.
const logEvery = time.Minute

// Fallback decides with a shared limiter (Redis) and, when that fails or
// does not answer within its timeout, with a local one, on this node alone:
// during a Redis outage limits neither vanish nor refuse every client, and
// a decision never fails (each node then allows up to the whole limit, so N
// nodes allow up to N times it). After a failure it decides locally for a
// second without asking the shared limiter, so that an unreachable Redis
// does not cost every request a timeout; then one request asks it again,
// and when it answers the shared limiter decides again.
//
// It logs when the shared limiter starts failing, at most once a minute
// while it still fails, and when it answers again: never once per request.
// Decisions made locally carry Decision.Fallback.
type Fallback struct {
	shared  Limiter
	local   *Local
	log     *slog.Logger
	timeout time.Duration

	// retryAt is the time (Unix nanoseconds of Allow's now) before which
	// every decision is local; 0 while the shared limiter works.
	retryAt atomic.Int64
	// local decisions since the shared limiter started failing.
	localDecisions atomic.Int64

	mu      sync.Mutex // guards the fields below, on the failure path only
	since   time.Time  // when the shared limiter started failing; zero while it works
	lastLog time.Time
}

// NewFallback returns a limiter that decides with shared, and with local
// when shared fails or takes longer than timeout (DefaultTimeout if 0), and
// logs to logger.
func NewFallback(shared Limiter, local *Local, logger *slog.Logger, timeout time.Duration) *Fallback {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Fallback{shared: shared, local: local, log: logger, timeout: timeout}
}

type fallbackSet struct {
	f      *Fallback
	shared Set
	local  Set
}

// Bind binds buckets on both limiters.
func (f *Fallback) Bind(buckets []Bucket) (Set, error) {
	shared, err := f.shared.Bind(buckets)
	if err != nil {
		return nil, err
	}
	local, err := f.local.Bind(buckets)
	if err != nil {
		return nil, err
	}
	return &fallbackSet{f: f, shared: shared, local: local}, nil
}

// Allow decides with the shared limiter, or locally when it fails; it
// returns an error only for a cost below 1.
func (s *fallbackSet) Allow(ctx context.Context, now time.Time, cost int64, d *Decision) error {
	return s.decide(ctx, now, cost, d, Set.Allow)
}

// Check decides without consuming, as Allow decides: see Set.
func (s *fallbackSet) Check(ctx context.Context, now time.Time, cost int64, d *Decision) error {
	return s.decide(ctx, now, cost, d, Set.Check)
}

// decide asks the shared limiter, or the local one when it fails, with
// ask: Set.Allow or Set.Check.
func (s *fallbackSet) decide(ctx context.Context, now time.Time, cost int64, d *Decision,
	ask func(Set, context.Context, time.Time, int64, *Decision) error) error {
	if cost < 1 {
		return ErrCost
	}
	f := s.f
	t := now.UnixNano()
	if r := f.retryAt.Load(); r == 0 || t >= r && f.retryAt.CompareAndSwap(r, t+int64(retryShared)) {
		sctx, cancel := context.WithTimeout(ctx, f.timeout)
		err := ask(s.shared, sctx, now, cost, d)
		cancel()
		if err == nil {
			if r != 0 {
				f.recovered(now)
			}
			return nil
		}
		f.failed(now, err)
	}
	f.localDecisions.Add(1)
	err := ask(s.local, ctx, now, cost, d)
	d.Fallback = true
	return err
}

// Refund gives back cost where decision d was made: locally when it was a
// fallback decision, else on the shared limiter, and, should that fail,
// nowhere (the shared buckets refill on their own; the failure is logged).
func (s *fallbackSet) Refund(ctx context.Context, now time.Time, cost int64, d *Decision) error {
	if d != nil && d.Fallback {
		return s.local.Refund(ctx, now, cost, d)
	}
	sctx, cancel := context.WithTimeout(ctx, s.f.timeout)
	defer cancel()
	if err := s.shared.Refund(sctx, now, cost, d); err != nil {
		s.f.failed(now, err)
	}
	return nil
}

// failed records that the shared limiter failed at now, and logs it if it
// is the first failure or the last log is a minute old.
func (f *Fallback) failed(now time.Time, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.retryAt.Store(now.UnixNano() + int64(retryShared))
	switch {
	case f.since.IsZero():
		f.since, f.lastLog = now, now
		f.localDecisions.Store(0)
		f.log.Warn("rate limits: the shared limiter (Redis) failed; each node limits on its own until it answers",
			"err", err, "retry_every", retryShared)
	case now.Sub(f.lastLog) >= logEvery:
		f.lastLog = now
		f.log.Warn("rate limits: the shared limiter (Redis) still fails; each node limits on its own",
			"err", err, "since", f.since, "local_decisions", f.localDecisions.Load())
	}
}

// recovered records that the shared limiter answered again.
func (f *Fallback) recovered(now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.since.IsZero() {
		return
	}
	f.retryAt.Store(0)
	f.log.Info("rate limits: the shared limiter (Redis) answers again; limits are shared again",
		"down_for", now.Sub(f.since), "local_decisions", f.localDecisions.Load())
	f.since = time.Time{}
}
