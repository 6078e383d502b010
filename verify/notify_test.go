package verify_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/postgres"
	"github.com/keyward/keyward/verify"
)

// The PostgreSQL store wakes the verifier through LISTEN/NOTIFY.
var _ verify.Notifier = (*postgres.Store)(nil)

// pgFixture is two stores on one throwaway PostgreSQL database and a
// started verifier on the second, which polls the feed only once an hour:
// only a notification can make it read the feed in time.
type pgFixture struct {
	t      *testing.T
	dsn    string
	a, b   *postgres.Store
	v      *verify.Verifier
	format apikey.Format
	tenant *keyward.Tenant
}

func newPGFixture(t *testing.T, srv *pgtest.Server) *pgFixture {
	t.Helper()
	dsn := srv.Database(t)
	open := func() *postgres.Store {
		s, err := postgres.Open(t.Context(), dsn)
		if err != nil {
			t.Fatalf("postgres.Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	f := &pgFixture{t: t, dsn: dsn, a: open(), b: open()}
	var err error
	if f.format, err = apikey.NewFormat(apikey.DefaultPrefix); err != nil {
		t.Fatal(err)
	}
	f.v = verify.New(f.b, verify.Options{Format: f.format, PollInterval: time.Hour})
	if err := f.v.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	// Registered after the stores' Close, so run before them.
	t.Cleanup(func() {
		if err := f.v.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	f.tenant = createTenant(t, f.a, apikey.NewID("ten"), "acme", time.Now())
	return f
}

// createKey stores a new key through store A and returns its plaintext.
func (f *pgFixture) createKey() (string, *keyward.Key) {
	f.t.Helper()
	plain, err := f.format.Generate(keyward.Live)
	if err != nil {
		f.t.Fatal(err)
	}
	startHint, last4 := apikey.Display(plain)
	now := time.Now().UTC().Truncate(time.Microsecond)
	k := &keyward.Key{
		ID: apikey.NewID("key"), TenantID: f.tenant.ID, Environment: keyward.Live, Name: "test key",
		Head: apikey.Head(plain), Start: startHint, Last4: last4, Hash: apikey.Hash(plain),
		Permissions: []string{"messages:send"}, Metadata: map[string]string{},
		Status: keyward.KeyActive, CreatedAt: now, CreatedBy: "cli", UpdatedAt: now,
	}
	if err := f.a.CreateKey(context.Background(), k, keyward.CommandLineActor()); err != nil {
		f.t.Fatalf("CreateKey: %v", err)
	}
	return plain, k
}

func (f *pgFixture) valid(plain string) bool {
	return f.v.Verify(context.Background(), verify.Request{Key: plain, IP: netip.MustParseAddr("192.0.2.10")}).Valid()
}

// cachedKey creates a key through store A and has B's verifier cache it.
func (f *pgFixture) cachedKey() (string, *keyward.Key) {
	f.t.Helper()
	plain, k := f.createKey()
	if !f.valid(plain) {
		f.t.Fatal("a new key is refused")
	}
	return plain, k
}

func (f *pgFixture) revoke(k *keyward.Key) {
	f.t.Helper()
	if _, err := f.a.RevokeKey(context.Background(), k.ID, time.Now(), keyward.CommandLineActor()); err != nil {
		f.t.Fatalf("RevokeKey: %v", err)
	}
}

// admin connects to the server's database postgres, apart from both
// stores, and returns the connection and the name of the fixture's
// database.
func (f *pgFixture) admin() (*pgx.Conn, string) {
	f.t.Helper()
	cfg, err := pgx.ParseConfig(f.dsn)
	if err != nil {
		f.t.Fatal(err)
	}
	db := cfg.Database
	cfg.Database = "postgres"
	c, err := pgx.ConnectConfig(f.t.Context(), cfg)
	if err != nil {
		f.t.Fatalf("connect: %v", err)
	}
	f.t.Cleanup(func() { c.Close(context.Background()) })
	return c, db
}

// listenerPID returns the backend pid of the listening connection to
// database db, or 0 when there is none.
func listenerPID(t *testing.T, c *pgx.Conn, db string) int {
	t.Helper()
	var pid int
	err := c.QueryRow(t.Context(),
		`SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'keyward-listen'`, db).Scan(&pid)
	if err != nil {
		t.Fatalf("pg_stat_activity: %v", err)
	}
	return pid
}

func TestNotifyPostgres(t *testing.T) {
	srv := pgtest.New()
	t.Cleanup(srv.Stop)

	t.Run("revocation on another store is enforced within 1 s", func(t *testing.T) {
		f := newPGFixture(t, srv)
		for range 3 {
			plain, k := f.cachedKey()
			f.revoke(k)
			eventually(t, time.Second, "revoked key refused by the other store's verifier", func() bool { return !f.valid(plain) })
		}
	})

	t.Run("a listener that lost its connection catches up from the feed", func(t *testing.T) {
		f := newPGFixture(t, srv)
		plain, k := f.cachedKey()
		admin, db := f.admin()
		var pid int
		eventually(t, 5*time.Second, "listener connected", func() bool { pid = listenerPID(t, admin, db); return pid != 0 })

		// Keep the listener out while the key is revoked: no connection
		// to the database can be made, while the stores' open ones stay.
		name := pgx.Identifier{db}.Sanitize()
		if _, err := admin.Exec(t.Context(), `ALTER DATABASE `+name+` ALLOW_CONNECTIONS false`); err != nil {
			t.Fatalf("ALTER DATABASE: %v", err)
		}
		t.Cleanup(func() {
			admin.Exec(context.Background(), `ALTER DATABASE `+name+` ALLOW_CONNECTIONS true`)
		})
		if _, err := admin.Exec(t.Context(), `SELECT pg_terminate_backend($1)`, pid); err != nil {
			t.Fatalf("pg_terminate_backend: %v", err)
		}
		eventually(t, 5*time.Second, "listener disconnected", func() bool { return listenerPID(t, admin, db) == 0 })

		f.revoke(k)
		// Nobody listened: the verifier, polling hourly, cannot know yet.
		if !f.valid(plain) {
			t.Fatal("the key was refused before the listener came back; the test proves nothing")
		}

		if _, err := admin.Exec(t.Context(), `ALTER DATABASE `+name+` ALLOW_CONNECTIONS true`); err != nil {
			t.Fatalf("ALTER DATABASE: %v", err)
		}
		eventually(t, 10*time.Second, "listener reconnected", func() bool {
			p := listenerPID(t, admin, db)
			return p != 0 && p != pid
		})
		eventually(t, 2*time.Second, "key revoked while disconnected refused after reconnecting", func() bool { return !f.valid(plain) })

		// Notifications flow again on the new connection.
		plain2, k2 := f.cachedKey()
		f.revoke(k2)
		eventually(t, time.Second, "revocation after reconnecting refused", func() bool { return !f.valid(plain2) })
	})
}
