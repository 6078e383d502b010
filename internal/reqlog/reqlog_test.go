package reqlog_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/lockedbuffer"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/internal/reqlog"
	"github.com/keyward/keyward/internal/teststore"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/sqlite"
)

// pg is the PostgreSQL server of KEYWARD_TEST_DB=postgres, started on
// first use.
var pg = pgtest.New()

// open returns a store of the test's own (teststore).
func open(t testing.TB) keyward.Store { return teststore.Open(t, pg) }

// all returns every entry the store holds, oldest first.
func all(t *testing.T, s keyward.RequestLogStore) []*keyward.RequestLog {
	t.Helper()
	var out []*keyward.RequestLog
	cursor := ""
	for {
		page, next, err := s.RequestLogs(t.Context(), keyward.RequestLogFilter{}, keyward.Page{Cursor: cursor, Limit: keyward.MaxPageLimit})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		if next == "" {
			slices.Reverse(out)
			return out
		}
		cursor = next
	}
}

// entry is an accepted request of key k at the given path.
func entry(k *keyward.Key, path string) *reqlog.Entry {
	return &reqlog.Entry{
		At: time.Now(), Latency: 1500 * time.Microsecond, RequestID: "req_1", Surface: keyward.SurfaceGateway,
		Method: "GET", Route: "GET /v1/contacts/**", Path: path, Status: 200, ClientIP: netip.MustParseAddr("::ffff:192.0.2.7"),
		UserAgent: "curl/8", Referrer: "https://app.example/page?token=secret#frag", Key: k,
	}
}

var testKey = &keyward.Key{ID: "key_1", TenantID: "ten_1", MemberID: "mem_1", Environment: keyward.Live}

// TestWritten: an entry added is written as the surface told it, with
// the query string of its path and referrer cut, the client address
// unmapped, the key's identity, and its tightest rate limit.
func TestWritten(t *testing.T) {
	s := open(t)
	l := reqlog.New(reqlog.Config{Store: s})
	e := entry(testKey, "/v1/contacts/1?api_key=x&q=1")
	d := &limit.Decision{Allowed: true, N: 2, Tightest: 1}
	d.States[0] = limit.State{Limit: 100, Remaining: 90}
	d.States[1] = limit.State{Limit: 10, Remaining: 3, Reset: 2500 * time.Millisecond}
	e.RateLimit = d
	l.Add(e)
	if err := l.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := all(t, s)
	if len(got) != 1 {
		t.Fatalf("%d entries, want 1", len(got))
	}
	g := got[0]
	want := keyward.RequestLog{ID: g.ID, At: e.At.UTC().Truncate(time.Microsecond), RequestID: "req_1", Surface: "gateway", KeyID: "key_1", TenantID: "ten_1", MemberID: "mem_1",
		Environment: "live", Method: "GET", Route: "GET /v1/contacts/**", Path: "/v1/contacts/1", Status: 200, ClientIP: "192.0.2.7", UserAgent: "curl/8",
		Referrer: "https://app.example/page", LatencyMicros: 1500, RateLimit: &keyward.LoggedRateLimit{Limit: 10, Remaining: 3, ResetMillis: 2500}}
	if !reflect.DeepEqual(*g, want) {
		t.Fatalf("written:\n got %+v\nwant %+v", *g, want)
	}
	if l.Written() != 1 || l.Dropped() != 0 {
		t.Fatalf("Written %d, Dropped %d", l.Written(), l.Dropped())
	}
}

// TestNoKeyStored: a well-formed key in the path, the user agent or the
// referrer is stored as start…last4; control characters and bytes that
// are not UTF-8 are replaced; overlong text is cut.
func TestNoKeyStored(t *testing.T) {
	f, err := apikey.NewFormat("sk")
	if err != nil {
		t.Fatal(err)
	}
	key, err := f.Generate(keyward.Live)
	if err != nil {
		t.Fatal(err)
	}
	s := open(t)
	l := reqlog.New(reqlog.Config{Store: s})
	e := entry(nil, "/v1/contacts/"+key)
	e.UserAgent = "agent " + key + "\x00\xff"
	e.Referrer = "https://app.example/" + key
	l.Add(e)
	long := entry(nil, "/"+strings.Repeat("a", 5000))
	long.UserAgent = strings.Repeat("b", 5000)
	l.Add(long)
	if err := l.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := all(t, s)
	start, last4 := apikey.Display(key)
	for _, v := range []string{got[0].Path, got[0].UserAgent, got[0].Referrer} {
		if strings.Contains(v, key) || !strings.Contains(v, start+"…"+last4) {
			t.Errorf("stored %q: want the key as %s…%s", v, start, last4)
		}
	}
	if !strings.HasSuffix(got[0].UserAgent, "\uFFFD\uFFFD") {
		t.Errorf("user agent %q: want the NUL and the bad byte replaced", got[0].UserAgent)
	}
	if len(got[1].Path) != 2048 || len(got[1].UserAgent) != 512 {
		t.Errorf("long path %d bytes, user agent %d: want 2048 and 512", len(got[1].Path), len(got[1].UserAgent))
	}
	// A key cut by the length limit: none of it is stored.
	for _, at := range []int{10, 30, 40} {
		e := entry(nil, "/"+strings.Repeat("p", 2047-at)+key)
		e.UserAgent = strings.Repeat("u", 512-at) + key
		l.Add(e)
	}
	if err := l.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, g := range all(t, s)[2:] {
		for _, v := range []string{g.Path, g.UserAgent} {
			if strings.Contains(v, key[:8]) || strings.Contains(v, key[len(key)-30:len(key)-20]) {
				t.Errorf("a key cut by the limit is stored in part: …%q", v[len(v)-40:])
			}
		}
	}
}

