package sqlite_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
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
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) keyward.Store {
		return open(t, filepath.Join(t.TempDir(), "keyward.db"))
	})
}

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func tenant(id string) *keyward.Tenant {
	return &keyward.Tenant{ID: id, Slug: strings.TrimPrefix(id, "ten_"), Plan: "free", Status: keyward.TenantActive, CreatedAt: t0, UpdatedAt: t0}
}

func key(id, tenantID string) *keyward.Key {
	return &keyward.Key{
		ID: id, TenantID: tenantID, Environment: keyward.Live, Name: id,
		Prefix: "sk_live_", Start: "sk_live_abcd", Last4: "wxyz",
		Hash:   sha256.Sum256([]byte("sk_live_" + id)),
		Status: keyward.KeyActive, CreatedAt: t0, UpdatedAt: t0,
	}
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
	if err := stores[0].CreateTenant(ctx, tenant("ten_acme"), keyward.ActorCLI); err != nil {
		t.Fatal(err)
	}
	const perStore = 30
	var wg sync.WaitGroup
	errs := make(chan error, len(stores)*perStore)
	for i, s := range stores {
		for g := range 2 {
			wg.Go(func() {
				for j := range perStore / 2 {
					k := key(fmt.Sprintf("key_%d_%d_%d", i, g, j), "ten_acme")
					if err := s.CreateKey(ctx, k, keyward.ActorCLI); err != nil {
						errs <- err
					}
					if err := s.RecordUsage(ctx, []keyward.Usage{{KeyID: k.ID, At: t0, IP: "192.0.2.1"}}); err != nil {
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
	if err := s.CreateTenant(t.Context(), tenant("ten_acme"), keyward.ActorCLI); err != nil {
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
	if err := s.CreateTenant(t.Context(), tenant("ten_acme"), keyward.ActorCLI); err != nil {
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
	if err := s.CreateTenant(ctx, tenant("ten_acme"), keyward.ActorCLI); err != nil {
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
	err = s.CreateKey(ctx, key("key_1", "ten_acme"), keyward.ActorCLI)
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
	if err := s.CreateKey(ctx, key("key_1", "ten_acme"), keyward.ActorCLI); err != nil {
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

// TestKeyPrefixOfOldDatabase: a database made before the key prefix was
// stored gets, when it is migrated, the prefix that most of its unrevoked
// keys have, then the first root key's; one without keys gets none.
func TestKeyPrefixOfOldDatabase(t *testing.T) {
	type k struct{ id, prefix, status string }
	for _, tc := range []struct {
		name string
		keys []k
		want string // "" for none
	}{
		{"no keys", nil, ""},
		{"one prefix", []k{{"key_root", "kw_live_", "active"}, {"key_a", "kw_test_", "revoked"}}, "kw"},
		{"most unrevoked keys", []k{{"key_root", "sk_live_", "active"}, {"key_a", "kw_live_", "active"}, {"key_b", "kw_test_", "disabled"}, {"key_c", "sk_live_", "revoked"}}, "kw"},
		{"revoked keys do not count", []k{{"key_root", "sk_live_", "active"}, {"key_a", "kw_live_", "revoked"}, {"key_b", "kw_live_", "revoked"}}, "sk"},
		{"a tie goes to the root key", []k{{"key_a", "kw_live_", "active"}, {"key_root", "ab_live_", "active"}}, "ab"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			path := filepath.Join(t.TempDir(), "keyward.db")
			s, err := sqlite.Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.CreateTenant(ctx, tenant("ten_acme"), keyward.ActorCLI); err != nil {
				t.Fatal(err)
			}
			for _, tk := range tc.keys {
				kk := key(tk.id, "ten_acme")
				kk.Prefix, kk.Status = tk.prefix, keyward.KeyStatus(tk.status)
				if err := s.CreateKey(ctx, kk, keyward.ActorCLI); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			// Take the database back to its schema before settings.
			raw, err := sql.Open("sqlite", path)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{`DROP TABLE settings`, `DELETE FROM goose_db_version WHERE version_id >= 3`} {
				if _, err := raw.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			raw.Close()

			got, err := open(t, path).KeyPrefix(ctx)
			if tc.want == "" {
				if keyward.ErrorCode(err) != keyward.CodeNotFound {
					t.Fatalf("KeyPrefix = %q, %v; want none", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("KeyPrefix = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestKeyTimesBeyondYear9999OfOldDatabase: a database written by a release
// that accepted an expiry or rotate-by time after the year 9999 in UTC
// (9999-12-31T23:30:00-23:59) has those times brought down, when it is
// migrated, to 9999-12-31T23:59:59.999999Z, revoked keys included, so that
// every key encodes as JSON again. Each key changed gets a change in the
// feed and no audit entry; other keys are left alone.
func TestKeyTimesBeyondYear9999OfOldDatabase(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "keyward.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTenant(ctx, tenant("ten_acme"), keyward.ActorCLI); err != nil {
		t.Fatal(err)
	}
	near := t0.AddDate(1, 0, 0)
	for _, id := range []string{"key_far", "key_revoked", "key_rotate", "key_max", "key_near"} {
		k := key(id, "ten_acme")
		k.ExpiresAt, k.RotateBy = &near, &near
		if id == "key_revoked" {
			k.Status, k.RevokedAt = keyward.KeyRevoked, &t0
		}
		if err := s.CreateKey(ctx, k, keyward.ActorCLI); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Take the database back to schema version 3 and store what an older
	// release stored for 9999-12-31T23:30:00-23:59.
	year10000 := time.Date(9999, 12, 31, 23, 30, 0, 0, time.FixedZone("", -(23*3600+59*60))).UnixMicro()
	maxTime := time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`DELETE FROM goose_db_version WHERE version_id = 4`, nil},
		{`UPDATE keys SET expires_at = ?, rotate_by = ? WHERE id IN ('key_far', 'key_revoked')`, []any{year10000, year10000}},
		{`UPDATE keys SET rotate_by = ? WHERE id = 'key_rotate'`, []any{year10000}},
		{`UPDATE keys SET expires_at = ?, rotate_by = ? WHERE id = 'key_max'`, []any{maxTime.UnixMicro(), maxTime.UnixMicro()}},
	} {
		if _, err := raw.ExecContext(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	var lastSeq, audits int64
	if err := raw.QueryRowContext(ctx, `SELECT (SELECT max(seq) FROM changes), (SELECT count(*) FROM audit_log)`).Scan(&lastSeq, &audits); err != nil {
		t.Fatal(err)
	}

	migrated := time.Now()
	s2 := open(t, path)
	want := map[string][2]time.Time{
		"key_far":     {maxTime, maxTime},
		"key_revoked": {maxTime, maxTime},
		"key_rotate":  {near, maxTime},
		"key_max":     {maxTime, maxTime},
		"key_near":    {near, near},
	}
	for id, w := range want {
		k, err := s2.Key(ctx, id)
		if err != nil {
			t.Fatalf("Key(%s): %v", id, err)
		}
		if k.ExpiresAt == nil || !k.ExpiresAt.Equal(w[0]) || k.RotateBy == nil || !k.RotateBy.Equal(w[1]) {
			t.Errorf("%s: expires_at %v, rotate_by %v; want %v, %v", id, k.ExpiresAt, k.RotateBy, w[0], w[1])
		}
		if _, err := json.Marshal(k); err != nil {
			t.Errorf("%s: json.Marshal: %v", id, err)
		}
	}
	if k, err := s2.Key(ctx, "key_revoked"); err != nil || k.Status != keyward.KeyRevoked {
		t.Errorf("key_revoked: %+v, %v; want it still revoked", k, err)
	}
	keys, _, err := s2.Keys(ctx, keyward.KeyFilter{}, keyward.Page{})
	if err != nil {
		t.Fatalf("Keys: %v", err)
	}
	if _, err := json.Marshal(keys); err != nil {
		t.Errorf("json.Marshal(Keys): %v", err)
	}
	// The migration stored the clamped times: the store does not only read
	// them so.
	var over int
	if err := raw.QueryRowContext(ctx, `SELECT count(*) FROM keys WHERE expires_at > ? OR rotate_by > ?`, maxTime.UnixMicro(), maxTime.UnixMicro()).Scan(&over); err != nil || over != 0 {
		t.Errorf("%d keys store a time after %v (%v); want none", over, maxTime, err)
	}

	changes, err := s2.Changes(ctx, lastSeq, 0)
	if err != nil {
		t.Fatal(err)
	}
	var changed []string
	for _, c := range changes {
		if c.Kind != keyward.ChangeKey {
			t.Errorf("change %+v; want a key's", c)
		}
		if c.At.Before(migrated.Add(-time.Second)) || c.At.After(time.Now().Add(time.Second)) {
			t.Errorf("change %+v made at %v; want the time of the migration, %v", c, c.At, migrated)
		}
		changed = append(changed, c.ID)
	}
	if got, want := strings.Join(changed, " "), "key_far key_revoked key_rotate"; got != want {
		t.Errorf("changes of keys %q; want %q", got, want)
	}
	var audits2 int64
	if err := raw.QueryRowContext(ctx, `SELECT count(*) FROM audit_log`).Scan(&audits2); err != nil || audits2 != audits {
		t.Errorf("%d audit entries after migrating (%v); want %d as before", audits2, err, audits)
	}
}
