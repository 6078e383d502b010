package testclock_test

import (
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testclock"
)

// TestClock: the clock stands still until it is advanced, and may be read
// while it is advanced.
func TestClock(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c := testclock.New(start)
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("Now = %v, want %v", got, start)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			c.Advance(time.Hour)
			_ = c.Now()
		})
	}
	wg.Wait()
	if got, want := c.Now(), start.Add(4*time.Hour); !got.Equal(want) {
		t.Fatalf("Now after 4 advances of an hour = %v, want %v", got, want)
	}
}
