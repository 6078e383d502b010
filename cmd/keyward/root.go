package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// rootCommand returns the command tree of one run. It is built anew for
// every run, so nothing is shared between runs.
func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "keyward",
		Short: "Keyward: self-hosted API keys for your customers",
		Long: `Keyward issues API keys to the tenants (customer accounts) of your API,
verifies them on every request, and rotates, revokes and expires them.

A plaintext key is shown once: "keys create" and "keys rotate" print it alone
on stdout, and everything else on stderr, so that KEY=$(keyward keys create …)
works. Keyward stores only its SHA-256.`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&a.db, "db", a.env("KEYWARD_DB", "sqlite:keyward.db"),
		"database: sqlite:PATH, a file path, or postgres://USER:PASSWORD@HOST:PORT/DB; only migrate and serve create a SQLite file (env KEYWARD_DB)")
	// The help shows the default without the password KEYWARD_DB may hold.
	pf.Lookup("db").DefValue = redactDSN(a.db)
	pf.BoolVar(&a.json, "json", false, "print machine-readable JSON on stdout")
	pf.StringVar(&a.keyPrefix, "key-prefix", a.env("KEYWARD_KEY_PREFIX", ""),
		"prefix of the keys, [a-z][a-z0-9]{1,11}, chosen once when migrate or serve creates the database (default sk) and kept there; "+
			"leave it out afterwards to use the database's: one that disagrees with it is refused (env KEYWARD_KEY_PREFIX)")
	a.keyPrefixFlagged = func() bool { return pf.Changed("key-prefix") }

	root.AddCommand(
		a.versionCommand(),
		a.migrateCommand(),
		a.serveCommand(),
		a.tenantsCommand(),
		a.membersCommand(),
		a.plansCommand(),
		a.permissionsCommand(),
		a.keysCommand(),
		a.verifyCommand(),
		a.auditCommand(),
		a.logsCommand(),
		a.usageCommand(),
		a.webhooksCommand(),
		a.routesCommand(),
	)
	// The completion command would need a shell to be useful; keep the tree
	// to what Keyward does.
	root.CompletionOptions.DisableDefaultCmd = true
	return root
}

// group returns a command that only holds subcommands. Run with an unknown
// subcommand it fails with a usage error instead of printing help and
// succeeding.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageError{fmt.Errorf("%s needs a subcommand: %s", cmd.CommandPath(), subNames(cmd))}
		},
	}
	c.AddCommand(subs...)
	return c
}

// subNames lists the names of cmd's subcommands, separated by " | ".
func subNames(cmd *cobra.Command) string {
	var names []string
	for _, s := range cmd.Commands() {
		if s.IsAvailableCommand() {
			names = append(names, s.Name())
		}
	}
	return strings.Join(names, " | ")
}

// args wraps a cobra argument check so that its error is a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return usageError{fmt.Errorf("%s: %w; see %s --help", cmd.CommandPath(), err, cmd.CommandPath())}
		}
		return nil
	}
}
