package verify

import (
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/keyward/keyward"
)

// Defaults of the failed-attempt limiter (Options.FailedAttempts,
// FailedAttemptWindow, FailedAttemptBlock); docs/outcomes.md says why
// they never hold back a client that is not guessing.
const (
	DefaultFailedAttempts      = 100
	DefaultFailedAttemptWindow = time.Minute
	DefaultFailedAttemptBlock  = time.Minute
	// NoFailedAttemptLimit, as Options.FailedAttempts, turns the
	// failed-attempt limiter off.
	NoFailedAttemptLimit = -1
)

// attemptAddresses bounds the client addresses the failed-attempt limiter
// keeps count of: an attack from more addresses than that has the least
// used ones forgotten, rather than the server's memory filled (about 200
// bytes an address).
const attemptAddresses = 100_000

// attemptMemory is how many of the last keys refused from an address the
// limiter remembers, so that a key sent again is not counted again.
const attemptMemory = 4

// attemptLimiter is the failed-attempt limiter of docs/outcomes.md: it
// counts, per client address (an IPv6 address by its /64), the distinct
// keys refused as malformed, unknown or revoked, and once an address has
// had limit of them refused within window, blocks it for block: Verify
// then refuses its requests that would need the key parsed or looked up,
// with too_many_failed_attempts, before doing either. A request refused
// while its address is blocked is not counted, so the block ends block
// after it began however fast the address goes on guessing.
//
// A key refused again, among the last attemptMemory refused from its
// address, is not counted again: a client that keeps sending the same
// revoked or mistyped key is not guessing, and is answered what is wrong
// with its key, not blocked; nor is nginx, which asks forward-auth twice
// about a refused request (auth_request, then error_page). Such a key
// costs no storage read either: unknown and revoked keys are cached.
type attemptLimiter struct {
	limit  int
	window int64 // nanoseconds
	block  int64
	log    *slog.Logger
	seed   maphash.Seed
	addrs  *otter.Cache[netip.Prefix, *addrAttempts]
	// lastLog is when the last block was logged, in Unix nanoseconds, and
	// unlogged how many blocks began since: the log says so at most once
	// a minute, not once an address under an attack from many.
	lastLog  atomic.Int64
	unlogged atomic.Int64
}

// addrAttempts is what the limiter knows of one client address.
type addrAttempts struct {
	mu sync.Mutex
	// refused counts the keys refused in the window that ends at
	// windowEnd (Unix nanoseconds).
	refused   int
	windowEnd int64
	// blockedUntil is when the address's block ends; 0 or past when it
	// is not blocked.
	blockedUntil int64
	// recent are fingerprints of the last keys refused (counted or not),
	// the latest at recent[next-1].
	recent [attemptMemory]uint64
	next   int
}

// logEvery is how often at most the limiter logs that it blocked an
// address.
const logEvery = time.Minute

// newAttemptLimiter returns the limiter configured by opts, or nil when
// opts turn it off. Zero values take the defaults.
func newAttemptLimiter(opts Options, log *slog.Logger) *attemptLimiter {
	if opts.FailedAttempts < 0 {
		return nil
	}
	l := &attemptLimiter{
		limit:  orDefault(opts.FailedAttempts, DefaultFailedAttempts),
		window: int64(orDefault(opts.FailedAttemptWindow, DefaultFailedAttemptWindow)),
		block:  int64(orDefault(opts.FailedAttemptBlock, DefaultFailedAttemptBlock)),
		log:    log,
		seed:   maphash.MakeSeed(),
		addrs: otter.Must(&otter.Options[netip.Prefix, *addrAttempts]{
			MaximumSize: attemptAddresses,
			Logger:      &otter.NoopLogger{},
		}),
	}
	l.lastLog.Store(-int64(logEvery))
	return l
}

// orDefault returns v, or def when v is not positive.
func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// clientPrefix is what the limiter counts ip under: an IPv4 address alone,
// an IPv6 address by its /64, the block that one host gets and may pick
// any address from. ok is false for an unknown address, which is never
// counted nor blocked.
func clientPrefix(ip netip.Addr) (p netip.Prefix, ok bool) {
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() {
		return p, false
	}
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, err := ip.Prefix(bits)
	return p, err == nil
}

// blocked returns how long the address ip stays blocked from now (Unix
// nanoseconds), or 0 when it is not.
func (l *attemptLimiter) blocked(ip netip.Addr, now int64) time.Duration {
	p, ok := clientPrefix(ip)
	if !ok {
		return 0
	}
	a, ok := l.addrs.GetIfPresent(p)
	if !ok {
		return 0
	}
	a.mu.Lock()
	until := a.blockedUntil
	a.mu.Unlock()
	if now >= until {
		return 0
	}
	return time.Duration(until - now)
}

// refused counts that key was refused as malformed, unknown or revoked
// from the address ip at now (Unix nanoseconds), unless it is among the
// last keys refused from there, and blocks the address when that makes
// limit within the window.
func (l *attemptLimiter) refused(ip netip.Addr, key string, now int64) {
	p, ok := clientPrefix(ip)
	if !ok {
		return
	}
	a, ok := l.addrs.GetIfPresent(p)
	if !ok {
		a, _ = l.addrs.SetIfAbsent(p, &addrAttempts{})
	}
	fp := maphash.String(l.seed, key)
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.recent {
		if r == fp {
			return
		}
	}
	a.recent[a.next] = fp
	a.next = (a.next + 1) % attemptMemory
	if now < a.blockedUntil {
		return // refused by a concurrent verification that began before the block
	}
	if now >= a.windowEnd {
		a.refused, a.windowEnd = 0, now+l.window
	}
	a.refused++
	if a.refused < l.limit {
		return
	}
	a.refused, a.windowEnd, a.blockedUntil = 0, 0, now+l.block
	blocks := l.unlogged.Add(1)
	if last := l.lastLog.Load(); now-last >= int64(logEvery) && l.lastLog.CompareAndSwap(last, now) {
		l.unlogged.Add(-blocks)
		l.log.Warn("verify: a client address sent too many keys that were refused; its requests that need a key looked up are refused until its block ends",
			"addr", prefixString(p), "refused", l.limit, "within", time.Duration(l.window).String(),
			"until", time.Unix(0, a.blockedUntil).UTC().Format(time.RFC3339), "addrs_blocked_since_last_line", blocks)
	}
}

// close stops the goroutines of the limiter's cache.
func (l *attemptLimiter) close() {
	l.addrs.StopAllGoroutines()
}

// prefixString writes an IPv4 address alone and an IPv6 /64 as a prefix.
func prefixString(p netip.Prefix) string {
	if p.Addr().Is4() {
		return p.Addr().String()
	}
	return p.String()
}

// tooManyAttempts writes into r the refusal of a request from an address
// blocked for retry more.
func tooManyAttempts(r *Result, retry time.Duration) {
	r.Code, r.RetryAfter = keyward.CodeTooManyFailedAttempts, retry
	r.Detail = fmt.Sprintf("Too many keys sent from this address were refused (malformed, unknown or revoked), "+
		"so its requests are refused for a while. Retry in %d seconds (Retry-After), with a valid key.", RetrySeconds(retry))
}

// RetrySeconds is d in whole seconds, rounded up, as Retry-After gives it:
// at least 1 for any d above 0.
func RetrySeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}
