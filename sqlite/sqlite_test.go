package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/sqlite"
	"github.com/keyward/keyward/storetest"
)

// open opens a store on path and closes it when the test ends.
func open(t *testing.T, path string, opts ...sqlite.Option) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path, opts...)
	return storetest.Opened(t, s, err)
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) keyward.Store {
		return open(t, filepath.Join(t.TempDir(), "keyward.db"))
	})
}

// TestTwoStoresOneFile: stores on one file, named in the ways a DSN may
// name it, see each other's changes.
func TestTwoStoresOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyward.db")
	dsns := []string{path, "sqlite:" + path, "file:" + path}
	n := 0
	storetest.TwoStores(t, func(t *testing.T) keyward.Store {
		n++
		return open(t, dsns[(n-1)%len(dsns)])
	})
}

func TestTwoStoresWriteAtOnce(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "keyward.db")
	stores := []*sqlite.Store{open(t, path), open(t, path), open(t, path)}
	if err := stores[0].CreateTenant(ctx, storetest.Tenant("ten_acme"), keyward.CommandLineActor()); err != nil {
		t.Fatal(err)
	}
	const perStore = 30
	var wg sync.WaitGroup
	errs := make(chan error, len(stores)*perStore)
	for i, s := range stores {
		for g := range 2 {
			wg.Go(func() {
				for j := range perStore / 2 {
					k := storetest.Key(fmt.Sprintf("key_%d_%d_%d", i, g, j), "ten_acme")
					if err := s.CreateKey(ctx, k, keyward.CommandLineActor()); err != nil {
						errs <- err
					}
					if err := s.RecordUsage(ctx, []keyward.Usage{{KeyID: k.ID, At: storetest.T0, IP: "192.0.2.1"}}); err != nil {
						errs <- err
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	changes, err := stores[1].Changes(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 + len(stores)*perStore; len(changes) != want {
		t.Fatalf("%d changes, want %d", len(changes), want)
	}
}

func TestOpenMigratesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyward.db")
	s := open(t, path)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	if err := s.CreateTenant(t.Context(), storetest.Tenant("ten_acme"), keyward.CommandLineActor()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Reopening keeps the data.
	s = open(t, "file:"+path)
	if _, err := s.Tenant(t.Context(), "acme"); err != nil {
		t.Fatalf("Tenant after reopening: %v", err)
	}
}

func TestOpenConcurrently(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyward.db")
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			s, err := sqlite.Open(t.Context(), path)
			if err != nil {
				errs[i] = err
				return
			}
			errs[i] = s.Ping(t.Context())
			s.Close()
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d of a new file at once: %v", i, err)
		}
	}
}

func TestWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyward.db")
	s := open(t, path)
	if err := s.CreateTenant(t.Context(), storetest.Tenant("ten_acme"), keyward.CommandLineActor()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Fatalf("no write-ahead log next to the database: %v", err)
	}
	// The header of a WAL database says so: bytes 18 and 19 are 2.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 20 || b[18] != 2 || b[19] != 2 {
		t.Fatalf("the database file is not in WAL mode")
	}
}

func TestDSN(t *testing.T) {
	dir := t.TempDir()
	for _, dsn := range []string{
		filepath.Join(dir, "plain.db"),
		"sqlite:" + filepath.Join(dir, "scheme.db"),
		"sqlite://" + filepath.Join(dir, "slashes.db"),
		"file:" + filepath.Join(dir, "file.db") + "?mode=rwc",
		filepath.Join(dir, "with space.db"),
	} {
		s := open(t, dsn)
		if err := s.Ping(t.Context()); err != nil {
			t.Errorf("Ping(%s): %v", dsn, err)
		}
	}
	t.Chdir(dir)
	for _, dsn := range []string{"relative.db", "sqlite:relative-scheme.db", "sqlite://relative-slashes.db", "file:relative-file.db", "file://relative-file-slashes.db"} {
		open(t, dsn)
	}
	for _, name := range []string{"plain.db", "scheme.db", "slashes.db", "file.db", "with space.db",
		"relative.db", "relative-scheme.db", "relative-slashes.db", "relative-file.db", "relative-file-slashes.db"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s was not created: %v", name, err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file.txt")
	if err := os.WriteFile(file, []byte("not a database, and long enough to have a header that is wrong"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, dsn, want string
	}{
		{"missing directory", filepath.Join(dir, "nope", "keyward.db"), "directory " + filepath.Join(dir, "nope") + " does not exist"},
		{"parent is a file", filepath.Join(file, "keyward.db"), file + " is not a directory"},
		{"path is a directory", dir, "is a directory"},
		{"not a database", file, "not a SQLite database"},
		{"empty", "sqlite:", "no file path"},
		{"memory", ":memory:", "in-memory"},
	}
	if os.Geteuid() != 0 {
		ro := filepath.Join(dir, "readonly")
		if err := os.Mkdir(ro, 0o555); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct{ name, dsn, want string }{"unwritable directory", filepath.Join(ro, "keyward.db"), "cannot be created in directory " + ro})
		roFile := filepath.Join(dir, "readonly.db")
		s := open(t, roFile)
		s.Close()
		if err := os.Chmod(roFile, 0o444); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct{ name, dsn, want string }{"read-only file", roFile, "read-only"})
	}
	if fi, err := os.Stat("/proc/self"); err == nil && fi.IsDir() {
		// Nobody, root included, can create a file in /proc.
		cases = append(cases, struct{ name, dsn, want string }{"unwritable directory", "/proc/self/keyward.db", "cannot be created in directory /proc/self"})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sqlite.Open(t.Context(), tc.dsn)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s): no error", tc.dsn)
			}
			if code := keyward.ErrorCode(err); code != keyward.CodeInvalidRequest {
				t.Errorf("Open(%s): code %q, want %q", tc.dsn, code, keyward.CodeInvalidRequest)
			}
			t.Logf("Open(%s): %v", tc.dsn, err)
			msg := keyward.ErrorMessage(err)
			if !strings.Contains(msg, tc.want) {
				t.Errorf("Open(%s): message %q does not say %q", tc.dsn, msg, tc.want)
			}
			if tc.dsn != ":memory:" && tc.dsn != "sqlite:" && !strings.Contains(msg, "cannot open database") {
				t.Errorf("Open(%s): message %q does not say which database", tc.dsn, msg)
			}
		})
	}
}

