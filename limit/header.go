package limit

import (
	"net/http"
	"strconv"
	"time"
)

// The headers follow draft-ietf-httpapi-ratelimit-headers (draft 10 and
// later): RateLimit-Policy and RateLimit are Structured Field lists with one
// member per bucket, named by the rate's name as an sf-string:
//
//	RateLimit-Policy: "burst";q=10;w=1, "hourly";q=1000;w=3600
//	RateLimit: "burst";r=9;t=1, "hourly";r=999;t=4
//
// q is the bucket's quota, the requests a full bucket holds (State.Limit),
// and w the seconds a bucket takes to refill from empty (State.Window): for
// a rate whose burst is its limit, the limit and period as configured, and
// otherwise a policy with the same sustained rate (q/w) whose quota is the
// burst. r is the requests the bucket allows now, and t the seconds until
// it is full again. Seconds are rounded up, so w and t never promise a
// refill sooner than it comes.
//
// X-RateLimit-Limit, -Remaining and -Reset give q, r and t of the tightest
// bucket (Decision.Tightest); -Reset is in seconds from now, not a Unix
// time, so that it needs no agreement between clocks. Retry-After, on a
// refused request only, is in whole seconds, rounded up, at least 1; the
// draft says it takes precedence over RateLimit.

// Seconds returns d in whole seconds, rounded up.
func Seconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// RetryAfterSeconds returns the Retry-After of a refused decision: its
// RetryAfter in whole seconds, rounded up, and at least 1.
func (d *Decision) RetryAfterSeconds() int64 {
	return max(Seconds(d.RetryAfter), 1)
}

// AppendPolicy appends the RateLimit-Policy field value of d to dst; it
// appends nothing when d has no buckets.
func AppendPolicy(dst []byte, d *Decision) []byte {
	for i := 0; i < d.N; i++ {
		s := &d.States[i]
		if i > 0 {
			dst = append(dst, ", "...)
		}
		dst = appendString(dst, s.Name)
		dst = append(dst, ";q="...)
		dst = strconv.AppendInt(dst, s.Limit, 10)
		dst = append(dst, ";w="...)
		dst = strconv.AppendInt(dst, Seconds(s.Window), 10)
	}
	return dst
}

// AppendRateLimit appends the RateLimit field value of d to dst; it
// appends nothing when d has no buckets.
func AppendRateLimit(dst []byte, d *Decision) []byte {
	for i := 0; i < d.N; i++ {
		s := &d.States[i]
		if i > 0 {
			dst = append(dst, ", "...)
		}
		dst = appendString(dst, s.Name)
		dst = append(dst, ";r="...)
		dst = strconv.AppendInt(dst, s.Remaining, 10)
		dst = append(dst, ";t="...)
		dst = strconv.AppendInt(dst, Seconds(s.Reset), 10)
	}
	return dst
}

// SetHeaders sets on h the RateLimit-Policy, RateLimit and
// X-RateLimit-Limit, -Remaining and -Reset headers of d, and Retry-After
// when d refused the request. It sets nothing when d has no buckets.
func SetHeaders(h http.Header, d *Decision) {
	if d.N == 0 {
		return
	}
	// The values are written into one buffer and made one string, sliced
	// into each header's, with one backing array for the header slices:
	// two allocations per answer, not a dozen.
	var buf [64*MaxBuckets*2 + 64]byte
	var ends [6]int
	b := AppendPolicy(buf[:0], d)
	ends[0] = len(b)
	b = AppendRateLimit(b, d)
	ends[1] = len(b)
	t := &d.States[d.Tightest]
	b = strconv.AppendInt(b, t.Limit, 10)
	ends[2] = len(b)
	b = strconv.AppendInt(b, t.Remaining, 10)
	ends[3] = len(b)
	b = strconv.AppendInt(b, Seconds(t.Reset), 10)
	ends[4] = len(b)
	n := 5
	if !d.Allowed {
		b = strconv.AppendInt(b, d.RetryAfterSeconds(), 10)
		ends[5] = len(b)
		n = 6
	}
	all := string(b)
	v := new([6]string)
	start := 0
	for i := range n {
		v[i] = all[start:ends[i]]
		start = ends[i]
	}
	h["Ratelimit-Policy"] = v[0:1:1]
	h["Ratelimit"] = v[1:2:2]
	h["X-Ratelimit-Limit"] = v[2:3:3]
	h["X-Ratelimit-Remaining"] = v[3:4:4]
	h["X-Ratelimit-Reset"] = v[4:5:5]
	if !d.Allowed {
		h["Retry-After"] = v[5:6:6]
	}
}

// appendString appends s as a Structured Field sf-string (RFC 9651):
// quoted, with '"' and '\' escaped. Rate names need no escaping; other
// bytes outside printable ASCII are dropped, since an sf-string cannot hold
// them.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c >= 0x20 && c < 0x7f:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
