package gcfloor

import (
	"os"
	"runtime"
	"runtime/debug"
	"testing"
)

// sink keeps allocations from being optimized away.
var sink []byte

// collections returns how many collections allocating total bytes of
// garbage, in blocks of 4 KiB, takes.
func collections(total int) uint32 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for n := 0; n < total; n += 4 << 10 {
		sink = make([]byte, 4<<10)
	}
	runtime.ReadMemStats(&after)
	return after.NumGC - before.NumGC
}

// TestKeepCollectsLessOften: with a headroom of 64 MiB, allocating 512 MiB
// with a small live heap takes about 8 collections, where Go's default
// (a heap goal of 4 MiB) takes 50 to 170 here; once stopped, the default
// is back. Counts of collections, not times: they do not depend on the
// machine's load.
func TestKeepCollectsLessOften(t *testing.T) {
	if os.Getenv("GOGC") != "" {
		t.Skip("GOGC is set: Keep leaves the collector alone")
	}
	const total = 512 << 20
	base := collections(total)
	stop := Keep(64 << 20)
	kept := collections(total)
	stop()
	after := collections(total)
	if kept < 4 {
		t.Errorf("%d collections with a headroom of 64 MiB, want at least 4 (512 MiB / 64 MiB, less the live heap): the headroom is not a bound", kept)
	}
	t.Logf("collections for 512 MiB of garbage: %d by default, %d with a headroom of 64 MiB, %d after stop", base, kept, after)
	if kept > 12 {
		t.Errorf("%d collections with a headroom of 64 MiB, want at most 12 (512 MiB / 64 MiB, and a few)", kept)
	}
	if base < 3*kept {
		t.Errorf("%d collections by default against %d with the headroom: want the headroom to make them at least 3 times rarer", base, kept)
	}
	if after < 2*kept {
		t.Errorf("%d collections after stop: want the default back (%d)", after, base)
	}
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("after stop the percent is %d, want 100", p)
	}
}

// TestKeepOverlapping: the percent is set back only when the last of
// overlapping Keeps stops, and a stop called twice counts once.
func TestKeepOverlapping(t *testing.T) {
	if os.Getenv("GOGC") != "" {
		t.Skip("GOGC is set: Keep leaves the collector alone")
	}
	a := Keep(64 << 20)
	b := Keep(64 << 20)
	a()
	a()
	runtime.GC()
	runtime.GC() // the finalizer of the first has run by the second
	if p := debug.SetGCPercent(-1); p <= 100 {
		t.Errorf("with one Keep still running the percent is %d, want more than 100", p)
	}
	debug.SetGCPercent(percent(64<<20, heap()))
	b()
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("after the last stop the percent is %d, want 100", p)
	}
}

func TestPercent(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		headroom   uint64
		live, base uint64
		want       int
	}{
		{32 * mb, 0, 0, 800},               // (0+32)/4
		{32 * mb, 1 * mb, 1 * mb, 825},     // (1+32)/4: the minimum decides
		{32 * mb, 3 * mb, 4 * mb, 800},     // 32/4: the base decides
		{32 * mb, 30 * mb, 32 * mb, 100},   // Go's own rule
		{32 * mb, 1 << 30, 1 << 30, 100},   // a large heap: Go's own rule
		{4096 * mb, 1 * mb, 1 * mb, 10000}, // bounded
	} {
		if got := percent(c.headroom, heapSize{live: c.live, base: c.base}); got != c.want {
			t.Errorf("percent(%d MiB, live %d, base %d) = %d, want %d", c.headroom/mb, c.live, c.base, got, c.want)
		}
	}
}
