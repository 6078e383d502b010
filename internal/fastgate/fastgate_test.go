package fastgate_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/fastgate"
	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/sqlite"
	"github.com/keyward/keyward/verify"
)

// bigSize is the size of the bodies the streaming tests send: 256 MiB, or
// 1 GiB with KEYWARD_FASTGATE_GIB=1. scripts/test runs every test without
// -short, so the default stays within its time; the memory bound is the
// same either way.
func bigSize() int64 {
	if os.Getenv("KEYWARD_FASTGATE_GIB") != "" {
		return 1 << 30
	}
	return 256 << 20
}

// maxGrowth is how much the heap may grow while a large body passes: a
// body held whole would need bigSize.
const maxGrowth = 32 << 20

// gateway starts a Gateway of cfg in front of upstream (whose address it
// sets) on loopback, and returns its base URL.
func gateway(t *testing.T, cfg fastgate.Config, upstream http.Handler) string {
	t.Helper()
	if upstream != nil {
		up := httptest.NewServer(upstream)
		t.Cleanup(up.Close)
		cfg.Upstream = strings.TrimPrefix(up.URL, "http://")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := fastgate.New(cfg).Server()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return "http://" + ln.Addr().String()
}

// heapPeak samples the heap in use until stop is called, and returns how
// much it grew above where it started at most.
func heapPeak(t *testing.T) (stop func() uint64) {
	t.Helper()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	base := m.HeapInuse
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > base && m.HeapInuse-base > peak.Load() {
				peak.Store(m.HeapInuse - base)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		return peak.Load()
	}
}

// pattern is an endless reader of a repeating pattern, n bytes long.
func pattern(n int64) io.Reader {
	block := make([]byte, 64<<10)
	for i := range block {
		block[i] = byte(i * 7)
	}
	return io.LimitReader(repeat{block}, n)
}

type repeat struct{ b []byte }

func (r repeat) Read(p []byte) (int, error) { return copy(p, r.b), nil }

func TestUploadStreams(t *testing.T) {
	size := bigSize()
	want := sha256.New()
	io.Copy(want, pattern(size))
	var got atomic.Value
	url := gateway(t, fastgate.Config{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		got.Store(fmt.Sprintf("%d %x", n, h.Sum(nil)))
	}))

	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			stop := heapPeak(t)
			req, _ := http.NewRequest("POST", url+"/upload", pattern(size))
			if !chunked {
				req.ContentLength = size
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			peak := stop()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if w := fmt.Sprintf("%d %x", size, want.Sum(nil)); got.Load() != w {
				t.Errorf("the upstream got %v, want %s", got.Load(), w)
			}
			t.Logf("%d MiB up, heap grew by %.1f MiB at most", size>>20, float64(peak)/(1<<20))
			if peak > maxGrowth {
				t.Errorf("the heap grew by %d MiB while %d MiB went up; want at most %d MiB", peak>>20, size>>20, maxGrowth>>20)
			}
		})
	}
}

func TestDownloadStreams(t *testing.T) {
	size := bigSize()
	want := sha256.New()
	io.Copy(want, pattern(size))
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			url := gateway(t, fastgate.Config{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !chunked {
					w.Header().Set("Content-Length", fmt.Sprint(size))
				}
				io.Copy(w, pattern(size))
			}))
			stop := heapPeak(t)
			resp, err := http.Get(url + "/download")
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			n, err := io.Copy(h, resp.Body)
			resp.Body.Close()
			peak := stop()
			if err != nil || n != size {
				t.Fatalf("read %d bytes, %v; want %d", n, err, size)
			}
			if fmt.Sprintf("%x", h.Sum(nil)) != fmt.Sprintf("%x", want.Sum(nil)) {
				t.Error("the body differs from the upstream's")
			}
			t.Logf("%d MiB down, heap grew by %.1f MiB at most", size>>20, float64(peak)/(1<<20))
			if peak > maxGrowth {
				t.Errorf("the heap grew by %d MiB while %d MiB went down; want at most %d MiB", peak>>20, size>>20, maxGrowth>>20)
			}
		})
	}
}

