package verify_test

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/verify"
)

// The limits of the failed-attempt tests: few refusals, and a block
// longer than the window, so that a Retry-After of the window's length
// would be seen to be wrong.
const (
	testAttempts = 5
	testWindow   = time.Minute
	testBlock    = 2 * time.Minute
)

// Client addresses of the failed-attempt tests.
var (
	addrA = netip.MustParseAddr("198.51.100.7")
	addrB = netip.MustParseAddr("203.0.113.9")
)

// newAttemptFixture is a fixture whose verifier blocks an address after
// testAttempts refused keys within testWindow, for testBlock.
func newAttemptFixture(t testing.TB) *fixture {
	t.Helper()
	return newFixture(t, verify.Options{FailedAttempts: testAttempts, FailedAttemptWindow: testWindow, FailedAttemptBlock: testBlock})
}

// verifyFrom verifies key, with no permission needed, from the client
// address ip.
func (f *fixture) verifyFrom(ip netip.Addr, key string, perms ...string) verify.Result {
	return f.v.Verify(context.Background(), verify.Request{Key: key, IP: ip, Permissions: perms})
}

// guess returns a well-formed key of the fixture's format that is not
// stored: what a brute force sends.
func (f *fixture) guess() string {
	f.t.Helper()
	key, err := f.format.Generate(keyward.Live)
	if err != nil {
		f.t.Fatal(err)
	}
	return key
}

// wantBlocked fails the test unless r refuses a request from a blocked
// address with retry left to wait, and says so in its detail.
func wantBlocked(t *testing.T, r verify.Result, retry time.Duration) {
	t.Helper()
	if r.Code != keyward.CodeTooManyFailedAttempts {
		t.Fatalf("Code = %q (%s), want too_many_failed_attempts", r.Code, r.Detail)
	}
	if r.RetryAfter != retry {
		t.Errorf("RetryAfter = %v, want %v", r.RetryAfter, retry)
	}
	if secs := verify.RetrySeconds(retry); !strings.Contains(r.Detail, "Retry in "+strconv.FormatInt(secs, 10)+" seconds") {
		t.Errorf("Detail = %q, want it to say to retry in %d seconds", r.Detail, secs)
	}
	if e := r.Err(); e == nil || e.Code.Status() != 429 || e.RetryAfter != retry {
		t.Errorf("Err() = %#v, want a 429 with RetryAfter %v", e, retry)
	}
	if r.Key != nil {
		t.Errorf("Key = %v: a blocked request was looked up", r.Key)
	}
}

// TestFailedAttemptsBlock: an address that sent testAttempts refused keys
// of a counted kind (malformed, unknown, revoked) is blocked: its next
// request is refused with too_many_failed_attempts and the block's time
// to wait, without a storage read and without a cache entry, while
// another address is served.
func TestFailedAttemptsBlock(t *testing.T) {
	for _, kind := range []struct {
		name string
		code keyward.Code
		// key returns a key of this kind, another at each call.
		key func(f *fixture) string
	}{
		{"malformed", keyward.CodeMalformedAPIKey, func(f *fixture) string { return mistype(f.guess()) }},
		{"unknown", keyward.CodeInvalidAPIKey, func(f *fixture) string { return f.guess() }},
		{"revoked", keyward.CodeRevokedAPIKey, func(f *fixture) string {
			key, _ := f.createKey(func(k *keyward.Key) {
				at := f.clock.Now()
				k.Status, k.RevokedAt = keyward.KeyRevoked, &at
			})
			return key
		}},
	} {
		t.Run(kind.name, func(t *testing.T) {
			f := newAttemptFixture(t)
			var first string
			for i := range testAttempts {
				key := kind.key(f)
				if i == 0 {
					first = key
				}
				if r := f.verifyFrom(addrA, key); r.Code != kind.code {
					t.Fatalf("refusal %d: Code = %q (%s), want %q", i+1, r.Code, r.Detail, kind.code)
				}
			}
			// A new guess, a new key of the kind, and one refused (and
			// for unknown and revoked keys, cached) before the block.
			for _, key := range []string{f.guess(), kind.key(f), first} {
				reads := f.spy.reads()
				wantBlocked(t, f.verifyFrom(addrA, key), testBlock)
				if n := f.spy.reads() - reads; n != 0 {
					t.Errorf("a blocked request made %d storage reads, want 0", n)
				}
				if key != first && verify.Cached(f.v, key) {
					t.Error("a blocked request left a cache entry")
				}
				if r := f.verifyFrom(addrB, key); r.Code != kind.code && r.Code != keyward.CodeInvalidAPIKey {
					t.Errorf("from another address: Code = %q (%s), want it served", r.Code, r.Detail)
				}
			}
		})
	}
}

