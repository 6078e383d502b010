package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/sqlite"
)

// openStore opens the database that --db names, creating the file if need
// be and migrating its schema. It accepts sqlite:PATH, sqlite://PATH,
// file:PATH and a bare path; a path that cannot hold a database gives an
// error that names it and says what is wrong.
func (a *app) openStore(ctx context.Context) (*sqlite.Store, error) {
	dsn := strings.TrimSpace(a.db)
	scheme, _, hasScheme := strings.Cut(dsn, "://")
	switch {
	case dsn == "":
		return nil, errors.New("--db: no database given; use --db sqlite:PATH or set KEYWARD_DB")
	case scheme == "postgres" || scheme == "postgresql":
		return nil, errors.New("--db: PostgreSQL is not supported yet; use --db sqlite:PATH")
	case hasScheme && scheme != "sqlite" && scheme != "file" && !strings.ContainsAny(scheme, `/\`):
		return nil, fmt.Errorf("--db: %q is not a database Keyward knows; use --db sqlite:PATH", scheme+"://")
	}
	return sqlite.Open(ctx, dsn)
}

// format returns the key format of --key-prefix.
func (a *app) format() (apikey.Format, error) {
	return apikey.NewFormat(a.keyPrefix)
}

// withService opens the store, calls fn with the management service on it,
// and closes the store. The command line calls the service as manage.CLI,
// recorded in the audit log as "cli".
func (a *app) withService(ctx context.Context, fn func(svc *manage.Service) error) (err error) {
	f, err := a.format()
	if err != nil {
		return err
	}
	store, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, store.Close()) }()
	return fn(manage.New(manage.Config{Store: store, Format: f}))
}