func TestBusy(t *testing.T) {
	// A write that waits longer than the busy timeout for another process
	// fails with CodeStorageUnavailable rather than hanging, and succeeds
	// once the other process lets go.
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "keyward.db")
	s := open(t, path, sqlite.WithBusyTimeout(100*time.Millisecond))
	if err := s.CreateTenant(ctx, storetest.Tenant("ten_acme"), keyward.CommandLineActor()); err != nil {
		t.Fatal(err)
	}

	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	err = s.CreateKey(ctx, storetest.Key("key_1", "ten_acme"), keyward.CommandLineActor())
	if code := keyward.ErrorCode(err); code != keyward.CodeStorageUnavailable {
		t.Fatalf("CreateKey while another process writes: %v, want code %q", err, keyward.CodeStorageUnavailable)
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > 5*time.Second {
		t.Errorf("CreateKey gave up after %v, want about the busy timeout", d)
	}
	// Reads go on while the other process writes.
	if _, err := s.Tenant(ctx, "acme"); err != nil {
		t.Fatalf("Tenant while another process writes: %v", err)
	}

	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateKey(ctx, storetest.Key("key_1", "ten_acme"), keyward.CommandLineActor()); err != nil {
		t.Fatalf("CreateKey after the other process is done: %v", err)
	}
}

// TestOpenMustExist: with MustExist, a missing file is refused and not
// created; an existing one opens.
func TestOpenMustExist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyward.db")
	_, err := sqlite.Open(context.Background(), "sqlite:"+path, sqlite.MustExist())
	if keyward.ErrorCode(err) != keyward.CodeNotFound || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open of a missing file: %v; want not_found naming %s", err, path)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open with MustExist created %s", path)
	}
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = sqlite.Open(context.Background(), path, sqlite.MustExist())
	if err != nil {
		t.Fatalf("Open of an existing file with MustExist: %v", err)
	}
	s.Close()
}

// TestOldDatabases: migrations upgrade databases made by earlier releases
// (storetest.OldDatabases).
func TestOldDatabases(t *testing.T) {
	storetest.OldDatabases(t, func(t *testing.T) storetest.Database {
		path := filepath.Join(t.TempDir(), "keyward.db")
		return storetest.Database{
			Open:   func(ctx context.Context) (keyward.Store, error) { return sqlite.Open(ctx, path) },
			Driver: "sqlite",
			DSN:    path,
		}
	})
}
