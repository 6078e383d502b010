package httpapi

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/redistest"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/verify"
)

// benchmarkLoopback sends GET requests with key, and the headers given as
// name, value pairs, to url from parallel clients over loopback keep-alive
// connections and fails on any answer but 200.
func benchmarkLoopback(b *testing.B, url, key string, headers ...string) {
	b.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	b.ReportAllocs()
	b.SetParallelism(16) // enough clients to keep both sides busy: throughput, not latency
	runtime.GC()         // the setup's garbage is not the requests' to collect
	b.ResetTimer()
	cpu := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("X-API-Key", key)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		for pb.Next() {
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	// CPU time per request, client and server together: on a shared
	// machine it varies less than wall time, since time stolen by other
	// tenants is not counted.
	b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkForwardAuth measures /v1/forward-auth over loopback HTTP with a
// cached key. The server is set up once, outside the sub-benchmark that
// b.N ramps up. BenchmarkBareHandler runs the same client against a bare
// net/http handler that answers 200 with the same identity headers: the
// ratio of the two, measured in one run, is the cost of Keyward's check
// (scripts/bench prints it).
func BenchmarkForwardAuth(b *testing.B) {
	h := newHarness(b)
	h.tenant("acme")
	key, _ := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "bench", "permissions": []string{"contacts:read"}})
	h.must(200, "GET", "/v1/forward-auth", key, nil) // warm the cache
	b.Run("loopback", func(b *testing.B) { benchmarkLoopback(b, h.url+"/v1/forward-auth", key) })

	// The same with the route policy of issue 9 deciding: the original
	// request's method and URI are read, cleaned and matched.
	p := newHarness(b, withRoutes(b, issueRoutes))
	p.tenant("acme")
	key, _ = p.key(p.root, map[string]any{"tenant_id": "acme", "name": "bench", "permissions": []string{"contacts:read"}})
	original := []string{"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/v1/contacts/c_1?page=2"}
	b.Run("policy", func(b *testing.B) { benchmarkLoopback(b, p.url+"/v1/forward-auth", key, original...) })
}

func BenchmarkBareHandler(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["X-Keyward-Key-Id"] = []string{"key_0000000000000000000000"}
		h["X-Keyward-Key-Name"] = []string{"bench"}
		h["X-Keyward-Tenant"] = []string{"ten_0000000000000000000000"}
		h["X-Keyward-Tenant-Slug"] = []string{"acme"}
		h["X-Keyward-Plan"] = []string{"default"}
		h["X-Keyward-Environment"] = []string{"live"}
		h["X-Keyward-Permissions"] = []string{"contacts:read"}
		h["X-Request-Id"] = []string{r.Header.Get("X-API-Key")[:8]}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	b.Run("loopback", func(b *testing.B) {
		benchmarkLoopback(b, srv.URL, "sk_live_0000000000000000000000000000000000000000")
	})
}

// BenchmarkForwardAuthLimits measures /v1/forward-auth over loopback HTTP
// for a key with two rate limits (never reached), kept in this node's
// memory (local) and in a real Redis shared by every node (redis, one
// round trip per request), beside the same key without limits (none), in
// one run: what shared limits cost a proxy.
func BenchmarkForwardAuthLimits(b *testing.B) {
	limits := []map[string]any{
		{"name": "burst", "limit": 1000000, "period": "1s", "burst": 1000000000},
		{"name": "daily", "limit": 1000000000, "period": "24h"},
	}
	for _, c := range []struct {
		name    string
		limiter limit.Limiter
		limits  []map[string]any
	}{
		{"none", nil, nil},
		{"local", limit.NewLocal(), limits},
		{"redis", limit.NewFallback(limit.NewRedis(benchRedis.Client(b), "bench:"), limit.NewLocal(), slog.New(slog.DiscardHandler), 0), limits},
	} {
		h := newHarness(b, withVerifyOptions(verify.Options{Limiter: c.limiter}))
		h.tenant("acme")
		body := map[string]any{"tenant_id": "acme", "name": "bench", "permissions": []string{"contacts:read"}}
		if c.limits != nil {
			body["rate_limits"] = c.limits
		}
		key, _ := h.key(h.root, body)
		a := h.must(200, "GET", "/v1/forward-auth", key, nil) // warm the cache
		if (a.header.Get("RateLimit") != "") != (c.limits != nil) {
			b.Fatalf("%s: RateLimit %q", c.name, a.header.Get("RateLimit"))
		}
		b.Run(c.name, func(b *testing.B) { benchmarkLoopback(b, h.url+"/v1/forward-auth", key) })
	}
}

// benchRedis is the throwaway Redis of BenchmarkForwardAuthLimits.
var benchRedis = redistest.New()
