// Package postgres is the PostgreSQL store of Keyward: a keyward.Store on
// one PostgreSQL database, opened with github.com/jackc/pgx/v5 (a pgxpool),
// and the schema migrations of that database (embedded, run with goose, as
// the SQLite store runs its own). The store's queries and transactions are
// package sqlstore's, which the SQLite store shares, run through database/sql
// on the pool (pgx's stdlib driver); this package connects, says how
// PostgreSQL differs (dialect.go), and listens for changes on a connection
// of its own (notify.go).
//
// Several servers and the command line may use one database at once; each
// sees the others' changes through the change feed. It behaves as the
// SQLite store does, and passes the same suite (package storetest):
//
//   - Every transaction that changes a tenant, a key, a member, a plan or
//     the permission catalogue takes the store's write lock first (a
//     transaction-level advisory lock, held until commit or rollback), so
//     that writes happen one at a time, as SQLite's do.
//     Change sequence numbers and audit ids, drawn from identity columns,
//     are therefore handed out in commit order: a follower that reads the
//     feed from the last number it saw misses no change that commits later.
//   - Times are stored as bigint microseconds since the Unix epoch and read
//     back in UTC: a time is kept to the microsecond, and anything finer is
//     dropped.
//   - Ids are compared byte by byte (COLLATE "C"), so lists come in the same
//     order as from SQLite whatever the locale of the database.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/keyward/keyward"
	"github.com/keyward/keyward/sqlstore"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// migrations holds the schema migrations, applied in order by goose.
//
//go:embed migrations/*.sql
var migrations embed.FS

// DefaultConnectTimeout is how long Open, and every new connection after it,
// waits for the server when the DSN sets no connect_timeout.
const DefaultConnectTimeout = 10 * time.Second

// Store is a keyward.Store on one PostgreSQL database. It is safe for
// concurrent use, and other Stores, in this process or another, may use the
// same database at the same time.
type Store struct {
	*sqlstore.Store
	pool *pgxpool.Pool
	// where names the database without a password.
	where string
	// addr is the host:port of the server.
	addr string
	// database and user are the database's name and the user's.
	database, user string
	// log receives what the change listener has to say; never a password.
	log *slog.Logger
}

// Option changes how Open opens the database.
type Option func(*Store)

// WithLogger sends the store's own log lines (the change listener's lost
// and regained connection) to l instead of slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(s *Store) { s.log = l }
}

var _ keyward.Store = (*Store)(nil)

// Open connects to the PostgreSQL database that dsn names and migrates its
// schema to the latest version. The dsn is a URL (postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=…,
// or postgresql://…) or a key=value string, as libpq reads them; the
// database must exist. A connect_timeout in the dsn bounds every connection
// attempt; without one, DefaultConnectTimeout does.
//
// A dsn that cannot be read, a database that does not exist or refused
// credentials return a *keyward.Error with CodeInvalidRequest; a server that
// cannot be reached, or does not answer in time, one with
// CodeStorageUnavailable. Both messages name the server's host:port and
// never contain the password.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(strings.TrimSpace(dsn))
	if err != nil {
		// pgconn's error redacts the password it finds.
		return nil, &keyward.Error{
			Code:    keyward.CodeInvalidRequest,
			Message: "cannot read the PostgreSQL address; use postgres://USER:PASSWORD@HOST:PORT/DATABASE",
			Err:     err,
		}
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	s := &Store{where: describe(cfg), addr: address(cfg), database: cfg.ConnConfig.Database, user: cfg.ConnConfig.User, log: slog.Default()}
	for _, opt := range opts {
		opt(s)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, s.connectError(err, cfg.ConnConfig.ConnectTimeout)
	}
	s.pool = pool
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, s.connectError(err, cfg.ConnConfig.ConnectTimeout)
	}
	if err := s.Migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	db := stdlib.OpenDBFromPool(pool)
	if s.Store, err = sqlstore.New(ctx, sqlstore.Config{Write: db, Read: db, Name: s.where, Dialect: dialect(pool)}); err != nil {
		db.Close()
		pool.Close()
		return nil, dbError(err)
	}
	return s, nil
}

