package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/postgres"
	"github.com/keyward/keyward/storetest"
)

// pg is the server the tests of this package share; each test has a
// database of its own on it.
var pg = pgtest.New()

func TestMain(m *testing.M) {
	code := m.Run()
	pg.Stop()
	os.Exit(code)
}

// open opens a store on dsn and closes it when the test ends.
func open(t *testing.T, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), dsn)
	return storetest.Opened(t, s, err)
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) keyward.Store {
		return open(t, pg.Database(t))
	})
}

// TestTwoStoresOneDatabase: what one store (a node, or the command line)
// writes, another store on the same database sees through the change feed.
func TestTwoStoresOneDatabase(t *testing.T) {
	dsn := pg.Database(t)
	storetest.TwoStores(t, func(t *testing.T) keyward.Store { return open(t, dsn) })
}

// TestOpenConcurrently: nodes that start at once on a new database migrate
// it once, without failing.
func TestOpenConcurrently(t *testing.T) {
	dsn := pg.Database(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			s, err := postgres.Open(t.Context(), dsn)
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestOpenUnreachable: a server that cannot be reached, or that does not
// answer, is a clear error that names the address, and soon: no hang.
func TestOpenUnreachable(t *testing.T) {
	// Nothing listens on a port just freed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()

	// A listener that accepts and never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()

	for _, tc := range []struct {
		name, addr, query string
		want              string
		within            time.Duration
	}{
		{"refused", refused, "", "connection refused", 5 * time.Second},
		{"silent", silent.Addr().String(), "&connect_timeout=1", "no answer within 1s", 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			dsn := fmt.Sprintf("postgres://keyward:s3cret-pw@%s/keyward?sslmode=disable%s", tc.addr, tc.query)
			s, err := postgres.Open(t.Context(), dsn)
			if err == nil {
				s.Close()
				t.Fatal("Open: no error")
			}
			if d := time.Since(start); d > tc.within {
				t.Errorf("Open took %s, want at most %s", d, tc.within)
			}
			var e *keyward.Error
			if !errors.As(err, &e) || e.Code != keyward.CodeStorageUnavailable {
				t.Fatalf("Open: %v, want code %s", err, keyward.CodeStorageUnavailable)
			}
			for _, w := range []string{tc.addr, tc.want} {
				if !strings.Contains(e.Message, w) {
					t.Errorf("message %q does not contain %q", e.Message, w)
				}
			}
			if strings.Contains(err.Error(), "s3cret-pw") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

// TestOpenMissingDatabase: a database that does not exist is named as the
// problem, not the server.
func TestOpenMissingDatabase(t *testing.T) {
	dsn := pg.Database(t)
	i := strings.LastIndex(dsn, "/")
	missing := dsn[:i] + "/no_such_database?sslmode=disable"
	_, err := postgres.Open(t.Context(), missing)
	if keyward.ErrorCode(err) != keyward.CodeInvalidRequest || !strings.Contains(keyward.ErrorMessage(err), "does not exist") {
		t.Fatalf("Open(missing database): %v, want an invalid_request saying it does not exist", err)
	}
}

// TestPath: a store names its database without the password.
func TestPath(t *testing.T) {
	dsn := pg.Database(t)
	s := open(t, strings.Replace(dsn, "postgres@", "postgres:secret@", 1))
	if p := s.Path(); strings.Contains(p, "secret") || !strings.HasPrefix(p, "postgres://postgres@127.0.0.1:") {
		t.Fatalf("Path = %q", p)
	}
}

// TestStorageUnavailable: a store whose server went away answers
// CodeStorageUnavailable, not an internal error, and soon.
func TestStorageUnavailable(t *testing.T) {
	srv := pgtest.New()
	dsn := srv.Database(t)
	s := open(t, dsn+"&connect_timeout=2")
	srv.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := s.Ping(ctx); keyward.ErrorCode(err) != keyward.CodeStorageUnavailable {
		t.Errorf("Ping: %v, want %s", err, keyward.CodeStorageUnavailable)
	}
	if _, err := s.Key(ctx, "key_1"); keyward.ErrorCode(err) != keyward.CodeStorageUnavailable {
		t.Errorf("Key: %v, want %s", err, keyward.CodeStorageUnavailable)
	}
	if err := s.CreateTenant(ctx, storetest.Tenant("ten_acme"), keyward.CommandLineActor()); keyward.ErrorCode(err) != keyward.CodeStorageUnavailable {
		t.Errorf("CreateTenant: %v, want %s", err, keyward.CodeStorageUnavailable)
	}
}

// TestOldDatabases: migrations upgrade databases made by earlier releases
// (storetest.OldDatabases).
func TestOldDatabases(t *testing.T) {
	storetest.OldDatabases(t, func(t *testing.T) storetest.Database {
		dsn := pg.Database(t)
		return storetest.Database{
			Open:   func(ctx context.Context) (keyward.Store, error) { return postgres.Open(ctx, dsn) },
			Driver: "pgx",
			DSN:    dsn,
		}
	})
}
