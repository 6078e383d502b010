package verify_test

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/verify"
)

// creditsLeft returns the credits the store holds for key id.
func (f *fixture) creditsLeft(id string) int64 {
	f.t.Helper()
	k, err := f.store.Key(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	if k.Credits == nil {
		f.t.Fatalf("key %s has no credits", id)
	}
	return k.Credits.Remaining
}

// holdSpends makes the store's next SpendBatch wait, as a slow database
// would, until the returned function is called.
func (f *fixture) holdSpends() (release func()) {
	gate := make(chan struct{})
	f.spy.spendGate.Store(&gate)
	return func() {
		f.spy.spendGate.Store(nil)
		close(gate)
	}
}

// TestSpendsBatched: the spends of concurrent verifications of a metered
// key are counted in batches (group commit): while one batch's
// transaction runs, the spends of the requests that come meanwhile gather
// and are written by the next one, up to verify.MaxSpendBatch each. Of 800
// requests with 500 credits, exactly 500 are allowed, in 1 + ⌈799/256⌉ =
// 5 transactions. The store holds the first batch until the 799 others
// are queued, so that the count is exact. The storage timeout is long, as
// the last requests wait for four batches (slow under -race).
func TestSpendsBatched(t *testing.T) {
	f := newFixture(t, verify.Options{StorageTimeout: time.Minute})
	const credits, requests = 500, 800
	key, k := f.createKey(func(k *keyward.Key) { k.Credits = &keyward.Credits{Remaining: credits + 1} })
	if r := f.verify(key); !r.Valid() { // caches the key, and spends 1
		t.Fatalf("the first request: %s %s", r.Code, r.Detail)
	}
	before := f.spy.spendBatches.Load()

	release := f.holdSpends()
	results := make(chan verify.Result, requests)
	ask := func() { results <- f.verify(key) }
	go ask()
	eventually(t, 30*time.Second, "the first request's batch running", func() bool { return f.spy.spendBatches.Load() == before+1 })
	for range requests - 1 {
		go ask()
	}
	eventually(t, 30*time.Second, "the other requests queued", func() bool { return verify.QueuedSpends(f.v) == requests-1 })
	release()

	allowed, refused := 0, 0
	for range requests {
		switch r := <-results; {
		case r.Valid():
			allowed++
		case r.Code == keyward.CodeQuotaExceeded:
			refused++
		default:
			t.Errorf("a request: %s %s; want it allowed or quota_exceeded", r.Code, r.Detail)
		}
	}
	if allowed != credits || refused != requests-credits {
		t.Errorf("%d requests with %d credits: %d allowed, %d refused; want exactly %d allowed", requests, credits, allowed, refused, credits)
	}
	if got := f.creditsLeft(k.ID); got != 0 {
		t.Errorf("credits left: %d, want 0", got)
	}
	batches := f.spy.spendBatches.Load() - before
	want := 1 + (requests-1+verify.MaxSpendBatch-1)/verify.MaxSpendBatch
	if batches != int64(want) {
		t.Errorf("%d requests counted in %d transactions; want %d (one, then batches of up to %d)", requests, batches, want, verify.MaxSpendBatch)
	}
	if spends := f.spy.spends.Load(); spends != requests+1 {
		t.Errorf("%d spends sent to the store; want one per request, %d", spends, requests+1)
	}
}

// TestSpendsConcurrent: many goroutines verifying one metered key at once,
// batched as they come, are allowed exactly as many times as it has
// credits, and every request gets its own answer.
func TestSpendsConcurrent(t *testing.T) {
	f := newFixture(t, verify.Options{StorageTimeout: time.Minute})
	const credits, goroutines, each = 500, 16, 50
	key, k := f.createKey(func(k *keyward.Key) { k.Credits = &keyward.Credits{Remaining: credits} })
	var mu sync.Mutex
	allowed := 0
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				r := f.verify(key)
				switch {
				case r.Valid():
					mu.Lock()
					allowed++
					mu.Unlock()
				case r.Code != keyward.CodeQuotaExceeded:
					t.Errorf("a request: %s %s; want it allowed or quota_exceeded", r.Code, r.Detail)
				}
			}
		})
	}
	wg.Wait()
	if allowed != credits {
		t.Errorf("%d requests with %d credits: %d allowed; want exactly %d", goroutines*each, credits, allowed, credits)
	}
	if got := f.creditsLeft(k.ID); got != 0 {
		t.Errorf("credits left: %d, want 0", got)
	}
	if spends := f.spy.spends.Load(); spends != goroutines*each {
		t.Errorf("%d spends sent to the store; want one per request, %d", spends, goroutines*each)
	}
	t.Logf("%d requests in %d transactions", goroutines*each, f.spy.spendBatches.Load())
}

