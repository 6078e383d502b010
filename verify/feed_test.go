package verify_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/verify"
)

// feedDeadline is how soon a change must reach a running verifier: within
// 1 s, as the README promises.
const feedDeadline = time.Second

// TestChangesFromAnotherStore writes changes through a second store on the
// same file, as the command line in another process does, and waits for the
// running verifier to see them through its poller.
func TestChangesFromAnotherStore(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// change writes through other and returns the code then expected.
		change func(t *testing.T, f *fixture, other keyward.Store, k *keyward.Key) keyward.Code
	}{
		{
			name: "revoke",
			change: func(t *testing.T, f *fixture, other keyward.Store, k *keyward.Key) keyward.Code {
				if _, err := other.RevokeKey(ctx, k.ID, f.clock.Now(), keyward.CommandLineActor()); err != nil {
					t.Fatal(err)
				}
				return keyward.CodeRevokedAPIKey
			},
		},
		{
			name: "disable",
			change: func(t *testing.T, f *fixture, other keyward.Store, k *keyward.Key) keyward.Code {
				disabled := keyward.KeyDisabled
				if _, err := other.UpdateKey(ctx, k.ID, keyward.KeyUpdate{Status: &disabled}, f.clock.Now(), keyward.CommandLineActor()); err != nil {
					t.Fatal(err)
				}
				return keyward.CodeKeyDisabled
			},
		},
		{
			name: "remove a permission",
			change: func(t *testing.T, f *fixture, other keyward.Store, k *keyward.Key) keyward.Code {
				perms := []string{"contacts:read"}
				if _, err := other.UpdateKey(ctx, k.ID, keyward.KeyUpdate{Permissions: &perms}, f.clock.Now(), keyward.CommandLineActor()); err != nil {
					t.Fatal(err)
				}
				return keyward.CodeInsufficientPermissions
			},
		},
		{
			name: "restrict IPs",
			change: func(t *testing.T, f *fixture, other keyward.Store, k *keyward.Key) keyward.Code {
				r := keyward.Restrictions{IPs: []string{"10.0.0.0/8"}}
				if _, err := other.UpdateKey(ctx, k.ID, keyward.KeyUpdate{Restrictions: &r}, f.clock.Now(), keyward.CommandLineActor()); err != nil {
					t.Fatal(err)
				}
				return keyward.CodeIPNotAllowed
			},
		},
		{
			name: "expire",
			change: func(t *testing.T, f *fixture, other keyward.Store, k *keyward.Key) keyward.Code {
				now := f.clock.Now()
				if _, err := other.UpdateKey(ctx, k.ID, keyward.KeyUpdate{ExpiresAt: &now}, now, keyward.CommandLineActor()); err != nil {
					t.Fatal(err)
				}
				return keyward.CodeExpiredAPIKey
			},
		},
		{
			name: "suspend the tenant",
			change: func(t *testing.T, f *fixture, other keyward.Store, k *keyward.Key) keyward.Code {
				if _, err := other.SetTenantStatus(ctx, k.TenantID, keyward.TenantSuspended, f.clock.Now(), keyward.CommandLineActor()); err != nil {
					t.Fatal(err)
				}
				return keyward.CodeAccountSuspended
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, verify.Options{})
			key, k := f.createKey(nil)
			f.start()
			if r := f.verify(key, "messages:send"); !r.Valid() {
				t.Fatalf("before the change: %s: %s", r.Code, r.Detail)
			}
			other := openStore(t, f.path)
			want := tt.change(t, f, other, k)
			eventually(t, feedDeadline, string(want), func() bool {
				return f.verify(key, "messages:send").Code == want
			})
		})
	}

	t.Run("resume the tenant", func(t *testing.T) {
		f := newFixture(t, verify.Options{})
		key, k := f.createKey(nil)
		if _, err := f.store.SetTenantStatus(ctx, k.TenantID, keyward.TenantSuspended, f.clock.Now(), keyward.CommandLineActor()); err != nil {
			t.Fatal(err)
		}
		f.start()
		if r := f.verify(key); r.Code != keyward.CodeAccountSuspended {
			t.Fatalf("before the change: %s: %s", r.Code, r.Detail)
		}
		other := openStore(t, f.path)
		if _, err := other.SetTenantStatus(ctx, k.TenantID, keyward.TenantActive, f.clock.Now(), keyward.CommandLineActor()); err != nil {
			t.Fatal(err)
		}
		eventually(t, feedDeadline, "valid again", func() bool { return f.verify(key).Valid() })
	})
}

