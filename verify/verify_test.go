package verify_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/verify"
)

// checkResult fails the test unless r has the code, its detail contains
// every one of details, and it says whether the key and the tenant were
// found. Whatever the outcome, the detail must not contain the key.
func checkResult(t *testing.T, r verify.Result, key string, code keyward.Code, keyFound, tenantFound bool, details ...string) {
	t.Helper()
	if r.Code != code {
		t.Fatalf("Code = %q (detail %q), want %q", r.Code, r.Detail, code)
	}
	if r.Valid() != (code == "") {
		t.Errorf("Valid() = %v with code %q", r.Valid(), code)
	}
	if code == "" {
		if r.Detail != "" || r.Err() != nil {
			t.Errorf("valid result has Detail %q, Err %v", r.Detail, r.Err())
		}
	} else {
		if r.Detail == "" {
			t.Errorf("refusal %q has no detail", code)
		}
		if e := r.Err(); e == nil || e.Code != code || e.Message != r.Detail {
			t.Errorf("Err() = %#v, want code %q and message %q", e, code, r.Detail)
		}
	}
	for _, d := range details {
		if !strings.Contains(r.Detail, d) {
			t.Errorf("Detail = %q, want it to contain %q", r.Detail, d)
		}
	}
	if body := strings.Trim(key, " \t\"'"); len(body) > 12 && strings.Contains(r.Detail, body[len(body)-12:]) {
		t.Errorf("Detail %q contains the key", r.Detail)
	}
	if (r.Key != nil) != keyFound {
		t.Errorf("Key = %v, want found %v", r.Key, keyFound)
	}
	if (r.Tenant != nil) != tenantFound {
		t.Errorf("Tenant = %v, want found %v", r.Tenant, tenantFound)
	}
}