// TestFailedAttemptsOtherRefusals: keys that exist but are refused
// later (expired, disabled, suspended, restricted, lacking a permission)
// are not guesses: however many of them an address sends, it is not
// blocked.
func TestFailedAttemptsOtherRefusals(t *testing.T) {
	f := newAttemptFixture(t)
	ctx := context.Background()
	suspended := f.createTenant("suspended")
	if _, err := f.store.SetTenantStatus(ctx, suspended.ID, keyward.TenantSuspended, f.clock.Now(), keyward.CommandLineActor()); err != nil {
		t.Fatal(err)
	}
	past := f.clock.Now().Add(-time.Hour)
	for _, kind := range []struct {
		code keyward.Code
		edit func(k *keyward.Key)
	}{
		{keyward.CodeExpiredAPIKey, func(k *keyward.Key) { k.ExpiresAt = &past }},
		{keyward.CodeKeyDisabled, func(k *keyward.Key) { k.Status = keyward.KeyDisabled }},
		{keyward.CodeAccountSuspended, func(k *keyward.Key) { k.TenantID = suspended.ID }},
		{keyward.CodeIPNotAllowed, func(k *keyward.Key) { k.Restrictions.IPs = []string{"10.0.0.0/8"} }},
		{keyward.CodeInsufficientPermissions, nil},
	} {
		for range testAttempts + 1 {
			key, _ := f.createKey(kind.edit)
			if r := f.verifyFrom(addrA, key, "admin"); r.Code != kind.code {
				t.Fatalf("Code = %q (%s), want %q", r.Code, r.Detail, kind.code)
			}
		}
	}
	if r := f.verifyFrom(addrA, f.guess()); r.Code != keyward.CodeInvalidAPIKey {
		t.Errorf("after other refusals, an unknown key: Code = %q (%s), want invalid_api_key", r.Code, r.Detail)
	}
}

// TestFailedAttemptsSameKey: a client that keeps sending the same refused
// key (a revoked one in a forgotten config, a mistyped one) is told what
// is wrong with it every time, never blocked: a key sent again is not
// counted again. Nor are the few keys a NAT's misconfigured clients send
// in turn, up to the four the limiter remembers per address.
func TestFailedAttemptsSameKey(t *testing.T) {
	f := newAttemptFixture(t)
	revoked, _ := f.createKey(func(k *keyward.Key) {
		at := f.clock.Now()
		k.Status, k.RevokedAt = keyward.KeyRevoked, &at
	})
	keys := []struct {
		key  string
		code keyward.Code
	}{
		{revoked, keyward.CodeRevokedAPIKey},
		{mistype(f.guess()), keyward.CodeMalformedAPIKey},
		{f.guess(), keyward.CodeInvalidAPIKey},
		{`"` + f.guess() + `"`, keyward.CodeMalformedAPIKey},
	}
	for i := range 100 * testAttempts {
		k := keys[i%len(keys)]
		if r := f.verifyFrom(addrA, k.key); r.Code != k.code {
			t.Fatalf("request %d: Code = %q (%s), want %q", i+1, r.Code, r.Detail, k.code)
		}
	}
	// Past the window, the limiter still remembers the four keys. A
	// fifth pushes the oldest out of its memory, which then counts again
	// when it is sent, and so on: five keys sent in turn all count, and
	// block the address.
	f.clock.Advance(testWindow)
	keys = append([]struct {
		key  string
		code keyward.Code
	}{{f.guess(), keyward.CodeInvalidAPIKey}}, keys...)
	for _, k := range keys {
		if r := f.verifyFrom(addrA, k.key); r.Code != k.code {
			t.Fatalf("Code = %q (%s), want %q", r.Code, r.Detail, k.code)
		}
	}
	wantBlocked(t, f.verifyFrom(addrA, keys[1].key), testBlock)
}

