// Command keyward runs Keyward, the self-hosted API key service: the server
// (serve), and the command line that manages tenants, their members, plans,
// the permission catalogue and keys on the same database (tenants, members,
// plans, permissions, keys, verify, audit, migrate, version), and checks a
// route policy file (routes check).
//
// Every command takes --db (env KEYWARD_DB, default sqlite:keyward.db),
// --json for machine-readable output on stdout, and --key-prefix (env
// KEYWARD_KEY_PREFIX). Only migrate and serve create the database; the
// other commands fail when it does not exist. The prefix of keys belongs
// to the database: the command that creates it stores --key-prefix there
// (sk when it is not given), and every command and server reads it from
// there; a --key-prefix that disagrees with it is an error. The --json
// output of a list has the shape of the HTTP API's: success, data and
// next_cursor. A plaintext key is printed only once, alone
// on its own line of stdout, by the commands that make one (keys create,
// keys rotate, and the first start of serve); everything else about it goes
// to stderr, so that KEY=$(keyward keys create …) works.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	// The time zones of tenants' quotas, in the binary: every node names
	// the same days and months whether or not its system has zoneinfo.
	_ "time/tzdata"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, a second one ends the process at once, in
	// case a graceful shutdown hangs.
	go func() {
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if msg := errorMessage(err); msg != "" {
			fmt.Fprintln(os.Stderr, "keyward: "+msg)
		}
		os.Exit(exitCode(err))
	}
}

// run is the whole program: it builds the command tree, reads args and runs
// the command they name. It returns nil on success; main prints the error
// and exits with exitCode(err).
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	a := &app{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err != nil && strings.HasPrefix(err.Error(), "unknown command ") {
		return usageError{err}
	}
	return err
}

// app holds what every command of one run shares: the process's streams and
// environment, and the values of the global flags.
type app struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer

	// db is the database the commands use (--db).
	db string
	// json asks for machine-readable output (--json).
	json bool
	// keyPrefix is the prefix of keys that --key-prefix (or
	// KEYWARD_KEY_PREFIX) asks for: the one a new database is given, and
	// the one an existing database's must be; "" when not given.
	keyPrefix string
	// keyPrefixFlagged reports whether --key-prefix was given, rather than
	// KEYWARD_KEY_PREFIX.
	keyPrefixFlagged func() bool
}

// env returns the value of the environment variable name, or def when it is
// unset or empty.
func (a *app) env(name, def string) string {
	if v := a.getenv(name); v != "" {
		return v
	}
	return def
}

// usageError is a mistake in the command line itself: an unknown command or
// flag, or a wrong number of arguments. main exits 2 for it.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitError ends the program with a given status without a message of its
// own: the command has printed its outcome already (a refused verify).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// exitCode returns the status the process exits with for err: 0 for nil, 2
// for a usage error, the code of an exitError, and 1 for any other error.
func exitCode(err error) int {
	var ee exitError
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		return 2
	}
	return 1
}

// errorMessage returns what main prints after "keyward: " for err, or "" for
// an exitError, whose command has printed its outcome already. For a
// *keyward.Error it is the public message, with the field it names written
// as the command-line flag that sets it; for an internal error, the cause
// follows, since the operator at the command line is the one who fixes it.
// What a message quotes of the input or the database is escaped: no
// message drives the terminal.
func errorMessage(err error) string {
	var ee exitError
	if errors.As(err, &ee) {
		return ""
	}
	// A message may quote what was typed, and a key may have been typed
	// in the wrong place (--permissions sk_live_…): it is never printed
	// back whole.
	return escaped(apikey.Redact(rawErrorMessage(err)))
}

// rawErrorMessage is errorMessage before escaping.
func rawErrorMessage(err error) string {
	var ke *keyward.Error
	if !errors.As(err, &ke) {
		return err.Error()
	}
	msg := ke.Message
	if ke.Field != "" {
		if rest, ok := strings.CutPrefix(msg, ke.Field+": "); ok {
			if flag := flagForField(ke.Field); flag != "" {
				msg = flag + ": " + rest
			}
		}
	}
	if (ke.Code == keyward.CodeInternal || ke.Code == keyward.CodeStorageUnavailable) && ke.Err != nil {
		msg += " (" + ke.Err.Error() + ")"
	}
	return msg
}

// flagForField returns the command-line flag that sets the request field
// named in a *keyward.Error, such as "--allow-ip" for "restrictions.ips[2]",
// or "" when no flag does.
func flagForField(field string) string {
	base := field
	if i := strings.IndexAny(base, "[."); i >= 0 && !strings.HasPrefix(base, "restrictions.") {
		base = base[:i]
	}
	if i := strings.IndexByte(base, '['); i >= 0 {
		base = base[:i]
	}
	if strings.HasPrefix(base, "restrictions.resources.") {
		base = "restrictions.resources"
	}
	switch base {
	case "name", "permissions", "expires", "metadata", "plan", "status", "limit", "cursor", "email", "role", "capabilities", "description":
		return "--" + base
	case "external_id", "max_keys", "api_access", "transfer_keys_to":
		return "--" + strings.ReplaceAll(base, "_", "-")
	case "member_id":
		return "--member"
	case "environment":
		return "--env"
	case "rotate_by":
		return "--rotate-by"
	case "restrictions.ips":
		return "--allow-ip"
	case "restrictions.referrers":
		return "--allow-referrer"
	case "restrictions.endpoints":
		return "--allow-endpoint"
	case "restrictions.resources":
		return "--allow-resource"
	case "grace_period":
		return "--grace"
	case "tenant_id":
		return "--tenant"
	case "key_prefix":
		return "--key-prefix"
	}
	return ""
}