func TestVerifyOutcomes(t *testing.T) {
	ctx := context.Background()
	revokedAt := t0.Format(time.RFC3339)
	expiresAt := t0.Add(time.Hour)

	tests := []struct {
		name string
		// setup stores what the case needs and returns the key to present.
		setup       func(t *testing.T, f *fixture) string
		ip          string
		perms       []string
		code        keyward.Code
		keyFound    bool
		tenantFound bool
		details     []string
	}{
		{
			name:    "missing",
			setup:   func(t *testing.T, f *fixture) string { return "" },
			code:    keyward.CodeMissingAPIKey,
			details: []string{"X-API-Key", "Authorization: Bearer"},
		},
		{
			name: "malformed checksum",
			setup: func(t *testing.T, f *fixture) string {
				key, _ := f.createKey(nil)
				return mistype(key)
			},
			code: keyward.CodeMalformedAPIKey,
		},
		{
			name: "malformed quotes",
			setup: func(t *testing.T, f *fixture) string {
				key, _ := f.createKey(nil)
				return `"` + key + `"`
			},
			code: keyward.CodeMalformedAPIKey,
		},
		{
			name: "malformed whitespace",
			setup: func(t *testing.T, f *fixture) string {
				key, _ := f.createKey(nil)
				return key + "\n"
			},
			code: keyward.CodeMalformedAPIKey,
		},
		{
			name: "malformed prefix",
			setup: func(t *testing.T, f *fixture) string {
				other, err := apikey.NewFormat("pk")
				if err != nil {
					t.Fatal(err)
				}
				key, err := other.Generate(keyward.Live)
				if err != nil {
					t.Fatal(err)
				}
				return key
			},
			code: keyward.CodeMalformedAPIKey,
		},
		{
			name: "malformed scheme in the key",
			setup: func(t *testing.T, f *fixture) string {
				key, _ := f.createKey(nil)
				return "Bearer " + key
			},
			code: keyward.CodeMalformedAPIKey,
		},
		{
			name: "invalid",
			setup: func(t *testing.T, f *fixture) string {
				key, _ := f.newKey(nil)
				return key
			},
			code:    keyward.CodeInvalidAPIKey,
			details: []string{"No key matches"},
		},
		{
			name: "revoked",
			setup: func(t *testing.T, f *fixture) string {
				key, k := f.createKey(nil)
				if _, err := f.store.RevokeKey(ctx, k.ID, f.clock.Now(), keyward.CommandLineActor()); err != nil {
					t.Fatal(err)
				}
				return key
			},
			code:     keyward.CodeRevokedAPIKey,
			keyFound: true,
			details:  []string{"revoked on " + revokedAt, "Create a new key"},
		},
		{
			name: "expired",
			setup: func(t *testing.T, f *fixture) string {
				key, _ := f.createKey(func(k *keyward.Key) { k.ExpiresAt = &expiresAt })
				f.clock.Advance(time.Hour) // exactly at ExpiresAt
				return key
			},
			code:     keyward.CodeExpiredAPIKey,
			keyFound: true,
			details:  []string{"expired on " + expiresAt.Format(time.RFC3339), "Create a new key"},
		},
		{
			name: "expired after rotation",
			setup: func(t *testing.T, f *fixture) string {
				key, old := f.createKey(nil)
				_, succ := f.newKey(func(k *keyward.Key) { k.ID = "key_successor"; k.RotatedFrom = old.ID })
				if _, err := f.store.RotateKey(ctx, old.ID, succ, expiresAt, keyward.CommandLineActor()); err != nil {
					t.Fatal(err)
				}
				f.clock.Advance(2 * time.Hour)
				return key
			},
			code:     keyward.CodeExpiredAPIKey,
			keyFound: true,
			details:  []string{"replaced by key key_successor", "Use the new key"},
		},
		{
			name: "account suspended",
			setup: func(t *testing.T, f *fixture) string {
				key, _ := f.createKey(nil)
				if _, err := f.store.SetTenantStatus(ctx, f.tenant.ID, keyward.TenantSuspended, f.clock.Now(), keyward.CommandLineActor()); err != nil {
					t.Fatal(err)
				}
				return key
			},
			code:        keyward.CodeAccountSuspended,
			keyFound:    true,
			tenantFound: true,
			details:     []string{"suspended", "Contact support"},
		},
		{
			name: "key disabled",
			setup: func(t *testing.T, f *fixture) string {
				key, k := f.createKey(nil)
				disabled := keyward.KeyDisabled
				if _, err := f.store.UpdateKey(ctx, k.ID, keyward.KeyUpdate{Status: &disabled}, f.clock.Now(), keyward.CommandLineActor()); err != nil {
					t.Fatal(err)
				}
				return key
			},
			code:        keyward.CodeKeyDisabled,
			keyFound:    true,
			tenantFound: true,
			details:     []string{"disabled", "Enable it"},
		},
		{
			name: "ip not allowed",
			setup: func(t *testing.T, f *fixture) string {
				key, _ := f.createKey(func(k *keyward.Key) { k.Restrictions.IPs = []string{"10.0.0.0/8", "2001:db8::/32"} })
				return key
			},
			ip:          "192.0.2.1",
			code:        keyward.CodeIPNotAllowed,
			keyFound:    true,
			tenantFound: true,
			details:     []string{"192.0.2.1 is not one", "IP restrictions"},
		},
		{
			name: "ip unknown with restrictions",
			setup: func(t *testing.T, f *fixture) string {
				key, _ := f.createKey(func(k *keyward.Key) { k.Restrictions.IPs = []string{"10.0.0.0/8"} })
				return key
			},
			ip:          "",
			code:        keyward.CodeIPNotAllowed,
			keyFound:    true,
			tenantFound: true,
			details:     []string{"could not be determined"},
		},
		{
			name: "ip restriction that does not parse allows nothing",
			setup: func(t *testing.T, f *fixture) string {
				key, _ := f.createKey(func(k *keyward.Key) { k.Restrictions.IPs = []string{"not-an-ip"} })
				return key
			},
			ip:          "10.1.2.3",
			code:        keyward.CodeIPNotAllowed,
			keyFound:    true,
			tenantFound: true,
		},
		{
			name: "ip allowed by a CIDR",
			setup: func(t *testing.T, f *fixture) string {
				key, _ := f.createKey(func(k *keyward.Key) { k.Restrictions.IPs = []string{"10.0.0.0/8"} })
				return key
			},
			ip:          "10.1.2.3",
			keyFound:    true,
			tenantFound: true,
		},
		{
			name: "ip allowed as an IPv4-mapped IPv6 address",
			setup: func(t *testing.T, f *fixture) string {
				key, _ := f.createKey(func(k *keyward.Key) { k.Restrictions.IPs = []string{"10.0.0.0/8"} })
				return key
			},
			ip:          "::ffff:10.1.2.3",
			keyFound:    true,
			tenantFound: true,
		},
		{
			name: "ip allowed by a single address",
			setup: func(t *testing.T, f *fixture) string {
				key, _ := f.createKey(func(k *keyward.Key) { k.Restrictions.IPs = []string{"203.0.113.7", "2001:db8::1"} })
				return key
			},
			ip:          "2001:db8::1",
			keyFound:    true,
			tenantFound: true,
		},
		{
			name: "insufficient permissions",
			setup: func(t *testing.T, f *fixture) string {
				key, _ := f.createKey(nil)
				return key
			},
			perms:       []string{"messages:send", "contacts:write"},
			code:        keyward.CodeInsufficientPermissions,
			keyFound:    true,
			tenantFound: true,
			details:     []string{`"contacts:write"`},
		},
		{
			name: "root key holds only its own permissions",
			setup: func(t *testing.T, f *fixture) string {
				createTenant(t, f.store, keyward.SystemTenantID, keyward.SystemTenantSlug, f.clock.Now())
				key, _ := f.createKey(func(k *keyward.Key) {
					k.TenantID = keyward.SystemTenantID
					k.Permissions = []string{keyward.PermAdmin}
				})
				return key
			},
			perms:       []string{"messages:send"},
			code:        keyward.CodeInsufficientPermissions,
			keyFound:    true,
			tenantFound: true,
			details:     []string{`"messages:send"`},
		},
		{
			name: "valid with permissions",
			setup: func(t *testing.T, f *fixture) string {
				key, _ := f.createKey(nil)
				return key
			},
			perms:       []string{"contacts:read", "messages:send"},
			keyFound:    true,
			tenantFound: true,
		},
		{
			name: "valid before expiry",
			setup: func(t *testing.T, f *fixture) string {
				key, _ := f.createKey(func(k *keyward.Key) { k.ExpiresAt = &expiresAt })
				f.clock.Advance(time.Hour - time.Microsecond)
				return key
			},
			keyFound:    true,
			tenantFound: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, verify.Options{})
			key := tt.setup(t, f)
			req := verify.Request{Key: key, Permissions: tt.perms}
			if tt.ip != "" {
				req.IP = netip.MustParseAddr(tt.ip)
			}
			// The first answer comes from the store, the second from the
			// cache; both must be the same.
			for _, source := range []string{"store", "cache"} {
				r := f.v.Verify(ctx, req)
				t.Logf("%s: %s: %s", source, r.Code, r.Detail)
				checkResult(t, r, key, tt.code, tt.keyFound, tt.tenantFound, tt.details...)
				if tt.code == keyward.CodeMalformedAPIKey {
					_, perr := f.format.Parse(key)
					if perr == nil || !strings.EqualFold(r.Detail, perr.Message+".") {
						t.Errorf("Detail = %q, want the parse message %v", r.Detail, perr)
					}
				}
			}
		})
	}
}

