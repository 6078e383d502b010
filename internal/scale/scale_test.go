package scale_test

import (
	"context"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/internal/scale"
	"github.com/keyward/keyward/postgres"
	"github.com/keyward/keyward/sqlite"
	"github.com/keyward/keyward/verify"
)

// TestLoad loads a thousand keys into each store and checks that the store
// and a verifier read the kept ones as keys created through the store, so
// that the loader fails here, not in a benchmark, when the schema changes.
func TestLoad(t *testing.T) {
	opts := scale.Options{Keys: 1000, Keep: 100, KeysPerTenant: 300}
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "keyward.db")
		loaded, err := scale.SQLite(t.Context(), path, opts)
		if err != nil {
			t.Fatalf("scale.SQLite: %v", err)
		}
		s, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		checkLoaded(t, s, loaded, opts)
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.Start(t)
		loaded, err := scale.Postgres(t.Context(), dsn, opts)
		if err != nil {
			t.Fatalf("scale.Postgres: %v", err)
		}
		s, err := postgres.Open(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		checkLoaded(t, s, loaded, opts)
	})
}

// checkLoaded checks what a load of opts into s returned against what s
// holds, and verifies every kept key twice (from the store, then from the
// cache) with a verifier configured as in production.
func checkLoaded(t *testing.T, s keyward.Store, loaded *scale.Loaded, opts scale.Options) {
	t.Helper()
	ctx := t.Context()
	wantTenants := (opts.Keys + opts.KeysPerTenant - 1) / opts.KeysPerTenant
	if loaded.Keys != opts.Keys || len(loaded.Kept) != opts.Keep || len(loaded.Tenants) != wantTenants {
		t.Fatalf("loaded %d keys, kept %d, %d tenants; want %d, %d, %d",
			loaded.Keys, len(loaded.Kept), len(loaded.Tenants), opts.Keys, opts.Keep, wantTenants)
	}

	// Every key is listed, each tenant holding its block of keys.
	perTenant := map[string]int{}
	var page keyward.Page
	page.Limit = keyward.MaxPageLimit
	listed := 0
	for {
		keys, next, err := s.Keys(ctx, keyward.KeyFilter{}, page)
		if err != nil {
			t.Fatalf("Keys: %v", err)
		}
		for _, k := range keys {
			perTenant[k.TenantID]++
		}
		listed += len(keys)
		if next == "" {
			break
		}
		page.Cursor = next
	}
	if listed != opts.Keys {
		t.Errorf("Keys listed %d keys, want %d", listed, opts.Keys)
	}
	for i, id := range loaded.Tenants {
		want := min(opts.KeysPerTenant, opts.Keys-i*opts.KeysPerTenant)
		if perTenant[id] != want {
			t.Errorf("tenant %d (%s) holds %d keys, want %d", i, id, perTenant[id], want)
		}
		if _, err := s.Tenant(ctx, id); err != nil {
			t.Errorf("Tenant(%s): %v", id, err)
		}
	}

	format, err := apikey.NewFormat(apikey.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	v := verify.New(s, verify.Options{Format: format})
	if err := v.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := v.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	seen := map[string]bool{}
	for _, kept := range loaded.Kept {
		if seen[kept.ID] {
			t.Fatalf("key %s kept twice", kept.ID)
		}
		seen[kept.ID] = true
		if _, perr := format.Parse(kept.Key); perr != nil {
			t.Fatalf("key %s does not parse: %v", kept.ID, perr)
		}
		byHash, err := s.KeyByHash(ctx, apikey.Hash(kept.Key))
		if err != nil {
			t.Fatalf("KeyByHash of key %s: %v", kept.ID, err)
		}
		byID, err := s.Key(ctx, kept.ID)
		if err != nil {
			t.Fatalf("Key(%s): %v", kept.ID, err)
		}
		start, last4 := apikey.Display(kept.Key)
		if byHash.ID != kept.ID || byHash.TenantID != kept.TenantID || byID.Hash != apikey.Hash(kept.Key) ||
			byID.Start != start || byID.Last4 != last4 || byID.Head != apikey.Head(kept.Key) ||
			byID.Status != keyward.KeyActive || byID.Environment != keyward.Live ||
			!slices.Equal(byID.Permissions, scale.Permissions) || byID.ExpiresAt != nil {
			t.Fatalf("key %s of tenant %s is stored as %+v (by hash: %s of %s)", kept.ID, kept.TenantID, byID, byHash.ID, byHash.TenantID)
		}
		for _, source := range []string{"store", "cache"} {
			r := v.Verify(ctx, verify.Request{Key: kept.Key, IP: netip.MustParseAddr("192.0.2.10"), Permissions: []string{"messages:send"}})
			if !r.Valid() || r.Key.ID != kept.ID || r.Tenant.ID != kept.TenantID {
				t.Fatalf("Verify of key %s from the %s: %s: %s", kept.ID, source, r.Code, r.Detail)
			}
		}
	}
	// A key of the format that was never stored is still refused.
	other, err := format.Generate(keyward.Live)
	if err != nil {
		t.Fatal(err)
	}
	if r := v.Verify(ctx, verify.Request{Key: other}); r.Code != keyward.CodeInvalidAPIKey {
		t.Errorf("Verify of a key never stored: %s: %s", r.Code, r.Detail)
	}
}
