package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/manage"
)

// migrateCommand is `keyward migrate`: it brings the database's schema to
// the latest version, creating the database if it does not exist, and sets
// up the system tenant. On a new database it prints the root key once, as
// the first serve would, so a deployment can set up its database in a step
// of its own and capture the key with ROOT=$(keyward migrate).
func (a *app) migrateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create the database or bring its schema up to date; on a new database, print the root key once",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			ctx := cmd.Context()
			format, err := a.format()
			if err != nil {
				return err
			}
			store, err := a.openStore(ctx, true, nil)
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
			fmt.Fprintf(a.stderr, "Database %s is migrated to the latest schema.\n", store.Path())
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
