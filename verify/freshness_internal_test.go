package verify

import (
	"testing"
	"time"

	"github.com/maypok86/otter/v2"
)

// TestFreshness: an entry is fresh within the cache TTL; past it, due
// while the feed was read within the TTL, else stale; and read more than
// MaxCacheTTL ago, stale however recently the feed was read, since the
// cache expires nothing itself and PruneChanges counts on it.
func TestFreshness(t *testing.T) {
	clock := otter.NewCoarseClock(time.Millisecond)
	defer clock.Stop()
	const ttl = time.Minute
	v := &Verifier{ttl: int64(ttl), cacheClock: clock}
	for _, c := range []struct {
		name   string
		age    time.Duration
		synced bool
		want   int
	}{
		{"read just now", 0, true, entryFresh},
		{"read within the TTL, feed not read", ttl / 2, false, entryFresh},
		{"past the TTL, feed read", 2 * ttl, true, entryDue},
		{"past the TTL, feed not read", 2 * ttl, false, entryStale},
		{"just within MaxCacheTTL, feed read", MaxCacheTTL - time.Hour, true, entryDue},
		{"past MaxCacheTTL, feed read", MaxCacheTTL + time.Second, true, entryStale},
	} {
		if c.synced {
			v.lastSync.Store(clock.NowNano())
		} else {
			v.lastSync.Store(clock.NowNano() - int64(2*ttl))
		}
		if got := v.freshness(clock.NowNano() - int64(c.age)); got != c.want {
			t.Errorf("%s: freshness %d, want %d", c.name, got, c.want)
		}
	}
}
