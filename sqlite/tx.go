package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/keyward/keyward"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// write runs fn in one write transaction (BEGIN IMMEDIATE) and commits it
// when fn returns nil. Errors come back as *keyward.Error.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return dbError(err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return dbError(err)
	}
	if err := tx.Commit(); err != nil {
		return dbError(err)
	}
	return nil
}

// record writes the audit entry of a change and its entries in the change
// feed, in the transaction that makes the change.
func record(ctx context.Context, tx *sql.Tx, at time.Time, by keyward.Actor, action, tenantID, target string, changes ...keyward.Change) error {
	return recordRelated(ctx, tx, at, by, action, tenantID, target, "", changes...)
}

// recordRelated is record for an action that concerns a second id too.
func recordRelated(ctx context.Context, tx *sql.Tx, at time.Time, by keyward.Actor, action, tenantID, target, related string, changes ...keyward.Change) error {
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO audit_log (at, actor, actor_ip, action, tenant_id, target, related) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		at.UnixMicro(), by.ID, by.IP, action, tenantID, target, related); err != nil {
		return err
	}
	for _, c := range changes {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO changes (kind, id, at) VALUES (?, ?, ?)`,
			c.Kind, c.ID, at.UnixMicro()); err != nil {
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
	if errors.Is(err, context.DeadlineExceeded) {
		return &keyward.Error{Code: keyward.CodeStorageUnavailable, Message: "The database did not answer in time; try again.", Err: err}
	}
	var se *msqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return &keyward.Error{Code: keyward.CodeStorageUnavailable, Message: "The database is busy; try again.", Err: err}
		case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY:
			return &keyward.Error{Code: keyward.CodeStorageUnavailable, Message: "The database cannot be written; check the disk and the file's permissions.", Err: err}
		}
	}
	return keyward.Internal(err)
}

// isBusy reports whether err says that another connection holds a lock.
func isBusy(err error) bool {
	var se *msqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	code := se.Code() & 0xff
	return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
}

// isConstraint reports whether err is the violation of a constraint with the
// given extended result code (for example SQLITE_CONSTRAINT_UNIQUE) and,
// when column is not empty, on that "table.column".
func isConstraint(err error, code int, column string) bool {
	var se *msqlite.Error
	if !errors.As(err, &se) || se.Code() != code {
		return false
	}
	return column == "" || strings.Contains(se.Error(), column)
}

// isUnique reports whether err violates a primary key or unique constraint
// on column ("table.column").
func isUnique(err error, column string) bool {
	return isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE, column) ||
		isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, column)
}
