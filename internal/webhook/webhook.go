// Package webhook delivers the events of the outbox to the endpoints that
// asked for them, per the Standard Webhooks specification
// (https://www.standardwebhooks.com): a JSON body of type, timestamp and
// data, signed with HMAC-SHA256 in the webhook-id, webhook-timestamp and
// webhook-signature headers. It also raises the events of dates
// (key.expiring, key.rotation_due), and guards the deliveries against
// server-side request forgery (docs/webhooks.md).
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"

	"github.com/keyward/keyward"
)

// secretPrefix is the prefix of a signing secret, as Standard Webhooks
// writes them: whsec_ and the key in base64.
const secretPrefix = "whsec_"

// NewSecret returns a new signing secret: 32 random bytes.
func NewSecret() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("webhook: crypto/rand failed: " + err.Error())
	}
	return secretPrefix + base64.StdEncoding.EncodeToString(b)
}

// Sign returns the signature of a delivery of body with the given id and
// timestamp (Unix seconds) under secret: "v1," and the base64 of the
// HMAC-SHA256 of "id.timestamp.body".
func Sign(secret, id string, timestamp int64, body []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, secretPrefix))
	if err != nil {
		return "", fmt.Errorf("webhook: the secret is not whsec_ and base64: %w", err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write(strconv.AppendInt(nil, timestamp, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil)), nil
}

// Public reports whether a is an address a webhook may be delivered to
// without --webhook-allow-private: not loopback, private (RFC 1918,
// fc00::/7), link-local, shared (100.64.0.0/10), benchmarking
// (198.18.0.0/15), IETF (192.0.0.0/24), reserved (240.0.0.0/4, the
// broadcast address included), 0.0.0.0/8, unspecified or multicast. An
// IPv6 address must be global unicast (2000::/3), not Teredo
// (2001::/32); one that embeds an IPv4 address (mapped, IPv4-compatible,
// NAT64 64:ff9b::/96, 6to4 2002::/16) is judged by that address.
func Public(a netip.Addr) bool {
	a = a.Unmap()
	if a.Is6() {
		b := a.As16()
		switch {
		case compat.Contains(a) || nat64.Contains(a):
			return Public(netip.AddrFrom4([4]byte(b[12:16])))
		case sixToFour.Contains(a):
			return Public(netip.AddrFrom4([4]byte(b[2:6])))
		case !global6.Contains(a) || teredo.Contains(a):
			return false
		}
	}
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	for _, p := range denied4 {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

var (
	denied4 = []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"), netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("192.0.0.0/24"),
		netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("240.0.0.0/4"),
	}
	global6   = netip.MustParsePrefix("2000::/3")
	teredo    = netip.MustParsePrefix("2001::/32")
	compat    = netip.MustParsePrefix("::/96")
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// CheckURL refuses an endpoint's URL that is not http or https with a
// host, that holds a user and password, or whose host is (or resolves to)
// an address that is not Public, unless allowPrivate. The error names the
// field url and says what to fix.
func CheckURL(ctx context.Context, raw string, allowPrivate bool) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Hostname() == "" {
		return keyward.FieldErrorf("url", "%q is not an http or https URL with a host, such as https://api.example.com/keyward-events", raw)
	}
	if u.User != nil {
		return keyward.FieldErrorf("url", "holds a user and password; give the URL without them (deliveries are signed instead)")
	}
	if u.Fragment != "" {
		return keyward.FieldErrorf("url", "holds a fragment (#…), which is never sent; leave it out")
	}
	if allowPrivate {
		return nil
	}
	host := u.Hostname()
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else if addrs, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host); err != nil {
		return keyward.FieldErrorf("url", "the host %q could not be resolved: %v; give a host that resolves to a public address", host, err)
	}
	for _, a := range addrs {
		if !Public(a) {
			return keyward.FieldErrorf("url", "the host %q is (or resolves to) %s, a loopback, private or link-local address: "+
				"deliveries go only to public addresses unless the operator starts serve with --webhook-allow-private", host, a.Unmap())
		}
	}
	return nil
}

// guard is a net.Dialer's Control that refuses to connect to an address
// that is not Public: it checks the address actually dialled, after name
// resolution, so that a name that resolved to a public address when the
// endpoint was registered and to a private one now (DNS rebinding) is
// refused too.
func guard(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("webhook: cannot read the address %q: %w", address, err)
	}
	if !Public(ap.Addr()) {
		return fmt.Errorf("webhook: %s is not a public address; deliveries go only to public addresses unless serve runs with --webhook-allow-private", ap.Addr().Unmap())
	}
	return nil
}
