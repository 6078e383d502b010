package storetest

import (
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// T0 is the creation time of the tenants and keys that Tenant and Key
// return.
var T0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// Tenant returns an active tenant, not stored, with the given id and the id
// without "ten_" as its slug, created at T0: for an engine's own tests.
func Tenant(id string) *keyward.Tenant {
	return &keyward.Tenant{ID: id, Slug: strings.TrimPrefix(id, "ten_"), Plan: keyward.DefaultPlan, Status: keyward.TenantActive, CreatedAt: T0, UpdatedAt: T0}
}

// Key returns an active live key of the tenant, not stored, with the given
// id and a hash of its own, created at T0: for an engine's own tests.
func Key(id, tenantID string) *keyward.Key {
	return &keyward.Key{
		ID: id, TenantID: tenantID, Environment: keyward.Live, Name: id,
		Head: "sk_live_", Start: "sk_live_abcd", Last4: "wxyz",
		Hash:   sha256.Sum256([]byte("sk_live_" + id)),
		Status: keyward.KeyActive, CreatedAt: T0, UpdatedAt: T0,
	}
}

// Opened is an engine's Open in its tests: it fails the test when err, the
// error of opening, is not nil, and closes s when the test ends.
func Opened[S keyward.Store](t testing.TB, s S, err error) S {
	t.Helper()
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}
