package sqlite_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/sqlite"
	"github.com/keyward/keyward/storetest"
)

// pragma returns the value of PRAGMA name on a connection of pool.
func pragma(t *testing.T, pool *sql.DB, name string) int {
	t.Helper()
	var v int
	if err := pool.QueryRowContext(t.Context(), "PRAGMA "+name).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

// TestDurableWrites: the write connection commits with synchronous=FULL,
// so that a change is on disk, write-ahead log synced, when its answer is
// sent, and survives a crash of the operating system or a power cut (which
// a test cannot cause: this checks the setting that SQLite documents as
// giving it). The read pool still answers.
func TestDurableWrites(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "keyward.db"))
	w, r := sqlite.Pools(s)
	const full = 2 // PRAGMA synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA
	if got := pragma(t, w, "synchronous"); got != full {
		t.Fatalf("the write connection runs with synchronous = %d, want %d (FULL)", got, full)
	}
	if err := s.CreateTenant(t.Context(), storetest.Tenant("ten_acme"), keyward.CommandLineActor()); err != nil {
		t.Fatal(err)
	}
	if got := pragma(t, w, "synchronous"); got != full {
		t.Fatalf("after a write, the write connection runs with synchronous = %d, want %d (FULL)", got, full)
	}
	if got := pragma(t, r, "query_only"); got != 1 {
		t.Errorf("the read pool runs with query_only = %d, want 1", got)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if _, err := s.Tenant(t.Context(), "acme"); err != nil {
		t.Fatalf("Tenant through the read pool: %v", err)
	}
}

// BenchmarkCreateKey measures a key creation through the store (the key's
// row, its audit entry and its change in one transaction) on a database
// file in b.TempDir(), with the write connection's synchronous pragma at
// NORMAL (before issue 7) and at FULL (since), in the same run. It measures
// the disk of $TMPDIR (or /tmp): on tmpfs an fsync costs nothing, so check
// with df -T and point TMPDIR at the disk the database will live on.
func BenchmarkCreateKey(b *testing.B) {
	for _, mode := range []string{"NORMAL", "FULL"} {
		b.Run("synchronous="+mode, func(b *testing.B) {
			s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "keyward.db"), sqlite.WithSynchronous(mode))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if err := s.CreateTenant(b.Context(), storetest.Tenant("ten_acme"), keyward.CommandLineActor()); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if err := s.CreateKey(b.Context(), storetest.Key(fmt.Sprintf("key_%d", i), "ten_acme"), keyward.CommandLineActor()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
