package limit

import (
	"context"
	"runtime"
	"sync"
	"time"
)

// Local keeps buckets in this node's memory. Its decisions take no lock
// but the buckets' own, allocate nothing, and read the time only from
// Allow's now, so tests drive it with a fake clock.
//
// Memory stays bounded: a bucket that no Set uses any more (its Sets were
// garbage collected) and that is full again is dropped, by Prune or by Bind
// once the number of buckets has doubled since the last pruning. A full
// bucket is the same as a new one, so dropping it loses nothing, and a
// bucket a Set still uses is never dropped, so two Sets of one Key never
// hold two different buckets.
type Local struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	nextID  uint64
	pruneAt int // Bind prunes when len(buckets) reaches this
}

// bucket is one Key's state. It fills a cache line, so that two hot
// buckets never share one.
type bucket struct {
	mu   sync.Mutex
	tat  int64  // Unix nanoseconds at which the bucket is full again; guarded by mu
	id   uint64 // buckets are locked in the order of their ids
	refs int    // Sets that hold the bucket; guarded by Local.mu
	_    [64 - 8 - 8 - 8 - 8]byte
}

// minPrune is the number of buckets below which Bind does not prune.
const minPrune = 1024

// NewLocal returns an empty in-memory limiter.
func NewLocal() *Local {
	return &Local{buckets: map[string]*bucket{}, pruneAt: minPrune}
}

// localSet is a Set of Local. Its buckets are locked in the order of their
// ids, which order gives, so that two Sets sharing buckets never wait on
// each other in a cycle.
type localSet struct {
	n     int
	order [MaxBuckets]uint8
	b     [MaxBuckets]*bucket
	cells [MaxBuckets]cell
	names [MaxBuckets]string
}

// Bind returns the Set of buckets, sharing the state of any bucket with
// the same Key that another Set of l holds or held recently.
func (l *Local) Bind(buckets []Bucket) (Set, error) {
	if err := checkBuckets(buckets); err != nil {
		return nil, err
	}
	s := &localSet{n: len(buckets)}
	held := make([]*bucket, len(buckets))
	l.mu.Lock()
	if len(l.buckets) >= l.pruneAt {
		l.pruneLocked(time.Now().UnixNano())
		l.pruneAt = max(2*len(l.buckets), minPrune)
	}
	for i, bk := range buckets {
		b := l.buckets[bk.Key]
		if b == nil {
			l.nextID++
			b = &bucket{id: l.nextID}
			l.buckets[bk.Key] = b
		}
		b.refs++
		held[i] = b
		s.b[i], s.cells[i], s.names[i] = b, newCell(bk.Rate, time.Nanosecond), bk.Rate.Name
		s.order[i] = uint8(i)
	}
	l.mu.Unlock()
	// Insertion sort of at most MaxBuckets indices by bucket id.
	for i := 1; i < s.n; i++ {
		for j := i; j > 0 && s.b[s.order[j]].id < s.b[s.order[j-1]].id; j-- {
			s.order[j], s.order[j-1] = s.order[j-1], s.order[j]
		}
	}
	runtime.AddCleanup(s, l.release, held)
	return s, nil
}

// release gives back the buckets of a Set that was garbage collected.
func (l *Local) release(held []*bucket) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range held {
		b.refs--
	}
}

// Prune drops the buckets that no Set uses and that are full at now, and
// returns how many it dropped. Bind calls it with the current time once the
// number of buckets has doubled since the last time; a caller may also call
// it, say, every minute.
func (l *Local) Prune(now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pruneLocked(now.UnixNano())
}

func (l *Local) pruneLocked(now int64) int {
	n := 0
	for k, b := range l.buckets {
		if b.refs > 0 {
			continue
		}
		b.mu.Lock()
		full := b.tat <= now
		b.mu.Unlock()
		if full {
			delete(l.buckets, k)
			n++
		}
	}
	return n
}

// Len returns the number of buckets l holds.
func (l *Local) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// Allow decides a request at now: see Set.
func (s *localSet) Allow(_ context.Context, now time.Time, cost int64, d *Decision) error {
	return s.decide(now, cost, d, true)
}

// Check decides a request at now without consuming: see Set.
func (s *localSet) Check(_ context.Context, now time.Time, cost int64, d *Decision) error {
	return s.decide(now, cost, d, false)
}

// decide is Allow when consume is true, else Check.
func (s *localSet) decide(now time.Time, cost int64, d *Decision, consume bool) error {
	if cost < 1 {
		return ErrCost
	}
	t := now.UnixNano()
	var tats, waits [MaxBuckets]int64
	allowed := true
	for _, i := range s.order[:s.n] {
		s.b[i].mu.Lock()
	}
	for i := 0; i < s.n; i++ {
		tats[i] = s.b[i].tat
		waits[i] = s.cells[i].wait(tats[i], t, cost)
		allowed = allowed && waits[i] == 0
	}
	if allowed && consume {
		for i := 0; i < s.n; i++ {
			tats[i] = max(tats[i], t) + cost*s.cells[i].t
			s.b[i].tat = tats[i]
		}
	}
	for _, i := range s.order[:s.n] {
		s.b[i].mu.Unlock()
	}
	decide(d, allowed, &s.names, &s.cells, &tats, &waits, s.n, t)
	return nil
}

// Refund gives back cost to every bucket at now: see Set.
func (s *localSet) Refund(_ context.Context, now time.Time, cost int64, _ *Decision) error {
	if cost < 1 {
		return ErrCost
	}
	t := now.UnixNano()
	for _, i := range s.order[:s.n] {
		s.b[i].mu.Lock()
	}
	for i := 0; i < s.n; i++ {
		s.b[i].tat = max(s.b[i].tat-cost*s.cells[i].t, t)
	}
	for _, i := range s.order[:s.n] {
		s.b[i].mu.Unlock()
	}
	return nil
}
