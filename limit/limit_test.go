package limit_test

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/limit"
)

var (
	ctx = context.Background()
	t0  = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

func TestRateValidate(t *testing.T) {
	valid := []limit.Rate{
		{Name: "burst", Limit: 10, Period: time.Second},
		{Name: "hourly", Limit: 1000, Period: time.Hour, Burst: 10},
		{Name: "a", Limit: 1, Period: limit.MaxPeriod},
		{Name: "x_1-2", Limit: 1_000_000, Period: time.Second, Burst: 5_000_000},
		{Name: strings.Repeat("a", 32), Limit: 1, Period: time.Minute, Burst: 44640}, // refills in 31 days
	}
	for _, r := range valid {
		if err := r.Validate(); err != nil {
			t.Errorf("%+v: %v", r, err)
		}
	}
	invalid := []struct {
		r    limit.Rate
		want string
	}{
		{limit.Rate{Name: "", Limit: 1, Period: time.Second}, "name"},
		{limit.Rate{Name: "Burst", Limit: 1, Period: time.Second}, "name"},
		{limit.Rate{Name: "1s", Limit: 1, Period: time.Second}, "name"},
		{limit.Rate{Name: "a b", Limit: 1, Period: time.Second}, "name"},
		{limit.Rate{Name: strings.Repeat("a", 33), Limit: 1, Period: time.Second}, "name"},
		{limit.Rate{Name: "r", Limit: 0, Period: time.Second}, "limit is 0"},
		{limit.Rate{Name: "r", Limit: -1, Period: time.Second}, "limit is -1"},
		{limit.Rate{Name: "r", Limit: 1, Period: 0}, "period"},
		{limit.Rate{Name: "r", Limit: 1, Period: 500 * time.Millisecond}, "period"},
		{limit.Rate{Name: "r", Limit: 1, Period: 1500 * time.Millisecond}, "whole number of seconds"},
		{limit.Rate{Name: "r", Limit: 1, Period: limit.MaxPeriod + time.Second}, "period"},
		{limit.Rate{Name: "r", Limit: 1_000_001, Period: time.Second}, "microsecond"},
		{limit.Rate{Name: "r", Limit: 1, Period: time.Second, Burst: -1}, "burst is -1"},
		{limit.Rate{Name: "r", Limit: 1, Period: time.Minute, Burst: 44641}, "burst 44641"},
		{limit.Rate{Name: "r", Limit: 1, Period: limit.MaxPeriod, Burst: 1 << 62}, "burst"},
	}
	for _, c := range invalid {
		err := c.r.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: Validate() = %v, want an error about %q", c.r, err, c.want)
		}
	}
}

func TestBindRefuses(t *testing.T) {
	r := limit.Rate{Name: "r", Limit: 1, Period: time.Second}
	var many []limit.Bucket
	for i := range limit.MaxBuckets + 1 {
		many = append(many, limit.Bucket{Key: string(rune('a' + i)), Rate: r})
	}
	cases := []struct {
		name    string
		buckets []limit.Bucket
		want    string
	}{
		{"too many", many, "at most 8"},
		{"duplicate", []limit.Bucket{{"k", r}, {"k", r}}, `"k" is bound twice`},
		{"empty key", []limit.Bucket{{"", r}}, "key is empty"},
		{"bad rate", []limit.Bucket{{"k", limit.Rate{Name: "r", Limit: 0, Period: time.Second}}}, "limit is 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := limit.NewLocal().Bind(c.buckets)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Bind: %v, want an error about %q", err, c.want)
			}
		})
	}
}

