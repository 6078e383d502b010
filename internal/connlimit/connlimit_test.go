package connlimit

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/lockedbuffer"
)

// logLines returns the JSON lines of logs whose message contains msg.
func logLines(t *testing.T, logs *lockedbuffer.Buffer, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if l == "" {
			continue
		}
		var line map[string]any
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if strings.Contains(line["msg"].(string), msg) {
			out = append(out, line)
		}
	}
	return out
}

// listen returns a Listener on a free port of 127.0.0.1 held to limits,
// whose accepted connections arrive on the returned channel, and its logs.
func listen(t *testing.T, limits Limits) (*Listener, <-chan net.Conn, *lockedbuffer.Buffer) {
	t.Helper()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedbuffer.Buffer{}
	l := NewListener(tcp, limits, slog.New(slog.NewJSONHandler(logs, nil)))
	accepted := make(chan net.Conn, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		close(accepted)
		for c := range accepted {
			c.Close()
		}
	})
	return l, accepted, logs
}

// dial connects from the local address from to l, and closes the
// connection at the end of the test.
func dial(t *testing.T, l net.Listener, from string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	c, err := d.DialContext(t.Context(), "tcp", l.Addr().String())
	if err != nil {
		t.Fatalf("connect from %s: %v", from, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// next returns the next connection the listener accepts, within 10 s.
func next(t *testing.T, accepted <-chan net.Conn) net.Conn {
	t.Helper()
	select {
	case c := <-accepted:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no connection accepted within 10s")
		return nil
	}
}

// assertRefused connects from from to l and fails the test unless the
// server closes the connection without a word: the connection may be reset
// before the client's connect returns, or after.
func assertRefused(t *testing.T, l net.Listener, from string) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	c, err := d.DialContext(t.Context(), "tcp", l.Addr().String())
	if errors.Is(err, syscall.ECONNRESET) {
		return
	}
	if err != nil {
		t.Fatalf("connect from %s: %v", from, err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(make([]byte, 1))
	if n != 0 || err == nil || isTimeout(err) {
		t.Fatalf("read from a connection from %s over the limit: %d bytes, %v; want it closed", from, n, err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// openCount returns how many connections the listener counts open from
// addr.
func openCount(l *Listener, addr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, _ := netip.MustParseAddr(addr).Prefix(32)
	return l.open[p]
}

// TestPerAddr: an address holds PerAddr connections; its next is closed at
// once and logged, other addresses and exempt ones are accepted, and a
// closed connection gives its place back once, however often it is closed.
func TestPerAddr(t *testing.T) {
	l, accepted, logs := listen(t, Limits{PerAddr: 2, Exempt: []netip.Prefix{netip.MustParsePrefix("127.0.0.4/32")}})
	var held []net.Conn
	for range 2 {
		dial(t, l, "127.0.0.2")
		held = append(held, next(t, accepted))
	}
	assertRefused(t, l, "127.0.0.2")
	dial(t, l, "127.0.0.3")
	if c := next(t, accepted); c.RemoteAddr().(*net.TCPAddr).IP.String() != "127.0.0.3" {
		t.Fatalf("accepted a connection from %s, want 127.0.0.3", c.RemoteAddr())
	}
	for range 3 {
		dial(t, l, "127.0.0.4")
		next(t, accepted)
	}
	if got := openCount(l, "127.0.0.4"); got != 0 {
		t.Errorf("an exempt address is counted: %d", got)
	}

	lines := logLines(t, logs, "connections refused")
	if len(lines) != 1 || lines[0]["addr"] != "127.0.0.2" || lines[0]["refused"] != 1.0 || lines[0]["max_conns_per_ip"] != 2.0 {
		t.Fatalf("the refusal is logged as %v; want one line with addr 127.0.0.2", lines)
	}

	// A connection closed twice gives back one place.
	held[0].Close()
	held[0].Close()
	if got := openCount(l, "127.0.0.2"); got != 1 {
		t.Fatalf("after one of two connections closed (twice), %d are counted open; want 1", got)
	}
	dial(t, l, "127.0.0.2")
	next(t, accepted)
	assertRefused(t, l, "127.0.0.2")
}

// TestRefusalsLoggedOncePerInterval: refusals after the first are logged in
// one line at the end of the interval, not one line each.
func TestRefusalsLoggedOncePerInterval(t *testing.T) {
	l, accepted, logs := listen(t, Limits{PerAddr: 1})
	l.mu.Lock()
	l.interval = 300 * time.Millisecond
	l.mu.Unlock()
	dial(t, l, "127.0.0.2")
	next(t, accepted)
	dial(t, l, "127.0.0.3")
	next(t, accepted)
	for _, from := range []string{"127.0.0.2", "127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.2"} {
		assertRefused(t, l, from)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(logLines(t, logs, "connections refused")) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	lines := logLines(t, logs, "connections refused")
	if len(lines) != 2 {
		t.Fatalf("5 refusals logged in %d lines, want 2 (the first, then the rest together)", len(lines))
	}
	if l := lines[1]; l["addr"] != "127.0.0.2" || l["refused"] != 4.0 || l["addrs"] != 2.0 {
		t.Errorf("the second line is %v; want addr 127.0.0.2 (refused most), refused 4, addrs 2", l)
	}
}

// TestTotal: once Total connections are open, the next is not accepted
// until one closes; that Total is reached is logged once.
func TestTotal(t *testing.T) {
	l, accepted, logs := listen(t, Limits{Total: 2, PerAddr: 5})
	a := next2(t, l, accepted, "127.0.0.2")
	next2(t, l, accepted, "127.0.0.3")
	dial(t, l, "127.0.0.4")
	dial(t, l, "127.0.0.5")
	select {
	case c := <-accepted:
		t.Fatalf("with 2 open, a connection from %s was accepted", c.RemoteAddr())
	case <-time.After(200 * time.Millisecond):
	}
	a.Close()
	next(t, accepted)
	if n := len(logLines(t, logs, "connection limit reached")); n != 1 {
		t.Errorf("that the limit was reached is logged %d times, want once", n)
	}
}

// next2 connects from from and returns the server's side of the
// connection.
func next2(t *testing.T, l net.Listener, accepted <-chan net.Conn, from string) net.Conn {
	t.Helper()
	dial(t, l, from)
	return next(t, accepted)
}

// TestCloseWhileFull: Close ends an Accept that waits for a place.
func TestCloseWhileFull(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(tcp, Limits{Total: 1}, slog.New(slog.DiscardHandler))
	dial(t, l, "127.0.0.1")
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	l.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Accept waiting for a place did not return after Close")
	}
}

// TestClientAddr: IPv4 clients count by address, IPv4-mapped IPv6 as
// IPv4, IPv6 by /64.
func TestClientAddr(t *testing.T) {
	l := NewListener(nil, Limits{PerAddr: 1, Exempt: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, slog.New(slog.DiscardHandler))
	for _, tc := range []struct {
		remote string
		want   string // "" for not held
	}{
		{"192.0.2.7:1234", "192.0.2.7/32"},
		{"[::ffff:192.0.2.7]:1234", "192.0.2.7/32"},
		{"[2001:db8:1:2:3:4:5:6]:1234", "2001:db8:1:2::/64"},
		{"[fe80::1%eth0]:1234", "fe80::/64"},
		{"10.1.2.3:1234", ""},
	} {
		ap := netip.MustParseAddrPort(tc.remote)
		got, held := l.clientAddr(fakeConn{remote: net.TCPAddrFromAddrPort(ap)})
		if (tc.want == "") == held || held && got.String() != tc.want {
			t.Errorf("%s counts as %v (held %t), want %q", tc.remote, got, held, tc.want)
		}
	}
}

// fakeConn is a net.Conn that has only a remote address.
type fakeConn struct {
	net.Conn
	remote net.Addr
}

func (c fakeConn) RemoteAddr() net.Addr { return c.remote }

func TestDefaultTotal(t *testing.T) {
	for files, want := range map[int]int{0: MaxDefaultTotal, 1024: 768, 20000: MaxDefaultTotal, 1 << 20: MaxDefaultTotal, 1: 1} {
		if got := DefaultTotal(files); got != want {
			t.Errorf("DefaultTotal(%d) = %d, want %d", files, got, want)
		}
	}
}