// mistype changes one character of the key's random part, so that its
// checksum no longer matches.
func mistype(key string) string {
	i := len(key) - 10
	c := byte('A')
	if key[i] == 'A' {
		c = 'B'
	}
	return key[:i] + string(c) + key[i+1:]
}

func TestVerifyPrecedence(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// setup stores a key that fails several checks and returns it.
		setup func(t *testing.T, f *fixture) string
		ip    string
		perms []string
		want  keyward.Code
	}{
		{
			name: "revoked and expired",
			setup: func(t *testing.T, f *fixture) string {
				exp := f.clock.Now().Add(time.Minute)
				key, k := f.createKey(func(k *keyward.Key) { k.ExpiresAt = &exp })
				if _, err := f.store.RevokeKey(ctx, k.ID, f.clock.Now(), keyward.CommandLineActor()); err != nil {
					t.Fatal(err)
				}
				f.clock.Advance(time.Hour)
				return key
			},
			want: keyward.CodeRevokedAPIKey,
		},
		{
			name: "expired and suspended",
			setup: func(t *testing.T, f *fixture) string {
				exp := f.clock.Now().Add(time.Minute)
				key, _ := f.createKey(func(k *keyward.Key) { k.ExpiresAt = &exp })
				if _, err := f.store.SetTenantStatus(ctx, f.tenant.ID, keyward.TenantSuspended, f.clock.Now(), keyward.CommandLineActor()); err != nil {
					t.Fatal(err)
				}
				f.clock.Advance(time.Hour)
				return key
			},
			want: keyward.CodeExpiredAPIKey,
		},
		{
			name: "suspended and disabled",
			setup: func(t *testing.T, f *fixture) string {
				key, k := f.createKey(nil)
				disabled := keyward.KeyDisabled
				if _, err := f.store.UpdateKey(ctx, k.ID, keyward.KeyUpdate{Status: &disabled}, f.clock.Now(), keyward.CommandLineActor()); err != nil {
					t.Fatal(err)
				}
				if _, err := f.store.SetTenantStatus(ctx, f.tenant.ID, keyward.TenantSuspended, f.clock.Now(), keyward.CommandLineActor()); err != nil {
					t.Fatal(err)
				}
				return key
			},
			want: keyward.CodeAccountSuspended,
		},
		{
			name: "disabled and ip not allowed",
			setup: func(t *testing.T, f *fixture) string {
				key, k := f.createKey(func(k *keyward.Key) { k.Restrictions.IPs = []string{"10.0.0.0/8"} })
				disabled := keyward.KeyDisabled
				if _, err := f.store.UpdateKey(ctx, k.ID, keyward.KeyUpdate{Status: &disabled}, f.clock.Now(), keyward.CommandLineActor()); err != nil {
					t.Fatal(err)
				}
				return key
			},
			ip:   "192.0.2.1",
			want: keyward.CodeKeyDisabled,
		},
		{
			name: "ip not allowed and insufficient permissions",
			setup: func(t *testing.T, f *fixture) string {
				key, _ := f.createKey(func(k *keyward.Key) { k.Restrictions.IPs = []string{"10.0.0.0/8"} })
				return key
			},
			ip:    "192.0.2.1",
			perms: []string{"admin"},
			want:  keyward.CodeIPNotAllowed,
		},
		{
			name: "malformed and unknown",
			setup: func(t *testing.T, f *fixture) string {
				key, _ := f.newKey(nil)
				return " " + key
			},
			want: keyward.CodeMalformedAPIKey,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, verify.Options{})
			key := tt.setup(t, f)
			req := verify.Request{Key: key, Permissions: tt.perms}
			if tt.ip != "" {
				req.IP = netip.MustParseAddr(tt.ip)
			}
			if r := f.v.Verify(ctx, req); r.Code != tt.want {
				t.Errorf("Code = %q (%s), want %q", r.Code, r.Detail, tt.want)
			}
		})
	}
}