// TestFailedAttemptsCachedKeyPasses: while an address is blocked, a key
// cached as valid still passes from it, so the other clients behind a
// shared address with working keys go on working; a valid key that is
// not cached yet is refused from it like a guess, and served from
// elsewhere.
func TestFailedAttemptsCachedKeyPasses(t *testing.T) {
	f := newAttemptFixture(t)
	working, _ := f.createKey(nil)
	if r := f.verifyFrom(addrA, working); !r.Valid() {
		t.Fatalf("Verify: %s: %s", r.Code, r.Detail)
	}
	notCached, _ := f.createKey(nil)
	for range testAttempts {
		f.verifyFrom(addrA, f.guess())
	}
	wantBlocked(t, f.verifyFrom(addrA, f.guess()), testBlock)
	reads := f.spy.reads()
	for range 10 {
		if r := f.verifyFrom(addrA, working, "messages:send"); !r.Valid() {
			t.Fatalf("a cached valid key from a blocked address: %s: %s", r.Code, r.Detail)
		}
	}
	if n := f.spy.reads() - reads; n != 0 {
		t.Errorf("cached verifications made %d storage reads", n)
	}
	wantBlocked(t, f.verifyFrom(addrA, notCached), testBlock)
	if r := f.verifyFrom(addrB, notCached); !r.Valid() {
		t.Errorf("a valid key from another address: %s: %s", r.Code, r.Detail)
	}
}

// TestFailedAttemptsBlockEnds: a block ends testBlock after it began,
// however many requests the address sends meanwhile (they are not
// counted), and the address is then served and counted afresh; refusals
// further apart than the window do not add up.
func TestFailedAttemptsBlockEnds(t *testing.T) {
	f := newAttemptFixture(t)
	for range testAttempts {
		f.verifyFrom(addrA, f.guess())
	}
	var elapsed time.Duration
	for _, at := range []time.Duration{0, time.Second, testBlock - 1500*time.Millisecond, testBlock - time.Nanosecond} {
		f.clock.Advance(at - elapsed)
		elapsed = at
		for range 3 * testAttempts {
			wantBlocked(t, f.verifyFrom(addrA, f.guess()), testBlock-elapsed)
		}
	}
	f.clock.Advance(testBlock - elapsed)
	for i := range testAttempts {
		if r := f.verifyFrom(addrA, f.guess()); r.Code != keyward.CodeInvalidAPIKey {
			t.Fatalf("after the block, refusal %d: Code = %q (%s), want invalid_api_key", i+1, r.Code, r.Detail)
		}
	}
	wantBlocked(t, f.verifyFrom(addrA, f.guess()), testBlock)

	// Refusals that never reach the limit within one window.
	g := newAttemptFixture(t)
	for range 5 {
		for range testAttempts - 1 {
			g.verifyFrom(addrA, g.guess())
		}
		g.clock.Advance(testWindow)
	}
	if r := g.verifyFrom(addrA, g.guess()); r.Code != keyward.CodeInvalidAPIKey {
		t.Errorf("refusals in separate windows: Code = %q (%s), want invalid_api_key", r.Code, r.Detail)
	}
}

// TestFailedAttemptsAddresses: an IPv6 client is counted by its /64, so it
// cannot escape by moving through the addresses of its block, and an
// IPv4 address mapped into IPv6 counts as itself; another /64 is served,
// and a request whose address is unknown is never counted nor blocked.
func TestFailedAttemptsAddresses(t *testing.T) {
	f := newAttemptFixture(t)
	for i := range testAttempts {
		ip := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i + 1)})
		f.verifyFrom(ip, f.guess())
	}
	wantBlocked(t, f.verifyFrom(netip.MustParseAddr("2001:db8::ffff:1234:5678"), f.guess()), testBlock)
	if r := f.verifyFrom(netip.MustParseAddr("2001:db8:0:1::1"), f.guess()); r.Code != keyward.CodeInvalidAPIKey {
		t.Errorf("another /64: Code = %q (%s), want invalid_api_key", r.Code, r.Detail)
	}

	for range testAttempts {
		f.verifyFrom(netip.MustParseAddr("::ffff:192.0.2.1"), f.guess())
	}
	wantBlocked(t, f.verifyFrom(netip.MustParseAddr("192.0.2.1"), f.guess()), testBlock)

	for i := range 10 * testAttempts {
		if r := f.verifyFrom(netip.Addr{}, f.guess()); r.Code != keyward.CodeInvalidAPIKey {
			t.Fatalf("unknown address, request %d: Code = %q (%s), want invalid_api_key", i+1, r.Code, r.Detail)
		}
	}
}

