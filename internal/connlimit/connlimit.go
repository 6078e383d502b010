// Package connlimit owns the limits on the connections a server holds
// open, so that no client, and no crowd of them, can take all of the
// process's file descriptors: a net.Listener that holds each client address
// to a number of open connections, closing any more as soon as it accepts
// them, and all clients together to another, leaving new connections in the
// kernel's queue until one closes.
package connlimit

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Limits are the limits a Listener holds its connections to.
type Limits struct {
	// Total is the most connections open at once, 0 for no limit. While
	// that many are open, Accept waits: a new client waits in the kernel's
	// listen queue until a connection closes, and is served then.
	Total int
	// PerAddr is the most connections open at once from one client
	// address, 0 for no limit. An IPv6 client is counted by its /64, the
	// block one host is usually given. A connection over the limit is
	// closed, with a reset, as soon as it is accepted, unanswered.
	PerAddr int
	// Exempt are the client addresses not held to PerAddr: proxies that
	// carry the connections of many clients. They count toward Total.
	Exempt []netip.Prefix
}

// LogInterval is the least time between two log lines about connections
// refused, or about Total being reached: the first is logged at once, and
// those that follow within the interval in one line at its end.
const LogInterval = time.Minute

// Listener is a net.Listener that holds its connections to Limits. Its
// connections release their place when they are closed, once however
// often Close is called.
type Listener struct {
	net.Listener
	limits Limits
	logger *slog.Logger
	// interval is LogInterval, shorter in tests.
	interval time.Duration
	// slots holds a value for each open connection; it is nil when Total
	// is 0.
	slots     chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	mu sync.Mutex
	// open counts the open connections of each client address (an IPv6
	// client's /64) held to PerAddr.
	open map[netip.Prefix]int
	// refused counts the connections of each address refused since the
	// last log line about refusals.
	refused map[netip.Prefix]int
	// refusedTimer, while it runs, holds back log lines about refusals.
	refusedTimer *time.Timer
	// fullLogged is when Total being reached was last logged.
	fullLogged time.Time
}

// NewListener returns ln held to limits. It logs, at level WARN and at most
// once per LogInterval each, the connections it refuses with the client
// addresses that made them, and that Total is reached.
func NewListener(ln net.Listener, limits Limits, logger *slog.Logger) *Listener {
	l := &Listener{
		Listener: ln,
		limits:   limits,
		logger:   logger,
		interval: LogInterval,
		done:     make(chan struct{}),
		open:     make(map[netip.Prefix]int),
		refused:  make(map[netip.Prefix]int),
	}
	if limits.Total > 0 {
		l.slots = make(chan struct{}, limits.Total)
	}
	return l
}

// Accept waits while Total connections are open, then accepts the next
// connection whose client address is under PerAddr, closing those over it.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		if err := l.acquire(); err != nil {
			return nil, err
		}
		c, err := l.Listener.Accept()
		if err != nil {
			l.release()
			return nil, err
		}
		addr, held := l.clientAddr(c)
		if held && !l.admit(addr) {
			// A reset, not a FIN: the client learns at once that it was
			// refused, and the server keeps no TIME_WAIT for it.
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			c.Close()
			l.release()
			l.refuse(addr)
			continue
		}
		return &conn{Conn: c, l: l, addr: addr, held: held}, nil
	}
}

// Close closes the listener; an Accept waiting for a connection to close
// returns net.ErrClosed. Open connections stay open.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		close(l.done)
		l.mu.Lock()
		if l.refusedTimer != nil {
			l.refusedTimer.Stop()
		}
		l.mu.Unlock()
	})
	return l.Listener.Close()
}

// acquire takes a place among the Total, waiting for one if there is none,
// and logs that Total is reached when it waits.
func (l *Listener) acquire() error {
	if l.slots == nil {
		return nil
	}
	select {
	case l.slots <- struct{}{}:
		return nil
	default:
	}
	l.mu.Lock()
	logNow := time.Since(l.fullLogged) >= l.interval
	if logNow {
		l.fullLogged = time.Now()
	}
	l.mu.Unlock()
	if logNow {
		l.logger.Warn("connection limit reached: new connections wait until one closes", "max_conns", l.limits.Total)
	}
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-l.done:
		return net.ErrClosed
	}
}

