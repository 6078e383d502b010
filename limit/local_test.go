package limit_test

import (
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/limit"
)

func TestHeaders(t *testing.T) {
	l := limit.NewLocal()
	s := bind(t, l,
		limit.Bucket{"k:1:burst", limit.Rate{Name: "burst", Limit: 10, Period: time.Second}},
		limit.Bucket{"t:1:hourly", limit.Rate{Name: "hourly", Limit: 1000, Period: time.Hour}})
	d := allow(t, s, t0, 1)
	if got, want := string(limit.AppendPolicy(nil, &d)), `"burst";q=10;w=1, "hourly";q=1000;w=3600`; got != want {
		t.Errorf("RateLimit-Policy: %s, want %s", got, want)
	}
	if got, want := string(limit.AppendRateLimit(nil, &d)), `"burst";r=9;t=1, "hourly";r=999;t=4`; got != want {
		t.Errorf("RateLimit: %s, want %s", got, want)
	}
	h := http.Header{}
	limit.SetHeaders(h, &d)
	want := map[string]string{
		"RateLimit-Policy":      `"burst";q=10;w=1, "hourly";q=1000;w=3600`,
		"RateLimit":             `"burst";r=9;t=1, "hourly";r=999;t=4`,
		"X-RateLimit-Limit":     "10",
		"X-RateLimit-Remaining": "9",
		"X-RateLimit-Reset":     "1",
		"Retry-After":           "",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}

	allow(t, s, t0, 9)
	d = allow(t, s, t0.Add(30*time.Millisecond), 1)
	h = http.Header{}
	limit.SetHeaders(h, &d)
	want = map[string]string{
		"RateLimit":             `"burst";r=0;t=1, "hourly";r=990;t=36`,
		"X-RateLimit-Limit":     "10",
		"X-RateLimit-Remaining": "0",
		"X-RateLimit-Reset":     "1",
		"Retry-After":           "1", // 70ms, rounded up
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("refused: %s: %q, want %q", k, got, v)
		}
	}

	h = http.Header{}
	limit.SetHeaders(h, &limit.Decision{Allowed: true})
	if len(h) != 0 {
		t.Errorf("no buckets: headers %v, want none", h)
	}
	d = limit.Decision{N: 1, States: [limit.MaxBuckets]limit.State{{Name: `a"b\c`}}}
	if got, want := string(limit.AppendRateLimit(nil, &d)), `"a\"b\\c";r=0;t=0`; got != want {
		t.Errorf("escaped name: %s, want %s", got, want)
	}
	for _, c := range []struct {
		d    time.Duration
		want int64
	}{{0, 0}, {-time.Second, 0}, {1, 1}, {time.Second, 1}, {time.Second + 1, 2}} {
		if got := limit.Seconds(c.d); got != c.want {
			t.Errorf("Seconds(%s) = %d, want %d", c.d, got, c.want)
		}
	}
}

// testConcurrent checks all or nothing under concurrency: goroutines
// hammer two Sets that share a tenant's bucket (150 requests) and each have
// a key's bucket of 100, at a time when nothing refills. Exactly 150 pass
// in all, and each key's bucket lost exactly what its Set was allowed.
func testConcurrent(t *testing.T, l limit.Limiter, now func() time.Time) {
	long := time.Duration(24) * time.Hour // nothing refills during the test
	tenant := limit.Bucket{"t:1:tenant", limit.Rate{Name: "tenant", Limit: 150, Period: long}}
	keyRate := limit.Rate{Name: "key", Limit: 100, Period: long}
	sets := []limit.Set{
		bind(t, l, limit.Bucket{"k:1:key", keyRate}, tenant),
		bind(t, l, tenant, limit.Bucket{"k:2:key", keyRate}), // the other order: locks must not deadlock
	}
	var allowed [2]atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 40 {
				var d limit.Decision
				if err := sets[g%2].Allow(ctx, now(), 1, &d); err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					allowed[g%2].Add(1)
				}
			}
		}()
	}
	wg.Wait()
	a, b := allowed[0].Load(), allowed[1].Load()
	if a+b != 150 || a > 100 || b > 100 {
		t.Fatalf("allowed %d + %d, want 150 in all, at most 100 each", a, b)
	}
	// Each key's bucket has exactly 100 - allowed left: refused requests
	// took nothing from it.
	for i, n := range []int64{a, b} {
		s := bind(t, l, limit.Bucket{fmt.Sprintf("k:%d:key", i+1), keyRate})
		d := allow(t, s, now(), 1)
		if left := 100 - n; d.States[0].Remaining != max(left-1, 0) || d.Allowed != (left > 0) {
			t.Errorf("key %d after %d allowed: %+v, want %d left before this request", i+1, n, d.States[0], left)
		}
	}
}

