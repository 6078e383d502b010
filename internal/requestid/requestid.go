// Package requestid gives requests the ids that answers carry in
// X-Request-Id, as the server does: an incoming X-Request-Id of a safe
// shape is kept, so that ids follow a request across services; otherwise
// a prefix of the process and a counter, without a random read per
// request.
package requestid

import (
	"crypto/rand"
	"net/http"
	"strconv"
	"sync/atomic"
)

// Source gives ids. It is safe for concurrent use.
type Source struct {
	prefix  string
	counter atomic.Uint64
}

// New returns a Source whose ids start with req_ and a random prefix of
// this process.
func New() *Source {
	return &Source{prefix: "req_" + rand.Text()[:10]}
}

// Of returns the id of a request with header h.
func (s *Source) Of(h http.Header) string {
	if v := h["X-Request-Id"]; len(v) > 0 && Safe(v[0]) {
		return v[0]
	}
	var buf [32]byte
	return string(strconv.AppendUint(append(buf[:0], s.prefix...), s.counter.Add(1), 36))
}

// Append appends a new id to dst, as Of makes one.
func (s *Source) Append(dst []byte) []byte {
	return strconv.AppendUint(append(dst, s.prefix...), s.counter.Add(1), 36)
}

// Safe reports whether an incoming request id may be kept: 1 to 64
// letters, digits, dashes, underscores and dots.
func Safe(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