// env is a verifier on a real SQLite store with one tenant, acme, and
// the route policy of routes.
type env struct {
	v      *verify.Verifier
	svc    *manage.Service
	routes *policy.File
}

const routes = `default: deny
routes:
  - match: GET /health
    public: true
  - match: GET /v1/contacts/**
    permissions: [contacts:read]
  - match: POST /v1/contacts
    permissions: [contacts:write]
`

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "keyward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	format, err := apikey.NewFormat(apikey.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	v := verify.New(store, verify.Options{Format: format, FlushInterval: time.Hour})
	if err := v.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close(context.Background()) })
	svc := manage.New(manage.Config{Store: store, Format: format, AfterChange: v.Refresh})
	if _, err := svc.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateTenant(ctx, manage.CommandLine(), manage.CreateTenantInput{Slug: "acme"}); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, "routes.yaml")
	if err := os.WriteFile(name, []byte(routes), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := policy.Open(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &env{v: v, svc: svc, routes: f}
}

func (e *env) key(t *testing.T, permissions ...string) (plain, id string) {
	t.Helper()
	k, plain, err := e.svc.CreateKey(context.Background(), manage.CommandLine(),
		manage.CreateKeyInput{TenantID: "acme", Name: "client", Permissions: permissions})
	if err != nil {
		t.Fatal(err)
	}
	return plain, k.ID
}

func TestVerify(t *testing.T) {
	e := newEnv(t)
	key, id := e.key(t, "contacts:read")
	var seen atomic.Int64
	var last atomic.Value
	for _, copyStrings := range []bool{false, true} {
		t.Run(fmt.Sprintf("copy=%v", copyStrings), func(t *testing.T) {
			url := gateway(t, fastgate.Config{Verifier: e.v, Routes: e.routes, CopyStrings: copyStrings},
				http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					seen.Add(1)
					last.Store(r.Header.Clone())
					w.Write([]byte("ok"))
				}))
			get := func(method, path string, h map[string]string) (*http.Response, map[string]any) {
				t.Helper()
				req, _ := http.NewRequest(method, url+path, nil)
				for k, v := range h {
					req.Header.Set(k, v)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				var p map[string]any
				json.Unmarshal(body, &p)
				return resp, p
			}

			before := seen.Load()
			resp, _ := get("GET", "/v1/contacts/1", map[string]string{"x-api-key": key, "X-Keyward-Tenant": "ten_forged", "X-Keyward-Evil": "1"})
			if resp.StatusCode != 200 || seen.Load() != before+1 {
				t.Fatalf("a valid key: status %d, upstream reached %d times", resp.StatusCode, seen.Load()-before)
			}
			h := last.Load().(http.Header)
			for name, want := range map[string]string{
				"X-Keyward-Key-Id": id, "X-Keyward-Tenant-Slug": "acme", "X-Keyward-Permissions": "contacts:read",
				"X-Keyward-Environment": "live", "X-Api-Key": "", "X-Keyward-Evil": "", "X-Forwarded-For": "127.0.0.1",
			} {
				if got := strings.Join(h[name], ","); got != want {
					t.Errorf("the upstream got %s %q, want %q", name, got, want)
				}
			}
			if !strings.HasPrefix(h.Get("X-Keyward-Tenant"), "ten_") || h.Get("X-Request-Id") == "" ||
				h.Get("X-Request-Id") != resp.Header.Get("X-Request-Id") {
				t.Errorf("the upstream got tenant %q, request id %q (client's %q)", h.Get("X-Keyward-Tenant"), h.Get("X-Request-Id"), resp.Header.Get("X-Request-Id"))
			}

			// The key as Authorization: Bearer, which is not passed on either.
			resp, _ = get("GET", "/v1/contacts/1", map[string]string{"Authorization": "Bearer " + key})
			if resp.StatusCode != 200 || last.Load().(http.Header).Get("Authorization") != "" {
				t.Errorf("a bearer key: status %d, upstream got Authorization %q", resp.StatusCode, last.Load().(http.Header).Get("Authorization"))
			}

			// A public route needs no key.
			resp, _ = get("GET", "/health", nil)
			if resp.StatusCode != 200 {
				t.Errorf("a public route: status %d", resp.StatusCode)
			}

			for _, c := range []struct {
				name, method, path string
				h                  map[string]string
				status             int
				code               string
			}{
				{"no key", "GET", "/v1/contacts/1", nil, 401, "missing_api_key"},
				{"unknown key", "GET", "/v1/contacts/1", map[string]string{"X-API-Key": key[:len(key)-4] + "AAAA"}, 401, ""},
				{"key in the URL", "GET", "/v1/contacts/" + key, map[string]string{"X-API-Key": key}, 400, "invalid_request"},
				{"missing permission", "POST", "/v1/contacts", map[string]string{"X-API-Key": key}, 403, "insufficient_permissions"},
				{"unlisted route", "GET", "/v1/other", map[string]string{"X-API-Key": key}, 403, "endpoint_not_allowed"},
				{"path read two ways", "GET", "/v1/contacts/../billing", map[string]string{"X-API-Key": key}, 400, "invalid_request"},
			} {
				before := seen.Load()
				resp, p := get(c.method, c.path, c.h)
				if resp.StatusCode != c.status || c.code != "" && p["code"] != c.code {
					t.Errorf("%s: status %d, code %v; want %d %s", c.name, resp.StatusCode, p["code"], c.status, c.code)
				}
				if resp.Header.Get("Content-Type") != "application/problem+json" || p["request_id"] == "" {
					t.Errorf("%s: Content-Type %q, request_id %v", c.name, resp.Header.Get("Content-Type"), p["request_id"])
				}
				if seen.Load() != before {
					t.Errorf("%s: the refused request reached the upstream", c.name)
				}
			}
		})
	}
}