func TestNegativeCacheClearedWhenKeyCreated(t *testing.T) {
	t.Run("through the poller", func(t *testing.T) {
		f := newFixture(t, verify.Options{})
		f.start()
		key, k := f.newKey(nil)
		if r := f.verify(key); r.Code != keyward.CodeInvalidAPIKey {
			t.Fatalf("before creation: %s: %s", r.Code, r.Detail)
		}
		// The negative answer is cached: asking again does not read.
		before := f.spy.keyByHash.Load()
		if r := f.verify(key); r.Code != keyward.CodeInvalidAPIKey {
			t.Fatalf("before creation, again: %s: %s", r.Code, r.Detail)
		}
		if n := f.spy.keyByHash.Load() - before; n != 0 {
			t.Errorf("an unknown key was looked up again %d times; want its absence cached", n)
		}
		other := openStore(t, f.path)
		if err := other.CreateKey(context.Background(), k, keyward.CommandLineActor()); err != nil {
			t.Fatal(err)
		}
		eventually(t, feedDeadline, "created key valid", func() bool { return f.verify(key).Valid() })
	})
	t.Run("through Refresh", func(t *testing.T) {
		f := newFixture(t, verify.Options{PollInterval: time.Hour})
		f.start()
		key, k := f.newKey(nil)
		if r := f.verify(key); r.Code != keyward.CodeInvalidAPIKey {
			t.Fatalf("before creation: %s: %s", r.Code, r.Detail)
		}
		if err := f.store.CreateKey(context.Background(), k, keyward.CommandLineActor()); err != nil {
			t.Fatal(err)
		}
		if err := f.v.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		if r := f.verify(key); !r.Valid() {
			t.Errorf("after Refresh: %s: %s", r.Code, r.Detail)
		}
	})
}

func TestRefreshAppliesOwnWriteAtOnce(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, verify.Options{PollInterval: time.Hour})
	key, k := f.createKey(nil)
	f.start()
	if r := f.verify(key); !r.Valid() {
		t.Fatalf("before revocation: %s: %s", r.Code, r.Detail)
	}
	if _, err := f.store.RevokeKey(ctx, k.ID, f.clock.Now(), keyward.CommandLineActor()); err != nil {
		t.Fatal(err)
	}
	if r := f.verify(key); !r.Valid() {
		t.Fatalf("the poller ran although its interval is an hour: %s", r.Code)
	}
	if err := f.v.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if r := f.verify(key); r.Code != keyward.CodeRevokedAPIKey {
		t.Errorf("after Refresh: %s: %s", r.Code, r.Detail)
	}
}

func TestRefreshBeforeStart(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, verify.Options{})
	key, k := f.createKey(nil)
	if r := f.verify(key); !r.Valid() {
		t.Fatalf("before revocation: %s: %s", r.Code, r.Detail)
	}
	if _, err := f.store.RevokeKey(ctx, k.ID, f.clock.Now(), keyward.CommandLineActor()); err != nil {
		t.Fatal(err)
	}
	if err := f.v.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if r := f.verify(key); r.Code != keyward.CodeRevokedAPIKey {
		t.Errorf("after Refresh: %s: %s", r.Code, r.Detail)
	}
}