// TestSpendGivesUpOnlyWhileQueued: a request whose context ends while its
// spend is still queued is refused (storage_unavailable) and counted
// nowhere; one whose spend's batch is running waits for it and gets its
// answer, since a request refused for a spend that then committed would
// have been counted for nothing.
func TestSpendGivesUpOnlyWhileQueued(t *testing.T) {
	f := newFixture(t, verify.Options{})
	key, k := f.createKey(func(k *keyward.Key) { k.Credits = &keyward.Credits{Remaining: 3} })
	if r := f.verify(key); !r.Valid() {
		t.Fatalf("the first request: %s %s", r.Code, r.Detail)
	}
	before := f.spy.spendBatches.Load()
	release := f.holdSpends()
	ask := func(ctx context.Context) <-chan verify.Result {
		out := make(chan verify.Result, 1)
		go func() {
			out <- f.v.Verify(ctx, verify.Request{Key: key, IP: netip.MustParseAddr("192.0.2.10")})
		}()
		return out
	}
	running, stopRunning := context.WithCancel(context.Background())
	first := ask(running)
	eventually(t, 30*time.Second, "the first request's batch running", func() bool { return f.spy.spendBatches.Load() == before+1 })
	queued, stopQueued := context.WithCancel(context.Background())
	second := ask(queued)
	eventually(t, 30*time.Second, "the second request queued", func() bool { return verify.QueuedSpends(f.v) == 1 })

	stopQueued()
	if r := <-second; r.Code != keyward.CodeStorageUnavailable {
		t.Errorf("a request that gave up while queued: %s; want %s", r.Code, keyward.CodeStorageUnavailable)
	}
	if n := verify.QueuedSpends(f.v); n != 0 {
		t.Errorf("%d spends still queued after the request gave up; want 0", n)
	}
	stopRunning()
	release()
	if r := <-first; !r.Valid() {
		t.Errorf("a request that gave up while its batch ran: %s %s; want it allowed, as its spend was", r.Code, r.Detail)
	}
	if got := f.creditsLeft(k.ID); got != 1 {
		t.Errorf("credits left: %d; want 1 (3, less the first request and the one whose batch ran)", got)
	}
	if n := f.spy.spendBatches.Load() - before; n != 1 {
		t.Errorf("%d batches ran; want 1, without the spend that gave up", n)
	}
}

// TestSpendAfterClose: after Close, a metered key's spend is counted in a
// transaction of its own.
func TestSpendAfterClose(t *testing.T) {
	f := newFixture(t, verify.Options{})
	key, k := f.createKey(func(k *keyward.Key) { k.Credits = &keyward.Credits{Remaining: 2} })
	if r := f.verify(key); !r.Valid() {
		t.Fatalf("before Close: %s %s", r.Code, r.Detail)
	}
	if err := f.v.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := f.spy.spendBatches.Load()
	for i, want := range []keyward.Code{"", keyward.CodeQuotaExceeded} {
		if r := f.verify(key); r.Code != want {
			t.Errorf("request %d after Close: %q %s; want %q", i+1, r.Code, r.Detail, want)
		}
	}
	if got := f.creditsLeft(k.ID); got != 0 {
		t.Errorf("credits left: %d, want 0", got)
	}
	if n := f.spy.spendBatches.Load() - before; n != 2 {
		t.Errorf("%d transactions for 2 requests after Close; want 2", n)
	}
}