// rawRequest sends head on a new connection to the gateway at url and
// returns the connection and a reader of it.
func rawRequest(t *testing.T, url, head string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	return c, bufio.NewReader(c)
}

func TestExpectContinue(t *testing.T) {
	e := newEnv(t)
	key, _ := e.key(t, "contacts:read", "contacts:write")
	var got atomic.Value
	var seen atomic.Int64
	url := gateway(t, fastgate.Config{Verifier: e.v, Routes: e.routes}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		b, _ := io.ReadAll(r.Body)
		got.Store(string(b) + " " + r.Header.Get("X-Keyward-Tenant-Slug") + " " + r.Header.Get("X-Api-Key"))
	}))

	t.Run("accepted", func(t *testing.T) {
		c, br := rawRequest(t, url, "POST /v1/contacts HTTP/1.1\r\nHost: x\r\nX-API-Key: "+key+
			"\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
		line, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
			t.Fatalf("first line %q, %v; want 100 Continue", line, err)
		}
		br.ReadString('\n') // the blank line after 100 Continue
		io.WriteString(c, "hello")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || got.Load() != "hello acme " {
			t.Errorf("status %d, the upstream got %q", resp.StatusCode, got.Load())
		}
	})
	t.Run("refused", func(t *testing.T) {
		before := seen.Load()
		_, br := rawRequest(t, url, "POST /v1/contacts HTTP/1.1\r\nHost: x\r\nX-API-Key: "+key[:len(key)-4]+"AAAA"+
			"\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 401 || !strings.Contains(string(body), `"malformed_api_key"`) || seen.Load() != before {
			t.Errorf("status %d, body %s, upstream reached %d times; want 401 malformed_api_key without 100 Continue",
				resp.StatusCode, body, seen.Load()-before)
		}
	})
}

