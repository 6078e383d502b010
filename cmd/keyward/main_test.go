package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/sqlite"
	"github.com/keyward/keyward/view"
)

// output is what one run of the program printed and returned.
type output struct {
	stdout string
	stderr string
	err    error
}

// code is the exit status main would give.
func (o output) code() int { return exitCode(o.err) }

// message is what main would print after "keyward: ".
func (o output) message() string {
	if o.err == nil {
		return ""
	}
	return errorMessage(o.err)
}

// env is an environment for run: only the variables given, so that the
// environment of the test process never leaks in.
func env(vars ...string) func(string) string {
	return func(name string) string {
		for i := 0; i+1 < len(vars); i += 2 {
			if vars[i] == name {
				return vars[i+1]
			}
		}
		return ""
	}
}

// cli runs the program with args on the database db, with an empty
// environment and empty standard input.
func cli(t *testing.T, db string, args ...string) output {
	t.Helper()
	return cliIn(t, db, "", args...)
}

// cliIn is cli with stdin as standard input.
func cliIn(t *testing.T, db, stdin string, args ...string) output {
	t.Helper()
	var stdout, stderr bytes.Buffer
	all := append([]string{"--db", db}, args...)
	err := run(t.Context(), all, env(), strings.NewReader(stdin), &stdout, &stderr)
	return output{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// ok runs the program like cli and fails the test unless it succeeds.
func ok(t *testing.T, db string, args ...string) output {
	t.Helper()
	o := cli(t, db, args...)
	if o.err != nil {
		t.Fatalf("keyward %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), o.err, o.stdout, o.stderr)
	}
	return o
}

// fails runs the program like cli and fails the test unless it exits with
// status code and its message contains every one of want.
func fails(t *testing.T, db string, code int, args []string, want ...string) output {
	t.Helper()
	o := cli(t, db, args...)
	if o.code() != code {
		t.Fatalf("keyward %s: exit status %d, want %d (err %v)", strings.Join(args, " "), o.code(), code, o.err)
	}
	for _, w := range want {
		if !strings.Contains(o.message(), w) {
			t.Errorf("keyward %s: message %q does not contain %q", strings.Join(args, " "), o.message(), w)
		}
	}
	return o
}

// dbFile returns the path of a database file, not yet created, in a new
// temporary directory.
func dbFile(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "keyward.db")
}

// newDB returns the path of a new database in a temporary directory: the
// schema without any tenant, not even the system tenant that migrate and
// serve set up.
func newDB(t *testing.T) string {
	t.Helper()
	db := dbFile(t)
	store, err := sqlite.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	return db
}

// decodeList decodes the --json output of a list, failing the test unless
// it has the shape of the HTTP API's list answers: success true, data a
// list (never null), and next_cursor, and nothing else.
func decodeList[T any](t *testing.T, s string) view.List[T] {
	t.Helper()
	raw := decodeJSON[map[string]json.RawMessage](t, s)
	if len(raw) != 3 || string(raw["success"]) != "true" || !bytes.HasPrefix(raw["data"], []byte("[")) || raw["next_cursor"] == nil {
		t.Fatalf("the list is not {\"success\": true, \"data\": [...], \"next_cursor\": ...}:\n%s", s)
	}
	return decodeJSON[view.List[T]](t, s)
}

// decodeJSON decodes s into a T, failing the test if it is not JSON.
func decodeJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, s)
	}
	return v
}

func TestVersion(t *testing.T) {
	db := dbFile(t)
	o := ok(t, db, "version")
	if !strings.HasPrefix(o.stdout, "keyward "+keyward.Version+" ") || !strings.Contains(o.stdout, runtime.Version()) {
		t.Errorf("version printed %q", o.stdout)
	}
	v := decodeJSON[map[string]string](t, ok(t, db, "version", "--json").stdout)
	if v["version"] != keyward.Version || v["go_version"] != runtime.Version() {
		t.Errorf("version --json printed %v", v)
	}
	if _, err := os.Stat(db); err == nil {
		t.Error("version created the database; it should not open it")
	}
}

