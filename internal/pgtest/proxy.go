package pgtest

import (
	"net"
	"net/url"
	"sync"
	"testing"
)

// Proxy is a TCP proxy on a free port of 127.0.0.1 in front of a server,
// for tests of a network partition. Cut makes it stop passing bytes, as when
// the database's host vanishes from the network: connections open and held
// go silent, new ones are accepted and never answered, and nothing is
// closed, so clients learn of it only from their own timeouts. Mend lets the
// bytes through again, held ones included, as when the network heals.
type Proxy struct {
	target string
	ln     net.Listener

	mu     sync.Mutex
	mended *sync.Cond // signalled when cut or closed changes
	cut    bool
	closed bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// NewProxy starts a proxy to the server that dsn (a postgres:// URL) names,
// and returns it and dsn with the proxy's address in place of the
// server's. The proxy is closed when the test ends.
func NewProxy(t testing.TB, dsn string) (*Proxy, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("pgtest: proxy to %q: %v", dsn, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgtest: proxy: %v", err)
	}
	p := &Proxy{target: u.Host, ln: ln, conns: map[net.Conn]struct{}{}}
	p.mended = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	u.Host = ln.Addr().String()
	return p, u.String()
}

// Cut stops the proxy passing bytes, in either direction, on every
// connection.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	p.mended.Broadcast()
}

// Mend lets bytes through again, those held since Cut first.
func (p *Proxy) Mend() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	p.mended.Broadcast()
}

// Close stops the proxy and closes every connection through it.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mended.Broadcast()
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}

// wait blocks while the proxy is cut, and reports whether it may go on:
// false once it is closed.
func (p *Proxy) wait() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.cut && !p.closed {
		p.mended.Wait()
	}
	return !p.closed
}

// track adds c to the connections Close closes, or closes it and reports
// false if the proxy is closed already.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

// forget removes c from the connections Close closes, and closes it.
func (p *Proxy) forget(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(client) {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.forget(client)
			// A connection accepted while cut reaches the server only
			// once mended.
			if !p.wait() {
				return
			}
			server, err := net.Dial("tcp", p.target)
			if err != nil || !p.track(server) {
				return
			}
			defer p.forget(server)
			done := make(chan struct{})
			go func() {
				defer close(done)
				p.pump(server, client)
			}()
			p.pump(client, server)
			<-done
		}()
	}
}

// pump copies from src to dst, holding the bytes while the proxy is cut,
// until either side fails; then it closes both, which ends the other
// direction's pump too.
func (p *Proxy) pump(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.wait() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