func TestVerifyMalformedTouchesNoStorage(t *testing.T) {
	f := newFixture(t, verify.Options{})
	key, _ := f.createKey(nil)
	other, err := apikey.NewFormat("pk")
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := other.Generate(keyward.Live)
	if err != nil {
		t.Fatal(err)
	}
	// With the store closed, a lookup would answer storage_unavailable.
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{mistype(key), `'` + key + `'`, key + " ", key[:len(key)-1], otherKey, "Token " + key} {
		if r := f.verify(k); r.Code != keyward.CodeMalformedAPIKey {
			t.Errorf("Code = %q (%s), want %q", r.Code, r.Detail, keyward.CodeMalformedAPIKey)
		}
	}
	if n := f.spy.reads(); n != 0 {
		t.Errorf("malformed keys made %d storage reads, want 0", n)
	}
}

func TestVerifyCachedTouchesNoStorage(t *testing.T) {
	f := newFixture(t, verify.Options{})
	key, _ := f.createKey(func(k *keyward.Key) { k.Restrictions.IPs = []string{"192.0.2.0/24"} })
	unknown, _ := f.newKey(nil)
	if r := f.verify(key, "messages:send"); !r.Valid() {
		t.Fatalf("first Verify: %s: %s", r.Code, r.Detail)
	}
	if r := f.verify(unknown); r.Code != keyward.CodeInvalidAPIKey {
		t.Fatalf("first Verify of an unknown key: %s: %s", r.Code, r.Detail)
	}
	before := f.spy.reads()
	for range 100 {
		if r := f.verify(key, "messages:send"); !r.Valid() {
			t.Fatalf("Verify: %s: %s", r.Code, r.Detail)
		}
		if r := f.verify(unknown); r.Code != keyward.CodeInvalidAPIKey {
			t.Fatalf("Verify of an unknown key: %s: %s", r.Code, r.Detail)
		}
	}
	if n := f.spy.reads() - before; n != 0 {
		t.Errorf("cached keys made %d storage reads, want 0", n)
	}

	// A cached key is not parsed again, but a string that differs from it
	// still is, even one of the same length.
	blank := key[:20] + " " + key[21:]
	for _, s := range []string{mistype(key), blank, `"` + key[1:len(key)-1] + `"`, key + " ", strings.ToUpper(key)} {
		if r := f.verify(s); r.Code != keyward.CodeMalformedAPIKey {
			t.Errorf("Code = %q (%s), want %q", r.Code, r.Detail, keyward.CodeMalformedAPIKey)
		}
	}
}

