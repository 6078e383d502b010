package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/postgres"
	"github.com/keyward/keyward/sqlite"
)

// database is the storage the commands open: a keyward.Store that migrates
// its schema and names itself, without a password, for messages and logs.
// The SQLite and the PostgreSQL store both are one.
type database interface {
	keyward.Store
	// Migrate brings the schema up to date; opening does it already.
	Migrate(ctx context.Context) error
	// Path names the database: the file's absolute path, or a postgres://
	// URL without its password.
	Path() string
}

var (
	_ database = (*sqlite.Store)(nil)
	_ database = (*postgres.Store)(nil)
)

// openStore opens the database that --db names and migrates its schema. It
// accepts sqlite:PATH, sqlite://PATH, file:PATH and a bare path for SQLite,
// and postgres:// or postgresql:// URLs for PostgreSQL; a path that cannot
// hold a database, or a server that cannot be reached, gives an error that
// names it and says what is wrong.
//
// Only create lets it make a new SQLite file: serve and migrate pass true.
// Every other command fails when the file does not exist, so that a
// mistyped --db or a run from the wrong directory does not quietly start an
// empty database and report that it holds nothing. A PostgreSQL database is
// never created, only migrated: it must exist, whatever create says.
//
// logger, if not nil, receives the store's own log lines (PostgreSQL's
// change listener); serve passes its own.
func (a *app) openStore(ctx context.Context, create bool, logger *slog.Logger) (database, error) {
	dsn := strings.TrimSpace(a.db)
	scheme, _, hasScheme := strings.Cut(dsn, "://")
	switch {
	case dsn == "":
		return nil, errors.New("--db: no database given; use --db sqlite:PATH or postgres://USER:PASSWORD@HOST:PORT/DATABASE, or set KEYWARD_DB")
	case scheme == "postgres" || scheme == "postgresql":
		var opts []postgres.Option
		if logger != nil {
			opts = append(opts, postgres.WithLogger(logger))
		}
		store, err := postgres.Open(ctx, dsn, opts...)
		if err != nil {
			return nil, err
		}
		return store, nil
	case hasScheme && scheme != "sqlite" && scheme != "file" && !strings.ContainsAny(scheme, `/\`):
		return nil, fmt.Errorf("--db: %q is not a database Keyward knows; use --db sqlite:PATH or postgres://…", scheme+"://")
	}
	var opts []sqlite.Option
	if !create {
		opts = append(opts, sqlite.MustExist())
	}
	store, err := sqlite.Open(ctx, dsn, opts...)
	if keyward.ErrorCode(err) == keyward.CodeNotFound {
		return nil, fmt.Errorf(`--db: %s; run "keyward migrate" (or "keyward serve") to create it, or point --db / KEYWARD_DB at an existing one`, keyward.ErrorMessage(err))
	}
	if err != nil {
		return nil, err
	}
	return store, nil
}

// format returns the key format of --key-prefix.
func (a *app) format() (apikey.Format, error) {
	return apikey.NewFormat(a.keyPrefix)
}

// withService opens the existing store, calls fn with the management
// service on it, and closes the store. The command line calls the service
// as manage.CLI, recorded in the audit log as "cli".
func (a *app) withService(ctx context.Context, fn func(svc *manage.Service) error) (err error) {
	f, err := a.format()
	if err != nil {
		return err
	}
	store, err := a.openStore(ctx, false, nil)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, store.Close()) }()
	return fn(manage.New(manage.Config{Store: store, Format: f}))
}

// redactDSN returns dsn fit to show: a URL with its password replaced by
// xxxxx, and a key=value string with a password in it replaced whole.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" && u.User != nil {
		return u.Redacted()
	}
	if strings.Contains(strings.ToLower(dsn), "password") {
		return "(the value of KEYWARD_DB, which holds a password)"
	}
	return dsn
}
