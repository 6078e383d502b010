package verify

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward"
)

// usageBatch is the most uses written in one call of Store.RecordUsage.
const usageBatch = 1000

// usageResolution is how close in time two uses from the same address may
// be for the later one not to be noted: last-used times need no more
// precision, and a key used from many goroutines at once then costs them
// reads of shared memory, not writes.
const usageResolution = time.Millisecond

// lastUse is the last use of a key, kept in the key's cache entry. Its
// fields are written without a lock: a reader may see the time of one use
// with the address of another, concurrent one, which is as good an answer.
type lastUse struct {
	at      atomic.Int64  // Unix nanoseconds
	ipHigh  atomic.Uint64 // the address as 16 bytes, big endian
	ipLow   atomic.Uint64
	ipKind  atomic.Uint32 // 0 for no address, 4 or 6
	pending atomic.Bool   // whether the entry is in the usage log
}

// note records a use at nanos (Unix nanoseconds) from address ip. It
// reports whether the entry must be added to the usage log: the first use
// since the last write.
func (u *lastUse) note(nanos int64, ip netip.Addr) (enqueue bool) {
	ip = ip.Unmap()
	var kind uint32
	switch {
	case ip.Is4():
		kind = 4
	case ip.Is6():
		kind = 6
	}
	b := ip.As16()
	high, low := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	if prev := u.at.Load(); nanos-prev < int64(usageResolution) && nanos >= prev &&
		u.ipKind.Load() == kind && u.ipHigh.Load() == high && u.ipLow.Load() == low {
		return !u.pending.Load() && u.pending.CompareAndSwap(false, true)
	}
	u.at.Store(nanos)
	u.ipHigh.Store(high)
	u.ipLow.Store(low)
	u.ipKind.Store(kind)
	return !u.pending.Load() && u.pending.CompareAndSwap(false, true)
}

// usage returns the last use as the store takes it.
func (u *lastUse) usage(keyID string) keyward.Usage {
	use := keyward.Usage{KeyID: keyID, At: time.Unix(0, u.at.Load()).UTC()}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], u.ipHigh.Load())
	binary.BigEndian.PutUint64(b[8:], u.ipLow.Load())
	switch u.ipKind.Load() {
	case 4:
		use.IP = netip.AddrFrom16(b).Unmap().String()
	case 6:
		use.IP = netip.AddrFrom16(b).String()
	}
	return use
}

// usageLog lists the cache entries used since the last write. An entry is
// added once, by the first use after a write; later uses only update the
// entry's lastUse, without a lock or an allocation.
type usageLog struct {
	mu      sync.Mutex
	pending []*entry
	spare   []*entry // the previous batch's slice, reused
}

// add puts e in the log.
func (l *usageLog) add(e *entry) {
	l.mu.Lock()
	l.pending = append(l.pending, e)
	l.mu.Unlock()
}

// take empties the log and returns what it held. The caller gives the
// slice back with done.
func (l *usageLog) take() []*entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	taken := l.pending
	l.pending, l.spare = l.spare[:0], nil
	return taken
}

// done returns a slice from take for reuse.
func (l *usageLog) done(s []*entry) {
	clear(s)
	l.mu.Lock()
	if l.spare == nil {
		l.spare = s[:0]
	}
	l.mu.Unlock()
}

// recordUse notes a valid use of the key of e at Unix nanoseconds at.
func (v *Verifier) recordUse(e *entry, at int64, ip netip.Addr) {
	if e.used.note(at, ip) {
		v.usage.add(e)
	}
}

// Flush writes the pending last-used times and addresses now. If the store
// refuses them, they stay pending for the next Flush and the error is
// returned: no use is dropped.
func (v *Verifier) Flush(ctx context.Context) error {
	v.flushMu.Lock()
	defer v.flushMu.Unlock()
	taken := v.usage.take()
	defer v.usage.done(taken)
	// Each entry leaves the log before its use is read, so that a use noted
	// meanwhile adds it again and is written by the next Flush.
	for _, e := range taken {
		e.used.pending.Store(false)
	}
	for start := 0; start < len(taken); start += usageBatch {
		part := taken[start:min(start+usageBatch, len(taken))]
		uses := make([]keyward.Usage, len(part))
		for i, e := range part {
			uses[i] = e.used.usage(e.key.ID)
		}
		if err := v.store.RecordUsage(ctx, uses); err != nil {
			for _, e := range taken[start:] {
				if e.used.pending.CompareAndSwap(false, true) {
					v.usage.add(e)
				}
			}
			return fmt.Errorf("verify: record the last use of %d keys: %w", len(taken)-start, err)
		}
	}
	return nil
}
