package httpapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"syscall"
	"testing"
	"time"
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