// release gives back a place taken by acquire.
func (l *Listener) release() {
	if l.slots != nil {
		<-l.slots
	}
}

// clientAddr returns the address that c counts under, and whether it is
// held to PerAddr: not when PerAddr is 0, when the address is exempt, or
// when c is not a TCP connection.
func (l *Listener) clientAddr(c net.Conn) (netip.Prefix, bool) {
	if l.limits.PerAddr <= 0 {
		return netip.Prefix{}, false
	}
	ta, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return netip.Prefix{}, false
	}
	ip := ta.AddrPort().Addr().Unmap()
	for _, p := range l.limits.Exempt {
		if p.Contains(ip) {
			return netip.Prefix{}, false
		}
	}
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, err := ip.WithZone("").Prefix(bits)
	if err != nil {
		return netip.Prefix{}, false
	}
	return p, true
}

// admit counts a new connection from addr, unless addr has PerAddr open.
func (l *Listener) admit(addr netip.Prefix) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[addr] >= l.limits.PerAddr {
		return false
	}
	l.open[addr]++
	return true
}

// closed counts down a connection from addr.
func (l *Listener) closed(addr netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[addr]--; l.open[addr] <= 0 {
		delete(l.open, addr)
	}
}

// refuse notes a connection refused from addr, and logs the refusals at
// once unless a line about them was logged less than an interval ago;
// those are logged at the end of the interval.
func (l *Listener) refuse(addr netip.Prefix) {
	l.mu.Lock()
	l.refused[addr]++
	var line []any
	if l.refusedTimer == nil {
		line = l.takeRefusedLocked()
		l.refusedTimer = time.AfterFunc(l.interval, l.logRefused)
	}
	l.mu.Unlock()
	if line != nil {
		l.logger.Warn("connections refused: a client address is over its limit", line...)
	}
}

// logRefused logs the refusals noted since the last line, if any, at the
// end of an interval, and starts another interval if it logs.
func (l *Listener) logRefused() {
	l.mu.Lock()
	line := l.takeRefusedLocked()
	select {
	case <-l.done:
		line = nil
	default:
	}
	if line == nil {
		l.refusedTimer = nil
	} else {
		l.refusedTimer.Reset(l.interval)
	}
	l.mu.Unlock()
	if line != nil {
		l.logger.Warn("connections refused: a client address is over its limit", line...)
	}
}

// takeRefusedLocked returns the attributes of a log line about the
// refusals noted, and forgets them; nil if there are none. The line names
// the address refused most, how many were refused in all and from how many
// addresses. l.mu must be held.
func (l *Listener) takeRefusedLocked() []any {
	if len(l.refused) == 0 {
		return nil
	}
	var top netip.Prefix
	total := 0
	for addr, n := range l.refused {
		total += n
		if !top.IsValid() || n > l.refused[top] || n == l.refused[top] && addr.Addr().Less(top.Addr()) {
			top = addr
		}
	}
	line := []any{"addr", prefixString(top), "refused", total, "addrs", len(l.refused),
		"max_conns_per_ip", l.limits.PerAddr}
	clear(l.refused)
	return line
}

// prefixString writes an IPv4 address alone and an IPv6 /64 as a prefix.
func prefixString(p netip.Prefix) string {
	if p.Addr().Is4() {
		return p.Addr().String()
	}
	return p.String()
}

// conn is an accepted connection, which releases its place when closed.
type conn struct {
	net.Conn
	l    *Listener
	addr netip.Prefix
	held bool
	once sync.Once
}

// Close closes the connection and, the first time, releases its place.
func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		if c.held {
			c.l.closed(c.addr)
		}
		c.l.release()
	})
	return err
}
