package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

// migrateCommand is `keyward migrate`: it brings the database's schema to
// the latest version, creating the database if it does not exist. Every
// other command does the same when it opens the database; this one does
// only that, for deployments that migrate in a step of their own.
func (a *app) migrateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create the database or bring its schema up to date",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			store, err := a.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer func() { err = errors.Join(err, store.Close()) }()
			if err := store.Migrate(cmd.Context()); err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]any{"database": store.Path(), "migrated": true})
			}
			_, err = fmt.Fprintf(a.stdout, "Database %s is migrated to the latest schema.\n", store.Path())
			return err
		},
	}
}
