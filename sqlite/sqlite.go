// Package sqlite owns Keyward's embedded storage: a keyward.Store on one
// SQLite database file, opened with the pure Go driver modernc.org/sqlite,
// and the schema migrations of that file (embedded, run with goose). The
// store's queries and transactions are package sqlstore's, which the
// PostgreSQL store shares; this package opens the file, sets up its
// connections, and says how SQLite differs (dialect.go).
//
// The database runs in WAL mode with a busy timeout, so that several
// processes may use one file at once: a server reads and writes while the
// command line changes a key, and every server sees the change through the
// change feed. Within a process, writes go through a pool of one connection
// whose transactions begin with BEGIN IMMEDIATE and are on disk when they
// commit (synchronous=FULL: a change answered survives a power cut); reads
// go through a separate pool of read-only connections and never wait for a
// writer.
//
// Times are stored as INTEGER microseconds since the Unix epoch and read back
// in UTC: a time is kept to the microsecond, and anything finer is dropped.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/sqlstore"
	"github.com/pressly/goose/v3"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// migrations holds the schema migrations, applied in order by goose.
//
//go:embed migrations/*.sql
var migrations embed.FS

// Store is a keyward.Store on one SQLite database file: sqlstore's queries
// on a write pool and a read pool. It is safe for concurrent use, and other
// Stores, in this process or another, may use the same file at the same
// time. Close closes both pools; once the last connection to the file
// closes, SQLite checkpoints the write-ahead log into the database file.
type Store struct {
	*sqlstore.Store
	path string
	// w is the write pool: one connection, transactions begin immediate.
	w *sql.DB
	// r is the read pool: read-only connections.
	r *sql.DB
}

var _ keyward.Store = (*Store)(nil)

// Option changes how Open opens the database.
type Option func(*options)

type options struct {
	busyTimeout  time.Duration
	maxReadConns int
	mustExist    bool
	// synchronous is the synchronous pragma of the write connection.
	synchronous string
}

// WithBusyTimeout sets how long a write waits for another connection or
// process to release the database before it fails with
// keyward.CodeStorageUnavailable. The default is 10 seconds.
func WithBusyTimeout(d time.Duration) Option {
	return func(o *options) { o.busyTimeout = d }
}

// MustExist makes Open refuse, creating nothing, a database file that does
// not exist yet in a directory that does, with a *keyward.Error of
// CodeNotFound: for tools that should use a database made before, not start
// an empty one. Other problems with the path are reported as without it.
func MustExist() Option {
	return func(o *options) { o.mustExist = true }
}