// TestVerifyKeyOfAnotherFormatFromTheFeed stores a key issued with another
// prefix, so that the change feed caches it, and checks that it is still
// refused as malformed.
func TestVerifyKeyOfAnotherFormatFromTheFeed(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, verify.Options{PollInterval: time.Hour})
	f.start()
	other, err := apikey.NewFormat("pk")
	if err != nil {
		t.Fatal(err)
	}
	key, err := other.Generate(keyward.Live)
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != len(f.format.Prefix())+len("_live_")+apikey.BodyLen {
		t.Fatalf("a pk key is not as long as an sk key: %d", len(key))
	}
	_, k := f.newKey(func(k *keyward.Key) {
		k.Head = apikey.Head(key)
		k.Start, k.Last4 = apikey.Display(key)
		k.Hash = apikey.Hash(key)
	})
	if err := f.store.CreateKey(ctx, k, keyward.CommandLineActor()); err != nil {
		t.Fatal(err)
	}
	if err := f.v.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if r := f.verify(key); r.Code != keyward.CodeMalformedAPIKey {
		t.Errorf("Code = %q (%s), want %q", r.Code, r.Detail, keyward.CodeMalformedAPIKey)
	}
}

func TestVerifyStorageUnavailable(t *testing.T) {
	t.Run("key lookup fails", func(t *testing.T) {
		f := newFixture(t, verify.Options{})
		key, _ := f.createKey(nil)
		f.spy.failKeyByHash.Store(true)
		r := f.verify(key)
		checkResult(t, r, key, keyward.CodeStorageUnavailable, false, false, "retry")
		// The failure is not cached: once the store answers, so does Verify.
		f.spy.failKeyByHash.Store(false)
		if r := f.verify(key); !r.Valid() {
			t.Errorf("after the store recovered: %s: %s", r.Code, r.Detail)
		}
	})
	t.Run("unknown key while the store is closed", func(t *testing.T) {
		f := newFixture(t, verify.Options{})
		key, _ := f.newKey(nil)
		if err := f.store.Close(); err != nil {
			t.Fatal(err)
		}
		r := f.verify(key)
		checkResult(t, r, key, keyward.CodeStorageUnavailable, false, false, "retry")
	})
	// A store that does not answer is given up on after StorageTimeout,
	// for a key and for its tenant, though the caller's context has no
	// deadline.
	t.Run("store does not answer", func(t *testing.T) {
		const timeout = 50 * time.Millisecond
		f := newFixture(t, verify.Options{StorageTimeout: timeout})
		key, _ := f.createKey(nil)
		f.spy.hang.Store(true)
		r := f.verify(key)
		checkResult(t, r, key, keyward.CodeStorageUnavailable, false, false, "retry")
		if d := time.Duration(f.spy.deadline.Load()); d <= 0 || d > timeout {
			t.Errorf("the key lookup's context had a deadline %v ahead (-1ns: none), want at most StorageTimeout %v", d, timeout)
		}
		// The key is cached once the store answers; its tenant is not yet.
		f.spy.hang.Store(false)
		f.spy.failTenant.Store(true)
		f.verify(key)
		f.spy.failTenant.Store(false)
		f.spy.hang.Store(true)
		f.spy.deadline.Store(0)
		r = f.verify(key)
		checkResult(t, r, key, keyward.CodeStorageUnavailable, true, false, "retry")
		if d := time.Duration(f.spy.deadline.Load()); d <= 0 || d > timeout {
			t.Errorf("the tenant lookup's context had a deadline %v ahead (-1ns: none), want at most StorageTimeout %v", d, timeout)
		}
	})
	t.Run("tenant lookup fails", func(t *testing.T) {
		f := newFixture(t, verify.Options{})
		key, _ := f.createKey(nil)
		f.spy.failTenant.Store(true)
		r := f.verify(key)
		checkResult(t, r, key, keyward.CodeStorageUnavailable, true, false, "retry")
	})
}