// bind binds buckets on l or fails the test.
func bind(t testing.TB, l limit.Limiter, buckets ...limit.Bucket) limit.Set {
	t.Helper()
	s, err := l.Bind(buckets)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// allow decides one request or fails the test.
func allow(t testing.TB, s limit.Set, now time.Time, cost int64) limit.Decision {
	t.Helper()
	var d limit.Decision
	if err := s.Allow(ctx, now, cost, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestLocalGCRA checks the algorithm on one bucket with a fake clock: a
// full bucket allows Burst at once, then one request per emission
// interval; the states and the retry-after say exactly that.
func TestLocalGCRA(t *testing.T) {
	s := bind(t, limit.NewLocal(), limit.Bucket{"k:1:burst", limit.Rate{Name: "burst", Limit: 10, Period: time.Second}})
	for i := range 10 {
		d := allow(t, s, t0, 1)
		st := d.States[0]
		if !d.Allowed || d.N != 1 || st.Remaining != int64(9-i) || st.Reset != time.Duration(i+1)*100*time.Millisecond ||
			st.Limit != 10 || st.Window != time.Second || st.Name != "burst" {
			t.Fatalf("request %d: %+v", i+1, d)
		}
	}
	d := allow(t, s, t0, 1)
	if d.Allowed || d.RetryAfter != 100*time.Millisecond || d.States[0].Remaining != 0 || d.States[0].Reset != time.Second {
		t.Fatalf("11th request: %+v, want refused, retry after 100ms", d)
	}
	if d := allow(t, s, t0.Add(99*time.Millisecond), 1); d.Allowed || d.RetryAfter != time.Millisecond {
		t.Fatalf("after 99ms: %+v, want refused, retry after 1ms", d)
	}
	if d := allow(t, s, t0.Add(100*time.Millisecond), 1); !d.Allowed || d.States[0].Remaining != 0 {
		t.Fatalf("after 100ms: %+v, want allowed, none left", d)
	}
	// After a whole second idle, the bucket is full again: 10 at once.
	now := t0.Add(1100 * time.Millisecond)
	if d := allow(t, s, now, 10); !d.Allowed {
		t.Fatalf("cost 10 on a full bucket: %+v", d)
	}
	if d := allow(t, s, now.Add(time.Second), 11); d.Allowed || d.RetryAfter <= 0 {
		t.Fatalf("cost 11 above burst 10: %+v, want refused", d)
	}
	if err := s.Allow(ctx, now, 0, &limit.Decision{}); err != limit.ErrCost {
		t.Fatalf("cost 0: %v, want ErrCost", err)
	}
}

// TestLocalBurst checks a rate whose burst differs from its limit.
func TestLocalBurst(t *testing.T) {
	l := limit.NewLocal()
	s := bind(t, l, limit.Bucket{"k:1:hourly", limit.Rate{Name: "hourly", Limit: 1000, Period: time.Hour, Burst: 5}})
	for range 5 {
		if d := allow(t, s, t0, 1); !d.Allowed {
			t.Fatal("refused within the burst")
		}
	}
	d := allow(t, s, t0, 1)
	if d.Allowed || d.RetryAfter != 3600*time.Millisecond {
		t.Fatalf("after the burst: %+v, want refused for 3.6s", d)
	}
	if st := d.States[0]; st.Limit != 5 || st.Window != 18*time.Second {
		t.Fatalf("state %+v, want limit 5 per 18s (1000 per hour)", st)
	}
	s = bind(t, l, limit.Bucket{"k:2:second", limit.Rate{Name: "second", Limit: 1, Period: time.Second, Burst: 3}})
	for range 3 {
		if d := allow(t, s, t0, 1); !d.Allowed {
			t.Fatal("refused within the burst")
		}
	}
	if d := allow(t, s, t0, 1); d.Allowed || d.RetryAfter != time.Second || d.States[0].Window != 3*time.Second {
		t.Fatalf("after the burst: %+v", d)
	}
}

// testAllOrNothing checks that a request refused by one bucket consumes
// nothing from the others, with a key's rate and its tenant's. Nothing
// refills by more than a request within a few seconds.
func testAllOrNothing(t *testing.T, l limit.Limiter, now func() time.Time) {
	key := limit.Bucket{"k:1:burst", limit.Rate{Name: "burst", Limit: 5, Period: time.Minute}}
	tenant := limit.Bucket{"t:1:tenant", limit.Rate{Name: "tenant", Limit: 10, Period: time.Minute}}
	s := bind(t, l, key, tenant)
	for range 5 {
		if d := allow(t, s, now(), 1); !d.Allowed {
			t.Fatalf("refused: %+v", d)
		}
	}
	for range 20 {
		d := allow(t, s, now(), 1)
		if d.Allowed || d.Tightest != 0 || d.States[1].Remaining != 5 {
			t.Fatalf("over the key's rate: %+v, want refused by the key's bucket, the tenant's untouched", d)
		}
	}
	// The tenant's bucket has 5 left for another key, whose own rate
	// allows 10.
	other := bind(t, l, limit.Bucket{"k:2:burst", limit.Rate{Name: "burst", Limit: 10, Period: time.Minute}}, tenant)
	for i := range 5 {
		if d := allow(t, other, now(), 1); !d.Allowed || d.States[1].Remaining != int64(4-i) {
			t.Fatalf("other key, request %d: %+v", i+1, d)
		}
	}
	d := allow(t, other, now(), 1)
	if d.Allowed || d.Tightest != 1 || d.States[0].Remaining != 5 {
		t.Fatalf("tenant exhausted: %+v, want refused by the tenant's bucket, the key's untouched", d)
	}
	// A cost that one bucket can pay and the other cannot takes nothing.
	third := bind(t, l, limit.Bucket{"k:3:burst", key.Rate}, limit.Bucket{"t:2:tenant", limit.Rate{Name: "tenant", Limit: 3, Period: time.Minute}})
	if d := allow(t, third, now(), 4); d.Allowed || d.States[0].Remaining != 5 || d.States[1].Remaining != 3 {
		t.Fatalf("cost 4 over a bucket of 3: %+v", d)
	}
}

func TestLocalAllOrNothing(t *testing.T) {
	testAllOrNothing(t, limit.NewLocal(), func() time.Time { return t0 })
}

// TestTightest checks which bucket X-RateLimit-* show.
func TestTightest(t *testing.T) {
	l := limit.NewLocal()
	s := bind(t, l,
		limit.Bucket{"k:1:hourly", limit.Rate{Name: "hourly", Limit: 100, Period: time.Hour}},
		limit.Bucket{"k:1:burst", limit.Rate{Name: "burst", Limit: 3, Period: time.Second}})
	if d := allow(t, s, t0, 1); d.Tightest != 1 {
		t.Fatalf("allowed: tightest %d, want 1 (2 left of 3, not 99 of 100)", d.Tightest)
	}
	allow(t, s, t0, 2)
	d := allow(t, s, t0, 1)
	if d.Allowed || d.Tightest != 1 || d.RetryAfter != time.Second/3+1 {
		t.Fatalf("refused: %+v", d)
	}
}

// TestSharedState checks that buckets with equal Keys share their state
// across Binds, and that an empty Set allows everything.
func TestSharedState(t *testing.T) {
	l := limit.NewLocal()
	r := limit.Rate{Name: "r", Limit: 3, Period: time.Hour}
	a, b := bind(t, l, limit.Bucket{"t:1:r", r}), bind(t, l, limit.Bucket{"t:1:r", r})
	allow(t, a, t0, 2)
	if d := allow(t, b, t0, 1); !d.Allowed || d.States[0].Remaining != 0 {
		t.Fatalf("second Set: %+v, want the last request", d)
	}
	if d := allow(t, a, t0, 1); d.Allowed {
		t.Fatal("first Set allowed after the second emptied the bucket")
	}
	// A changed rate keeps the state: the new Set sees the bucket empty.
	c := bind(t, l, limit.Bucket{"t:1:r", limit.Rate{Name: "r", Limit: 6, Period: time.Hour}})
	if d := allow(t, c, t0, 1); d.Allowed {
		t.Fatalf("changed rate: %+v, want refused: the bucket is still empty", d)
	}
	none := bind(t, l)
	if d := allow(t, none, t0, 1); !d.Allowed || d.N != 0 {
		t.Fatalf("no buckets: %+v", d)
	}
}

// TestReference drives Local with random requests over random rates and
// compares every decision with a token-bucket model written independently:
// each bucket holds credit (time worth of requests, at most the burst's),
// earns it as time passes, and a request passes only if every bucket has
// its cost's worth.
func TestReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		l := limit.NewLocal()
		type model struct {
			t, tau, credit int64 // nanoseconds
			last, burst    int64
		}
		n := 1 + rng.IntN(4)
		var buckets []limit.Bucket
		var models []*model
		for i := range n {
			r := limit.Rate{Name: "r", Limit: 1 + rng.Int64N(20), Period: time.Duration(1+rng.IntN(5)) * time.Second}
			if rng.IntN(2) == 0 {
				r.Burst = 1 + rng.Int64N(30)
			}
			burst := r.Burst
			if burst == 0 {
				burst = r.Limit
			}
			T := (int64(r.Period) + r.Limit - 1) / r.Limit
			buckets = append(buckets, limit.Bucket{Key: string(rune('a' + i)), Rate: r})
			models = append(models, &model{t: T, tau: burst * T, credit: burst * T, burst: burst})
		}
		s := bind(t, l, buckets...)
		now := t0.UnixNano()
		for step := range 300 {
			now += rng.Int64N(int64(300 * time.Millisecond))
			cost := 1 + rng.Int64N(3)
			ok := true
			for _, m := range models {
				m.credit = min(m.tau, m.credit+now-m.last)
				m.last = now
				ok = ok && m.credit >= cost*m.t
			}
			if ok {
				for _, m := range models {
					m.credit -= cost * m.t
				}
			}
			d := allow(t, s, time.Unix(0, now), cost)
			if d.Allowed != ok {
				t.Fatalf("round %d step %d: allowed %v, model says %v", round, step, d.Allowed, ok)
			}
			for i, m := range models {
				want := m.credit / m.t
				if got := d.States[i].Remaining; got != want {
					t.Fatalf("round %d step %d bucket %d: remaining %d, model says %d", round, step, i, got, want)
				}
				if got, want := d.States[i].Reset, time.Duration(m.tau-m.credit); got != want {
					t.Fatalf("round %d step %d bucket %d: reset %s, model says %s", round, step, i, got, want)
				}
			}
			if !ok {
				// After RetryAfter, the request passes every bucket,
				// unless its cost is above a bucket's burst: then it
				// never does, and RetryAfter is only above 0.
				var wait int64
				never := false
				for _, m := range models {
					wait = max(wait, cost*m.t-m.credit)
					never = never || cost > m.burst
				}
				if never && d.RetryAfter <= 0 || !never && d.RetryAfter != time.Duration(wait) {
					t.Fatalf("round %d step %d: retry after %s, model says %s", round, step, d.RetryAfter, time.Duration(wait))
				}
			}
		}
	}
}
