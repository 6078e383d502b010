package main

import (
	"bytes"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestKeyPrefix: the key prefix is chosen once, when the database is
// created, and every command and server reads it from there. A server
// started with --key-prefix kw accepts the keys that keys create made on
// the same database without one; a --key-prefix that disagrees with the
// database is refused with a message that names both.
func TestKeyPrefix(t *testing.T) {
	db := dbFile(t)
	root := strings.TrimSpace(ok(t, db, "migrate", "--key-prefix", "kw").stdout)
	if !strings.HasPrefix(root, "kw_live_") {
		t.Fatalf("migrate --key-prefix kw printed root key %q", root)
	}
	ok(t, db, "tenants", "create", "acme")

	// keys create without --key-prefix uses the database's.
	key, id := newKey(t, db, "--name", "ci")
	if !strings.HasPrefix(key, "kw_live_") {
		t.Fatalf("keys create on a kw database made %q", key)
	}
	if o := ok(t, db, "verify", key); !strings.HasPrefix(o.stdout, "valid "+id) {
		t.Errorf("verify without --key-prefix: %q", o.stdout)
	}
	ok(t, db, "verify", key, "--key-prefix", "kw")

	// A server started with --key-prefix kw, or with none, accepts it.
	for _, args := range [][]string{{"--key-prefix", "kw"}, nil} {
		s := startServer(t, db, args...)
		if a := s.call(t, "GET", "/v1/whoami", key, nil); a.status != http.StatusOK {
			t.Errorf("serve %v: a key of keys create got %d %s", args, a.status, a.body)
		}
		if a := s.call(t, "GET", "/v1/whoami", root, nil); a.status != http.StatusOK {
			t.Errorf("serve %v: the root key got %d %s", args, a.status, a.body)
		}
		if err := s.shutdown(t); err != nil {
			t.Fatal(err)
		}
	}

	// A prefix that disagrees is refused, by every command, naming both.
	for _, args := range [][]string{
		{"keys", "create", "--tenant", "acme", "--name", "x"},
		{"keys", "list"},
		{"verify", key},
		{"migrate"},
		{"serve", "--addr", "127.0.0.1:0"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			o := fails(t, db, 1, append(args, "--key-prefix", "sk"), "--key-prefix sk, but this database's keys use kw")
			if o.stdout != "" {
				t.Errorf("printed %q on stdout", o.stdout)
			}
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), append([]string{"--db", db}, args...), env("KEYWARD_KEY_PREFIX", "sk"), strings.NewReader(""), &stdout, &stderr)
			if exitCode(err) != 1 || !strings.Contains(errorMessage(err), "KEYWARD_KEY_PREFIX=sk, but this database's keys use kw") {
				t.Errorf("KEYWARD_KEY_PREFIX=sk: exit status %d, message %q", exitCode(err), errorMessage(err))
			}
		})
	}
	// Nothing was made with the other prefix.
	if o := ok(t, db, "keys", "list", "--json"); strings.Contains(o.stdout, `"sk_`) {
		t.Errorf("a key with prefix sk was made:\n%s", o.stdout)
	}

	t.Run("invalid", func(t *testing.T) {
		fails(t, db, 1, []string{"keys", "list", "--key-prefix", "Bad!"}, "--key-prefix", `"Bad!" is not a valid key prefix`)
	})

	t.Run("default sk", func(t *testing.T) {
		db := dbFile(t)
		root := strings.TrimSpace(ok(t, db, "migrate").stdout)
		if !strings.HasPrefix(root, "sk_live_") {
			t.Fatalf("migrate printed root key %q", root)
		}
		fails(t, db, 1, []string{"keys", "list", "--key-prefix", "kw"}, "--key-prefix kw, but this database's keys use sk")
	})

	t.Run("serve creates the database with it", func(t *testing.T) {
		db := dbFile(t)
		s := startServer(t, db, "--key-prefix", "acme")
		root := strings.TrimSpace(s.stdout.String())
		if !strings.HasPrefix(root, "acme_live_") {
			t.Fatalf("serve --key-prefix acme printed root key %q", root)
		}
		if err := s.shutdown(t); err != nil {
			t.Fatal(err)
		}
		o := ok(t, db, "keys", "create", "--tenant", "system", "--name", "ops", "--permissions", "keyward:admin")
		if !strings.HasPrefix(o.stdout, "acme_live_") {
			t.Errorf("keys create after serve --key-prefix acme made %q", o.stdout)
		}
	})

	// Two processes that create one database at once with different
	// prefixes: the first wins, and the other fails naming both.
	t.Run("two at once", func(t *testing.T) {
		db := dbFile(t)
		prefixes := []string{"aa", "bb", "cc", "dd"}
		outs := make([]output, len(prefixes))
		var wg sync.WaitGroup
		for i, p := range prefixes {
			wg.Go(func() { outs[i] = cli(t, db, "migrate", "--key-prefix", p) })
		}
		wg.Wait()
		won := ""
		for i, o := range outs {
			if o.err == nil {
				if won != "" {
					t.Fatalf("both --key-prefix %s and --key-prefix %s succeeded", won, prefixes[i])
				}
				won = prefixes[i]
				if root := strings.TrimSpace(o.stdout); !strings.HasPrefix(root, won+"_live_") {
					t.Errorf("migrate --key-prefix %s printed root key %q", won, root)
				}
			}
		}
		if won == "" {
			t.Fatalf("no migrate succeeded: %v", outs)
		}
		for i, o := range outs {
			if prefixes[i] == won {
				continue
			}
			want := "--key-prefix " + prefixes[i] + ", but this database's keys use " + won
			if o.code() != 1 || !strings.Contains(o.message(), want) {
				t.Errorf("migrate --key-prefix %s: exit status %d, message %q; want 1 and %q", prefixes[i], o.code(), o.message(), want)
			}
		}
	})
}