// TestFeedFailureSkipsNoChange makes the feed fail, then the reload of a
// changed key, and checks that the change is applied once the store
// answers again.
func TestFeedFailureSkipsNoChange(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, verify.Options{PollInterval: time.Hour})
	key, k := f.createKey(nil)
	other, ok := f.createKey(nil)
	f.start()
	for _, kk := range []string{key, other} {
		if r := f.verify(kk); !r.Valid() {
			t.Fatalf("before revocation: %s: %s", r.Code, r.Detail)
		}
	}
	// Two changes: the first revokes key, the second only renames other.
	if _, err := f.store.RevokeKey(ctx, k.ID, f.clock.Now(), keyward.CommandLineActor()); err != nil {
		t.Fatal(err)
	}
	name := "renamed"
	if _, err := f.store.UpdateKey(ctx, ok.ID, keyward.KeyUpdate{Name: &name}, f.clock.Now(), keyward.CommandLineActor()); err != nil {
		t.Fatal(err)
	}

	f.spy.failChanges.Store(true)
	if err := f.v.Refresh(ctx); err == nil {
		t.Fatal("Refresh succeeded although the feed failed")
	}
	f.spy.failChanges.Store(false)
	f.spy.failKey.Store(true)
	if err := f.v.Refresh(ctx); err == nil {
		t.Fatal("Refresh succeeded although reloading the key failed")
	}
	if r := f.verify(key); !r.Valid() {
		t.Fatalf("a change was applied although its key could not be read: %s", r.Code)
	}
	f.spy.failKey.Store(false)
	if err := f.v.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if r := f.verify(key); r.Code != keyward.CodeRevokedAPIKey {
		t.Errorf("after the store recovered: %s: %s", r.Code, r.Detail)
	}
	if r := f.verify(other); !r.Valid() {
		t.Errorf("other key: %s: %s", r.Code, r.Detail)
	} else if r.Key.Name != name {
		t.Errorf("other key named %q, want %q", r.Key.Name, name)
	}
}

// TestPollerRetriesAfterFailure checks the same through the running
// poller: while the feed fails nothing changes, and once it answers the
// change arrives.
func TestPollerRetriesAfterFailure(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, verify.Options{PollInterval: 20 * time.Millisecond})
	key, k := f.createKey(nil)
	f.start()
	if r := f.verify(key); !r.Valid() {
		t.Fatalf("before revocation: %s: %s", r.Code, r.Detail)
	}
	f.spy.failKey.Store(true)
	if _, err := f.store.RevokeKey(ctx, k.ID, f.clock.Now(), keyward.CommandLineActor()); err != nil {
		t.Fatal(err)
	}
	eventually(t, feedDeadline, "feed polled", func() bool { return f.spy.keyByID.Load() >= 3 })
	if r := f.verify(key); !r.Valid() {
		t.Fatalf("a change was applied although its key could not be read: %s", r.Code)
	}
	f.spy.failKey.Store(false)
	eventually(t, feedDeadline, "revoked after recovery", func() bool {
		return f.verify(key).Code == keyward.CodeRevokedAPIKey
	})
}

