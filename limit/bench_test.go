package limit_test

import (
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/limit"
)

// Run with:
//
//	go test -run '^$' -bench . -benchtime 1s ./limit
//
// BenchmarkBaseline measures, in the same run, what the limits are
// compared with: an uncontended sync.Mutex Lock/Unlock pair and time.Now.

var sink int64

func BenchmarkBaseline(b *testing.B) {
	b.Run("mutex", func(b *testing.B) {
		var mu sync.Mutex
		b.ReportAllocs()
		for b.Loop() {
			mu.Lock()
			sink++
			mu.Unlock()
		}
	})
	b.Run("time.Now", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink += time.Now().UnixNano()
		}
	})
}

// benchBuckets returns n buckets: a key's per-second rate and, for 2, its
// tenant's hourly one. The rates are high enough that every request
// passes.
func benchBuckets(n int) []limit.Bucket {
	all := []limit.Bucket{
		{Key: "k:1:burst", Rate: limit.Rate{Name: "burst", Limit: 1_000_000, Period: time.Second}},
		{Key: "t:1:hourly", Rate: limit.Rate{Name: "hourly", Limit: 1_000_000, Period: time.Second, Burst: 1 << 30}},
	}
	return all[:n]
}

// BenchmarkLocal decides requests over one and two buckets, the clock
// moving on a microsecond per request so that every request passes, as on
// a verification that passes its limits.
func BenchmarkLocal(b *testing.B) {
	for _, n := range []int{1, 2} {
		b.Run(map[int]string{1: "1bucket", 2: "2buckets"}[n], func(b *testing.B) {
			s := bind(b, limit.NewLocal(), benchBuckets(n)...)
			now := t0
			var d limit.Decision
			b.ReportAllocs()
			for b.Loop() {
				now = now.Add(time.Microsecond)
				if err := s.Allow(ctx, now, 1, &d); err != nil || !d.Allowed {
					b.Fatalf("%v %+v", err, d)
				}
			}
		})
	}
	// Parallel: goroutines on all cores, each its own key, all sharing
	// the tenant's bucket: the contended case.
	b.Run("2buckets-shared-parallel", func(b *testing.B) {
		l := limit.NewLocal()
		tenant := limit.Bucket{Key: "t:1:hourly", Rate: limit.Rate{Name: "hourly", Limit: 1_000_000, Period: time.Second, Burst: 1 << 30}}
		var mu sync.Mutex
		id := 0
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			mu.Lock()
			id++
			key := limit.Bucket{Key: "k:" + string(rune('a'+id)) + ":burst", Rate: limit.Rate{Name: "burst", Limit: 1_000_000, Period: time.Second, Burst: 1 << 30}}
			mu.Unlock()
			s := bind(b, l, key, tenant)
			var d limit.Decision
			for pb.Next() {
				if err := s.Allow(ctx, t0, 1, &d); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// BenchmarkRedis decides requests over one and two buckets on a real Redis
// (a throwaway server on this machine): one round trip each.
func BenchmarkRedis(b *testing.B) {
	for _, n := range []int{1, 2} {
		b.Run(map[int]string{1: "1bucket", 2: "2buckets"}[n], func(b *testing.B) {
			s := bind(b, limit.NewRedis(rd.Client(b), prefix), benchBuckets(n)...)
			var d limit.Decision
			b.ReportAllocs()
			for b.Loop() {
				if err := s.Allow(ctx, time.Time{}, 1, &d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("ping", func(b *testing.B) {
		c := rd.Client(b)
		b.ReportAllocs()
		for b.Loop() {
			if err := c.Ping(ctx).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
