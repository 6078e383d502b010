// Package teststore opens the store a package's tests run on: a SQLite file
// of the test's own, or, with KEYWARD_TEST_DB=postgres (which ./scripts/test
// runs for the packages that honour it), a database of the test's own on a
// throwaway PostgreSQL server (internal/pgtest).
package teststore

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/postgres"
	"github.com/keyward/keyward/sqlite"
)

// Open returns the test's store, closed when the test ends; pg is the
// package's PostgreSQL server, started on first use.
func Open(t testing.TB, pg *pgtest.Server) keyward.Store {
	t.Helper()
	var (
		store keyward.Store
		err   error
	)
	switch db := os.Getenv("KEYWARD_TEST_DB"); db {
	case "", "sqlite":
		store, err = sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "keyward.db"))
	case "postgres":
		store, err = postgres.Open(context.Background(), pg.Database(t))
	default:
		t.Fatalf("KEYWARD_TEST_DB=%q: use sqlite or postgres", db)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}
