package requestid

import (
	"net/http"
	"strings"
	"testing"
)

func TestOf(t *testing.T) {
	s := New()
	if got := s.Of(http.Header{"X-Request-Id": {"trace-42.a_b"}}); got != "trace-42.a_b" {
		t.Errorf("a safe incoming id: %q", got)
	}
	seen := map[string]bool{}
	for _, in := range []string{"", "has space", "quote\"", strings.Repeat("a", 65), "ünï"} {
		got := s.Of(http.Header{"X-Request-Id": {in}})
		if !strings.HasPrefix(got, "req_") || seen[got] {
			t.Errorf("incoming %q: %q, want a new id of the source", in, got)
		}
		seen[got] = true
	}
	if got := s.Of(http.Header{}); !strings.HasPrefix(got, "req_") || seen[got] {
		t.Errorf("no incoming id: %q", got)
	}
}
