package verify_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/internal/scale"
	"github.com/keyward/keyward/postgres"
	"github.com/keyward/keyward/sqlite"
	"github.com/keyward/keyward/verify"
)

// Sizes of BenchmarkScale.
const (
	// scaleBaseKeys is the number of keys stored in the baseline.
	scaleBaseKeys = 1000
	// scaleDefaultKeys is the number of keys stored beside the baseline
	// when KEYWARD_SCALE_KEYS is not set: small enough for a quick run.
	scaleDefaultKeys = 10_000
	// scaleHotKeys is the size of the hot working set.
	scaleHotKeys = 1000
	// scaleFillers is the number of goroutines that fill a cache.
	scaleFillers = 8
)

// BenchmarkScale measures verification with many keys stored, on each
// store, beside a baseline of scaleBaseKeys keys stored in the same run:
//
//   - hot/keys=N: Verifier.Verify, in parallel, of a hot working set of
//     scaleHotKeys keys, on a verifier configured as in production (as in
//     BenchmarkVerifyCached) whose cache holds as many stored keys as it
//     can (up to verify.DefaultCacheSize), the hot set among them;
//   - miss/keys=N: Verify of a stored key that is not cached, one after
//     the other, reporting the median and 99th percentile latencies
//     (p50-ns, p99-ns) beside the mean; the key's tenant is cached;
//   - memory/keys=N: the growth of the live heap when a new verifier caches
//     min(N, verify.DefaultCacheSize) keys, per key (B/key), the usage log
//     flushed.
//
// N is KEYWARD_SCALE_KEYS (default scaleDefaultKeys). The keys are loaded
// once per store with package scale, and the measures are repeated
// KEYWARD_SCALE_ROUNDS times (default 1), the baseline and N swapping order
// every round, so that a noisy neighbour slows both alike. scripts/scale
// runs it with a million keys and prints the medians and the ratios.
func BenchmarkScale(b *testing.B) {
	keys := scaleEnv(b, "KEYWARD_SCALE_KEYS", scaleDefaultKeys)
	rounds := scaleEnv(b, "KEYWARD_SCALE_ROUNDS", 1)
	stores := []struct {
		name string
		// setup prepares the store for the benchmark b and returns a
		// function that loads keys keys into a new database.
		setup func(b *testing.B) func(keys int) *scaleFixture
	}{
		{"sqlite", sqliteScale},
		{"postgres", postgresScale},
	}
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			load := st.setup(b)
			sizes := []*scaleFixture{load(scaleBaseKeys), load(keys)}
			for round := range rounds {
				order := slices.Clone(sizes)
				if round%2 == 1 {
					slices.Reverse(order)
				}
				for _, f := range order {
					b.Run(fmt.Sprintf("hot/keys=%d", f.keys), f.benchHot)
					f.closeVerifiers()
				}
				for _, f := range order {
					b.Run(fmt.Sprintf("miss/keys=%d", f.keys), f.benchMiss)
					f.closeVerifiers()
				}
				for _, f := range order {
					b.Run(fmt.Sprintf("memory/keys=%d", f.keys), f.benchMemory)
				}
			}
		})
	}
}

// scaleEnv reads a positive count from the environment variable name, or
// returns def when it is not set.
func scaleEnv(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
}

// scaleFixture is a store loaded with many keys, the plaintexts of some of
// them, and the verifiers that the benchmarks use.
type scaleFixture struct {
	keys   int
	store  keyward.Store
	format apikey.Format
	// hot is the hot working set; warm holds one key of each tenant, whose
	// verification caches the tenant before misses are timed; cold are the
	// other kept keys, presented for misses; fill is every kept key, the
	// hot ones last, up to the size of the cache.
	hot, warm, cold, fill []string

	// hotV is the verifier of benchHot, filled and warmed on first use,
	// and spy the store it reads, which counts its reads.
	hotV *verify.Verifier
	spy  *spyStore
	// missV is the verifier of benchMiss, replaced by a new one once it has
	// seen every cold key; nextCold is the next cold key to present.
	missV    *verify.Verifier
	nextCold int
}

// sqliteScale returns a function that loads keys into a new SQLite
// database of the benchmark b and opens it.
func sqliteScale(b *testing.B) func(keys int) *scaleFixture {
	return func(keys int) *scaleFixture {
		path := filepath.Join(b.TempDir(), "keyward.db")
		return loadScale(b, "sqlite", keys,
			func(opts scale.Options) (*scale.Loaded, error) { return scale.SQLite(b.Context(), path, opts) },
			func() (keyward.Store, error) { return sqlite.Open(b.Context(), path) })
	}
}

