package gateway_test

import (
	"bufio"
	"crypto/x509"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/gateway"
)

// gib is the size of the bodies that stream through the gateway.
const gib = 1 << 30

// peakHeap samples the heap in use every 20ms until stop is called, and
// returns the highest value seen above the value at the start.
func peakHeap() (stop func() uint64) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	base := m.HeapInuse
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var m runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapInuse > base && m.HeapInuse-base > peak.Load() {
				peak.Store(m.HeapInuse - base)
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak.Load()
	}
}

// maxGrowth is how much the heap may grow while a GiB streams through
// the gateway (and the client and the upstream of the test, which stream
// too): buffers, not the body.
const maxGrowth = 64 << 20

// TestStreaming: a 1 GiB upload and a 1 GiB download pass through the
// gateway with the heap flat: the bodies stream, and are never held.
func TestStreaming(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 2 GiB")
	}
	e := newEnv(t)
	e.call(201, "POST", "/v1/tenants", map[string]any{"slug": "acme"})
	key, _ := e.key(map[string]any{"tenant_id": "acme", "name": "k"})

	t.Run("upload", func(t *testing.T) {
		stop := peakHeap()
		req := e.request(e.gwURL, "POST", "/v1/io/upload", key, io.LimitReader(pattern{}, gib))
		req.ContentLength = gib
		a := e.do(req)
		growth := stop()
		if a.status != 200 || a.raw != strconv.Itoa(gib) {
			t.Fatalf("upload: %d %q", a.status, a.raw)
		}
		t.Logf("1 GiB up: the heap grew by at most %d KiB", growth>>10)
		if growth > maxGrowth {
			t.Errorf("the heap grew by %d MiB while 1 GiB went up", growth>>20)
		}
	})
	t.Run("upload, chunked", func(t *testing.T) {
		stop := peakHeap()
		// No Content-Length: the body streams in chunks, of unknown
		// length until it ends.
		req := e.request(e.gwURL, "POST", "/v1/io/upload", key, io.MultiReader(io.LimitReader(pattern{}, gib)))
		a := e.do(req)
		growth := stop()
		if a.status != 200 || a.raw != strconv.Itoa(gib) {
			t.Fatalf("upload: %d %q", a.status, a.raw)
		}
		if growth > maxGrowth {
			t.Errorf("the heap grew by %d MiB while 1 GiB went up in chunks", growth>>20)
		}
	})
	t.Run("download", func(t *testing.T) {
		stop := peakHeap()
		resp, err := http.DefaultClient.Do(e.request(e.gwURL, "GET", "/v1/io/download?n="+strconv.Itoa(gib), key, nil))
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		growth := stop()
		if err != nil || n != gib || resp.StatusCode != 200 || resp.ContentLength != gib {
			t.Fatalf("download: %d, %d bytes of %d, %v", resp.StatusCode, n, resp.ContentLength, err)
		}
		t.Logf("1 GiB down: the heap grew by at most %d KiB", growth>>10)
		if growth > maxGrowth {
			t.Errorf("the heap grew by %d MiB while 1 GiB came down", growth>>20)
		}
	})
}

// readStatus reads an answer's status line and header from r, and
// returns the status line and the header lines.
func readStatus(t *testing.T, r *bufio.Reader) (string, []string) {
	t.Helper()
	status, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("reading the status line: %v", err)
	}
	var header []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the header: %v", err)
		}
		if line == "\r\n" {
			return strings.TrimSpace(status), header
		}
		header = append(header, strings.TrimSpace(line))
	}
}

