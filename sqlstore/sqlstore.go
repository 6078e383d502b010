// Package sqlstore owns the logic of Keyward's SQL stores: every query and
// transaction of a keyward.Store, written once on database/sql and run by
// both engines. Package sqlite opens a SQLite file with it, package postgres
// a PostgreSQL database (through the pgx stdlib driver); each fills a
// Dialect with what its engine does differently, and keeps its own schema
// migrations, connection pools and errors of opening.
//
// Queries are written with ? placeholders, as SQLite takes them; a store on
// an engine that numbers them ($1, $2…) rewrites them before it runs them.
// No query holds a ? in a string literal.
//
// Every transaction that changes a tenant, a key, a member, a plan or the
// permission catalogue holds the engine's write lock from its start to its
// end (SQLite's BEGIN IMMEDIATE on its single write connection,
// PostgreSQL's advisory lock), so that writes happen one at a time: change
// sequence numbers and audit ids are handed out in commit order, and a
// follower that reads the feed from the last number it saw misses no
// change that commits later. The rules that span rows (a tenant keeps an
// active owner, a plan's key limit, a key's member, a permission removed
// only while nothing holds it) are checked in the transaction that makes
// the change, and hold for the same reason: no other write comes between
// the check and the change.
//
// Times are stored as integer microseconds since the Unix epoch and read
// back in UTC (see internal/sqlrow).
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/sqlrow"
)

// Dialect is what an engine does differently from the other: how it numbers
// placeholders, takes the write lock, tells listeners of changes, and what
// its errors mean. Package sqlite and package postgres each fill one.
type Dialect struct {
	// Name names the engine in errors about data it cannot read ("sqlite").
	Name string
	// Numbered says that placeholders are numbered, $1, $2…, rather than ?.
	Numbered bool
	// QueryRow, if not nil, runs the query of a verification's cache miss
	// (KeyByHash) on the engine's own driver, which prepares and caches it
	// (pgx's pool: through database/sql, each query there takes a
	// connection wrapper of its own, which doubled the allocations of a
	// miss). Without it the store prepares that query once on the read
	// pool (SQLite: compiling it again on every miss took a third of the
	// miss). Its errors, and its lack of a row, are as database/sql's.
	QueryRow func(ctx context.Context, query string, args ...any) sqlrow.Scanner
	// LockWrites is the statement that a transaction that changes the
	// database (but for RecordUsage and PruneChanges) runs first, to take
	// the write lock; empty when beginning a
	// transaction on the write pool takes it already (SQLite's BEGIN
	// IMMEDIATE).
	LockWrites string
	// NotifyChanges is the statement that a transaction that appends to the
	// change feed runs last, to wake the listeners of the feed once it
	// commits; empty for none.
	NotifyChanges string
	// Error turns an error of the driver, not nil, not a *keyward.Error
	// and not a context's deadline, into a *keyward.Error (see Error).
	Error func(err error) error
	// Unique reports whether err violates the primary key or the unique
	// constraint on column, named "table.column".
	Unique func(err error, column string) bool
	// ForeignKey reports whether err violates a foreign key.
	ForeignKey func(err error) bool
	// ExecBatch, if not nil, runs query once with each list of arguments,
	// in one transaction that does not take the write lock, sending them
	// together. Without it the store runs them one after the other in one
	// transaction on the write pool. The query's placeholders are the
	// engine's.
	ExecBatch func(ctx context.Context, query string, args [][]any) error
}

// Config is what New needs.
type Config struct {
	// Write is the pool of the transactions that change the database, Read
	// the pool of reads; they may be the same.
	Write, Read *sql.DB
	// Name names the database in messages: a file's path, or a URL
	// without a password.
	Name    string
	Dialect Dialect
}

// Store is a keyward.Store on one SQL database but for Ping, which the
// engine that embeds it adds. It is safe for concurrent use, and other
// Stores, in this process or another, may use the same database at the
// same time.
type Store struct {
	w, r *sql.DB
	name string
	d    Dialect
	// keyByHashQuery is the query of a verification's cache miss, with the
	// engine's placeholders; keyByHash is it prepared, unless the dialect
	// runs it (Dialect.QueryRow).
	keyByHashQuery string
	keyByHash      *sql.Stmt
}

// A Store is every part of a keyward.Store but Ping.
var _ interface {
	keyward.TenantStore
	keyward.KeyStore
	keyward.MemberStore
	keyward.PlanStore
	keyward.Catalogue
	keyward.AuditStore
	keyward.ChangeFeed
	keyward.Settings
	keyward.AccountStore
	keyward.NoticeStore
} = (*Store)(nil)

// New returns a Store on the pools of c, whose schema is migrated already.
// Close closes the pools.
func New(ctx context.Context, c Config) (*Store, error) {
	s := &Store{w: c.Write, r: c.Read, name: c.Name, d: c.Dialect}
	s.keyByHashQuery = s.rebind(`SELECT ` + sqlrow.KeyColumns + ` FROM keys WHERE hash = ?`)
	if s.d.QueryRow == nil {
		stmt, err := s.r.PrepareContext(ctx, s.keyByHashQuery)
		if err != nil {
			return nil, err
		}
		s.keyByHash = stmt
	}
	return s, nil
}

