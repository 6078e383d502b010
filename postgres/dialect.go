package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/sqlrow"
	"github.com/keyward/keyward/sqlstore"
)

// writeLock is the id of the advisory lock that every transaction changing
// the database (but for last-used times and pruning) holds from its start
// to its end ("keyward\0" in ASCII).
// Advisory locks belong to one database: stores on other databases never
// wait for it. Migration 00004 takes it too, by its decimal number
// (TestMigrationsTakeTheWriteLock).
const writeLock int64 = 0x6b65797761726400

// dialect returns what PostgreSQL does differently from SQLite:
// placeholders numbered $1, $2…; the write lock, an advisory lock that
// every transaction changing the database takes first (writeLock); a
// notification on notifyChannel from every transaction that appends to the
// change feed (see Notifications); pgx's errors; and, on pool, natively,
// the read of a verification's cache miss (which pgx prepares and caches)
// and the batches of last-used times, sent in one round trip.
func dialect(pool *pgxpool.Pool) sqlstore.Dialect {
	return sqlstore.Dialect{
		Name:          "postgres",
		Numbered:      true,
		LockWrites:    `SELECT pg_advisory_xact_lock(` + strconv.FormatInt(writeLock, 10) + `)`,
		NotifyChanges: `SELECT pg_notify('` + notifyChannel + `', '')`,
		Error:         classify,
		Unique:        isUnique,
		ForeignKey:    isForeignKeyViolation,
		QueryRow: func(ctx context.Context, query string, args ...any) sqlrow.Scanner {
			return pool.QueryRow(ctx, query, args...)
		},
		ExecBatch: func(ctx context.Context, query string, args [][]any) error {
			return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				var b pgx.Batch
				for _, a := range args {
					b.Queue(query, a...)
				}
				return tx.SendBatch(ctx, &b).Close()
			})
		},
	}
}

// dbError turns an error of the driver into a *keyward.Error (see
// sqlstore.Error).
func dbError(err error) error {
	return sqlstore.Error(err, classify)
}

// classify says what an error of the driver means: a server that does not
// answer in time, cannot be reached, is short of resources, shutting down
// or a standby, and a conflict between transactions, are
// keyward.CodeStorageUnavailable; text PostgreSQL cannot store is
// keyward.CodeInvalidRequest; any other error keyward.CodeInternal.
func classify(err error) error {
	if isTimeout(err) {
		return sqlstore.Timeout(err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "22021" || pe.Code == "22P05":
			// Invalid UTF-8, or a NUL character, in a text value.
			return &keyward.Error{Code: keyward.CodeInvalidRequest, Message: "A text value is not valid UTF-8 or contains a NUL character.", Err: err}
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			strings.HasPrefix(pe.Code, "53"), // insufficient resources
			strings.HasPrefix(pe.Code, "57"), // operator intervention: shutdown, statement timeout
			strings.HasPrefix(pe.Code, "58"), // system error
			strings.HasPrefix(pe.Code, "40"): // serialization failure, deadlock
			return &keyward.Error{Code: keyward.CodeStorageUnavailable, Message: "The database is unavailable or busy; try again.", Err: err}
		case pe.Code == "25006": // read-only transaction: a standby
			return &keyward.Error{Code: keyward.CodeStorageUnavailable, Message: "The database is read-only (a standby?); try again once it is the primary.", Err: err}
		}
		return keyward.Internal(err)
	}
	if isConnError(err) {
		return &keyward.Error{Code: keyward.CodeStorageUnavailable, Message: "The database cannot be reached; try again later.", Err: err}
	}
	return keyward.Internal(err)
}

// isTimeout reports whether err says the server did not answer in time.
func isTimeout(err error) bool {
	if pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isRefused reports whether err says nothing listens at the address.
func isRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}

// isConnError reports whether err is the failure of a connection rather
// than of a statement: the server cannot be reached, or the connection
// broke.
func isConnError(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &ce), errors.As(err, &ne), errors.As(err, &oe),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		pgconn.SafeToRetry(err):
		return true
	}
	return false
}

// isUnique reports whether err violates the primary key or the unique
// constraint on column ("table.column"), by the names PostgreSQL gives
// them: table_pkey for the primary key (primaryKey), table_column_key for a unique column (and the unique indexes of
// migration 00006, named so).
func isUnique(err error, column string) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "23505" {
		return false
	}
	table, col, _ := strings.Cut(column, ".")
	if col == primaryKey(table) {
		return pe.ConstraintName == table+"_pkey"
	}
	return pe.ConstraintName == table+"_"+col+"_key"
}

// primaryKey names the primary key column of a table: id, but for the
// tables keyed by a name.
func primaryKey(table string) string {
	switch table {
	case "plans", "permissions", "settings":
		return "name"
	}
	return "id"
}

// isForeignKeyViolation reports whether err violates a foreign key.
func isForeignKeyViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}