func TestLocalConcurrent(t *testing.T) {
	testConcurrent(t, limit.NewLocal(), func() time.Time { return t0 })
}

// TestLocalPrune checks that memory stays bounded: buckets whose Sets are
// gone go away once full, and buckets still in use are never dropped.
func TestLocalPrune(t *testing.T) {
	l := limit.NewLocal()
	r := limit.Rate{Name: "r", Limit: 1, Period: time.Minute}
	for i := range 100 {
		s := bind(t, l, limit.Bucket{fmt.Sprintf("k:%d:r", i), r})
		allow(t, s, t0, 1)
	}
	kept := bind(t, l, limit.Bucket{"k:kept:r", r})
	allow(t, kept, t0, 1)
	if n := l.Len(); n != 101 {
		t.Fatalf("Len = %d, want 101", n)
	}
	// The dropped Sets' buckets are released once collected.
	waitReleased(t, l, t0.Add(time.Hour), 100)
	if n := l.Len(); n != 1 {
		t.Fatalf("Len after pruning = %d, want 1: the bucket in use", n)
	}
	// The kept bucket is still the one its Set uses: a new Bind of its
	// Key sees it empty (one minute has not passed at t0).
	again := bind(t, l, limit.Bucket{"k:kept:r", r})
	if d := allow(t, again, t0.Add(time.Second), 1); d.Allowed {
		t.Fatal("a bucket in use was split in two by pruning")
	}
	runtime.KeepAlive(kept)

	// A bucket not full yet is kept even when unused, so dropping a Set
	// and binding its Key again does not reset the limit.
	func() {
		s := bind(t, l, limit.Bucket{"k:busy:r", r})
		allow(t, s, t0, 1)
	}()
	waitReleased(t, l, t0.Add(time.Second), 0)
	s := bind(t, l, limit.Bucket{"k:busy:r", r})
	if d := allow(t, s, t0.Add(2*time.Second), 1); d.Allowed {
		t.Fatal("an unused bucket that is not full was dropped: its limit was reset")
	}
}

// waitReleased collects garbage until Prune(now) has dropped want buckets
// (the cleanups of collected Sets run in the background), or fails.
func waitReleased(t *testing.T, l *limit.Local, now time.Time, want int) {
	t.Helper()
	n := 0
	for range 100 {
		runtime.GC()
		time.Sleep(time.Millisecond)
		n += l.Prune(now)
		if n >= want && want > 0 {
			return
		}
	}
	if n != want {
		t.Fatalf("Prune dropped %d buckets, want %d", n, want)
	}
}

// TestLocalBindPrunes checks that Bind alone keeps memory bounded when keys
// come and go: a stream of short-lived Sets never holds more than a bounded
// number of buckets.
func TestLocalBindPrunes(t *testing.T) {
	l := limit.NewLocal()
	r := limit.Rate{Name: "r", Limit: 10, Period: time.Second}
	most := 0
	for i := range 20000 {
		bind(t, l, limit.Bucket{fmt.Sprintf("k:%d:r", i), r}) // full: never used
		if i%1000 == 0 {
			runtime.GC()
			// The cleanups of the Sets collected run on a goroutine of
			// their own, which a loaded machine (go test -race of every
			// package at once) may not have run yet: let it.
			time.Sleep(5 * time.Millisecond)
		}
		most = max(most, l.Len())
	}
	t.Logf("at most %d buckets held", most)
	if most > 4096 {
		t.Fatalf("Local held up to %d buckets of 20000 short-lived Sets, want a bounded number", most)
	}
}