// Open opens the SQLite database at dsn, creating the file if it does not
// exist, and migrates its schema to the latest version. The dsn is a file
// path, optionally written as "sqlite:PATH", "sqlite://PATH" or "file:PATH";
// any query string in it is ignored. In-memory databases are refused: the
// Store needs a file that several connections share.
//
// A path that cannot be used (missing directory, no permission, not a
// database) returns a *keyward.Error with CodeInvalidRequest whose message
// names the path and what is wrong with it.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	o := options{busyTimeout: 10 * time.Second, maxReadConns: max(4, runtime.NumCPU()), synchronous: "FULL"}
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxReadConns < 1 {
		o.maxReadConns = 1
	}
	path, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	if o.mustExist {
		_, err := os.Stat(path)
		if dir, derr := os.Stat(filepath.Dir(path)); errors.Is(err, fs.ErrNotExist) && derr == nil && dir.IsDir() {
			return nil, keyward.Errorf(keyward.CodeNotFound, "database %s does not exist", path)
		}
	}
	if err := checkPath(path); err != nil {
		return nil, err
	}

	w, err := sql.Open("sqlite", connURI(path, o, true))
	if err != nil {
		return nil, openError(path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	// Turning a new file to WAL mode can fail busy, without waiting, while
	// another process does the same; setting up is retried for as long as a
	// write would wait.
	err = retryBusy(ctx, o.busyTimeout, func() error {
		if err := w.PingContext(ctx); err != nil {
			return err
		}
		return probeWrite(ctx, w)
	})
	if err != nil {
		w.Close()
		return nil, openError(path, err)
	}

	r, err := sql.Open("sqlite", connURI(path, o, false))
	if err != nil {
		w.Close()
		return nil, openError(path, err)
	}
	r.SetMaxOpenConns(o.maxReadConns)
	r.SetMaxIdleConns(o.maxReadConns)
	r.SetConnMaxLifetime(0)
	r.SetConnMaxIdleTime(0)

	s := &Store{path: path, w: w, r: r}
	closePools := func() { r.Close(); w.Close() }
	if err := s.Migrate(ctx); err != nil {
		closePools()
		return nil, err
	}
	if err := retryBusy(ctx, o.busyTimeout, func() error { return r.PingContext(ctx) }); err != nil {
		closePools()
		return nil, openError(path, err)
	}
	if s.Store, err = sqlstore.New(ctx, sqlstore.Config{Write: w, Read: r, Name: path, Dialect: dialect()}); err != nil {
		closePools()
		return nil, openError(path, err)
	}
	return s, nil
}

// Path returns the absolute path of the database file.
func (s *Store) Path() string { return s.path }

// Migrate applies the schema migrations that the database lacks. Open runs
// it; running it again does nothing. When two processes migrate a new file
// at once, the one that loses the race retries and finds the work done.
func (s *Store) Migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return keyward.Internal(err)
	}
	// Each attempt applies what it can; one that loses a race to another
	// process (a migration applied meanwhile) tries again and finds more
	// done. Eight processes opening a new file at once need a few rounds
	// with eight migrations, so the attempts are bounded by time rather
	// than by a small count.
	var last error
	deadline := time.Now().Add(10 * time.Second)
	for attempt := 0; attempt == 0 || time.Now().Before(deadline); attempt++ {
		// A Provider remembers that it created its version table, even when
		// creating it failed; each attempt therefore takes a new one.
		p, err := goose.NewProvider(goose.DialectSQLite3, s.w, fsys,
			goose.WithDisableGlobalRegistry(true),
			goose.WithGoMigrations(sqlstore.Migrations()...),
			goose.WithLogger(goose.NopLogger()),
		)
		if err != nil {
			return keyward.Internal(fmt.Errorf("sqlite: migrations: %w", err))
		}
		if _, err := p.Up(ctx); err != nil {
			last = err
			select {
			case <-ctx.Done():
				return dbError(ctx.Err())
			case <-time.After(time.Duration(min(attempt+1, 10)) * 20 * time.Millisecond):
			}
			continue
		}
		return nil
	}
	return &keyward.Error{
		Code:    keyward.CodeInternal,
		Message: fmt.Sprintf("cannot migrate database %s; try again, and report it if it persists.", s.path),
		Err:     last,
	}
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master`).Scan(&n); err != nil {
		return &keyward.Error{
			Code:    keyward.CodeStorageUnavailable,
			Message: "The database does not answer; try again later.",
			Err:     err,
		}
	}
	return nil
}

// retryBusy calls fn until it returns nil or an error other than
// SQLITE_BUSY or SQLITE_LOCKED, or until timeout has passed.
func retryBusy(ctx context.Context, timeout time.Duration, fn func() error) error {
	deadline := time.Now().Add(timeout)
	wait := 5 * time.Millisecond
	for {
		err := fn()
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// probeWrite checks that the database can be written. SQLite opens a file
// it may not write read-only without a word, and the first write would fail
// long after Open; this write, rolled back, fails at once instead.
func probeWrite(ctx context.Context, w *sql.DB) error {
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var v int64
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, v))
	return err
}

// parseDSN returns the absolute file path that dsn names.
func parseDSN(dsn string) (string, error) {
	path := strings.TrimSpace(dsn)
	if p, ok := strings.CutPrefix(path, "sqlite:"); ok {
		path = p
		if p, ok := strings.CutPrefix(path, "//"); ok {
			path = p
		}
	}
	if strings.HasPrefix(path, "file:") {
		u, err := url.Parse(path)
		if err != nil {
			return "", keyward.Errorf(keyward.CodeInvalidRequest, "cannot open database %q: %v", dsn, err)
		}
		path = u.Path
		switch {
		case u.Opaque != "":
			path = u.Opaque // file:relative/path
		case u.Host != "" && u.Host != "localhost":
			path = u.Host + u.Path // file://relative/path
		}
	} else if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if path == "" {
		return "", keyward.Errorf(keyward.CodeInvalidRequest, "cannot open database: no file path given (use sqlite:PATH)")
	}
	if path == ":memory:" || strings.Contains(dsn, "mode=memory") {
		return "", keyward.Errorf(keyward.CodeInvalidRequest, "cannot open database %q: in-memory databases are not supported; give a file path", dsn)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", keyward.Errorf(keyward.CodeInvalidRequest, "cannot open database %s: %v", path, err)
	}
	return abs, nil
}

// checkPath reports, before SQLite tries, the common reasons a path cannot
// hold a database, in words that say what to fix.
func checkPath(path string) error {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return pathError(path, fmt.Sprintf("directory %s does not exist", dir), err)
	case errors.Is(err, fs.ErrPermission):
		return pathError(path, fmt.Sprintf("permission denied on directory %s", dir), err)
	case err != nil:
		// An ancestor that is a regular file says "not a directory".
		return pathError(path, fmt.Sprintf("directory %s cannot be used: %v", dir, unwrapPathError(err)), err)
	case !fi.IsDir():
		return pathError(path, fmt.Sprintf("%s is not a directory", dir), nil)
	}
	fi, err = os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return pathError(path, "it is a directory, not a file", nil)
	case errors.Is(err, fs.ErrPermission):
		return pathError(path, "permission denied", err)
	}
	return nil
}

// openError describes why SQLite could not open or set up the file at path.
func openError(path string, err error) error {
	reason := "it cannot be opened"
	code := keyward.CodeInvalidRequest
	var se *msqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH:
			if _, serr := os.Stat(path); serr == nil {
				reason = "permission denied on the file"
			} else {
				reason = fmt.Sprintf("the file cannot be created in directory %s (is it writable?)", filepath.Dir(path))
			}
		case sqlite3.SQLITE_READONLY:
			reason = "the file or its directory is read-only"
		case sqlite3.SQLITE_NOTADB:
			reason = "the file is not a SQLite database"
		case sqlite3.SQLITE_CORRUPT:
			reason = "the database file is corrupt"
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			reason = "the database is locked by another process; try again"
			code = keyward.CodeStorageUnavailable
		case sqlite3.SQLITE_FULL:
			reason = "the disk is full"
			code = keyward.CodeStorageUnavailable
		case sqlite3.SQLITE_IOERR:
			reason = "an I/O error occurred"
			code = keyward.CodeStorageUnavailable
		}
	}
	return &keyward.Error{Code: code, Message: fmt.Sprintf("cannot open database %s: %s", path, reason), Err: err}
}

func pathError(path, reason string, err error) error {
	return &keyward.Error{
		Code:    keyward.CodeInvalidRequest,
		Message: fmt.Sprintf("cannot open database %s: %s", path, reason),
		Err:     err,
	}
}

// unwrapPathError returns the system error inside a *fs.PathError, whose
// own text repeats the path.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// connURI returns the driver's name for a connection to path: a file: URI,
// so that SQLite reads the path escaped, with the pragmas every connection
// needs. Write connections begin their transactions immediate, and commit
// with synchronous=FULL: SQLite syncs the write-ahead log to disk before a
// commit returns, so that a change answered survives a crash of the
// operating system or a power cut (with NORMAL, the last commits before one
// could be lost). That costs an fsync per write transaction: per management
// change, and per batch of last-use times (one a --flush-interval). Read
// connections are query-only; synchronous does not matter to them, since
// they commit nothing, and a checkpoint, which one may run when it closes
// last, is synced at NORMAL too.
func connURI(path string, o options, write bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", o.busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	if write {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous("+o.synchronous+")")
		q.Set("_txlock", "immediate")
	} else {
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Add("_pragma", "query_only(1)")
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}
	return u.String()
}