// TestFullBufferDrops: when the buffer is full, Add drops the entry at
// once and counts it, the writer warns of it, and what was buffered is
// written.
func TestFullBufferDrops(t *testing.T) {
	s := open(t)
	var logs lockedbuffer.Buffer
	l := reqlog.New(reqlog.Config{Store: s, Buffer: 4, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for i := range 10 {
		e := entry(testKey, "/v1/contacts/1")
		e.RequestID = fmt.Sprintf("req_%d", i)
		l.Add(e)
	}
	if l.Dropped() != 6 {
		t.Fatalf("Dropped = %d, want 6", l.Dropped())
	}
	if err := l.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := all(t, s)
	if len(got) != 4 || got[0].RequestID != "req_0" || got[3].RequestID != "req_3" {
		t.Fatalf("written %d entries; want req_0 to req_3", len(got))
	}
	if !strings.Contains(logs.String(), "entries dropped") || !strings.Contains(logs.String(), "dropped=6") {
		t.Fatalf("log: %q; want a warning of 6 dropped entries", logs.String())
	}
}

// failing is a store whose writes fail while fail is set.
type failing struct {
	keyward.Store
	mu   sync.Mutex
	fail bool
}

func (f *failing) WriteRequestLogs(ctx context.Context, b *keyward.LogBatch) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errors.New("storage down")
	}
	return f.Store.WriteRequestLogs(ctx, b)
}

// TestStoreDown: entries the store refuses are written by the next write
// that succeeds, and Close writes what is left.
func TestStoreDown(t *testing.T) {
	s := &failing{Store: open(t), fail: true}
	l := reqlog.New(reqlog.Config{Store: s, Interval: time.Hour})
	l.Start(t.Context())
	l.Add(entry(testKey, "/a"))
	if err := l.Flush(t.Context()); err == nil {
		t.Fatal("Flush succeeded on a failing store")
	}
	l.Add(entry(testKey, "/b"))
	s.mu.Lock()
	s.fail = false
	s.mu.Unlock()
	l.Add(entry(testKey, "/c"))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, g := range all(t, s) {
		paths = append(paths, g.Path)
	}
	if strings.Join(paths, " ") != "/a /b /c" {
		t.Fatalf("written %v, want /a /b /c", paths)
	}
}

