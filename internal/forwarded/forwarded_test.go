package forwarded

import (
	"crypto/tls"
	"net/http"
	"net/netip"
	"testing"
)

func TestClientIPAndSecure(t *testing.T) {
	proxies := Proxies{netip.MustParsePrefix("10.0.0.0/8")}
	for _, c := range []struct {
		name   string
		peer   string
		xff    []string
		proto  []string
		tls    bool
		client string
		secure bool
	}{
		{"no proxy", "203.0.113.7:5000", nil, nil, false, "203.0.113.7", false},
		{"a client's own headers are ignored", "203.0.113.7:5000", []string{"198.51.100.1"}, []string{"https"}, false, "203.0.113.7", false},
		{"TLS on the connection", "203.0.113.7:5000", nil, nil, true, "203.0.113.7", true},
		{"a trusted proxy", "10.0.0.2:5000", []string{"198.51.100.1"}, []string{"https"}, false, "198.51.100.1", true},
		{"a chain of trusted proxies", "10.0.0.2:5000", []string{"198.51.100.1, 10.0.0.9", "10.0.0.3"}, nil, false, "198.51.100.1", false},
		{"a forged address before the client's", "10.0.0.2:5000", []string{"192.0.2.66, 198.51.100.1"}, nil, false, "198.51.100.1", false},
		{"a broken list", "10.0.0.2:5000", []string{"bogus, 10.0.0.9"}, nil, false, "10.0.0.9", false},
		{"the last proto decides", "10.0.0.2:5000", nil, []string{"https, http"}, true, "10.0.0.2", false},
		{"IPv4 in IPv6", "[::ffff:203.0.113.7]:5000", nil, nil, false, "203.0.113.7", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: c.peer, Header: http.Header{}}
			if c.xff != nil {
				r.Header["X-Forwarded-For"] = c.xff
			}
			if c.proto != nil {
				r.Header["X-Forwarded-Proto"] = c.proto
			}
			if c.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if got := proxies.ClientIP(r); got.String() != c.client {
				t.Errorf("ClientIP %s, want %s", got, c.client)
			}
			if got := proxies.Secure(r); got != c.secure {
				t.Errorf("Secure %v, want %v", got, c.secure)
			}
		})
	}
	if got := Proxies(nil).ClientIP(&http.Request{RemoteAddr: "not an address"}); got.IsValid() {
		t.Errorf("an unreadable peer gives %s, want none", got)
	}
}
