package gateway_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/gateway"
)

// TestFraming: requests whose framing could be read two ways (the shapes
// of request smuggling) are refused 400 and never reach the upstream, or,
// for Content-Length with chunked, read as chunked alone with the
// connection closed after, so that nothing after the body is taken for
// another request; a header over gateway.MaxHeaderBytes is refused 431.
func TestFraming(t *testing.T) {
	e := newEnv(t)
	e.call(201, "POST", "/v1/tenants", map[string]any{"slug": "acme"})
	key, _ := e.key(map[string]any{"tenant_id": "acme", "name": "k"})
	k := "X-API-Key: " + key + "\r\n"
	for _, c := range []struct {
		name, head string
		status     int
		reached    int64  // requests the upstream got
		body       string // the answer's body, when it passed
	}{
		{"content-length and chunked", "POST /v1/io/upload HTTP/1.1\r\nHost: x\r\n" + k + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"5\r\nhello\r\n0\r\n\r\nGET /v1/io/smuggled HTTP/1.1\r\nHost: x\r\n" + k + "\r\n", 200, 1, "5"},
		{"two content-lengths", "POST /v1/io/upload HTTP/1.1\r\nHost: x\r\n" + k + "Content-Length: 5\r\nContent-Length: 0\r\n\r\nhello", 400, 0, ""},
		{"two transfer-encodings", "POST /v1/io/upload HTTP/1.1\r\nHost: x\r\n" + k + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, 0, ""},
		{"an unknown transfer-coding", "POST /v1/io/upload HTTP/1.1\r\nHost: x\r\n" + k + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400, 0, ""},
		{"a space before the colon", "POST /v1/io/upload HTTP/1.1\r\nHost: x\r\n" + k + "Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\nhello", 400, 0, ""},
		{"a header line without a colon", "GET /v1/io/a HTTP/1.1\r\nHost: x\r\nX-API-Key " + key + "\r\n\r\n", 400, 0, ""},
		{"two hosts", "GET /v1/io/a HTTP/1.1\r\nHost: x\r\nHost: y\r\n" + k + "\r\n", 400, 0, ""},
		{"a 20 KiB header", "GET /v1/io/a HTTP/1.1\r\nHost: x\r\n" + k + "X-Big: " + strings.Repeat("a", 20<<10) + "\r\n\r\n", 431, 0, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := e.live.count.Load()
			conn, br := e.rawRequest(c.head)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.status || c.body != "" && string(body) != c.body {
				t.Errorf("status %d %q; want %d %q", resp.StatusCode, body, c.status, c.body)
			}
			conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := br.ReadByte(); err == nil || os.IsTimeout(err) {
				t.Errorf("after the answer: %v; want the connection closed", err)
			}
			if n := e.live.count.Load() - before; n != c.reached {
				t.Errorf("the upstream got %d requests; want %d", n, c.reached)
			}
		})
	}
	// fasthttp quotes a header line it could not read in its messages:
	// a key in it must not reach the log.
	if strings.Contains(e.log.String(), key[8:]) {
		t.Errorf("the log holds the key:\n%s", e.log.String())
	}
}

// TestClientTimeouts: a header sent too slowly is cut at HeaderTimeout,
// and a body that takes longer than that passes.
func TestClientTimeouts(t *testing.T) {
	e := newEnv(t, func(c *gateway.Config) { c.HeaderTimeout = 300 * time.Millisecond })
	e.call(201, "POST", "/v1/tenants", map[string]any{"slug": "acme"})
	key, _ := e.key(map[string]any{"tenant_id": "acme", "name": "k"})
	t.Run("slow header", func(t *testing.T) {
		_, br := e.rawRequest("GET /v1/io/a HTTP/1.1\r\nHost: x\r\n")
		start := time.Now()
		line, _ := br.ReadString('\n')
		_, err := io.Copy(io.Discard, br)
		if d := time.Since(start); err != nil || d > 3*time.Second || line != "" && !strings.HasPrefix(line, "HTTP/1.1 400 ") {
			// fasthttp answers a header that timed out with 400, not 408.
			t.Errorf("after %v: %q, then %v; want 400 or nothing, and the connection closed, after 300 ms", d, line, err)
		}
	})
	t.Run("slow body", func(t *testing.T) {
		conn, br := e.rawRequest("POST /v1/io/upload HTTP/1.1\r\nHost: x\r\nX-API-Key: " + key + "\r\nContent-Length: 10\r\n\r\nhello")
		time.Sleep(600 * time.Millisecond)
		io.WriteString(conn, "world")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "10" {
			t.Errorf("status %d, the upstream read %q bytes", resp.StatusCode, body)
		}
	})
}

// TestStaleConnection: a request that went out on a kept-alive
// connection the upstream had just closed is sent again on a new one,
// once: the upstream answers each connection's first request, then
// closes it without saying so.
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
	e := newEnv(t, func(c *gateway.Config) { c.Upstream = mustURL(t, "http://"+ln.Addr().String()) })
	e.call(201, "POST", "/v1/tenants", map[string]any{"slug": "acme"})
	key, _ := e.key(map[string]any{"tenant_id": "acme", "name": "k"})
	for i := range 3 {
		if a := e.gateway("GET", "/v1/io/a", key); a.status != 200 {
			t.Fatalf("request %d: status %d; want 200 (sent again on a new connection)", i, a.status)
		}
		time.Sleep(50 * time.Millisecond) // the upstream's close arrives
	}
	if requests.Load() != 3 {
		t.Errorf("the upstream answered %d requests on %d connections; want 3", requests.Load(), conns.Load())
	}
}