// TestWriterWrites: the running writer writes an entry within its
// interval, without a Flush.
func TestWriterWrites(t *testing.T) {
	s := open(t)
	l := reqlog.New(reqlog.Config{Store: s, Interval: 20 * time.Millisecond})
	l.Start(t.Context())
	defer l.Close(context.Background())
	l.Add(entry(testKey, "/a"))
	deadline := time.Now().Add(5 * time.Second)
	for len(all(t, s)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("not written within 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPrune: entries older than the retention are deleted (each written
// by a write of its own: a write's entries are pruned together), and
// usage counts older than theirs; newer ones are kept.
func TestPrune(t *testing.T) {
	s := open(t)
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	l := reqlog.New(reqlog.Config{Store: s, Retention: 24 * time.Hour, UsageRetention: 40 * time.Hour, Now: func() time.Time { return now }})
	for _, age := range []time.Duration{48 * time.Hour, 25 * time.Hour, 23 * time.Hour, time.Minute} {
		e := entry(testKey, "/"+age.String())
		e.At = now.Add(-age)
		l.Add(e)
		if err := l.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	n, counts, err := l.Prune(t.Context())
	// The counts 48 h back: the hour's, and the day's (the day before
	// yesterday's midnight, 60 h back).
	if err != nil || n != 2 || counts != 2 {
		t.Fatalf("Prune = %d entries, %d counts, %v; want 2 and 2", n, counts, err)
	}
	if got := all(t, s); len(got) != 2 || got[0].Path != "/23h0m0s" {
		t.Fatalf("left %d entries", len(got))
	}
	if got := usage(t, s, keyward.Hourly, ""); len(got) != 3 {
		t.Fatalf("left hourly counts %v; want the 3 newer than 40 h", got)
	}
}

// TestAddAllocs: adding an entry allocates nothing, whether it is kept
// or dropped.
func TestAddAllocs(t *testing.T) {
	l := reqlog.New(reqlog.Config{Store: open(t), Buffer: 50})
	e := entry(testKey, "/v1/contacts/1")
	allocs := testing.AllocsPerRun(100, func() { l.Add(e) }) // the last ones dropped
	if allocs != 0 {
		t.Fatalf("Add allocates %.1f times", allocs)
	}
	if l.Dropped() == 0 {
		t.Fatal("nothing dropped: the test did not fill the buffer")
	}
}

// TestFullArenaDrops: an entry whose text does not fit in what is left
// of the buffer's arena is dropped and counted, as one that finds every
// slot taken.
func TestFullArenaDrops(t *testing.T) {
	s := open(t)
	l := reqlog.New(reqlog.Config{Store: s, Buffer: 2}) // 640 bytes of text
	big := entry(testKey, "/"+strings.Repeat("p", 400))
	l.Add(big)
	l.Add(big)
	if l.Dropped() != 1 {
		t.Fatalf("Dropped = %d, want 1", l.Dropped())
	}
	if err := l.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	l.Add(big) // the arena is empty again
	if err := l.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := all(t, s); len(got) != 2 {
		t.Fatalf("written %d, want 2", len(got))
	}
}

// usage returns the counts of key (every key when ""), each as "start
// code count" with the start in RFC 3339 and allowed for the empty code.
func usage(t *testing.T, s keyward.UsageStore, g keyward.Granularity, key string) []string {
	t.Helper()
	got, err := s.Usage(t.Context(), keyward.UsageFilter{Granularity: g, KeyID: key})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, u := range got {
		code := u.Code
		if code == "" {
			code = keyward.CodeAllowed
		}
		out = append(out, fmt.Sprintf("%s %s %d", u.Start.Format(time.RFC3339), code, u.Count))
	}
	return out
}

// TestUsageExact: the usage counts count every entry added, by key, hour,
// day and code: those written, those the full buffer dropped, and those
// the store refused for longer than the buffer held them.
func TestUsageExact(t *testing.T) {
	s := &failing{Store: open(t)}
	l := reqlog.New(reqlog.Config{Store: s, Buffer: 4})
	h := time.Date(2026, 11, 29, 23, 0, 0, 0, time.UTC)
	other := &keyward.Key{ID: "key_2", TenantID: "ten_1", Environment: keyward.Live}
	add := func(k *keyward.Key, at time.Time, code keyward.Code, n int) {
		for range n {
			e := entry(k, "/a")
			e.At, e.Code = at, code
			l.Add(e)
		}
	}
	add(testKey, h.Add(time.Minute), "", 3)
	add(testKey, h.Add(2*time.Minute), keyward.CodeRateLimited, 2) // one kept, one dropped
	add(other, h.Add(61*time.Minute), "", 5)                       // the next hour, and the next day: all dropped
	add(nil, h, keyward.CodeInvalidAPIKey, 1)                      // dropped
	if l.Dropped() != 7 {
		t.Fatalf("Dropped = %d, want 7", l.Dropped())
	}
	s.mu.Lock()
	s.fail = true
	s.mu.Unlock()
	if err := l.Flush(t.Context()); err == nil {
		t.Fatal("Flush succeeded on a failing store")
	}
	add(testKey, h.Add(3*time.Minute), "", 4)
	if err := l.Flush(t.Context()); err == nil { // pending beyond the buffer: the oldest entries go
		t.Fatal("Flush succeeded on a failing store")
	}
	s.mu.Lock()
	s.fail = false
	s.mu.Unlock()
	if err := l.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(all(t, s)); n != 4 {
		t.Fatalf("written %d entries, want the last 4 of those kept", n)
	}
	for _, tc := range []struct {
		g    keyward.Granularity
		key  string
		want []string
	}{
		{keyward.Hourly, "key_1", []string{"2026-11-29T23:00:00Z allowed 7", "2026-11-29T23:00:00Z rate_limited 2"}},
		{keyward.Hourly, "key_2", []string{"2026-11-30T00:00:00Z allowed 5"}},
		{keyward.Daily, "key_1", []string{"2026-11-29T00:00:00Z allowed 7", "2026-11-29T00:00:00Z rate_limited 2"}},
		{keyward.Daily, "", []string{"2026-11-29T00:00:00Z allowed 7", "2026-11-29T00:00:00Z invalid_api_key 1", "2026-11-29T00:00:00Z rate_limited 2", "2026-11-30T00:00:00Z allowed 5"}},
	} {
		if got := usage(t, s, tc.g, tc.key); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s counts of %q: %v, want %v", tc.g, tc.key, got, tc.want)
		}
	}
}

// BenchmarkAdd measures Add from parallel goroutines, with a writer.
func BenchmarkAdd(b *testing.B) {
	s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "keyward.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	l := reqlog.New(reqlog.Config{Store: s})
	l.Start(b.Context())
	defer l.Close(context.Background())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		e := entry(testKey, "/v1/contacts/1")
		for pb.Next() {
			l.Add(e)
		}
	})
}
