package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"runtime"
	"sync"
	"testing"

	"github.com/keyward/keyward/gateway"
)

// BenchmarkGateway measures a request through the gateway with a cached
// key, over loopback keep-alive connections from parallel clients, to a
// trivial upstream; "httputil" is a bare ReverseProxy with the same
// in front of the same upstream, in the same run: the ratio of
// the two is the cost of the gateway's checks and headers. allocs/op
// counts the client's, the proxy's and the upstream's together, in this
// process.
func BenchmarkGateway(b *testing.B) {
	e := newEnv(b)
	e.call(201, "POST", "/v1/tenants", map[string]any{"slug": "acme"})
	key, _ := e.key(map[string]any{"tenant_id": "acme", "name": "bench", "permissions": []string{"contacts:read"}})
	trivial := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":1}`)
	}))
	b.Cleanup(trivial.Close)
	gw, err := gateway.New(gateway.Config{Verifier: e.verifier, Routes: e.routes, Upstream: mustURL(b, trivial.URL)})
	if err != nil {
		b.Fatal(err)
	}
	gwURL := serve(b, gw)
	bare := &httputil.ReverseProxy{Transport: &http.Transport{MaxIdleConnsPerHost: 512, DisableCompression: true}, BufferPool: &bufferPool{}, Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(mustURL(b, trivial.URL))
		pr.SetXForwarded()
	}}
	bareSrv := httptest.NewServer(bare)
	b.Cleanup(bareSrv.Close)

	b.Run("gateway", func(b *testing.B) { benchmarkLoopback(b, gwURL+"/v1/contacts/1", key) })
	b.Run("httputil", func(b *testing.B) { benchmarkLoopback(b, bareSrv.URL+"/v1/contacts/1", key) })
}

// bufferPool is a pool of copy buffers for the bare ReverseProxy, as the
// gateway has.
type bufferPool struct{ p sync.Pool }

func (bp *bufferPool) Get() []byte {
	if b, ok := bp.p.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, 32<<10)
}

func (bp *bufferPool) Put(b []byte) { bp.p.Put(&b) }

// BenchmarkCheck measures the gateway's checks alone (Checker.Check) for
// a cached key, without HTTP: what another HTTP stack would call.
func BenchmarkCheck(b *testing.B) {
	e := newEnv(b)
	e.call(201, "POST", "/v1/tenants", map[string]any{"slug": "acme"})
	key, _ := e.key(map[string]any{"tenant_id": "acme", "name": "bench", "permissions": []string{"contacts:read"}})
	chk, err := gateway.NewChecker(gateway.Config{Verifier: e.verifier, Routes: e.routes, Upstream: e.live.url})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/v1/contacts/1", nil)
	req.Header.Set("X-API-Key", key)
	in := gateway.Request{Method: "GET", Target: "/v1/contacts/1", URL: req.URL, Header: req.Header, ClientIP: loopback}
	var d gateway.Decision
	chk.Check(b.Context(), &in, &d)
	if d.Refusal != nil {
		b.Fatal(d.Refusal)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		chk.Check(b.Context(), &in, &d)
	}
}

// benchmarkLoopback sends GET requests with key to url from parallel
// clients over loopback keep-alive connections and fails on any answer
// but 200.
func benchmarkLoopback(b *testing.B, url, key string) {
	b.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	b.ReportAllocs()
	b.SetParallelism(8)
	runtime.GC()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("X-API-Key", key)
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
}