func TestUpgrade(t *testing.T) {
	e := newEnv(t)
	key, _ := e.key(t, "contacts:read")
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" || r.Header.Get("X-Keyward-Tenant-Slug") != "acme" || r.Header.Get("X-Api-Key") != "" {
			http.Error(w, "not an upgrade with identity", 400)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			io.WriteString(c, "echo "+line)
		}
	})
	url := gateway(t, fastgate.Config{Verifier: e.v, Routes: e.routes}, upstream)
	c, br := rawRequest(t, url, "GET /v1/contacts/ws HTTP/1.1\r\nHost: x\r\nX-API-Key: "+key+
		"\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d %s; want 101", resp.StatusCode, b)
	}
	for i := range 3 {
		fmt.Fprintf(c, "ping %d\n", i)
		line, err := br.ReadString('\n')
		if want := fmt.Sprintf("echo ping %d\n", i); err != nil || line != want {
			t.Fatalf("got %q, %v; want %q", line, err, want)
		}
	}

	// Without a key, the upgrade is refused and never reaches the upstream.
	_, br = rawRequest(t, url, "GET /v1/contacts/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 401 {
		t.Errorf("an upgrade without a key: %v, %v; want 401", resp, err)
	}
}

// TestEvents shows server-sent events reaching the client one by one, as
// the upstream flushes each: the upstream sends the next only once the
// client has read the one before. The stream lasts longer than the
// upstream timeout, which bounds the silence between two reads only.
func TestEvents(t *testing.T) {
	const events = 5
	read := make(chan struct{})
	url := gateway(t, fastgate.Config{UpstreamTimeout: 300 * time.Millisecond}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range events {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-read:
			case <-time.After(5 * time.Second):
				return // the client never saw the event: the test fails
			}
			time.Sleep(100 * time.Millisecond)
		}
	}))
	start := time.Now()
	resp, err := http.Get(url + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := range events {
		line, err := br.ReadString('\n')
		if want := fmt.Sprintf("data: %d\n", i); err != nil || line != want {
			t.Fatalf("event %d: %q, %v; want %q", i, line, err, want)
		}
		br.ReadString('\n')
		read <- struct{}{}
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("the stream took %v; the test needs it to outlast the 300 ms timeout", d)
	}
}

func TestUpstreamFailures(t *testing.T) {
	problem := func(t *testing.T, resp *http.Response) map[string]any {
		t.Helper()
		var p map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
			t.Fatal(err)
		}
		if resp.Header.Get("Content-Type") != "application/problem+json" || resp.Header.Get("X-Request-Id") == "" ||
			p["request_id"] != resp.Header.Get("X-Request-Id") {
			t.Errorf("Content-Type %q, X-Request-Id %q, request_id %v", resp.Header.Get("Content-Type"), resp.Header.Get("X-Request-Id"), p["request_id"])
		}
		return p
	}
	t.Run("down", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		url := gateway(t, fastgate.Config{Upstream: addr}, nil)
		resp, err := http.Get(url + "/x")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if p := problem(t, resp); resp.StatusCode != 502 || p["code"] != "upstream_unavailable" {
			t.Errorf("status %d, code %v; want 502 upstream_unavailable", resp.StatusCode, p["code"])
		}
	})
	t.Run("slow", func(t *testing.T) {
		var calls atomic.Int64
		release := make(chan struct{})
		var once sync.Once
		t.Cleanup(func() { once.Do(func() { close(release) }) })
		url := gateway(t, fastgate.Config{UpstreamTimeout: 200 * time.Millisecond}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			<-release
		}))
		start := time.Now()
		resp, err := http.Get(url + "/x")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		d := time.Since(start)
		if p := problem(t, resp); resp.StatusCode != 504 || p["code"] != "upstream_timeout" {
			t.Errorf("status %d, code %v; want 504 upstream_timeout", resp.StatusCode, p["code"])
		}
		if d > 2*time.Second || calls.Load() != 1 {
			t.Errorf("answered after %v, the upstream called %d times; want about 200 ms and once", d, calls.Load())
		}
		once.Do(func() { close(release) })
	})
}

