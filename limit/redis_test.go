package limit_test

import (
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/lockedbuffer"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/internal/redistest"
	"github.com/keyward/keyward/limit"
	"github.com/redis/go-redis/v9"
)

var rd = redistest.New()

func TestMain(m *testing.M) {
	code := m.Run()
	rd.Stop()
	os.Exit(code)
}

const prefix = "keyward:rate:"

func TestRedisGCRA(t *testing.T) {
	client := rd.Client(t)
	s := bind(t, limit.NewRedis(client, prefix), limit.Bucket{"k:1:r", limit.Rate{Name: "r", Limit: 5, Period: time.Hour}})
	for i := range 5 {
		d := allow(t, s, time.Now(), 1)
		st := d.States[0]
		// Reset is exact but for the microseconds that pass between
		// two requests.
		if !d.Allowed || st.Remaining != int64(4-i) || st.Limit != 5 || st.Window != time.Hour ||
			st.Reset > time.Duration(i+1)*12*time.Minute || st.Reset < time.Duration(i+1)*12*time.Minute-time.Minute {
			t.Fatalf("request %d: %+v", i+1, d)
		}
	}
	d := allow(t, s, time.Now(), 1)
	if d.Allowed || d.RetryAfter > 12*time.Minute || d.RetryAfter < 11*time.Minute || d.States[0].Remaining != 0 {
		t.Fatalf("6th request: %+v, want refused for about 12 minutes", d)
	}
	// The bucket is a key of its own, holding its TAT, expiring when the
	// bucket is full again.
	ttl, err := client.PTTL(ctx, prefix+"k:1:r").Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl > time.Hour || ttl < time.Hour-time.Minute {
		t.Fatalf("PTTL %s, want about 1h: the time until the bucket is full", ttl)
	}
	if err := s.Allow(ctx, time.Now(), 0, &limit.Decision{}); err != limit.ErrCost {
		t.Fatalf("cost 0: %v, want ErrCost", err)
	}
	none := bind(t, limit.NewRedis(client, prefix))
	if d := allow(t, none, time.Now(), 1); !d.Allowed || d.N != 0 {
		t.Fatalf("no buckets: %+v", d)
	}
}

// TestRedisClock checks that Redis decides on its own clock: nodes whose
// clocks are an hour apart share one consistent bucket.
func TestRedisClock(t *testing.T) {
	client := rd.Client(t)
	r := limit.Rate{Name: "r", Limit: 2, Period: time.Minute}
	s := bind(t, limit.NewRedis(client, prefix), limit.Bucket{"k:1:r", r})
	allow(t, s, time.Now(), 1)
	allow(t, s, time.Now().Add(time.Hour), 1) // a node an hour ahead
	if d := allow(t, s, time.Now().Add(2*time.Hour), 1); d.Allowed {
		t.Fatalf("a node two hours ahead was allowed a third request: %+v", d)
	}
}

// TestRedisScriptReloaded checks that a Redis that lost its scripts (a
// restart, SCRIPT FLUSH) is sent the script again.
func TestRedisScriptReloaded(t *testing.T) {
	client := rd.Client(t)
	s := bind(t, limit.NewRedis(client, prefix), limit.Bucket{"k:1:r", limit.Rate{Name: "r", Limit: 10, Period: time.Minute}})
	allow(t, s, time.Now(), 1)
	if err := client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if d := allow(t, s, time.Now(), 1); !d.Allowed || d.States[0].Remaining != 8 {
		t.Fatalf("after SCRIPT FLUSH: %+v", d)
	}
}

func TestRedisAllOrNothing(t *testing.T) {
	testAllOrNothing(t, limit.NewRedis(rd.Client(t), prefix), time.Now)
}

func TestRedisConcurrent(t *testing.T) {
	testConcurrent(t, limit.NewRedis(rd.Client(t), prefix), time.Now)
}