// TestExpectContinue: a request with Expect: 100-continue gets the
// gateway's interim 100 once it passed the checks, before it sends its
// body, which then goes up; a refused one gets its refusal at once,
// without sending its body, and without reaching the upstream.
func TestExpectContinue(t *testing.T) {
	e := newEnv(t)
	e.call(201, "POST", "/v1/tenants", map[string]any{"slug": "acme"})
	key, _ := e.key(map[string]any{"tenant_id": "acme", "name": "k"})

	conn, r := e.rawRequest("POST /v1/io/continue HTTP/1.1\r\nHost: api\r\nX-API-Key: " + key +
		"\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	status, header := readStatus(t, r)
	if status != "HTTP/1.1 100 Continue" || len(header) != 0 {
		t.Fatalf("before the body: %q %q, want the gateway's 100 Continue", status, header)
	}
	if n := e.live.count.Load(); n != 0 {
		t.Fatalf("the upstream got %d requests before the body was sent", n)
	}
	io.WriteString(conn, "hello")
	status, _ = readStatus(t, r)
	body := make([]byte, len("got 5 bytes"))
	io.ReadFull(r, body)
	if status != "HTTP/1.1 200 OK" || string(body) != "got 5 bytes" {
		t.Errorf("after the body: %q %q", status, body)
	}

	before := e.counts()
	_, r = e.rawRequest("POST /v1/io/continue HTTP/1.1\r\nHost: api\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	status, _ = readStatus(t, r)
	if status != "HTTP/1.1 401 Unauthorized" {
		t.Errorf("a refused request: %q, want its refusal before any body", status)
	}
	if e.counts() != before {
		t.Errorf("a refused request reached the upstream")
	}
}

// TestUpgrade: an upgrade (as WebSocket's) passes through the gateway:
// the upstream's 101 reaches the client, and the connection carries both
// ways; a refused upgrade never reaches the upstream.
func TestUpgrade(t *testing.T) {
	e := newEnv(t)
	e.call(201, "POST", "/v1/tenants", map[string]any{"slug": "acme"})
	key, _ := e.key(map[string]any{"tenant_id": "acme", "name": "k"})

	conn, r := e.rawRequest("GET /v1/io/ws HTTP/1.1\r\nHost: api\r\nX-API-Key: " + key +
		"\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	status, _ := readStatus(t, r)
	if status != "HTTP/1.1 101 Switching Protocols" {
		t.Fatalf("upgrade: %q", status)
	}
	for _, msg := range []string{"hello\n", "again\n"} {
		io.WriteString(conn, msg)
		got, err := r.ReadString('\n')
		if err != nil || got != "echo: "+msg {
			t.Errorf("echo of %q: %q, %v", msg, got, err)
		}
	}
	if up := e.live.lastRequest(); up.Header.Get("X-Api-Key") != "" || up.Header.Get("X-Keyward-Tenant-Slug") != "acme" {
		t.Errorf("the upgrade went up with %v", up.Header)
	}

	before := e.counts()
	_, r = e.rawRequest("GET /v1/io/ws HTTP/1.1\r\nHost: api\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	if status, _ := readStatus(t, r); status != "HTTP/1.1 401 Unauthorized" {
		t.Errorf("a refused upgrade: %q", status)
	}
	if e.counts() != before {
		t.Errorf("a refused upgrade reached the upstream")
	}
}

// TestServerSentEvents: an event reaches the client as soon as the
// upstream sends it, while the stream is still open.
func TestServerSentEvents(t *testing.T) {
	e := newEnv(t)
	e.call(201, "POST", "/v1/tenants", map[string]any{"slug": "acme"})
	key, _ := e.key(map[string]any{"tenant_id": "acme", "name": "k"})

	resp, err := http.DefaultClient.Do(e.request(e.gwURL, "GET", "/v1/io/sse", key, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := make(chan string, 1)
	r := bufio.NewReader(resp.Body)
	go func() {
		line, _ := r.ReadString('\n')
		got <- line
	}()
	select {
	case line := <-got:
		if line != "data: one\n" {
			t.Errorf("first event: %q", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first event did not arrive while the stream was open")
	}
	close(e.live.release)
	rest, _ := io.ReadAll(r)
	if !strings.Contains(string(rest), "data: two") {
		t.Errorf("the rest of the stream: %q", rest)
	}
}

// TestHTTPSUpstream: an https upstream's certificate is verified, against
// UpstreamCAs (an upstream with a private authority); with the system's
// authorities alone, it is refused, 502 upstream_unavailable, and the log
// says why. Requests and upgrades both go over TLS.
func TestHTTPSUpstream(t *testing.T) {
	up := newTLSUpstream(t, "secure")
	cas := x509.NewCertPool()
	cas.AddCert(up.srv.Certificate())

	t.Run("trusted authority", func(t *testing.T) {
		e := newEnv(t, func(c *gateway.Config) { c.Upstream, c.UpstreamCAs = up.url, cas })
		e.call(201, "POST", "/v1/tenants", map[string]any{"slug": "acme"})
		key, _ := e.key(map[string]any{"tenant_id": "acme", "name": "k", "permissions": []string{"contacts:read"}})
		a := e.gateway("GET", "/v1/contacts/1", key)
		if a.status != 200 || a.header.Get("X-Upstream") != "secure" {
			t.Fatalf("through an https upstream: %d %v %s", a.status, a.header, a.raw)
		}
		if last := up.lastRequest(); last.TLS == nil || last.Header.Get("X-Keyward-Tenant-Slug") != "acme" || last.Header.Get("X-Api-Key") != "" {
			t.Errorf("the upstream got TLS %v, headers %v", last.TLS != nil, last.Header)
		}
		conn, r := e.rawRequest("GET /v1/io/ws HTTP/1.1\r\nHost: api\r\nX-API-Key: " + key +
			"\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		if status, _ := readStatus(t, r); status != "HTTP/1.1 101 Switching Protocols" {
			t.Fatalf("upgrade through an https upstream: %q", status)
		}
		io.WriteString(conn, "hello\n")
		if got, err := r.ReadString('\n'); err != nil || got != "echo: hello\n" {
			t.Errorf("echo over the upgraded TLS connection: %q, %v", got, err)
		}
	})

	t.Run("unknown authority", func(t *testing.T) {
		e := newEnv(t, func(c *gateway.Config) { c.Upstream = up.url })
		e.call(201, "POST", "/v1/tenants", map[string]any{"slug": "acme"})
		key, _ := e.key(map[string]any{"tenant_id": "acme", "name": "k", "permissions": []string{"contacts:read"}})
		before := up.count.Load()
		a := e.gateway("GET", "/v1/contacts/1", key)
		if a.status != 502 || a.str("code") != "upstream_unavailable" || a.header.Get("X-Request-Id") == "" {
			t.Fatalf("an upstream whose certificate no trusted authority signed: %d %v %s", a.status, a.header, a.raw)
		}
		if up.count.Load() != before {
			t.Errorf("the request reached an upstream that could not be verified")
		}
		if got := e.log.String(); !strings.Contains(got, "certificate") || strings.Contains(got, key[8:]) {
			t.Errorf("the log should say the certificate could not be verified, without the key:\n%s", got)
		}
	})
}

// TestTrailers: an upstream's trailers (a chunked answer announcing
// them in Trailer) reach the client after the body, as gRPC-style and
// checksum trailers need.
func TestTrailers(t *testing.T) {
	e := newEnv(t)
	e.call(201, "POST", "/v1/tenants", map[string]any{"slug": "acme"})
	key, _ := e.key(map[string]any{"tenant_id": "acme", "name": "k"})
	resp, err := http.DefaultClient.Do(e.request(e.gwURL, "GET", "/v1/io/trailer", key, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 || string(body) != "body with a trailer" {
		t.Fatalf("through the gateway: %d %q, %v", resp.StatusCode, body, err)
	}
	if got := resp.Trailer.Get("X-Checksum"); got != "abc123" {
		t.Errorf("the trailer X-Checksum: %q, want the upstream's abc123 (trailers %v)", got, resp.Trailer)
	}
}