// TestFraming shows how fasthttp's parser treats the requests that
// smuggling and header-size attacks send: each is refused before the
// upstream, or reaches it with one framing only.
func TestFraming(t *testing.T) {
	var mu sync.Mutex
	var got []string // method, path and body of each request the upstream got
	url := gateway(t, fastgate.Config{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" "+string(b))
		mu.Unlock()
	}))
	reached := func() []string {
		mu.Lock()
		defer mu.Unlock()
		r := got
		got = nil
		return r
	}
	for _, c := range []struct {
		name, head string
		status     int
		upstream   []string // what the upstream got
		closes     bool     // the gateway closes the connection after answering
	}{
		{"content-length and chunked", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"5\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", 200, []string{"POST /a hello"}, true},
		{"two content-lengths", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 0\r\n\r\nhello", 400, nil, true},
		{"two transfer-encodings", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, nil, true},
		{"an unknown transfer-coding", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400, nil, true},
		{"a space before the colon", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\nhello", 400, nil, true},
		{"two hosts", "GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400, nil, true},
		{"a 20 KiB header", "GET /a HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 20<<10) + "\r\n\r\n", 431, nil, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			c2, br := rawRequest(t, url, c.head)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != c.status {
				t.Errorf("status %d; want %d", resp.StatusCode, c.status)
			}
			c2.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := br.ReadByte(); c.closes && (err == nil || os.IsTimeout(err)) {
				t.Errorf("after the answer: %v; want the connection closed", err)
			}
			if r := reached(); fmt.Sprint(r) != fmt.Sprint(c.upstream) {
				t.Errorf("the upstream got %q; want %q", r, c.upstream)
			}
		})
	}
}

// TestClientTimeouts shows a header sent too slowly cut at HeaderTimeout,
// and a body that takes longer than that passing.
func TestClientTimeouts(t *testing.T) {
	var got atomic.Value
	url := gateway(t, fastgate.Config{HeaderTimeout: 300 * time.Millisecond}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(string(b))
	}))
	t.Run("slow header", func(t *testing.T) {
		c, br := rawRequest(t, url, "GET /a HTTP/1.1\r\nHost: x\r\n")
		start := time.Now()
		line, _ := br.ReadString('\n')
		_, err := io.Copy(io.Discard, br)
		if d := time.Since(start); err != nil || d > 3*time.Second || line != "" && !strings.HasPrefix(line, "HTTP/1.1 400 ") {
			// fasthttp answers a header that timed out with 400, not 408.
			t.Errorf("after %v: %q, then %v; want 400 or nothing, and the connection closed, after 300 ms", d, line, err)
		}
		c.Close()
	})
	t.Run("slow body", func(t *testing.T) {
		c, br := rawRequest(t, url, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
		time.Sleep(600 * time.Millisecond)
		io.WriteString(c, "world")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || got.Load() != "helloworld" {
			t.Errorf("status %d, the upstream got %q", resp.StatusCode, got.Load())
		}
	})
}

// TestStaleConnection shows a request that went out on a kept-alive
// connection the upstream had just closed sent again on a new one, once:
// the upstream answers each connection's first request, then closes it
// without saying so.
func TestStaleConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var conns, requests atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				requests.Add(1)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}()
		}
	}()
	url := gateway(t, fastgate.Config{Upstream: ln.Addr().String()}, nil)
	for i := range 3 {
		resp, err := http.Get(url + "/a")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: status %d; want 200 (sent again on a new connection)", i, resp.StatusCode)
		}
		time.Sleep(50 * time.Millisecond) // the upstream's close arrives
	}
	if requests.Load() != 3 {
		t.Errorf("the upstream answered %d requests on %d connections; want 3", requests.Load(), conns.Load())
	}
}
