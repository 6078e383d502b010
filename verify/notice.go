package verify

import (
	"net/http"
	"strconv"
	"time"

	"github.com/keyward/keyward"
)

// Notice is what a key that still works tells its user about its end.
type Notice struct {
	// RotationDue is true once the key's rotate_by has passed.
	RotationDue bool
	// Sunset is when the key stops working, set while it is in a
	// rotation's grace period or within Options.ExpiryNotice of its
	// expiry; zero otherwise. Deprecation is then when it was (or will
	// be) deprecated: its rotation, or the start of the notice before
	// its expiry.
	Sunset, Deprecation time.Time
}

// NoticeOf is the notice of k at time now, for a key that is neither
// revoked nor expired, with the given expiry notice (none when
// negative). A key in a rotation's grace period was deprecated by its
// rotation, which set its UpdatedAt.
func NoticeOf(k *keyward.Key, now time.Time, expiryNotice time.Duration) Notice {
	var n Notice
	n.RotationDue = k.RotationDue(now)
	if k.ExpiresAt == nil {
		return n
	}
	end := *k.ExpiresAt
	switch {
	case k.RotatedTo != "":
		n.Sunset, n.Deprecation = end, k.UpdatedAt
	case expiryNotice >= 0 && !now.Before(end.Add(-expiryNotice)):
		n.Sunset, n.Deprecation = end, end.Add(-expiryNotice)
	}
	return n
}

// The headers of a notice: Deprecation (RFC 9745), whose value is a
// structured-field date (@ and Unix seconds), and Sunset (RFC 8594), an
// HTTP-date.
const (
	DeprecationHeader = "Deprecation"
	SunsetHeader      = "Sunset"
)

// AppendDeprecation appends the Deprecation header's value of n to b.
func (n *Notice) AppendDeprecation(b []byte) []byte {
	return strconv.AppendInt(append(b, '@'), n.Deprecation.Unix(), 10)
}

// AppendSunset appends the Sunset header's value of n to b.
func (n *Notice) AppendSunset(b []byte) []byte {
	return n.Sunset.UTC().AppendFormat(b, http.TimeFormat)
}

// SetHeaders sets the Deprecation and Sunset headers of n on h, when n has
// a sunset.
func (n *Notice) SetHeaders(h http.Header) {
	if n.Sunset.IsZero() {
		return
	}
	var buf [64]byte
	h[DeprecationHeader] = []string{string(n.AppendDeprecation(buf[:0]))}
	h[SunsetHeader] = []string{string(n.AppendSunset(buf[:0]))}
}
