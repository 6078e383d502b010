// Package scale fills a store with many keys quickly, for the benchmarks
// that measure verification with a million keys stored (BenchmarkScale in
// package verify, run by scripts/scale).
//
// Creating a million keys through Store.CreateKey would take a million
// transactions, each with an audit entry and a change-feed row. The loader
// creates the tenants through the store, then writes the keys table
// directly: with INSERTs in large transactions on SQLite, with
// COPY on PostgreSQL. Its rows are those the stores write: keys generated
// in the instance's format (apikey.Format.Generate), hashed with
// apikey.Hash, shown as apikey.Display shows them, and the columns of
// sqlrow.KeyColumns encoded as the stores encode them, so that the stores
// and the verifier read them as any other key. The keys get no audit entry
// and no change-feed row: verification reads neither (a verifier reads the
// feed from its end).
//
// Only the plaintexts of the keys that a benchmark presents are kept (see
// Options.Keep); the rest exist in the store only as hashes.
package scale

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/sqlrow"
	"github.com/keyward/keyward/postgres"
	"github.com/keyward/keyward/sqlite"
	_ "modernc.org/sqlite" // the driver "sqlite", for the loader's own connection
)

// DefaultKeysPerTenant is how many keys each tenant gets when
// Options.KeysPerTenant is zero.
const DefaultKeysPerTenant = 1000

// Permissions are the permissions of every loaded key, as in the verify
// package's tests.
var Permissions = []string{"messages:send", "contacts:read"}

// sqliteRowsPerTx is the number of rows written in one SQLite transaction.
const sqliteRowsPerTx = 100_000

// Options say what to load.
type Options struct {
	// Keys is the number of keys to store.
	Keys int
	// Keep is the number of keys whose plaintexts a load returns: every
	// (Keys/Keep)th key, so that they are spread over the whole load. It is
	// at most Keys; zero keeps none.
	Keep int
	// KeysPerTenant is how many keys each tenant holds
	// (DefaultKeysPerTenant); keys are given to tenants in blocks, in the
	// order they are written.
	KeysPerTenant int
	// Format is the key format of the instance; the zero Format means
	// apikey.DefaultPrefix.
	Format apikey.Format
	// Now is the creation time of the first key; each later key is created
	// a microsecond after the one before. The zero time means time.Now.
	Now time.Time
}

// Kept is a loaded key whose plaintext was kept.
type Kept struct {
	// Key is the plaintext, which verifies.
	Key string
	// ID and TenantID are those of the stored key.
	ID       string
	TenantID string
}

// Loaded is what a load stored and kept.
type Loaded struct {
	// Tenants are the ids of the tenants created, in order.
	Tenants []string
	// Kept are the keys whose plaintexts were kept, in the order they were
	// written.
	Kept []Kept
	// Keys is the number of keys stored.
	Keys int
}

// SQLite opens (creating and migrating it if need be) the SQLite database
// at path, creates the tenants through the store and writes opts.Keys keys
// into it. The database must hold no tenant with a slug of the form
// scale-N. It closes every connection it opened before it returns, leaving
// the write-ahead log checkpointed.
func SQLite(ctx context.Context, path string, opts Options) (*Loaded, error) {
	opts = opts.withDefaults()
	store, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	loaded, err := createTenants(ctx, store, opts)
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}

	db, err := sql.Open("sqlite", sqliteLoaderURI(store.Path()))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("scale: open %s: %w", path, err)
	}
	defer conn.Close()

	// One row per INSERT: a statement that writes several rows keeps a
	// statement journal, which costs more than the calls it saves.
	insert := `INSERT INTO keys (` + sqlrow.KeyColumns + `) VALUES (` +
		strings.TrimSuffix(strings.Repeat("?, ", len(keyColumns())), ", ") + `)`
	next, stop := loaded.produce(ctx, opts)
	defer stop()
	if err := writeSQLite(ctx, conn, insert, next); err != nil {
		return nil, fmt.Errorf("scale: write keys into %s: %w", path, err)
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return nil, fmt.Errorf("scale: checkpoint %s: %w", path, err)
	}
	return loaded, nil
}

// writeSQLite inserts the rows that next returns with insert on conn, in
// one transaction for every sqliteRowsPerTx of them.
func writeSQLite(ctx context.Context, conn *sql.Conn, insert string, next func() ([]any, error)) error {
	var (
		tx   *sql.Tx
		stmt *sql.Stmt
	)
	defer func() {
		if tx != nil {
			tx.Rollback()
		}
	}()
	for done := 1; ; done++ {
		row, err := next()
		if err != nil {
			return err
		}
		if row == nil {
			break
		}
		if tx == nil {
			var err error
			if tx, err = conn.BeginTx(ctx, nil); err != nil {
				return err
			}
			if stmt, err = tx.PrepareContext(ctx, insert); err != nil {
				return err
			}
		}
		if _, err := stmt.ExecContext(ctx, row...); err != nil {
			return err
		}
		if done%sqliteRowsPerTx == 0 {
			err := tx.Commit()
			tx = nil
			if err != nil {
				return err
			}
		}
	}
	if tx == nil {
		return nil
	}
	err := tx.Commit()
	tx = nil
	return err
}

// sqliteLoaderURI names the loader's connection to the database file at
// path: constraints checked as the store checks them, but no sync to disk
// and a page cache large enough for the indexes of a million keys, so that
// inserting in random key order stays fast.
func sqliteLoaderURI(path string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(OFF)")
	q.Add("_pragma", "cache_size(-1048576)") // KiB: 1 GiB at most
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}
	return u.String()
}

