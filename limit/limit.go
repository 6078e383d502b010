// Package limit owns Keyward's rate limits: the generic cell rate algorithm
// (GCRA) that decides whether a request may pass several rates at once, all
// or nothing, and the limiters that keep the rates' state: Local, in the
// memory of one node; Redis, shared by every node; and Fallback, which uses
// the shared one and the local one when the shared one fails. It also
// writes the IETF RateLimit-Policy and RateLimit header fields and the
// X-RateLimit-* and Retry-After headers of a decision.
//
// A Rate is Limit requests per Period with at most Burst at once. A Bucket
// is the state of one rate for one subject (a key, a tenant): buckets with
// equal Keys are one bucket, so a tenant-wide rate bound by each of the
// tenant's keys is shared by all of them. Binding a set of buckets, once per
// key when its cache entry is made, gives a Set, whose Allow decides one
// request: it is allowed only if every bucket allows it, and a refused
// request consumes nothing from any bucket. See docs/limits.md.
package limit

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// MaxBuckets is the most buckets one Set binds: a key's own rates and its
// tenant's.
const MaxBuckets = 8

// Bounds of a Rate, checked by Validate.
const (
	// MaxPeriod is the longest Period, and the longest time a full
	// bucket takes to refill from empty. Longer spans are quotas (per
	// calendar day or month), kept elsewhere.
	MaxPeriod = 31 * 24 * time.Hour
	// MinInterval is the shortest time between two requests at the
	// sustained rate: at most a million requests per second.
	MinInterval = time.Microsecond
)

// Rate is Limit requests per Period, with at most Burst at once. A bucket
// holds Burst requests when full and refills one request every Period /
// Limit (the emission interval); Burst 0 means Burst = Limit, so that a
// full bucket holds one Period's worth.
type Rate struct {
	Name   string        // what headers call it: [a-z][a-z0-9_-]{0,31}
	Limit  int64         // requests per Period, at least 1
	Period time.Duration // a whole number of seconds, from 1s to MaxPeriod
	Burst  int64         // requests a full bucket holds; 0 means Limit
}

// Validate reports what is wrong with r, naming the field to fix, or nil.
func (r Rate) Validate() error {
	if !validName(r.Name) {
		return fmt.Errorf("rate limit name %q: must be 1 to 32 characters, a lowercase letter then lowercase letters, digits, '_' or '-'", r.Name)
	}
	if r.Limit < 1 {
		return fmt.Errorf("rate limit %q: limit is %d, must be at least 1 (requests per period)", r.Name, r.Limit)
	}
	if r.Period < time.Second || r.Period > MaxPeriod || r.Period%time.Second != 0 {
		return fmt.Errorf("rate limit %q: period is %s, must be a whole number of seconds from 1s to %s", r.Name, r.Period, MaxPeriod)
	}
	if r.Period/time.Duration(r.Limit) < MinInterval {
		return fmt.Errorf("rate limit %q: limit %d per %s is more than one request per microsecond; lower the limit or lengthen the period", r.Name, r.Limit, r.Period)
	}
	if r.Burst < 0 {
		return fmt.Errorf("rate limit %q: burst is %d, must be 0 (the limit) or more", r.Name, r.Burst)
	}
	if t := r.interval(); r.burst() > int64(MaxPeriod/t) {
		return fmt.Errorf("rate limit %q: burst %d at %d per %s takes longer than %s to refill; lower the burst", r.Name, r.Burst, r.Limit, r.Period, MaxPeriod)
	}
	return nil
}

// burst returns the requests a full bucket holds.
func (r Rate) burst() int64 {
	if r.Burst == 0 {
		return r.Limit
	}
	return r.Burst
}

// interval returns the emission interval, Period / Limit, rounded up to the
// nanosecond so that a rate never allows more than it says.
func (r Rate) interval() time.Duration {
	return (r.Period + time.Duration(r.Limit) - 1) / time.Duration(r.Limit)
}

