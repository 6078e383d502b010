package verify_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/verify"
)

// TestNoticeOf: a key in a rotation's grace period has a sunset at its
// expiry, deprecated by its rotation; one within the expiry notice of its
// expiry has a sunset, deprecated at the start of the notice; rotation is
// due once rotate_by has passed; a negative notice turns the expiry's off,
// not the rotation's.
func TestNoticeOf(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	week := 7 * 24 * time.Hour
	for _, tc := range []struct {
		name                string
		key                 keyward.Key
		notice              time.Duration
		due                 bool
		sunset, deprecation time.Time
	}{
		{"no expiry", keyward.Key{}, week, false, time.Time{}, time.Time{}},
		{"far from expiry", keyward.Key{ExpiresAt: at(30 * 24 * time.Hour)}, week, false, time.Time{}, time.Time{}},
		{"within the notice", keyward.Key{ExpiresAt: at(48 * time.Hour)}, week, false, *at(48 * time.Hour), *at(48*time.Hour - week)},
		{"notice off", keyward.Key{ExpiresAt: at(48 * time.Hour)}, -1, false, time.Time{}, time.Time{}},
		{"rotated", keyward.Key{ExpiresAt: at(20 * 24 * time.Hour), RotatedTo: "key_new", UpdatedAt: now.Add(-time.Hour)}, -1, false, *at(20 * 24 * time.Hour), now.Add(-time.Hour)},
		{"rotation due", keyward.Key{RotateBy: at(-time.Second)}, week, true, time.Time{}, time.Time{}},
		{"rotation not yet due", keyward.Key{RotateBy: at(time.Second)}, week, false, time.Time{}, time.Time{}},
	} {
		n := verify.NoticeOf(&tc.key, now, tc.notice)
		if n.RotationDue != tc.due || !n.Sunset.Equal(tc.sunset) || !n.Deprecation.Equal(tc.deprecation) {
			t.Errorf("%s: %+v; want due %v, sunset %v, deprecation %v", tc.name, n, tc.due, tc.sunset, tc.deprecation)
		}
	}
	n := verify.Notice{Sunset: time.Date(2026, 12, 1, 8, 30, 0, 0, time.FixedZone("CET", 3600)), Deprecation: time.Unix(1764400000, 0)}
	h := http.Header{}
	n.SetHeaders(h)
	if h.Get("Deprecation") != "@1764400000" || h.Get("Sunset") != "Tue, 01 Dec 2026 07:30:00 GMT" {
		t.Errorf("headers %v; want Deprecation @1764400000 (RFC 9745) and Sunset as an HTTP-date in GMT (RFC 8594)", h)
	}
	h = http.Header{}
	(&verify.Notice{}).SetHeaders(h)
	if len(h) != 0 {
		t.Errorf("no notice: headers %v", h)
	}
}
