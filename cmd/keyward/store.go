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

// open opens the database as openStore does and returns it with the
// format of its keys (keyFormat). A --key-prefix that is not a prefix is
// refused before the database is opened, and so is never created.
func (a *app) open(ctx context.Context, create bool, logger *slog.Logger) (database, apikey.Format, error) {
	if a.keyPrefix != "" {
		if _, err := apikey.NewFormat(a.keyPrefix); err != nil {
			return nil, apikey.Format{}, err
		}
	}
	store, err := a.openStore(ctx, create, logger)
	if err != nil {
		return nil, apikey.Format{}, err
	}
	format, err := a.keyFormat(ctx, store)
	if err != nil {
		return nil, apikey.Format{}, errors.Join(err, store.Close())
	}
	return store, format, nil
}

// keyFormat returns the format of the keys of the database: its prefix is
// the one stored there. A database that has none yet (a new one) is given
// --key-prefix, or apikey.DefaultPrefix when it is not given; of processes
// that do so at once, the first one's is stored. A --key-prefix (or
// KEYWARD_KEY_PREFIX) that disagrees with the database's is an error that
// names both.
func (a *app) keyFormat(ctx context.Context, store database) (apikey.Format, error) {
	stored, err := store.KeyPrefix(ctx)
	if keyward.ErrorCode(err) == keyward.CodeNotFound {
		prefix := a.keyPrefix
		if prefix == "" {
			prefix = apikey.DefaultPrefix
		}
		stored, err = store.InitKeyPrefix(ctx, prefix)
	}
	if err != nil {
		return apikey.Format{}, err
	}
	if a.keyPrefix != "" && a.keyPrefix != stored {
		given := "--key-prefix " + a.keyPrefix
		if !a.keyPrefixFlagged() {
			given = "KEYWARD_KEY_PREFIX=" + a.keyPrefix
		}
		return apikey.Format{}, fmt.Errorf("%s, but this database's keys use %s: the prefix is chosen once, when the database is created (keyward migrate --key-prefix). "+
			"Leave out --key-prefix and KEYWARD_KEY_PREFIX to use the database's, or give --key-prefix %s; check that --db (KEYWARD_DB) names the database you mean",
			given, stored, stored)
	}
	format, err := apikey.NewFormat(stored)
	if err != nil {
		return apikey.Format{}, fmt.Errorf("the key prefix stored in database %s, %q, is not a valid prefix; was the database edited by hand?", store.Path(), stored)
	}
	return format, nil
}

// withService opens the existing store, calls fn with the management
// service on it, and closes the store. The command line calls the service
// as manage.CommandLine(), recorded in the audit log as "cli".
func (a *app) withService(ctx context.Context, fn func(svc *manage.Service) error) (err error) {
	store, format, err := a.open(ctx, false, nil)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, store.Close()) }()
	// Webhook endpoints on private addresses as serve allows them: the
	// same setting, read from the environment (KEYWARD_WEBHOOK_ALLOW_PRIVATE).
	allowPrivate := a.env("KEYWARD_WEBHOOK_ALLOW_PRIVATE", "") == "1"
	return fn(manage.New(manage.Config{Store: store, Format: format, AllowPrivateWebhooks: allowPrivate}))
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
