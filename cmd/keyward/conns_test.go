package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/connlimit"
)

// clientConn is one TCP connection of a test client, which speaks HTTP/1.1
// on it by hand, so that the test decides when it opens and closes.
type clientConn struct {
	net.Conn
	r *bufio.Reader
}

// dialFrom opens a connection to addr from the local address from (any of
// 127.0.0.0/8 on Linux, whose loopback answers for all of it), and closes
// it at the end of the test.
func dialFrom(t *testing.T, from, addr string) *clientConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	c, err := d.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatalf("connect from %s: %v", from, err)
	}
	t.Cleanup(func() { c.Close() })
	return &clientConn{Conn: c, r: bufio.NewReader(c)}
}

// send writes a request for /healthz, keeping the connection alive.
func (c *clientConn) send() error {
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: keyward\r\n\r\n")
	return err
}

// answer reads the answer to a request sent, within 10 s, and returns its
// status.
func (c *clientConn) answer() (int, error) {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// healthz asks for /healthz on the connection and fails the test unless
// the answer is 200.
func (c *clientConn) healthz(t *testing.T) {
	t.Helper()
	if err := c.send(); err != nil {
		t.Fatalf("from %s: send: %v", c.LocalAddr(), err)
	}
	if status, err := c.answer(); err != nil || status != http.StatusOK {
		t.Fatalf("from %s: /healthz answered %d, %v; want 200", c.LocalAddr(), status, err)
	}
}

// TestServeConnectionLimits: while one client address holds its
// --max-conns-per-ip connections, its next one is closed at once,
// unanswered, and logged; its open connections and other clients are
// served, /healthz included. A trusted proxy is held to --max-conns only.
// Once --max-conns connections are open, a new client waits, unanswered,
// until one closes, and is served then.
func TestServeConnectionLimits(t *testing.T) {
	db := dbFile(t)
	s := startServer(t, db, "--max-conns-per-ip", "3", "--max-conns", "8", "--trusted-proxies", "127.0.0.4")
	addr := strings.TrimPrefix(s.url, "http://")
	for attr, want := range map[string]int{"max_conns": 8, "max_conns_per_ip": 3} {
		if got := logInt(s.stderr.String(), "listening", attr); got != want {
			t.Errorf("the server logs %s %d, want %d", attr, got, want)
		}
	}

	// 127.0.0.2 holds three connections, each kept alive after a request.
	var held []*clientConn
	for range 3 {
		c := dialFrom(t, "127.0.0.2", addr)
		c.healthz(t)
		held = append(held, c)
	}
	// Its fourth is closed without an answer: reset before the client's
	// connect returns, or after.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 10 * time.Second}
	if c, err := d.DialContext(t.Context(), "tcp", addr); err == nil {
		extra := &clientConn{Conn: c, r: bufio.NewReader(c)}
		defer extra.Close()
		extra.send() // It may fail already: the server may have closed it.
		if status, err := extra.answer(); err == nil {
			t.Fatalf("a fourth connection from 127.0.0.2 was answered %d; want it closed", status)
		} else if os.IsTimeout(err) {
			t.Fatalf("a fourth connection from 127.0.0.2 was neither answered nor closed within 10s")
		}
	} else if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("a fourth connection from 127.0.0.2: %v; want it accepted and closed", err)
	}
	waitLog(t, s, "connections refused", 10*time.Second)
	logs := s.stderr.String()
	if got := logAttr(logs, "connections refused: a client address is over its limit", "addr"); got != "127.0.0.2" {
		t.Errorf("the refusal is logged with addr %q, want 127.0.0.2:\n%s", got, logs)
	}
	// Other clients are served while 127.0.0.2 holds its maximum: a new
	// connection from 127.0.0.1 (kept open), and 127.0.0.2's own.
	other := dialFrom(t, "127.0.0.1", addr)
	other.healthz(t)
	held[0].healthz(t)
	other.healthz(t)

	// The trusted proxy 127.0.0.4 opens four connections, one more than a
	// client may, which brings the total to the maximum of 8.
	var proxy []*clientConn
	for range 4 {
		c := dialFrom(t, "127.0.0.4", addr)
		c.healthz(t)
		proxy = append(proxy, c)
	}
	// A ninth connection waits: the server does not accept it while 8 are
	// open, and says so in its log.
	waitLog(t, s, "connection limit reached", 10*time.Second)
	waiting := dialFrom(t, "127.0.0.5", addr)
	if err := waiting.send(); err != nil {
		t.Fatalf("send on the ninth connection: %v", err)
	}
	waiting.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := waiting.r.Peek(1); !os.IsTimeout(err) {
		t.Fatalf("with 8 connections open, a ninth got an answer or was closed (%v); want it to wait", err)
	}
	// When one connection closes, it is served.
	proxy[0].Close()
	if status, err := waiting.answer(); err != nil || status != http.StatusOK {
		t.Fatalf("once a connection closed, the ninth got %d, %v; want 200", status, err)
	}
	if n := bytes.Count([]byte(s.stderr.String()), []byte("connections refused")); n != 1 {
		t.Errorf("the refusal of one connection was logged %d times, want once", n)
	}
}

// logInt returns the number attribute attr of the first line of JSON logs
// whose message is msg, or -1.
func logInt(logs, msg, attr string) int {
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == msg {
			if v, ok := line[attr].(float64); ok {
				return int(v)
			}
			return -1
		}
	}
	return -1
}

// TestServeConnectionFlags checks --max-conns and --max-conns-per-ip: a
// negative or malformed value is a usage error that names the flag or the
// variable and opens no database; the flag takes its default from the
// variable and wins over it; 0 turns the limit off.
func TestServeConnectionFlags(t *testing.T) {
	for _, tc := range []struct {
		flag, env, attr string
		def             int
	}{
		{"--max-conns", "KEYWARD_MAX_CONNS", "max_conns", connlimit.DefaultTotal(connlimit.FileLimit())},
		{"--max-conns-per-ip", "KEYWARD_MAX_CONNS_PER_IP", "max_conns_per_ip", connlimit.DefaultPerAddr},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			db := dbFile(t)
			for _, v := range []string{"-1", "many", "1.5"} {
				fails(t, db, 2, []string{"serve", tc.flag, v}, tc.flag)
				var stdout, stderr bytes.Buffer
				err := run(t.Context(), []string{"--db", db, "serve"}, env(tc.env, v), strings.NewReader(""), &stdout, &stderr)
				if exitCode(err) != 2 || !strings.Contains(errorMessage(err), tc.env) {
					t.Errorf("%s=%s: exit status %d, message %q", tc.env, v, exitCode(err), errorMessage(err))
				}
			}
			if _, err := os.Stat(db); err == nil {
				t.Error("a usage error opened the database")
			}
			for _, c := range []struct {
				env  []string
				args []string
				want int
			}{
				{nil, nil, tc.def},
				{[]string{tc.env, "50"}, nil, 50},
				{[]string{tc.env, "50"}, []string{tc.flag, "70"}, 70},
				{[]string{tc.env, "many"}, []string{tc.flag, "70"}, 70},
				{nil, []string{tc.flag, "0"}, 0},
			} {
				s := startServerEnv(t, db, env(c.env...), c.args...)
				if got := logInt(s.stderr.String(), "listening", tc.attr); got != c.want {
					t.Errorf("env %v, args %v: the server logs %s %d, want %d", c.env, c.args, tc.attr, got, c.want)
				}
				if err := s.shutdown(t); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
