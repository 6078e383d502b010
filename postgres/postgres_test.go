package postgres_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) keyward.Store {
		return open(t, pg.Database(t))
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
	if err := s.CreateTenant(ctx, tenant("ten_acme"), keyward.ActorCLI); keyward.ErrorCode(err) != keyward.CodeStorageUnavailable {
		t.Errorf("CreateTenant: %v, want %s", err, keyward.CodeStorageUnavailable)
	}
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
			dsn := pg.Database(t)
			s, err := postgres.Open(ctx, dsn)
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
			s.Close()
			// Take the database back to its schema before settings.
			raw, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{`DROP TABLE settings`, `DELETE FROM goose_db_version WHERE version_id >= 3`} {
				if _, err := raw.Exec(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			raw.Close(ctx)

			got, err := open(t, dsn).KeyPrefix(ctx)
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
	dsn := pg.Database(t)
	s, err := postgres.Open(ctx, dsn)
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
	s.Close()

	// Take the database back to schema version 3 and store what an older
	// release stored for 9999-12-31T23:30:00-23:59.
	year10000 := time.Date(9999, 12, 31, 23, 30, 0, 0, time.FixedZone("", -(23*3600+59*60))).UnixMicro()
	maxTime := time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
	raw, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close(context.WithoutCancel(ctx))
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`DELETE FROM goose_db_version WHERE version_id = 4`, nil},
		{`UPDATE keys SET expires_at = $1, rotate_by = $1 WHERE id IN ('key_far', 'key_revoked')`, []any{year10000}},
		{`UPDATE keys SET rotate_by = $1 WHERE id = 'key_rotate'`, []any{year10000}},
		{`UPDATE keys SET expires_at = $1, rotate_by = $1 WHERE id = 'key_max'`, []any{maxTime.UnixMicro()}},
	} {
		if _, err := raw.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	var lastSeq, audits int64
	if err := raw.QueryRow(ctx, `SELECT (SELECT max(seq) FROM changes), (SELECT count(*) FROM audit_log)`).Scan(&lastSeq, &audits); err != nil {
		t.Fatal(err)
	}

	migrated := time.Now()
	s2 := open(t, dsn)
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
	if err := raw.QueryRow(ctx, `SELECT count(*) FROM keys WHERE expires_at > $1 OR rotate_by > $1`, maxTime.UnixMicro()).Scan(&over); err != nil || over != 0 {
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
	if err := raw.QueryRow(ctx, `SELECT count(*) FROM audit_log`).Scan(&audits2); err != nil || audits2 != audits {
		t.Errorf("%d audit entries after migrating (%v); want %d as before", audits2, err, audits)
	}
}
