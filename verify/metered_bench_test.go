package verify_test

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/postgres"
	"github.com/keyward/keyward/verify"
)

// BenchmarkVerifyMetered verifies one key with credits, on a verifier
// configured as in production, on SQLite (synchronous=FULL, in the test's
// temporary directory) and on a throwaway PostgreSQL (internal/pgtest,
// which runs with fsync off): what counting the requests of a metered key
// in the store costs, from many goroutines at once (parallel: 8 per
// processor) and from one (serial: the latency of a lone request). Every
// request is allowed (the key's credits never run out), so each op is one
// verification and one spend.
//
// It uses only what verify has had since quotas and credits came, so the
// same file measures the commit before group commit, for comparison
// (docs/limits.md, "Group commit").
func BenchmarkVerifyMetered(b *testing.B) {
	sqliteStore := openStore(b, filepath.Join(b.TempDir(), "keyward.db"))
	for _, parallel := range []bool{true, false} {
		b.Run("sqlite/"+meteredMode(parallel), func(b *testing.B) { benchMetered(b, sqliteStore, parallel) })
	}

	srv := pgtest.New()
	b.Cleanup(srv.Stop)
	pg, err := postgres.Open(b.Context(), srv.Database(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { pg.Close() })
	for _, parallel := range []bool{true, false} {
		b.Run("postgres/"+meteredMode(parallel), func(b *testing.B) { benchMetered(b, pg, parallel) })
	}
}

// meteredMode names a run of BenchmarkVerifyMetered.
func meteredMode(parallel bool) string {
	if parallel {
		return "parallel"
	}
	return "serial"
}

// benchMetered runs BenchmarkVerifyMetered on store, with a new tenant,
// key and verifier for each run.
func benchMetered(b *testing.B, store keyward.Store, parallel bool) {
	ctx := context.Background()
	format, err := apikey.NewFormat(apikey.DefaultPrefix)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	tenant := createTenant(b, store, apikey.NewID("ten"), apikey.NewID("t"), now)
	plain, err := format.Generate(keyward.Live)
	if err != nil {
		b.Fatal(err)
	}
	startHint, last4 := apikey.Display(plain)
	k := &keyward.Key{
		ID: apikey.NewID("key"), TenantID: tenant.ID, Environment: keyward.Live, Name: "metered",
		Head: apikey.Head(plain), Start: startHint, Last4: last4, Hash: apikey.Hash(plain),
		Permissions: []string{"messages:send"}, Metadata: map[string]string{}, Status: keyward.KeyActive,
		Credits:   &keyward.Credits{Remaining: keyward.MaxCredits},
		CreatedAt: now, CreatedBy: "cli", UpdatedAt: now,
	}
	if err := store.CreateKey(ctx, k, keyward.CommandLineActor()); err != nil {
		b.Fatalf("CreateKey: %v", err)
	}
	v := verify.New(store, verify.Options{Format: format})
	defer v.Close(ctx)
	req := verify.Request{Key: plain, IP: netip.MustParseAddr("192.0.2.10"), Permissions: []string{"messages:send"}}
	if r := v.Verify(ctx, req); !r.Valid() {
		b.Fatalf("Verify: %s %s", r.Code, r.Detail)
	}
	b.ReportAllocs()
	b.ResetTimer()
	if !parallel {
		for b.Loop() {
			if r := v.Verify(ctx, req); !r.Valid() {
				b.Fatalf("Verify: %s %s", r.Code, r.Detail)
			}
		}
		return
	}
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r := v.Verify(ctx, req); !r.Valid() {
				b.Errorf("Verify: %s %s", r.Code, r.Detail)
				return
			}
		}
	})
}
