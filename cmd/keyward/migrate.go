package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/manage"
)

// migrateCommand is `keyward migrate`: it brings the database's schema to
// the latest version, creating the database if it does not exist, stores
// the prefix of its keys if it has none, and sets up the system tenant. On a new database it prints the root key once, as
// the first serve would, so a deployment can set up its database in a step
// of its own and capture the key with ROOT=$(keyward migrate).
func (a *app) migrateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create the database or bring its schema up to date; on a new database, print the root key once",
		Long: `Create the database, or bring the schema of an existing one up to date.

On a new database, migrate stores the prefix of its keys, --key-prefix (sk
when it is not given), creates the system tenant and a root key, and prints
that key once, alone on stdout: ROOT=$(keyward migrate --key-prefix kw).
The prefix cannot change afterwards: every command and server reads it from
the database, so they need no --key-prefix, and one that disagrees with the
database's is refused. A database made before prefixes were stored is
given, when it is migrated, the prefix that most of its unrevoked keys have.`,
		Example: `  keyward migrate --db sqlite:/var/lib/keyward/keyward.db --key-prefix kw`,
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			ctx := cmd.Context()
			store, format, err := a.open(ctx, true, nil)
			if err != nil {
				return err
			}
			defer func() { err = errors.Join(err, store.Close()) }()
			if err := store.Migrate(ctx); err != nil {
				return err
			}
			rootKey, err := manage.New(manage.Config{Store: store, Format: format}).Bootstrap(ctx)
			if err != nil {
				return err
			}
			if a.json {
				out := map[string]any{"database": store.Path(), "migrated": true}
				if rootKey != "" {
					out["root_key"] = rootKey
				}
				return a.printJSON(out)
			}
			fmt.Fprintf(a.stderr, "Database %s is migrated to the latest schema.\n", shown(store.Path()))
			return a.printRootKey(ctx, rootKey)
		},
	}
}

// printRootKey prints a root key that Bootstrap has just issued alone on
// stdout, with the notice on stderr; it prints nothing for "".
func (a *app) printRootKey(_ context.Context, rootKey string) error {
	if rootKey == "" {
		return nil
	}
	// The root key goes to stdout alone, never through a logger.
	if _, err := fmt.Fprintln(a.stdout, rootKey); err != nil {
		return err
	}
	fmt.Fprintln(a.stderr, rootKeyNotice)
	return nil
}