// postgresScale returns a function that loads keys into a new database on
// a throwaway PostgreSQL server, started on first use and stopped when the
// benchmark b ends, and opens it.
func postgresScale(b *testing.B) func(keys int) *scaleFixture {
	srv := pgtest.New()
	b.Cleanup(srv.Stop)
	return func(keys int) *scaleFixture {
		dsn := srv.Database(b)
		return loadScale(b, "postgres", keys,
			func(opts scale.Options) (*scale.Loaded, error) { return scale.Postgres(b.Context(), dsn, opts) },
			func() (keyward.Store, error) { return postgres.Open(b.Context(), dsn) })
	}
}

// loadScale loads keys keys with load, keeping as many plaintexts as the
// cache holds, opens the store with open, closed when the benchmark ends,
// and divides the kept keys among the benchmarks.
func loadScale(b *testing.B, name string, keys int, load func(scale.Options) (*scale.Loaded, error), open func() (keyward.Store, error)) *scaleFixture {
	b.Helper()
	format, err := apikey.NewFormat(apikey.DefaultPrefix)
	if err != nil {
		b.Fatal(err)
	}
	begin := time.Now()
	loaded, err := load(scale.Options{Keys: keys, Keep: min(keys, verify.DefaultCacheSize), Format: format})
	if err != nil {
		b.Fatalf("load %d keys into %s: %v", keys, name, err)
	}
	b.Logf("scale: loaded %d keys into %s in %v", keys, name, time.Since(begin).Round(time.Millisecond))
	store, err := open()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })

	f := &scaleFixture{keys: keys, store: store, format: format}
	kept := loaded.Kept
	isHot := make([]bool, len(kept))
	for i := range min(scaleHotKeys, len(kept)) {
		j := i * len(kept) / min(scaleHotKeys, len(kept)) // spread over the load
		isHot[j] = true
		f.hot = append(f.hot, kept[j].Key)
	}
	warmed := map[string]bool{}
	var rest []string
	for i, k := range kept {
		if warmed[k.TenantID] {
			f.cold = append(f.cold, k.Key)
		} else {
			warmed[k.TenantID] = true
			f.warm = append(f.warm, k.Key)
		}
		if !isHot[i] {
			rest = append(rest, k.Key)
		}
	}
	if len(f.cold) == 0 {
		b.Fatalf("%d keys kept: none left for misses", len(kept))
	}
	// The hot keys are cached last, so that the ones before them would be
	// evicted first if the cache could not hold them all.
	f.fill = append(rest, f.hot...)
	f.fill = f.fill[max(0, len(f.fill)-verify.DefaultCacheSize):]
	return f
}

// newVerifier returns a verifier of s configured as in production.
func (f *scaleFixture) newVerifier(s keyward.Store) *verify.Verifier {
	return verify.New(s, verify.Options{Format: f.format})
}

// closeVerifiers closes the verifiers of the benchmarks, so that the next
// round starts with new ones and the other benchmarks run beside no cache
// but their own.
func (f *scaleFixture) closeVerifiers() {
	for _, v := range []*verify.Verifier{f.hotV, f.missV} {
		if v != nil {
			v.Close(context.Background())
		}
	}
	f.hotV, f.missV = nil, nil
}

// scaleRequest is a request like that of BenchmarkVerifyCached.
func scaleRequest(key string) verify.Request {
	return verify.Request{Key: key, IP: netip.MustParseAddr("192.0.2.10"), Permissions: []string{"messages:send"}}
}

// fillCache verifies keys with v from scaleFillers goroutines, in about the
// order given, and fails the benchmark unless every one is valid.
func fillCache(b *testing.B, v *verify.Verifier, keys []string) {
	b.Helper()
	var (
		next   atomic.Int64
		wg     sync.WaitGroup
		failed atomic.Value
	)
	for range scaleFillers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(keys); i = int(next.Add(1) - 1) {
				if r := v.Verify(b.Context(), scaleRequest(keys[i])); !r.Valid() {
					failed.Store(fmt.Sprintf("%s: %s", r.Code, r.Detail))
					return
				}
			}
		})
	}
	wg.Wait()
	if msg := failed.Load(); msg != nil {
		b.Fatalf("Verify while filling the cache: %s", msg)
	}
}