func validName(s string) bool {
	if len(s) < 1 || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Bucket is one rate's state for one subject. Key names the subject and
// the rate, as "k:<key id>:<rate name>" or "t:<tenant id>:<rate name>";
// buckets with equal Keys share their state, whichever Set binds them, even
// with different Rates (after a rate changes, the state carries over).
type Bucket struct {
	Key  string
	Rate Rate
}

// State is one bucket's standing after a decision, for the headers.
type State struct {
	Name      string        // the rate's name
	Limit     int64         // requests a full bucket holds (the rate's Burst)
	Window    time.Duration // time a bucket takes to refill from empty: Period when Burst = Limit
	Remaining int64         // requests the bucket allows now, from 0 to Limit
	Reset     time.Duration // time until the bucket is full again; 0 when full
}

// Decision is the answer of Set.Allow, filled in place so that deciding
// allocates nothing.
type Decision struct {
	// Allowed reports whether every bucket allowed the request. When
	// false, no bucket was consumed.
	Allowed bool
	// RetryAfter is, for a refused request, the time until every bucket
	// would allow it (if nothing else consumes them meanwhile); 0 when
	// allowed. A request whose cost is more than a bucket's Burst can
	// never pass: its RetryAfter is the time until that bucket is full.
	RetryAfter time.Duration
	// States holds each bucket's standing after the decision, in the
	// order the buckets were bound; N of them are set.
	States [MaxBuckets]State
	N      int
	// Tightest is the index in States of the most restrictive bucket:
	// for a refused request, the one that asks the longest wait; for an
	// allowed one, the one with the fewest requests remaining (and of
	// those, the one longest from full). It is what X-RateLimit-* show.
	Tightest int
	// Fallback reports that a Fallback decided on this node alone,
	// because its shared limiter failed.
	Fallback bool
}

// Set is a bound set of buckets. It is safe for concurrent use.
type Set interface {
	// Allow decides whether a request of the given cost (1 for a plain
	// request, at least 1) may pass every bucket at time now, consumes
	// cost from each if so, and fills d. It returns an error when cost
	// is below 1, or when the limiter's store fails; then d is not a
	// decision. Redis ignores now and reads the Redis server's clock.
	Allow(ctx context.Context, now time.Time, cost int64, d *Decision) error
	// Refund gives back to every bucket the cost of a request that Allow
	// allowed, as decision d, when something after the rate limits
	// refused it (a quota, credits): the refused request then costs
	// nothing. A bucket that has refilled since keeps no more than full.
	Refund(ctx context.Context, now time.Time, cost int64, d *Decision) error
	// Check decides as Allow would, and fills d, but consumes nothing:
	// for asking again about a request that was decided already (nginx
	// asks a second time about a refused one). The states in d are the
	// buckets' as they are, not as an allowed request would leave them.
	Check(ctx context.Context, now time.Time, cost int64, d *Decision) error
}

// Limiter binds buckets to a Set, once per subject rather than per request,
// so that Allow looks nothing up by name.
type Limiter interface {
	// Bind returns the Set of the buckets, in that order. It returns an
	// error when there are more than MaxBuckets, when two have the same
	// Key, or when a Key is empty or a Rate is not valid. No buckets
	// make a Set that allows everything.
	Bind(buckets []Bucket) (Set, error)
}

// ErrCost is returned by Allow for a cost below 1.
var ErrCost = errors.New("rate limit: the cost of a request must be at least 1")

// checkBuckets validates buckets for Bind.
func checkBuckets(buckets []Bucket) error {
	if len(buckets) > MaxBuckets {
		return fmt.Errorf("rate limits: %d buckets, at most %d apply to one request", len(buckets), MaxBuckets)
	}
	for i, b := range buckets {
		if b.Key == "" {
			return fmt.Errorf("rate limit %q: the bucket key is empty", b.Rate.Name)
		}
		if err := b.Rate.Validate(); err != nil {
			return err
		}
		for _, o := range buckets[:i] {
			if o.Key == b.Key {
				return fmt.Errorf("rate limits: bucket %q is bound twice", b.Key)
			}
		}
	}
	return nil
}

// cell is a rate's GCRA parameters in some time unit (nanoseconds for
// Local, microseconds for Redis): the emission interval t, and the burst
// tolerance tau = burst × t, the time a bucket takes to refill from empty.
// A bucket's state is its theoretical arrival time (TAT): the time at which
// it is full again; a TAT at or before now is a full bucket, the same as no
// state at all.
type cell struct {
	t, tau int64
	burst  int64
	unit   time.Duration
}

func newCell(r Rate, unit time.Duration) cell {
	t := int64((r.interval() + unit - 1) / unit)
	return cell{t: t, tau: r.burst() * t, burst: r.burst(), unit: unit}
}

// wait returns how long (in the cell's unit) a request of the given cost
// must wait before the bucket whose TAT is tat allows it at now: 0 when it
// allows it now. A cost above burst can never pass; its wait is the time
// until the bucket is full, and more than 0.
func (c cell) wait(tat, now, cost int64) int64 {
	tat = max(tat, now)
	if cost > c.burst {
		return max(tat-now, 1)
	}
	return max(tat+cost*c.t-c.tau-now, 0)
}

// state returns the bucket's State given its TAT at now.
func (c cell) state(name string, tat, now int64) State {
	reset := max(tat-now, 0)
	return State{
		Name:      name,
		Limit:     c.burst,
		Window:    time.Duration(c.tau) * c.unit,
		Remaining: min(max((c.tau-reset)/c.t, 0), c.burst),
		Reset:     time.Duration(reset) * c.unit,
	}
}

// decide fills d from the TATs after the decision (unchanged when refused)
// and the waits each bucket asked.
func decide(d *Decision, allowed bool, names *[MaxBuckets]string, cells *[MaxBuckets]cell, tats, waits *[MaxBuckets]int64, n int, now int64) {
	d.Allowed, d.N, d.Tightest, d.RetryAfter, d.Fallback = allowed, n, 0, 0, false
	var longest int64 = -1
	for i := 0; i < n; i++ {
		d.States[i] = cells[i].state(names[i], tats[i], now)
		if allowed {
			t, s := &d.States[d.Tightest], &d.States[i]
			if s.Remaining < t.Remaining || s.Remaining == t.Remaining && s.Reset > t.Reset {
				d.Tightest = i
			}
		} else if waits[i] > longest {
			longest, d.Tightest = waits[i], i
			d.RetryAfter = time.Duration(waits[i]) * cells[i].unit
		}
	}
}
