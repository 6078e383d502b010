package sqlite

import (
	"errors"
	"strings"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/sqlstore"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect returns what SQLite does differently from PostgreSQL. Placeholders
// are ?, as the store's queries are written; the write lock is taken by
// BEGIN IMMEDIATE (the write pool's _txlock), and the single write
// connection makes writers take turns; no one listens for changes, as
// followers poll the feed; the driver caches no prepared statements, so
// the store prepares the read of a verification's cache miss itself.
func dialect() sqlstore.Dialect {
	return sqlstore.Dialect{
		Name:       "sqlite",
		Error:      classify,
		Unique:     isUnique,
		ForeignKey: isForeignKey,
	}
}

// dbError turns an error of the driver into a *keyward.Error (see
// sqlstore.Error).
func dbError(err error) error {
	return sqlstore.Error(err, classify)
}

// classify says what an error of the driver means: busy and disk errors are
// keyward.CodeStorageUnavailable, any other keyward.CodeInternal.
func classify(err error) error {
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

// isForeignKey reports whether err violates a foreign key.
func isForeignKey(err error) bool {
	return isConstraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY, "")
}