// Close closes the prepared statement and both pools. The engine closes
// what it opened besides.
func (s *Store) Close() error {
	var errs []error
	if s.keyByHash != nil {
		errs = append(errs, s.keyByHash.Close())
	}
	errs = append(errs, s.r.Close())
	if s.w != s.r {
		errs = append(errs, s.w.Close())
	}
	return errors.Join(errs...)
}

// querier is a *sql.DB or a *sql.Tx.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// rebind returns query with the engine's placeholders.
func (s *Store) rebind(query string) string {
	if !s.d.Numbered || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] != '?' {
			b.WriteByte(query[i])
			continue
		}
		n++
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

func (s *Store) exec(ctx context.Context, q querier, query string, args ...any) (sql.Result, error) {
	return q.ExecContext(ctx, s.rebind(query), args...)
}

func (s *Store) query(ctx context.Context, q querier, query string, args ...any) (*sql.Rows, error) {
	return q.QueryContext(ctx, s.rebind(query), args...)
}

func (s *Store) row(ctx context.Context, q querier, query string, args ...any) *sql.Row {
	return q.QueryRowContext(ctx, s.rebind(query), args...)
}

// err turns an error of the driver into a *keyward.Error.
func (s *Store) err(err error) error {
	return Error(err, s.d.Error)
}

// Error turns an error of a driver into a *keyward.Error: nil stays nil, an
// error that is a *keyward.Error already passes unchanged, a context whose
// deadline passed is a Timeout, and classify says what any other error is.
func Error(err error, classify func(error) error) error {
	if err == nil {
		return nil
	}
	var ke *keyward.Error
	if errors.As(err, &ke) {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return Timeout(err)
	}
	return classify(err)
}

// Timeout is the error of a database that did not answer in time: a
// keyward.CodeStorageUnavailable that wraps err.
func Timeout(err error) error {
	return &keyward.Error{Code: keyward.CodeStorageUnavailable, Message: "The database did not answer in time; try again.", Err: err}
}

// write runs fn in one transaction that holds the write lock, and commits it
// when fn returns nil. Errors come back as *keyward.Error.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.inTx(ctx, true, fn)
}

// inTx runs fn in one transaction on the write pool, holding the write lock
// when locked is true, and commits it when fn returns nil.
func (s *Store) inTx(ctx context.Context, locked bool, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.err(err)
	}
	defer tx.Rollback()
	if locked && s.d.LockWrites != "" {
		if _, err := tx.ExecContext(ctx, s.d.LockWrites); err != nil {
			return s.err(err)
		}
	}
	if err := fn(tx); err != nil {
		return s.err(err)
	}
	if err := tx.Commit(); err != nil {
		return s.err(err)
	}
	return nil
}

// record writes the audit entry of a change and its entries in the change
// feed, in the transaction that makes the change. The entry names the
// actor's key, address and member.
func (s *Store) record(ctx context.Context, tx *sql.Tx, at time.Time, by keyward.Actor, action, tenantID, target string, changes ...keyward.Change) error {
	return s.recordRelated(ctx, tx, at, by, action, tenantID, target, "", changes...)
}

// recordRelated is record for an action that concerns a second id too.
func (s *Store) recordRelated(ctx context.Context, tx *sql.Tx, at time.Time, by keyward.Actor, action, tenantID, target, related string, changes ...keyward.Change) error {
	if _, err := s.exec(ctx, tx,
		`INSERT INTO audit_log (at, actor, actor_ip, actor_member, action, tenant_id, target, related) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		at.UnixMicro(), by.ID, by.IP, by.MemberID, action, tenantID, target, related); err != nil {
		return err
	}
	if err := s.emitKeyEvent(ctx, tx, at, by, action, target, related); err != nil {
		return err
	}
	for _, c := range changes {
		if _, err := s.exec(ctx, tx,
			`INSERT INTO changes (kind, id, at) VALUES (?, ?, ?)`,
			c.Kind, c.ID, at.UnixMicro()); err != nil {
			return err
		}
	}
	if len(changes) > 0 && s.d.NotifyChanges != "" {
		// Delivered to the listeners on commit only; one per transaction
		// is enough, as listeners read the feed from where they are.
		if _, err := tx.ExecContext(ctx, s.d.NotifyChanges); err != nil {
			return err
		}
	}
	return nil
}

// ids runs query, which returns one text column (a SELECT, or a change
// with RETURNING), in tx.
func (s *Store) ids(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]string, error) {
	rows, err := s.query(ctx, tx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// conditions gathers the conditions of a list's WHERE clause and their
// arguments, in the order the placeholders stand.
type conditions struct {
	conds []string
	args  []any
}

// add appends a condition and the arguments of its placeholders.
func (c *conditions) add(cond string, args ...any) {
	c.conds = append(c.conds, cond)
	c.args = append(c.args, args...)
}

// arg appends one argument and returns its placeholder, for a condition
// built elsewhere (sqlrow.StatusCondition).
func (c *conditions) arg(v any) string {
	c.args = append(c.args, v)
	return "?"
}

// where is the WHERE clause, or "" when there is no condition.
func (c *conditions) where() string {
	if len(c.conds) == 0 {
		return ""
	}
	return ` WHERE ` + strings.Join(c.conds, ` AND `)
}