// TestRedisShared checks that two nodes (two clients, two limiters) share
// buckets, and that prefixes keep limiters apart.
func TestRedisShared(t *testing.T) {
	url := rd.Database(t)
	node := func(prefix string) *limit.Redis {
		opts, err := redis.ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		c := redis.NewClient(opts)
		t.Cleanup(func() { c.Close() })
		return limit.NewRedis(c, prefix)
	}
	b := limit.Bucket{"t:1:r", limit.Rate{Name: "r", Limit: 3, Period: time.Hour}}
	a, c, other := bind(t, node(prefix), b), bind(t, node(prefix), b), bind(t, node("other:"), b)
	allow(t, a, time.Now(), 2)
	if d := allow(t, c, time.Now(), 2); d.Allowed || d.States[0].Remaining != 1 {
		t.Fatalf("second node: %+v, want refused with 1 left", d)
	}
	if d := allow(t, other, time.Now(), 3); !d.Allowed {
		t.Fatalf("another prefix: %+v, want its own full bucket", d)
	}
}

// TestRedisAccuracy drives three nodes (three clients, three limiters) on
// one Redis together at three times a limit of 100 per second for 10
// seconds of real time, and checks that they allow between 95% and 100% of
// what the limit allows: the burst of 100 and 100 a second after it.
func TestRedisAccuracy(t *testing.T) {
	url := rd.Database(t)
	const (
		nodes    = 3
		duration = 10 * time.Second
		rate     = 100 // per second
	)
	b := limit.Bucket{"t:1:r", limit.Rate{Name: "r", Limit: rate, Period: time.Second}}
	var sets []limit.Set
	for range nodes {
		opts, err := redis.ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		c := redis.NewClient(opts)
		t.Cleanup(func() { c.Close() })
		sets = append(sets, bind(t, limit.NewRedis(c, prefix), b))
	}
	var allowed, sent atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each node sends the whole limit's rate, each request in
			// a goroutine of its own so that a slow answer does not
			// slow the sending.
			tick := time.NewTicker(time.Second / rate)
			defer tick.Stop()
			var reqs sync.WaitGroup
			defer reqs.Wait()
			for time.Since(start) < duration {
				<-tick.C
				reqs.Add(1)
				sent.Add(1)
				go func() {
					defer reqs.Done()
					var d limit.Decision
					if err := sets[n].Allow(ctx, time.Now(), 1, &d); err != nil {
						t.Error(err)
						return
					}
					if d.Allowed {
						allowed.Add(1)
					}
				}()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	most := rate + int64(elapsed.Seconds()*rate) + 1 // the GCRA bound over the whole run
	nominal := float64(rate + rate*int64(duration/time.Second))
	got := allowed.Load()
	t.Logf("%d nodes sent %d requests in %s; %d allowed, %.1f%% of the %d a limit of %d/s allows in %s (bound over the run: %d)",
		nodes, sent.Load(), elapsed.Round(time.Millisecond), got, 100*float64(got)/nominal, int(nominal), rate, duration, most)
	if sent.Load() < int64(2*nominal) {
		t.Fatalf("only %d requests sent: the test did not drive the limit at about 3x", sent.Load())
	}
	if got > most {
		t.Fatalf("allowed %d, more than the limit allows in %s (%d)", got, elapsed, most)
	}
	if float64(got) < 0.95*nominal {
		t.Fatalf("allowed %d, less than 95%% of %d", got, int(nominal))
	}
}

// fallbackFixture is a Fallback over a Redis of the test's own, behind a
// proxy that can cut it off, and the log it writes.
type fallbackFixture struct {
	server *redistest.Server
	proxy  *pgtest.Proxy
	f      *limit.Fallback
	log    *lockedbuffer.Buffer
}

func newFallbackFixture(t *testing.T) *fallbackFixture {
	server := redistest.Start(t)
	proxy, url := pgtest.NewProxy(t, server.Database(t))
	opts, err := limit.ClientOptions(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	log := &lockedbuffer.Buffer{}
	f := limit.NewFallback(limit.NewRedis(c, prefix), limit.NewLocal(), slog.New(slog.NewTextHandler(log, nil)), 0)
	return &fallbackFixture{server: server, proxy: proxy, f: f, log: log}
}

// TestFallbackRedisDown checks what happens when Redis stops: decisions go
// on, made on this node and marked so, still limiting; the log says so once,
// not per request; a second after the failure Redis is asked again, and
// when it answers, it decides again.
func TestFallbackRedisDown(t *testing.T) {
	fx := newFallbackFixture(t)
	s := bind(t, fx.f, limit.Bucket{"k:1:r", limit.Rate{Name: "r", Limit: 3, Period: time.Hour}})
	now := time.Now()
	if d := allow(t, s, now, 1); !d.Allowed || d.Fallback {
		t.Fatalf("Redis up: %+v, want allowed by Redis", d)
	}
	fx.server.Halt(t)
	for i := range 3 {
		d := allow(t, s, now, 1)
		if !d.Allowed || !d.Fallback {
			t.Fatalf("Redis down, request %d: %+v, want allowed locally", i+1, d)
		}
	}
	for range 50 {
		if d := allow(t, s, now, 1); d.Allowed || !d.Fallback {
			t.Fatalf("Redis down, over the limit: %+v, want refused locally", d)
		}
	}
	if n := strings.Count(fx.log.String(), "failed"); n != 1 {
		t.Fatalf("the failure was logged %d times, want once:\n%s", n, fx.log)
	}
	fx.server.Resume(t)
	// Within the second after the failure, Redis is not asked.
	if d := allow(t, s, now.Add(500*time.Millisecond), 1); !d.Fallback {
		t.Fatalf("half a second after the failure: %+v, want decided locally", d)
	}
	// Then it is, and decides: the resumed Redis is empty, so the bucket
	// is full. The client's dead connections may fail the first tries.
	later := now.Add(2 * time.Second)
	var d limit.Decision
	for range 20 {
		d = allow(t, s, later, 1)
		if !d.Fallback {
			break
		}
		later = later.Add(2 * time.Second)
	}
	if !d.Allowed || d.Fallback || d.States[0].Remaining != 2 {
		t.Fatalf("Redis back: %+v, want allowed by Redis", d)
	}
	if !strings.Contains(fx.log.String(), "answers again") || strings.Count(fx.log.String(), "still fails") > 0 {
		t.Fatalf("log:\n%s\nwant the recovery logged, and no repeated failure within a minute", fx.log)
	}
}

// TestFallbackTimeout checks a Redis that does not answer at all (a network
// partition): a decision waits for it only as long as the timeout, and the
// failure is logged again at most once a minute.
func TestFallbackTimeout(t *testing.T) {
	fx := newFallbackFixture(t)
	s := bind(t, fx.f, limit.Bucket{"k:1:r", limit.Rate{Name: "r", Limit: 100, Period: time.Hour}})
	now := time.Now()
	allow(t, s, now, 1)
	fx.proxy.Cut()
	start := time.Now()
	d := allow(t, s, now, 1)
	// The bound is 40 times the timeout, for a loaded machine, and below
	// go-redis's own read timeout (3 s), which a client that ignored
	// context deadlines would wait.
	if waited := time.Since(start); !d.Allowed || !d.Fallback || waited > 2*time.Second {
		t.Fatalf("Redis silent: %+v after %s, want allowed locally after about %s", d, waited, limit.DefaultTimeout)
	}
	// Every request more than a second after the last failure asks Redis,
	// and fails after the timeout: one every 10 s, for three minutes of
	// the clock.
	for i := range 18 {
		start := time.Now()
		d := allow(t, s, now.Add(time.Duration(i+1)*10*time.Second), 1)
		if waited := time.Since(start); !d.Fallback || waited > 2*time.Second {
			t.Fatalf("%ds: %+v after %s, want decided locally after about %s", (i+1)*10, d, waited, limit.DefaultTimeout)
		}
	}
	if n := strings.Count(fx.log.String(), "still fails"); n < 2 || n > 3 {
		t.Fatalf("over three minutes the failure was logged again %d times, want 2 or 3 (once a minute):\n%s", n, fx.log)
	}
	fx.proxy.Mend()
}

// TestRefund: a refund gives back what an allowed request took, to every
// bucket of the Set, locally and on Redis (and through a Fallback); a
// bucket is never left fuller than full.
func TestRefund(t *testing.T) {
	buckets := []limit.Bucket{
		{"k:1:burst", limit.Rate{Name: "burst", Limit: 3, Period: time.Hour}},
		{"t:1:hourly", limit.Rate{Name: "hourly", Limit: 10, Period: time.Hour}},
	}
	eachLimiter(t, "refund:", func(t *testing.T, l limit.Limiter) {
		now := time.Now()
		s := bind(t, l, buckets...)
		var last limit.Decision
		for range 3 {
			last = allow(t, s, now, 1)
		}
		if d := allow(t, s, now, 1); d.Allowed {
			t.Fatalf("the 4th request: %+v, want refused", d)
		}
		if err := s.Refund(t.Context(), now, 1, &last); err != nil {
			t.Fatal(err)
		}
		d := allow(t, s, now, 1)
		if !d.Allowed || d.States[1].Remaining != 7 {
			t.Fatalf("after a refund of 1: %+v, want allowed with hourly at 7 (3 allowed, 1 refunded, 1 allowed)", d)
		}
		// Refunds past full leave the buckets full, not fuller.
		for range 5 {
			if err := s.Refund(t.Context(), now, 1, &d); err != nil {
				t.Fatal(err)
			}
		}
		if d := allow(t, s, now, 1); !d.Allowed || d.States[0].Remaining != 2 || d.States[1].Remaining != 9 {
			t.Fatalf("after refunds past full: %+v, want burst at 2 and hourly at 9", d)
		}
	})
}

// TestCheck: a check decides as Allow would but consumes nothing, locally
// and on Redis (and through a Fallback): checks of a full bucket leave it
// full, and a check of an empty one is refused with the same wait as a
// request would get.
func TestCheck(t *testing.T) {
	buckets := []limit.Bucket{
		{"k:1:burst", limit.Rate{Name: "burst", Limit: 2, Period: time.Hour}},
		{"t:1:hourly", limit.Rate{Name: "hourly", Limit: 10, Period: time.Hour}},
	}
	eachLimiter(t, "check:", func(t *testing.T, l limit.Limiter) {
		now := time.Now()
		s := bind(t, l, buckets...)
		check := func() limit.Decision {
			t.Helper()
			var d limit.Decision
			if err := s.Check(t.Context(), now, 1, &d); err != nil {
				t.Fatal(err)
			}
			return d
		}
		for range 5 {
			if d := check(); !d.Allowed || d.States[0].Remaining != 2 || d.States[1].Remaining != 10 {
				t.Fatalf("a check of full buckets: %+v, want allowed, burst at 2 and hourly at 10", d)
			}
		}
		allow(t, s, now, 1)
		if d := allow(t, s, now, 1); !d.Allowed {
			t.Fatalf("the 2nd request after 5 checks: %+v, want allowed", d)
		}
		refused := allow(t, s, now, 1)
		d := check()
		// Redis reads its own clock, a little later for the check.
		if d.Allowed || (refused.RetryAfter-d.RetryAfter).Abs() > time.Second || d.RetryAfter <= 0 || d.States[1].Remaining != 8 {
			t.Fatalf("a check of an empty bucket: %+v; want refused with the wait a request got (%v), hourly at 8", d, refused.RetryAfter)
		}
		if err := s.Check(t.Context(), now, 0, &d); err == nil {
			t.Fatal("a check of cost 0 was decided, want an error")
		}
	})
}

// eachLimiter runs test on a Local, a Redis (its keys under prefix+sub) and a
// Fallback, each a subtest.
func eachLimiter(t *testing.T, sub string, test func(t *testing.T, l limit.Limiter)) {
	fb := newFallbackFixture(t)
	for name, l := range map[string]limit.Limiter{
		"local":    limit.NewLocal(),
		"redis":    limit.NewRedis(rd.Client(t), prefix+sub),
		"fallback": fb.f,
	} {
		t.Run(name, func(t *testing.T) { test(t, l) })
	}
}
