// Package testclock provides the clock that tests move by hand, so that
// expiry, rotation and grace periods are tested without sleeping. Its Now
// is a keyward.Clock.
package testclock

import (
	"sync"
	"time"
)

// Clock is a time that stands still until the test moves it. It is safe
// for concurrent use: the code under test reads it while the test moves it.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a clock that reads start.
func New(start time.Time) *Clock {
	return &Clock{now: start}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