// TestFailedAttemptsOff: with the limiter off, no address is blocked.
func TestFailedAttemptsOff(t *testing.T) {
	f := newFixture(t, verify.Options{FailedAttempts: verify.NoFailedAttemptLimit})
	for i := range 2 * verify.DefaultFailedAttempts {
		if r := f.verifyFrom(addrA, f.guess()); r.Code != keyward.CodeInvalidAPIKey {
			t.Fatalf("request %d: Code = %q (%s), want invalid_api_key", i+1, r.Code, r.Detail)
		}
	}
}

// TestBruteForce is the brute force of issue 10, simulated with the
// injected clock on the default limits: a client sends unique well-formed
// keys (valid checksums) from one address at 11,000 a second for 15
// seconds. It is blocked within its first second, and from then on causes
// no storage read and no cache entry.
func TestBruteForce(t *testing.T) {
	f := newFixture(t, verify.Options{})
	const (
		rate     = 11_000
		duration = 15 * time.Second
		interval = time.Second / rate
	)
	attempts := int(duration / interval)
	blockedAt := -1
	var readsAtBlock int64
	for i := range attempts {
		key := f.guess()
		if _, perr := f.format.Parse(key); perr != nil {
			t.Fatalf("a generated key does not parse: %v", perr)
		}
		r := f.verifyFrom(addrA, key)
		switch {
		case r.Code == keyward.CodeTooManyFailedAttempts:
			if blockedAt < 0 {
				blockedAt, readsAtBlock = i, f.spy.reads()
				t.Logf("blocked after %d attempts, %v into the attack, %d storage reads; Retry-After %ds",
					i, f.clock.Now().Sub(t0), readsAtBlock, verify.RetrySeconds(r.RetryAfter))
			}
			if i%1000 == 0 && verify.Cached(f.v, key) {
				t.Fatalf("attempt %d: a blocked guess left a cache entry", i)
			}
		case blockedAt >= 0:
			t.Fatalf("attempt %d, %v into the attack: %q after the block began", i, f.clock.Now().Sub(t0), r.Code)
		case r.Code != keyward.CodeInvalidAPIKey:
			t.Fatalf("attempt %d: Code = %q (%s)", i, r.Code, r.Detail)
		}
		f.clock.Advance(interval)
	}
	if blockedAt < 0 {
		t.Fatal("the brute force was never blocked")
	}
	if at := time.Duration(blockedAt) * interval; at >= time.Second {
		t.Errorf("blocked %v into the attack, want within its first second", at)
	}
	if readsAtBlock != verify.DefaultFailedAttempts {
		t.Errorf("%d storage reads before the block, want one per counted guess (%d)", readsAtBlock, verify.DefaultFailedAttempts)
	}
	if n := f.spy.reads() - readsAtBlock; n != 0 {
		t.Errorf("%d storage reads after the block began, want 0", n)
	}
	t.Logf("%d attempts in %v of simulated time: %d storage reads in all", attempts, duration, f.spy.reads())
}

// TestFailedAttemptsConcurrent: guesses sent at once from one address are
// counted together, and once it is blocked none reaches the store; only
// those already past the check when the block began may (one per
// goroutine at most).
func TestFailedAttemptsConcurrent(t *testing.T) {
	f := newAttemptFixture(t)
	const goroutines, each = 8, 50
	keys := make([][]string, goroutines)
	for g := range keys {
		for range each {
			keys[g] = append(keys[g], f.guess())
		}
	}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for _, key := range keys[g] {
				if r := f.verifyFrom(addrA, key); r.Code != keyward.CodeInvalidAPIKey && r.Code != keyward.CodeTooManyFailedAttempts {
					t.Errorf("Code = %q (%s)", r.Code, r.Detail)
				}
			}
		})
	}
	wg.Wait()
	if n := f.spy.keyByHash.Load(); n < testAttempts || n > testAttempts+goroutines-1 {
		t.Errorf("%d key lookups, want %d to %d", n, testAttempts, testAttempts+goroutines-1)
	}
	wantBlocked(t, f.verifyFrom(addrA, f.guess()), testBlock)
}
