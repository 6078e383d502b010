package verify_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/verify"
)

// TestVerifyCachedKeyIsTheStoredKey checks that the key a verification
// returns, which the cache keeps in its own layout (a copy of the key, few
// permissions kept beside it, shared strings), reads as the store's, for
// keys with few and with many permissions, from the store and from the
// cache.
func TestVerifyCachedKeyIsTheStoredKey(t *testing.T) {
	ctx := context.Background()
	many := []string{"a:1", "b:2", "c:3", "d:4", "e:5", "f:6"}
	tests := []struct {
		name  string
		perms []string
	}{
		{"no permissions", []string{}},
		{"two permissions", []string{"messages:send", "contacts:read"}},
		{"more permissions than the entry holds", many},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, verify.Options{})
			expires := t0.Add(time.Hour)
			key, k := f.createKey(func(k *keyward.Key) {
				k.Permissions = tt.perms
				k.ExpiresAt = &expires
				k.Restrictions.IPs = []string{"192.0.2.0/24"}
			})
			stored, err := f.store.Key(ctx, k.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, source := range []string{"store", "cache"} {
				r := f.verify(key, tt.perms...)
				if !r.Valid() {
					t.Fatalf("%s: Verify with every permission: %s: %s", source, r.Code, r.Detail)
				}
				if !reflect.DeepEqual(r.Key, stored) {
					t.Errorf("%s: Verify returned key\n%+v\nwant the stored\n%+v", source, r.Key, stored)
				}
				if r := f.verify(key, "z:missing"); r.Code != keyward.CodeInsufficientPermissions {
					t.Errorf("%s: Verify with a permission the key lacks: %s: %s", source, r.Code, r.Detail)
				}
			}
		})
	}
}

// TestVerifyTenantSuspendedWhileCached checks that a key whose entry
// remembers its tenant as active is refused once the tenant is suspended,
// and accepted again once it is resumed.
func TestVerifyTenantSuspendedWhileCached(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, verify.Options{})
	key, _ := f.createKey(nil)
	if r := f.verify(key); !r.Valid() {
		t.Fatalf("Verify: %s: %s", r.Code, r.Detail)
	}
	for _, step := range []struct {
		status keyward.TenantStatus
		want   keyward.Code
	}{
		{keyward.TenantSuspended, keyward.CodeAccountSuspended},
		{keyward.TenantActive, ""},
	} {
		if _, err := f.store.SetTenantStatus(ctx, f.tenant.ID, step.status, f.clock.Now(), keyward.CommandLineActor()); err != nil {
			t.Fatal(err)
		}
		if err := f.v.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if r := f.verify(key); r.Code != step.want {
			t.Errorf("tenant %s: Verify: %q (%s), want %q", step.status, r.Code, r.Detail, step.want)
		}
	}
}