func TestVerifyCachedAllocs(t *testing.T) {
	f := newFixture(t, verify.Options{})
	key, _ := f.createKey(func(k *keyward.Key) { k.Restrictions.IPs = []string{"10.0.0.0/8", "192.0.2.0/24"} })
	ctx := context.Background()
	req := verify.Request{Key: key, IP: netip.MustParseAddr("192.0.2.10"), Permissions: []string{"messages:send", "contacts:read"}}
	if r := f.v.Verify(ctx, req); !r.Valid() {
		t.Fatalf("Verify: %s: %s", r.Code, r.Detail)
	}
	var r verify.Result
	allocs := testing.AllocsPerRun(1000, func() { r = f.v.Verify(ctx, req) })
	if !r.Valid() {
		t.Fatalf("Verify: %s: %s", r.Code, r.Detail)
	}
	if allocs != 0 {
		t.Errorf("Verify of a cached key allocates %v times, want 0", allocs)
	}
}

func TestResultErr(t *testing.T) {
	if err := (verify.Result{}).Err(); err != nil {
		t.Errorf("valid Result.Err() = %v, want nil", err)
	}
	r := verify.Result{Code: keyward.CodeRevokedAPIKey, Detail: "This key was revoked."}
	err := r.Err()
	if err == nil || err.Code != r.Code || err.Message != r.Detail || err.Code.Status() != 401 {
		t.Errorf("Err() = %#v", err)
	}
}

// BenchmarkVerifyCached verifies a cached, valid key with one required
// permission, on a verifier configured as in production (no injected
// clock): "serial" and "parallel" with a key that never expires, "expiring"
// with a key that has an expiry, so the precise clock is read.
func BenchmarkVerifyCached(b *testing.B) {
	f := newFixture(b, verify.Options{})
	v := verify.New(f.store, verify.Options{Format: f.format})
	b.Cleanup(func() { v.Close(context.Background()) })
	key, _ := f.createKey(nil)
	expiring, _ := f.createKey(func(k *keyward.Key) {
		at := time.Now().Add(time.Hour)
		k.ExpiresAt = &at
	})
	ctx := context.Background()
	req := verify.Request{Key: key, IP: netip.MustParseAddr("192.0.2.10"), Permissions: []string{"messages:send"}}
	reqExpiring := req
	reqExpiring.Key = expiring
	for _, r := range []verify.Request{req, reqExpiring} {
		if res := v.Verify(ctx, r); !res.Valid() {
			b.Fatalf("Verify: %s: %s", res.Code, res.Detail)
		}
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if r := v.Verify(ctx, req); !r.Valid() {
				b.Fatal(r.Detail)
			}
		}
	})
	b.Run("expiring", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if r := v.Verify(ctx, reqExpiring); !r.Valid() {
				b.Fatal(r.Detail)
			}
		}
	})
	// A route policy of 200 routes, matched on a route with a tenant, a
	// resource, a capability, an environment and a permission; a key with
	// a member and IP, referrer, endpoint and resource restrictions, whose
	// effective permissions are what its member and plan allow.
	pb := newPolicyBench(b)
	b.Run("policy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if r := pb.verify(); !r.Valid() {
				b.Fatal(r.Detail)
			}
		}
	})
	// The serial case with two local rate limits (never reached): what
	// step 11 adds to a verification.
	limited, _ := f.createKey(func(k *keyward.Key) {
		k.RateLimits = []keyward.RateLimit{
			{Name: "burst", Limit: 1_000_000, Period: keyward.Duration(time.Second), Burst: 1_000_000_000},
			{Name: "daily", Limit: 1_000_000_000, Period: keyward.Duration(24 * time.Hour)},
		}
	})
	var decision limit.Decision
	reqLimited := req
	reqLimited.Key, reqLimited.RateLimit = limited, &decision
	if r := v.Verify(ctx, reqLimited); !r.Valid() || decision.N != 2 {
		b.Fatalf("Verify: %s: %s", r.Code, r.Detail)
	}
	b.Run("limits", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if r := v.Verify(ctx, reqLimited); !r.Valid() {
				b.Fatal(r.Detail)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if r := v.Verify(ctx, req); !r.Valid() {
					b.Error(r.Detail)
					return
				}
			}
		})
	})
}

func BenchmarkVerifyMalformed(b *testing.B) {
	f := newFixture(b, verify.Options{})
	key, _ := f.createKey(nil)
	key = mistype(key)
	ctx := context.Background()
	req := verify.Request{Key: key}
	b.ReportAllocs()
	for b.Loop() {
		if r := f.v.Verify(ctx, req); r.Code != keyward.CodeMalformedAPIKey {
			b.Fatal(r.Code)
		}
	}
}