// Path names the database as postgres://USER@HOST:PORT/DATABASE, without
// its password, for logs and messages.
func (s *Store) Path() string { return s.where }

// String is Path.
func (s *Store) String() string { return s.where }

// Migrate applies the schema migrations that the database lacks. Open runs
// it; running it again does nothing. Processes that migrate one database at
// once take turns: goose holds a session advisory lock while it migrates.
func (s *Store) Migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return keyward.Internal(err)
	}
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 120))
	if err != nil {
		return keyward.Internal(err)
	}
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(sqlstore.Migrations()...),
		goose.WithLogger(goose.NopLogger()),
		goose.WithSessionLocker(locker),
	)
	if err != nil {
		return keyward.Internal(fmt.Errorf("postgres: migrations: %w", err))
	}
	if _, err := p.Up(ctx); err != nil {
		if e := dbError(err); keyward.ErrorCode(e) == keyward.CodeStorageUnavailable {
			return e
		}
		return &keyward.Error{
			Code:    keyward.CodeInternal,
			Message: fmt.Sprintf("cannot migrate database %s; try again, and report it if it persists.", s.where),
			Err:     err,
		}
	}
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT 1`).Scan(&n); err != nil {
		return &keyward.Error{
			Code:    keyward.CodeStorageUnavailable,
			Message: fmt.Sprintf("The database at %s does not answer; try again later.", s.addr),
			Err:     err,
		}
	}
	return nil
}

// Close closes the connection pool, waiting for connections in use to be
// given back.
func (s *Store) Close() error {
	err := s.Store.Close()
	s.pool.Close()
	return err
}

// connectError describes why Open could not reach the database.
func (s *Store) connectError(err error, timeout time.Duration) error {
	code := keyward.CodeStorageUnavailable
	reason := "it cannot be reached"
	var pe interface{ SQLState() string }
	switch {
	case errors.As(err, &pe) && pe.SQLState() == "3D000":
		code, reason = keyward.CodeInvalidRequest, "the database does not exist; create it first (createdb)"
	case errors.As(err, &pe) && (pe.SQLState() == "28P01" || pe.SQLState() == "28000"):
		code, reason = keyward.CodeInvalidRequest, "the server refused the user name or password"
	case isTimeout(err):
		reason = fmt.Sprintf("no answer within %s (connect_timeout); is the address right and the server up?", timeout)
	case isRefused(err):
		reason = "connection refused; is the server running and listening on that address?"
	case errors.As(err, &pe):
		reason = "the server refused the connection"
	}
	return &keyward.Error{
		Code:    code,
		Message: fmt.Sprintf("cannot connect to PostgreSQL at %s (database %q, user %q): %s", s.addr, s.database, s.user, reason),
		Err:     err,
	}
}

// address returns host:port of the server that cfg names first.
func address(cfg *pgxpool.Config) string {
	host := cfg.ConnConfig.Host
	if strings.HasPrefix(host, "/") {
		return fmt.Sprintf("%s/.s.PGSQL.%d", host, cfg.ConnConfig.Port)
	}
	return net.JoinHostPort(host, strconv.Itoa(int(cfg.ConnConfig.Port)))
}

// describe names the database that cfg opens, without a password.
func describe(cfg *pgxpool.Config) string {
	u := url.URL{Scheme: "postgres", Path: "/" + cfg.ConnConfig.Database}
	if cfg.ConnConfig.User != "" {
		u.User = url.User(cfg.ConnConfig.User)
	}
	if strings.HasPrefix(cfg.ConnConfig.Host, "/") {
		u.RawQuery = url.Values{"host": {cfg.ConnConfig.Host}}.Encode()
	} else {
		u.Host = net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port)))
	}
	return u.String()
}
