package sqlite

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
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

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// nullMicros stores an optional time: NULL for nil or the zero time.
func nullMicros(t *time.Time) sql.NullInt64 {
	if t == nil || t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

// fromMicros reads a stored time, in UTC.
func fromMicros(v int64) time.Time {
	return time.UnixMicro(v).UTC()
}

// fromNullMicros reads a stored optional time.
func fromNullMicros(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

// pageLimit returns the number of rows a page holds.
func pageLimit(limit int) int {
	switch {
	case limit <= 0:
		return keyward.DefaultPageLimit
	case limit > keyward.MaxPageLimit:
		return keyward.MaxPageLimit
	}
	return limit
}

// Cursor kinds: a cursor of one list is refused by another.
const (
	cursorTenants byte = 't'
	cursorKeys    byte = 'k'
	cursorAudit   byte = 'a'
)

// cursor is the position after the last row of a page: a number (a time in
// microseconds, or a row id) and a text id that breaks ties.
type cursor struct {
	n  int64
	id string
}

// encodeCursor returns c as opaque URL-safe text.
func encodeCursor(kind byte, c cursor) string {
	b := make([]byte, 0, 9+len(c.id))
	b = append(b, kind)
	b = binary.BigEndian.AppendUint64(b, uint64(c.n))
	b = append(b, c.id...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor reads a cursor that encodeCursor wrote for the same kind of
// list.
func decodeCursor(kind byte, s string) (cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 9 || b[0] != kind {
		return cursor{}, keyward.FieldErrorf("cursor", "is not a cursor of this list; pass the next_cursor of the page before, or nothing for the first page")
	}
	return cursor{n: int64(binary.BigEndian.Uint64(b[1:9])), id: string(b[9:])}, nil
}