func TestMigrate(t *testing.T) {
	db := dbFile(t)
	o := ok(t, db, "migrate")
	if !strings.Contains(o.stderr, "migrated") || !strings.Contains(o.stderr, db) || !strings.Contains(o.stderr, "Store it now") {
		t.Errorf("migrate printed %q on stderr", o.stderr)
	}
	if _, err := os.Stat(db); err != nil {
		t.Fatalf("migrate did not create the database: %v", err)
	}
	// The first run prints the root key alone on stdout, and it works.
	rootKey := strings.TrimSpace(o.stdout)
	if v := ok(t, db, "verify", rootKey, "--permission", "keyward:admin"); !strings.Contains(v.stdout, "valid") {
		t.Errorf("the root key from migrate does not verify: %q", v.stdout)
	}
	// The system tenant exists: more root keys can be made at once.
	ok(t, db, "keys", "create", "--tenant", "system", "--name", "ops", "--permissions", "keyward:admin")
	// A second run finds nothing to do, and prints no key.
	v := decodeJSON[map[string]any](t, ok(t, "sqlite:"+db, "migrate", "--json").stdout)
	if v["migrated"] != true || v["database"] != db || v["root_key"] != nil {
		t.Errorf("migrate --json printed %v", v)
	}
}

func TestDatabaseFlag(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	notADB := filepath.Join(dir, "junk.db")
	if err := os.WriteFile(notADB, bytes.Repeat([]byte("junk"), 1024), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		db   string
		want []string
	}{
		{"missing directory", filepath.Join(dir, "nope", "keyward.db"), []string{"cannot open database", "does not exist"}},
		{"parent is a file", filepath.Join(file, "keyward.db"), []string{"cannot open database", file}},
		{"path is a directory", dir, []string{"cannot open database", "directory"}},
		{"not a database", notADB, []string{"cannot open database", "not a SQLite database"}},
		{"postgres unreachable", "postgres://keyward@127.0.0.1:1/keyward?connect_timeout=2", []string{"cannot connect to PostgreSQL at 127.0.0.1:1", "connection refused"}},
		{"unknown scheme", "mysql://localhost/keyward", []string{"--db", "mysql://"}},
		{"empty", "", []string{"--db"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fails(t, tc.db, 1, []string{"tenants", "list"}, tc.want...)
		})
	}

	// No one, root included, can create a file in /proc/self.
	t.Run("directory that takes no file", func(t *testing.T) {
		const db = "/proc/self/keyward.db"
		fails(t, db, 1, []string{"migrate"}, "cannot open database "+db, "cannot be created in directory /proc/self")
		fails(t, "sqlite:"+db, 1, []string{"serve", "--addr", "127.0.0.1:0"}, "cannot open database "+db)
	})

	t.Run("sqlite: prefix and bare path are one database", func(t *testing.T) {
		db := newDB(t)
		ok(t, "sqlite:"+db, "tenants", "create", "acme")
		if o := ok(t, db, "tenants", "show", "acme"); !strings.Contains(o.stdout, "acme") {
			t.Errorf("tenants show printed %q", o.stdout)
		}
	})

	t.Run("KEYWARD_DB", func(t *testing.T) {
		db := dbFile(t)
		var stdout, stderr bytes.Buffer
		if err := run(t.Context(), []string{"migrate"}, env("KEYWARD_DB", "sqlite:"+db), strings.NewReader(""), &stdout, &stderr); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(db); err != nil {
			t.Errorf("KEYWARD_DB was not used: %v", err)
		}
	})
}

