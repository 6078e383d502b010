package metrics_test

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/metrics"
	"github.com/keyward/keyward/internal/metricstest"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/internal/reqlog"
	"github.com/keyward/keyward/internal/teststore"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/verify"
)

// scrape serves m's metrics and parses them as Prometheus would.
func scrape(t *testing.T, m *metrics.Metrics) metricstest.Families {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d", rec.Code)
	}
	return metricstest.Parse(t, rec.Body)
}

// pg is the PostgreSQL server of KEYWARD_TEST_DB=postgres, started on
// first use.
var pg = pgtest.New()

// openStore returns a store of the test's own (teststore).
func openStore(t *testing.T) keyward.Store { return teststore.Open(t, pg) }

// want fails the test unless the metric has the value.
func want(t *testing.T, f metricstest.Families, value float64, name string, labels ...string) {
	t.Helper()
	if v, ok := f.Value(name, labels...); !ok || v != value {
		t.Errorf("%s%v = %v (found %v), want %v", name, labels, v, ok, value)
	}
}

// TestObserve: each verification the request log is given is counted by
// surface and outcome, timed, and its rate limit's decision counted; the
// dropped entries of a full buffer are counted; the store's operations are
// timed, and their failures counted.
func TestObserve(t *testing.T) {
	m := metrics.New()
	s := openStore(t)
	store := m.Store(s)
	l := reqlog.New(reqlog.Config{Store: store, Buffer: 4, Observe: m.Observe})
	m.WatchLog(l)
	k := &keyward.Key{ID: "key_1", TenantID: "ten_1"}
	limited := &limit.Decision{N: 1}
	for _, e := range []reqlog.Entry{
		{Surface: keyward.SurfaceGateway, Key: k, Latency: 30 * time.Microsecond, RateLimit: limited},
		{Surface: keyward.SurfaceGateway, Key: k, Latency: 2 * time.Millisecond, RateLimit: limited},
		{Surface: keyward.SurfaceGateway, Key: k, Code: keyward.CodeRateLimited, RateLimit: limited},
		{Surface: keyward.SurfaceForwardAuth, Code: keyward.CodeInvalidAPIKey},
		{Surface: keyward.SurfaceVerify, Key: k, Code: keyward.CodeQuotaExceeded},
		{Surface: keyward.SurfaceAPI, Code: "no_such_code"},
	} {
		l.Add(&e)
	}
	if err := l.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := store.KeyByHash(t.Context(), [32]byte{1}); keyward.ErrorCode(err) != keyward.CodeNotFound {
		t.Fatalf("KeyByHash of nothing: %v", err)
	}
	s.Close() // the next operation fails
	_ = store.Ping(t.Context())

	f := scrape(t, m)
	want(t, f, 2, "keyward_verifications_total", "surface", "gateway", "outcome", "allowed")
	want(t, f, 1, "keyward_verifications_total", "surface", "gateway", "outcome", "rate_limited")
	want(t, f, 1, "keyward_verifications_total", "surface", "forward-auth", "outcome", "invalid_api_key")
	want(t, f, 1, "keyward_verifications_total", "surface", "api", "outcome", "other")
	want(t, f, 0, "keyward_verifications_total", "surface", "verify", "outcome", "allowed")
	want(t, f, 3, "keyward_verification_duration_seconds", "surface", "gateway")
	want(t, f, 2, "keyward_rate_limit_decisions_total", "decision", "allowed")
	want(t, f, 1, "keyward_rate_limit_decisions_total", "decision", "rate_limited")
	want(t, f, 1, "keyward_rate_limit_decisions_total", "decision", "quota_exceeded")
	want(t, f, 2, "keyward_request_log_dropped_total")
	want(t, f, 4, "keyward_request_log_written_total")
	want(t, f, 1, "keyward_store_duration_seconds", "op", "write_request_logs")
	want(t, f, 1, "keyward_store_duration_seconds", "op", "key_by_hash")
	if v, _ := f.Value("keyward_store_errors_total", "op", "key_by_hash"); v != 0 {
		t.Errorf("a key not found counted as a store error")
	}
	want(t, f, 1, "keyward_store_errors_total", "op", "ping")
	if _, ok := f.Value("go_goroutines"); !ok {
		t.Error("no Go runtime metrics")
	}
}

// TestWatchVerifier: the key cache's hits, misses and size, and the
// change feed's lag, are read from the verifier at each scrape.
func TestWatchVerifier(t *testing.T) {
	m := metrics.New()
	s := openStore(t)
	v := verify.New(m.Store(s), verify.Options{})
	m.WatchVerifier(v)
	want(t, scrape(t, m), -1, "keyward_change_feed_lag_seconds")
	if err := v.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer v.Close(t.Context())
	svc := manage.New(manage.Config{Store: s})
	if _, err := svc.Bootstrap(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, key, err := svc.CreateKey(t.Context(), manage.CommandLine(), manage.CreateKeyInput{TenantID: "system", Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if r := v.Verify(t.Context(), verify.Request{Key: key}); !r.Valid() {
			t.Fatalf("verify: %s", r.Code)
		}
	}
	f := scrape(t, m)
	if lag, _ := f.Value("keyward_change_feed_lag_seconds"); lag < 0 || lag > 5 {
		t.Errorf("feed lag %v s after Start", lag)
	}
	// The first verification looks the key up; the others find it.
	want(t, f, 1, "keyward_cache_misses_total")
	want(t, f, 2, "keyward_cache_hits_total")
	want(t, f, 1, "keyward_cache_keys")
	want(t, f, 1, "keyward_store_duration_seconds", "op", "key_by_hash")
}