func TestUsage(t *testing.T) {
	ctx := context.Background()

	t.Run("flushed on Close", func(t *testing.T) {
		f := newFixture(t, verify.Options{FlushInterval: time.Hour})
		key, k := f.createKey(nil)
		refused, rk := f.createKey(nil)
		f.start()
		ip := netip.MustParseAddr("198.51.100.4")
		for range 3 {
			if r := f.v.Verify(ctx, verify.Request{Key: key, IP: netip.MustParseAddr("192.0.2.1")}); !r.Valid() {
				t.Fatalf("Verify: %s: %s", r.Code, r.Detail)
			}
		}
		f.clock.Advance(time.Minute)
		if r := f.v.Verify(ctx, verify.Request{Key: key, IP: ip}); !r.Valid() {
			t.Fatalf("Verify: %s: %s", r.Code, r.Detail)
		}
		if r := f.v.Verify(ctx, verify.Request{Key: refused, IP: ip, Permissions: []string{"admin"}}); r.Valid() {
			t.Fatal("a key without the permission was accepted")
		}
		if err := f.v.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		got, err := f.store.Key(ctx, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.LastUsedAt == nil || !got.LastUsedAt.Equal(t0.Add(time.Minute)) || got.LastUsedIP != ip.String() {
			t.Errorf("last used %v from %q, want %v from %q", got.LastUsedAt, got.LastUsedIP, t0.Add(time.Minute), ip)
		}
		got, err = f.store.Key(ctx, rk.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.LastUsedAt != nil {
			t.Errorf("a refused use was recorded: %v", got.LastUsedAt)
		}
	})

	t.Run("flushed by the flusher", func(t *testing.T) {
		f := newFixture(t, verify.Options{FlushInterval: 20 * time.Millisecond})
		key, k := f.createKey(nil)
		f.start()
		if r := f.verify(key); !r.Valid() {
			t.Fatalf("Verify: %s: %s", r.Code, r.Detail)
		}
		eventually(t, time.Second, "last use written", func() bool {
			got, err := f.store.Key(ctx, k.ID)
			return err == nil && got.LastUsedAt != nil && got.LastUsedAt.Equal(t0) && got.LastUsedIP == "192.0.2.10"
		})
	})

	t.Run("kept when the write fails", func(t *testing.T) {
		f := newFixture(t, verify.Options{})
		key, k := f.createKey(nil)
		if r := f.verify(key); !r.Valid() {
			t.Fatalf("Verify: %s: %s", r.Code, r.Detail)
		}
		f.spy.failRecordUsage.Store(true)
		if err := f.v.Flush(ctx); err == nil {
			t.Fatal("Flush succeeded although the store failed")
		}
		f.spy.failRecordUsage.Store(false)
		if err := f.v.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := f.store.Key(ctx, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.LastUsedAt == nil || !got.LastUsedAt.Equal(t0) {
			t.Errorf("last used %v, want %v", got.LastUsedAt, t0)
		}
	})

	t.Run("a later use wins over a failed batch", func(t *testing.T) {
		f := newFixture(t, verify.Options{})
		key, k := f.createKey(nil)
		if r := f.verify(key); !r.Valid() {
			t.Fatalf("Verify: %s: %s", r.Code, r.Detail)
		}
		f.spy.failRecordUsage.Store(true)
		if err := f.v.Flush(ctx); err == nil {
			t.Fatal("Flush succeeded although the store failed")
		}
		f.clock.Advance(time.Second)
		if r := f.verify(key); !r.Valid() {
			t.Fatalf("Verify: %s: %s", r.Code, r.Detail)
		}
		f.spy.failRecordUsage.Store(false)
		if err := f.v.Close(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := f.store.Key(ctx, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := t0.Add(time.Second); got.LastUsedAt == nil || !got.LastUsedAt.Equal(want) {
			t.Errorf("last used %v, want %v", got.LastUsedAt, want)
		}
	})
}

// TestUsageConcurrent verifies many keys from many goroutines while the
// flusher runs, then closes, and checks that every key's last use was
// written.
func TestUsageConcurrent(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, verify.Options{FlushInterval: time.Millisecond, Clock: time.Now})
	type created struct {
		plain string
		key   *keyward.Key
	}
	var keys []created
	for range 20 {
		plain, k := f.createKey(nil)
		keys = append(keys, created{plain, k})
	}
	f.start()
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 200 {
				c := keys[(g*7+i)%len(keys)]
				ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(g)})
				if r := f.v.Verify(ctx, verify.Request{Key: c.plain, IP: ip}); !r.Valid() {
					t.Errorf("Verify: %s: %s", r.Code, r.Detail)
					return
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
	if err := f.v.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range keys {
		got, err := f.store.Key(ctx, c.key.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.LastUsedAt == nil {
			t.Errorf("key %s: no last use written", c.key.ID)
			continue
		}
		if ip, err := netip.ParseAddr(got.LastUsedIP); err != nil || !netip.MustParsePrefix("192.0.2.0/29").Contains(ip) {
			t.Errorf("key %s: last used from %q", c.key.ID, got.LastUsedIP)
		}
	}
}

func TestStartClose(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, verify.Options{})
	f.start()
	if err := f.v.Start(ctx); err == nil {
		t.Error("second Start succeeded")
	}
	if err := f.v.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := f.v.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := f.v.Start(ctx); err == nil {
		t.Error("Start after Close succeeded")
	}
}

func TestStartFailsWithoutStorage(t *testing.T) {
	f := newFixture(t, verify.Options{})
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.v.Start(context.Background()); err == nil {
		t.Error("Start succeeded although the feed cannot be read")
	}
}

// TestPruneChanges: pruning deletes the changes older than ChangeRetention,
// and a verifier goes on applying the changes made after.
func TestPruneChanges(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, verify.Options{})
	key, k := f.createKey(nil)
	if r := f.verify(key); !r.Valid() {
		t.Fatalf("verify: %s", r.Code)
	}
	if err := f.v.Refresh(ctx); err != nil {
		t.Fatal(err)
	}

	// Within the retention, nothing goes.
	f.clock.Advance(verify.ChangeRetention - time.Hour)
	if err := f.v.PruneChanges(ctx); err != nil {
		t.Fatal(err)
	}
	if cs, err := f.store.Changes(ctx, 0, 10); err != nil || len(cs) != 2 {
		t.Fatalf("the feed within the retention: %v, %v; want the tenant's and the key's creation", cs, err)
	}
	f.clock.Advance(2 * time.Hour)
	if err := f.v.PruneChanges(ctx); err != nil {
		t.Fatal(err)
	}
	if cs, err := f.store.Changes(ctx, 0, 10); err != nil || len(cs) != 0 {
		t.Fatalf("the feed after the retention: %v, %v; want it empty", cs, err)
	}

	if _, err := f.store.RevokeKey(ctx, k.ID, f.clock.Now(), keyward.CommandLineActor()); err != nil {
		t.Fatal(err)
	}
	if err := f.v.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if r := f.verify(key); r.Code != keyward.CodeRevokedAPIKey {
		t.Errorf("a key revoked after pruning: %s, want %s", r.Code, keyward.CodeRevokedAPIKey)
	}
}

// TestCacheTTLFromLastFeedRead: a started verifier's cached keys stay
// current past the cache TTL while it reads the change feed, and when the
// store goes down they answer for the cache TTL after the last read of the
// feed (not after they were cached), then are refused as
// storage_unavailable. A verifier that is not started reads its keys again
// after the TTL.
func TestCacheTTLFromLastFeedRead(t *testing.T) {
	const ttl = 400 * time.Millisecond
	f := newFixture(t, verify.Options{CacheTTL: ttl, PollInterval: 20 * time.Millisecond})
	key, _ := f.createKey(nil)
	f.start()
	if r := f.verify(key); !r.Valid() {
		t.Fatalf("verify: %s", r.Code)
	}
	reads := f.spy.keyByHash.Load()
	time.Sleep(ttl + 200*time.Millisecond)
	// Past the TTL, the key is answered from the cache at once, and read
	// again in the background.
	if r := f.verify(key); !r.Valid() {
		t.Fatalf("verify %v after caching, the feed read all along: %s", ttl+200*time.Millisecond, r.Code)
	}
	eventually(t, 5*time.Second, "the key is read again in the background", func() bool { return f.spy.keyByHash.Load() == reads+1 })
	// It is cached afresh: no further read.
	time.Sleep(50 * time.Millisecond)
	if r := f.verify(key); !r.Valid() || f.spy.keyByHash.Load() != reads+1 {
		t.Fatalf("verify after the background read: %s, with %d reads of the key, want 1", r.Code, f.spy.keyByHash.Load()-reads)
	}
	time.Sleep(ttl + 200*time.Millisecond)

	f.spy.failChanges.Store(true)
	f.spy.failKeyByHash.Store(true)
	f.spy.failTenant.Store(true)
	down := time.Now()
	for {
		r := f.verify(key)
		elapsed := time.Since(down)
		if r.Code == keyward.CodeStorageUnavailable {
			// Measured from the last read of the feed that succeeded, which
			// a loaded machine may have made well before the store went
			// down: the verifier took its time a moment before that read
			// began, on a clock that ticks every 10 ms.
			sinceRead := time.Since(time.Unix(0, f.spy.lastChanges.Load()))
			t.Logf("the cached key was answered for %v after the store went down, %v after the last read of the feed (TTL %v)", elapsed, sinceRead, ttl)
			if sinceRead < ttl-50*time.Millisecond {
				t.Errorf("the cached key was refused %v after the last read of the feed, before the TTL of %v", sinceRead, ttl)
			}
			break
		}
		if !r.Valid() {
			t.Fatalf("verify while the store is down: %s, want valid then %s", r.Code, keyward.CodeStorageUnavailable)
		}
		if elapsed > ttl+time.Second {
			t.Fatalf("the cached key is still answered %v after the store went down (TTL %v)", elapsed, ttl)
		}
		time.Sleep(5 * time.Millisecond)
	}

	// Back: the feed is read again and the key answers.
	f.spy.failChanges.Store(false)
	f.spy.failKeyByHash.Store(false)
	f.spy.failTenant.Store(false)
	eventually(t, 5*time.Second, "the key answers again", func() bool { return f.verify(key).Valid() })

	// Not started: the key is read again once the TTL has passed.
	g := newFixture(t, verify.Options{CacheTTL: ttl})
	key, _ = g.createKey(nil)
	if r := g.verify(key); !r.Valid() {
		t.Fatalf("verify: %s", r.Code)
	}
	reads = g.spy.keyByHash.Load()
	time.Sleep(ttl + 100*time.Millisecond)
	if r := g.verify(key); !r.Valid() {
		t.Fatalf("verify after the TTL: %s", r.Code)
	}
	if got := g.spy.keyByHash.Load(); got != reads+1 {
		t.Errorf("a verifier that is not started read the key %d times after the TTL, want once", got-reads)
	}
}

// TestCacheTTLSafetyNet: a change the feed does not tell of (a database
// restored from a backup, a row changed by hand) is still enforced once the
// cached entry is older than the cache TTL, for keys and for tenants.
func TestCacheTTLSafetyNet(t *testing.T) {
	const ttl = 300 * time.Millisecond
	ctx := context.Background()
	f := newFixture(t, verify.Options{CacheTTL: ttl, PollInterval: 20 * time.Millisecond})
	revoked, k := f.createKey(nil)
	f.start()
	if r := f.verify(revoked); !r.Valid() {
		t.Fatalf("verify: %s", r.Code)
	}
	f.spy.hideChanges.Store(true)
	if _, err := f.store.RevokeKey(ctx, k.ID, f.clock.Now(), keyward.CommandLineActor()); err != nil {
		t.Fatal(err)
	}
	eventually(t, ttl+5*time.Second, "the revocation the feed hid is enforced", func() bool {
		return f.verify(revoked).Code == keyward.CodeRevokedAPIKey
	})

	other := f.createTenant("other")
	key, _ := f.createKey(func(k *keyward.Key) { k.TenantID = other.ID })
	f.spy.hideChanges.Store(false)
	if err := f.v.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if r := f.verify(key); !r.Valid() {
		t.Fatalf("verify: %s", r.Code)
	}
	f.spy.hideChanges.Store(true)
	if _, err := f.store.SetTenantStatus(ctx, other.ID, keyward.TenantSuspended, f.clock.Now(), keyward.CommandLineActor()); err != nil {
		t.Fatal(err)
	}
	eventually(t, ttl+5*time.Second, "the suspension the feed hid is enforced", func() bool {
		return f.verify(key).Code == keyward.CodeAccountSuspended
	})
}

// TestCacheTTLTenant: a tenant read longer ago than the cache TTL is read
// again, even for a key read since, when the feed has not vouched for it
// (here: a verifier that is not started); and if the store is down then,
// the key is refused as storage_unavailable, not answered with the old
// tenant.
func TestCacheTTLTenant(t *testing.T) {
	const ttl = 300 * time.Millisecond
	f := newFixture(t, verify.Options{CacheTTL: ttl})
	first, _ := f.createKey(nil)
	if r := f.verify(first); !r.Valid() {
		t.Fatalf("verify: %s", r.Code)
	}
	tenantReads := f.spy.tenant.Load()
	time.Sleep(ttl - 100*time.Millisecond)
	second, _ := f.createKey(nil)
	if r := f.verify(second); !r.Valid() {
		t.Fatalf("verify: %s", r.Code)
	}
	time.Sleep(150 * time.Millisecond)
	// The second key's entry is fresh; the tenant's is not.
	if r := f.verify(second); !r.Valid() {
		t.Fatalf("verify after the tenant's TTL: %s", r.Code)
	}
	if got := f.spy.tenant.Load() - tenantReads; got != 1 {
		t.Errorf("the tenant was read %d times after its TTL, want once", got)
	}

	time.Sleep(ttl + 50*time.Millisecond)
	third, _ := f.createKey(nil)
	f.spy.failTenant.Store(true)
	if r := f.verify(third); r.Code != keyward.CodeStorageUnavailable {
		t.Errorf("verify with a stale tenant and the store down: %s, want %s", r.Code, keyward.CodeStorageUnavailable)
	}
}

// TestAccessKeptWhileRecordsRefresh: past the cache TTL, a key and its
// tenant and plan are read again in the background; meanwhile, and while
// the store cannot answer, the key's Access stands as it was worked out, a
// verification allocates nothing rather than working it out again each
// time, and the store is sent one read a second, not one per
// verification.
func TestAccessKeptWhileRecordsRefresh(t *testing.T) {
	// A second, not less: the verifications below must run within the TTL
	// of the Refresh before them, or the records turn stale, not due.
	const ttl = time.Second
	ctx := context.Background()
	f := newFixture(t, verify.Options{CacheTTL: ttl})
	key, _ := f.createKey(nil)
	f.refresh() // the feed's position taken, as Start would
	first := f.verify(key)
	if !first.Valid() {
		t.Fatalf("verify: %s", first.Code)
	}
	time.Sleep(ttl + 50*time.Millisecond)
	// The feed was just read, so the cached records are due, not stale:
	// they are answered from while they are read again.
	if err := f.v.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	// The store is down for every record the Access is made of: the
	// plan too, whose background read would otherwise succeed and, as it
	// should, have the Access worked out again (which a loaded machine,
	// scheduling that read during AllocsPerRun, made this test see).
	f.spy.failKeyByHash.Store(true)
	f.spy.failTenant.Store(true)
	f.spy.failPlan.Store(true)
	var r verify.Result
	keyReads, tenantReads := f.spy.keyByHash.Load(), f.spy.tenant.Load()
	began := time.Now()
	allocs := testing.AllocsPerRun(100, func() { r = f.verify(key) })
	// The store is sent one read of each a second in the background, not
	// one per verification. (AllocsPerRun runs on one thread, where the
	// background reads wait: these verifications leave them time.)
	for range 20 {
		f.verify(key)
		time.Sleep(time.Millisecond)
	}
	keyReads, tenantReads = f.spy.keyByHash.Load()-keyReads, f.spy.tenant.Load()-tenantReads
	if most := int64(time.Since(began)/time.Second) + 1; keyReads > most || tenantReads > most {
		t.Errorf("121 verifications in %v read the key %d times and the tenant %d times while the store was down, want at most %d each",
			time.Since(began), keyReads, tenantReads, most)
	}
	if !r.Valid() {
		t.Fatalf("verify while the tenant is read again and the store is down: %s", r.Code)
	}
	if r.Access != first.Access {
		t.Error("the key's Access was worked out again from the same tenant and plan")
	}
	if allocs != 0 {
		t.Errorf("a verification allocates %v times while the key's records are read again, want 0", allocs)
	}
	// Back: the tenant is read again, and the Access worked out afresh.
	f.spy.failKeyByHash.Store(false)
	f.spy.failTenant.Store(false)
	f.spy.failPlan.Store(false)
	eventually(t, 5*time.Second, "the Access is worked out again from the tenant read afresh", func() bool {
		r := f.verify(key)
		return r.Valid() && r.Access != first.Access && r.Tenant != first.Tenant
	})
}