// benchHot verifies the hot keys in parallel, each goroutine going through
// them from its own starting point, on a verifier whose cache holds f.fill.
// It fails unless every verification is answered from the cache.
func (f *scaleFixture) benchHot(b *testing.B) {
	if f.hotV == nil {
		f.spy = &spyStore{Store: f.store}
		f.hotV = f.newVerifier(f.spy)
		fillCache(b, f.hotV, f.fill)
	}
	// A server verifies a key that it has just read from a request, in
	// memory the processor has just written. The hot keys are copied next
	// to each other for the same reason: the loader left them scattered
	// among all the kept keys, and reading them would otherwise cost the
	// benchmark, not the verifier, more with more keys kept.
	v, hot := f.hotV, packStrings(f.hot)
	ctx := context.Background()
	for _, k := range hot { // the hot keys are used most
		if r := v.Verify(ctx, scaleRequest(k)); !r.Valid() {
			b.Fatalf("Verify: %s: %s", r.Code, r.Detail)
		}
	}
	reads := f.spy.reads()
	runtime.GC() // the fill's garbage is not collected while timing
	var starts atomic.Int64
	b.ReportAllocs()
	cpu := processCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(starts.Add(1)) * 7919 // a prime: starting points far apart
		req := scaleRequest("")
		for pb.Next() {
			req.Key = hot[i%len(hot)]
			i++
			if r := v.Verify(ctx, req); !r.Valid() {
				b.Errorf("Verify: %s: %s", r.Code, r.Detail)
				return
			}
		}
	})
	b.StopTimer()
	// CPU time per verification, both goroutines together: on a shared
	// machine it varies less than wall time, since time stolen by other
	// tenants is not counted.
	b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
	if n := f.spy.reads() - reads; n != 0 {
		b.Fatalf("the hot keys made %d storage reads: they were not all cached", n)
	}
}

// benchMiss verifies one cold key after the other, each the first time the
// verifier sees it, and reports the median and 99th percentile latencies.
// When every cold key has been seen, a new verifier takes over, untimed.
func (f *scaleFixture) benchMiss(b *testing.B) {
	ctx := context.Background()
	took := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if f.missV == nil || f.nextCold == len(f.cold) {
			b.StopTimer()
			if f.missV != nil {
				f.missV.Close(ctx)
			}
			f.missV, f.nextCold = f.newVerifier(f.store), 0
			for _, k := range f.warm { // caches each tenant
				if r := f.missV.Verify(ctx, scaleRequest(k)); !r.Valid() {
					b.Fatalf("Verify: %s: %s", r.Code, r.Detail)
				}
			}
			b.StartTimer()
		}
		req := scaleRequest(f.cold[f.nextCold])
		f.nextCold++
		begin := time.Now()
		r := f.missV.Verify(ctx, req)
		took = append(took, time.Since(begin))
		if !r.Valid() {
			b.Fatalf("Verify: %s: %s", r.Code, r.Detail)
		}
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(took[len(took)*99/100].Nanoseconds()), "p99-ns")
}

// benchMemory fills a new verifier's cache with every kept key, up to the
// cache's size, writes the usage it noted, and reports how much the live
// heap grew, per cached key.
func (f *scaleFixture) benchMemory(b *testing.B) {
	var grew uint64
	var before, after runtime.MemStats
	for range b.N {
		v := f.newVerifier(f.store)
		runtime.GC()
		runtime.ReadMemStats(&before)
		fillCache(b, v, f.fill)
		if err := v.Flush(b.Context()); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		grew += after.HeapAlloc - min(before.HeapAlloc, after.HeapAlloc)
		runtime.KeepAlive(v)
		v.Close(context.Background())
	}
	b.ReportMetric(float64(grew)/float64(b.N)/float64(len(f.fill)), "B/key")
	b.ReportMetric(float64(len(f.fill)), "keys-cached")
}

// packStrings returns copies of ss that share one allocation.
func packStrings(ss []string) []string {
	n := 0
	for _, s := range ss {
		n += len(s)
	}
	all := make([]byte, 0, n)
	for _, s := range ss {
		all = append(all, s...)
	}
	packed := string(all)
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i], packed = packed[:len(s)], packed[len(s):]
	}
	return out
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