func TestUsageErrors(t *testing.T) {
	db := dbFile(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"keys"}, "needs a subcommand"},
		{[]string{"keys", "frobnicate"}, "unknown command"},
		{[]string{"tenants", "list", "--frob"}, "unknown flag"},
		{[]string{"tenants", "show"}, "accepts 1 arg"},
		{[]string{"tenants", "list", "--limit", "many"}, "invalid argument"},
		{[]string{"keys", "create", "--name", "x"}, "--tenant is required"},
		{[]string{"keys", "update", "key_x"}, "nothing to change"},
		{[]string{"keys", "update", "key_x", "--enable", "--disable"}, "--enable and --disable"},
		{[]string{"verify", "sk_live_x", "--ip", "not-an-ip"}, "--ip"},
		{[]string{"serve", "--trusted-proxies", "10.0.0.0/99"}, "--trusted-proxies"},
		{[]string{"serve", "--log-format", "xml"}, "--log-format"},
		{[]string{"serve", "--flush-interval", "0"}, "--flush-interval: must be more than 0"},
		{[]string{"serve", "--flush-interval", "-1s"}, "--flush-interval: must be more than 0"},
		{[]string{"serve", "--flush-interval", "often"}, "--flush-interval"},
		{[]string{"serve", "--redis-timeout", "0"}, "--redis-timeout: must be more than 0"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			fails(t, db, 2, tc.args, tc.want)
		})
	}
	t.Run("KEYWARD_FLUSH_INTERVAL", func(t *testing.T) {
		for _, v := range []string{"often", "0", "-5s"} {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), []string{"--db", db, "serve"}, env("KEYWARD_FLUSH_INTERVAL", v), strings.NewReader(""), &stdout, &stderr)
			if exitCode(err) != 2 || !strings.Contains(errorMessage(err), "KEYWARD_FLUSH_INTERVAL") {
				t.Errorf("KEYWARD_FLUSH_INTERVAL=%s: exit status %d, message %q", v, exitCode(err), errorMessage(err))
			}
		}
	})
	if _, err := os.Stat(db); err == nil {
		t.Error("a usage error opened the database")
	}
}

func TestMissingDatabase(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	abs := filepath.Join(dir, "keyward.db")
	want := `--db: database ` + abs + ` does not exist; run "keyward migrate" (or "keyward serve") to create it, or point --db / KEYWARD_DB at an existing one`
	assertEmpty := func(t *testing.T) {
		t.Helper()
		if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
			t.Fatalf("the directory holds %v (%v); the command should have created nothing", entries, err)
		}
	}

	t.Run("default --db", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), []string{"keys", "list"}, env(), strings.NewReader(""), &stdout, &stderr)
		if exitCode(err) != 1 || errorMessage(err) != want {
			t.Errorf("keys list: exit status %d, message %q; want 1, %q", exitCode(err), errorMessage(err), want)
		}
		if stdout.Len() != 0 {
			t.Errorf("keys list printed %q", stdout.String())
		}
		assertEmpty(t)
	})

	for _, db := range []string{"keyward.db", "sqlite:keyward.db", "sqlite://keyward.db", "file:keyward.db",
		"file:keyward.db?mode=rw", abs, "sqlite:" + abs, "sqlite://" + abs, "file://" + abs} {
		for _, args := range [][]string{
			{"keys", "list"}, {"keys", "create", "--tenant", "acme", "--name", "x"}, {"keys", "show", "key_x"},
			{"tenants", "list"}, {"tenants", "create", "acme"}, {"audit"}, {"verify", "sk_live_x"},
		} {
			t.Run(db+" "+strings.Join(args, " "), func(t *testing.T) {
				fails(t, db, 1, args, want)
				assertEmpty(t)
			})
		}
	}

	t.Run("version", func(t *testing.T) {
		ok(t, abs, "version")
		assertEmpty(t)
	})

	t.Run("migrate creates it, then the others use it", func(t *testing.T) {
		ok(t, "sqlite:keyward.db", "migrate")
		ok(t, "file:keyward.db", "tenants", "create", "acme")
		if o := ok(t, abs, "tenants", "show", "acme"); !strings.Contains(o.stdout, "acme") {
			t.Errorf("tenants show printed %q", o.stdout)
		}
	})
}

// TestHelpHidesPassword: the help shows the default of --db, which comes
// from KEYWARD_DB, without the password it may hold.
func TestHelpHidesPassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://keyward:s3cret-pw@db.internal:5432/keyward",
		"postgres://db.internal/keyward?password=s3cret-pw",
		"host=db.internal user=keyward password=s3cret-pw dbname=keyward",
	} {
		for _, args := range [][]string{{"--help"}, {"serve", "--help"}, {"keys", "revoke", "--help"}} {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), args, env("KEYWARD_DB", dsn), strings.NewReader(""), &stdout, &stderr)
			out := stdout.String() + stderr.String()
			if err != nil || !strings.Contains(out, "--db") {
				t.Fatalf("keyward %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			if strings.Contains(out, "s3cret-pw") {
				t.Errorf("KEYWARD_DB=%s: keyward %s shows the password:\n%s", dsn, strings.Join(args, " "), out)
			}
		}
	}
}
