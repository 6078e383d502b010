// Package forwarded reads what a request's trusted proxies say of it: the
// client's address (X-Forwarded-For) and whether the original request came
// over TLS (X-Forwarded-Proto). A header is believed only from a peer in
// the trusted list (serve --trusted-proxies); from any other, it is a
// client's own and ignored.
package forwarded

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
)

// Proxies are the addresses of the trusted proxies. The zero value trusts
// none.
type Proxies []netip.Prefix

// Trusts reports whether a is a trusted proxy.
func (p Proxies) Trusts(a netip.Addr) bool {
	for _, pre := range p {
		if pre.Contains(a) {
			return true
		}
	}
	return false
}

// Peer returns the address of r's connection peer, unmapped; the zero Addr
// when RemoteAddr cannot be read.
func Peer(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// PeerTrusted reports whether r's connection peer is a trusted proxy.
func (p Proxies) PeerTrusted(r *http.Request) bool {
	return len(p) > 0 && p.Trusts(Peer(r))
}

// ClientIP returns the address of r's client: the connection's peer, or,
// when the peer is a trusted proxy, the last address of X-Forwarded-For
// that is not a trusted proxy. A list that cannot be read is trusted in
// none of its parts: the last trusted address stands for the client.
func (p Proxies) ClientIP(r *http.Request) netip.Addr {
	return p.ClientIPOf(Peer(r), r.Header.Values("X-Forwarded-For"))
}

// ClientIPOf is ClientIP of a request from peer with the X-Forwarded-For
// values xff, for a server other than net/http's.
func (p Proxies) ClientIPOf(peer netip.Addr, xff []string) netip.Addr {
	addr := peer
	if !addr.IsValid() || len(p) == 0 || !p.Trusts(addr) {
		return addr
	}
	for i := len(xff) - 1; i >= 0; i-- {
		parts := strings.Split(xff[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return addr // a forged or broken list: trust none of it
			}
			a = a.Unmap()
			if !p.Trusts(a) {
				return a
			}
			addr = a
		}
	}
	return addr
}

// Secure reports whether r came over TLS: from a trusted proxy that sends
// X-Forwarded-Proto, the last value decides (https, in any case, is TLS),
// since it is the one that proxy set; otherwise whether r's own connection
// is TLS.
func (p Proxies) Secure(r *http.Request) bool {
	proto := r.Header["X-Forwarded-Proto"]
	if len(proto) == 0 || len(p) == 0 {
		// Nothing a proxy says counts: the peer need not be read.
		return r.TLS != nil
	}
	return p.SecureOf(Peer(r), proto, r.TLS != nil)
}

// SecureOf is Secure of a request from peer with the X-Forwarded-Proto
// values proto, on a TLS connection or not, for a server other than
// net/http's.
func (p Proxies) SecureOf(peer netip.Addr, proto []string, tls bool) bool {
	if v := proto; len(v) > 0 && len(p) > 0 && p.Trusts(peer) {
		last := v[len(v)-1]
		if i := strings.LastIndexByte(last, ','); i >= 0 {
			last = last[i+1:]
		}
		return strings.EqualFold(strings.TrimSpace(last), "https")
	}
	return tls
}

// UntrustedWarning logs, once, that a request came with X-Forwarded-For
// from a peer that is not a trusted proxy: its list is ignored, and the
// peer's address stands for the client's. Behind a proxy left out of
// --trusted-proxies every client has the proxy's address, and IP
// restrictions refuse them all: the operator must hear of it, once.
// The zero value is ready to use, and safe for concurrent use.
type UntrustedWarning struct{ done atomic.Bool }

// Log logs the warning, naming peer and the count of trusted proxies,
// unless it was logged already.
func (w *UntrustedWarning) Log(ctx context.Context, log *slog.Logger, peer netip.Addr, trusted int) {
	if w.done.Load() || !w.done.CompareAndSwap(false, true) {
		return
	}
	log.WarnContext(ctx, "a request came with X-Forwarded-For from an address that is not a trusted proxy, "+
		"so its X-Forwarded-For is ignored and the peer's address stands for the client's (IP restrictions, "+
		"the failed-attempt limiter); if Keyward runs behind a proxy at this address, add it to --trusted-proxies "+
		"(logged once)", "peer", peer.String(), "trusted_proxies", trusted)
}

// Logged reports whether the warning was logged: a server may then skip
// looking for X-Forwarded-For.
func (w *UntrustedWarning) Logged() bool { return w.done.Load() }
