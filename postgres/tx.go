package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/keyward/keyward"
)

// writeLock is the id of the advisory lock that every transaction changing
// a tenant or a key holds from its start to its end ("keyward\0" in ASCII).
// Advisory locks belong to one database: stores on other databases never
// wait for it. Migration 00004 takes it too, by its decimal number
// (TestMigrationsTakeTheWriteLock).
const writeLock int64 = 0x6b65797761726400

// write runs fn in one transaction that holds the write lock, and commits it
// when fn returns nil. Errors come back as *keyward.Error.
//
// The lock makes writers take turns, as SQLite's single writer does: a
// transaction reads what the one before it committed, and change sequence
// numbers, drawn while the lock is held, are in commit order.
func (s *Store) write(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return s.inTx(ctx, true, fn)
}

// inTx runs fn in one transaction, holding the write lock when locked is
// true, and commits it when fn returns nil.
func (s *Store) inTx(ctx context.Context, locked bool, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return dbError(err)
	}
	// Rollback after Commit does nothing; with ctx canceled, pgx closes
	// the connection instead, which ends the transaction too.
	defer tx.Rollback(ctx)
	if locked {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, writeLock); err != nil {
			return dbError(err)
		}
	}
	if err := fn(tx); err != nil {
		return dbError(err)
	}
	if err := tx.Commit(ctx); err != nil {
		return dbError(err)
	}
	return nil
}

// record writes the audit entry of a change and its entries in the change
// feed, in the transaction that makes the change.
func record(ctx context.Context, tx pgx.Tx, at time.Time, by keyward.Actor, action, tenantID, target string, changes ...keyward.Change) error {
	return recordRelated(ctx, tx, at, by, action, tenantID, target, "", changes...)
}

// recordRelated is record for an action that concerns a second id too.
func recordRelated(ctx context.Context, tx pgx.Tx, at time.Time, by keyward.Actor, action, tenantID, target, related string, changes ...keyward.Change) error {
	if _, err := tx.Exec(ctx,
		`INSERT INTO audit_log (at, actor, actor_ip, action, tenant_id, target, related) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		at.UnixMicro(), by.ID, by.IP, action, tenantID, target, related); err != nil {
		return err
	}
	for _, c := range changes {
		if _, err := tx.Exec(ctx,
			`INSERT INTO changes (kind, id, at) VALUES ($1, $2, $3)`,
			c.Kind, c.ID, at.UnixMicro()); err != nil {
			return err
		}
	}
	if len(changes) > 0 {
		// Delivered to the listeners on commit only; one per transaction
		// is enough, as listeners read the feed from where they are.
		if _, err := tx.Exec(ctx, `SELECT pg_notify('`+notifyChannel+`', '')`); err != nil {
			return err
		}
	}
	return nil
}

// dbError turns an error of the driver into a *keyward.Error. An error that
// is one already passes unchanged.
func dbError(err error) error {
	if err == nil {
		return nil
	}
	var ke *keyward.Error
	if errors.As(err, &ke) {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		return &keyward.Error{Code: keyward.CodeStorageUnavailable, Message: "The database did not answer in time; try again.", Err: err}
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
		pgconn.SafeToRetry(err):
		return true
	}
	return false
}

// uniqueViolation returns the constraint that err violates, if err is a
// unique violation.
func uniqueViolation(err error) (constraint string, ok bool) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return pe.ConstraintName, true
	}
	return "", false
}

// isForeignKeyViolation reports whether err violates a foreign key.
func isForeignKeyViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}

// queryer is a *pgxpool.Pool or a pgx.Tx.
type queryer interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// placeholder returns the query parameter with number n ($1 for 1).
func placeholder(n int) string {
	return "$" + strconv.Itoa(n)
}