// Postgres opens (migrating it if need be) the PostgreSQL database that dsn
// names, creates the tenants through the store and copies opts.Keys keys
// into it with COPY, in one transaction; then it vacuums and analyzes the
// keys table, as autovacuum would in time. The database must hold no tenant
// with a slug of the form scale-N.
func Postgres(ctx context.Context, dsn string, opts Options) (*Loaded, error) {
	opts = opts.withDefaults()
	store, err := postgres.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	loaded, err := createTenants(ctx, store, opts)
	store.Close()
	if err != nil {
		return nil, err
	}

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("scale: connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	next, stop := loaded.produce(ctx, opts)
	defer stop()
	n, err := conn.CopyFrom(ctx, pgx.Identifier{"keys"}, keyColumns(), pgx.CopyFromFunc(next))
	if err != nil {
		return nil, fmt.Errorf("scale: copy keys: %w", err)
	}
	if n != int64(opts.Keys) {
		return nil, fmt.Errorf("scale: copied %d keys, want %d", n, opts.Keys)
	}
	if _, err := conn.Exec(ctx, `VACUUM (ANALYZE) keys`); err != nil {
		return nil, fmt.Errorf("scale: vacuum keys: %w", err)
	}
	return loaded, nil
}

// withDefaults fills in the defaults of the zero fields and bounds Keep.
func (o Options) withDefaults() Options {
	if o.KeysPerTenant <= 0 {
		o.KeysPerTenant = DefaultKeysPerTenant
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	o.Now = o.Now.UTC().Truncate(time.Microsecond)
	o.Keys = max(o.Keys, 0)
	o.Keep = min(max(o.Keep, 0), o.Keys)
	return o
}

// createTenants creates, through the store, one active tenant for every
// opts.KeysPerTenant keys (at least one), with its audit entry and change.
func createTenants(ctx context.Context, s keyward.TenantStore, opts Options) (*Loaded, error) {
	n := max(1, (opts.Keys+opts.KeysPerTenant-1)/opts.KeysPerTenant)
	l := &Loaded{Tenants: make([]string, n), Kept: make([]Kept, 0, opts.Keep)}
	for i := range n {
		t := &keyward.Tenant{
			ID:        apikey.NewID("ten"),
			Slug:      fmt.Sprintf("scale-%d", i),
			Plan:      keyward.DefaultPlan,
			Status:    keyward.TenantActive,
			CreatedAt: opts.Now,
			UpdatedAt: opts.Now,
		}
		if err := s.CreateTenant(ctx, t, keyward.CommandLineActor()); err != nil {
			return nil, fmt.Errorf("scale: create tenant %s: %w", t.Slug, err)
		}
		l.Tenants[i] = t.ID
	}
	return l, nil
}

// produce generates the rows of opts.Keys keys (see generate) in a
// goroutine, ahead of the writer. next returns them one at a time, then a
// nil row, or the error that ended the generation. stop ends the generation
// if it still runs and waits for it; call it before reading l.
func (l *Loaded) produce(ctx context.Context, opts Options) (next func() ([]any, error), stop func()) {
	ch := make(chan []any, 1024)
	ctx, cancel := context.WithCancel(ctx)
	var genErr error // written before ch is closed
	go func() {
		genErr = l.generate(opts, func(row []any) error {
			select {
			case ch <- row:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		close(ch)
	}()
	next = func() ([]any, error) {
		row, ok := <-ch
		if !ok {
			return nil, genErr
		}
		return row, nil
	}
	stop = func() {
		cancel()
		for range ch { // until the goroutine closes it
		}
	}
	return next, stop
}

// generate makes opts.Keys keys in order and passes each, as the values of
// keyColumns, to write, keeping the plaintexts that opts asks for. It stops
// at the first error of write.
func (l *Loaded) generate(opts Options, write func(row []any) error) error {
	if opts.Keys == 0 {
		return nil
	}
	cols := len(keyColumns())
	stride := 0
	if opts.Keep > 0 {
		stride = opts.Keys / opts.Keep
	}
	for i := range opts.Keys {
		plain, err := opts.Format.Generate(keyward.Live)
		if err != nil {
			return err
		}
		k := keyward.Key{
			ID:          apikey.NewID("key"),
			TenantID:    l.Tenants[i/opts.KeysPerTenant],
			Environment: keyward.Live,
			Name:        fmt.Sprintf("scale key %d", i),
			Head:        apikey.Head(plain),
			Hash:        apikey.Hash(plain),
			Permissions: Permissions,
			Status:      keyward.KeyActive,
			CreatedAt:   opts.Now.Add(time.Duration(i) * time.Microsecond),
			CreatedBy:   keyward.CommandLineActor().ID,
		}
		k.Start, k.Last4 = apikey.Display(plain)
		k.UpdatedAt = k.CreatedAt
		if stride > 0 && i%stride == 0 && len(l.Kept) < opts.Keep {
			l.Kept = append(l.Kept, Kept{Key: plain, ID: k.ID, TenantID: k.TenantID})
		}
		// The values of keyColumns, as the stores' insertKey writes them.
		row, err := sqlrow.KeyValues(&k)
		if err != nil {
			return err
		}
		if len(row) != cols {
			return fmt.Errorf("scale: a key row has %d values for the %d columns of sqlrow.KeyColumns; update the loader",
				len(row), cols)
		}
		if err := write(row); err != nil {
			return err
		}
		l.Keys = i + 1
	}
	return nil
}

// keyColumns returns the names in sqlrow.KeyColumns.
func keyColumns() []string {
	cols := strings.Split(sqlrow.KeyColumns, ",")
	for i, c := range cols {
		cols[i] = strings.TrimSpace(c)
	}
	return cols
}
