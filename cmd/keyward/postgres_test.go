package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// TestPostgres runs the command line against a PostgreSQL database of its
// own: migrate, tenants create, keys create, verify, then a revocation that
// the next verify sees.
func TestPostgres(t *testing.T) {
	dsn := newPGDeployment(t).dsn
	// The database exists but has no schema yet: any command migrates it.
	o := ok(t, dsn, "migrate")
	if !strings.Contains(o.stderr, "postgres://postgres@127.0.0.1:") {
		t.Errorf("migrate printed %q, want the database named", o.stderr)
	}
	ok(t, dsn, "tenants", "create", "acme")
	created := decodeJSON[createdKey](t, ok(t, dsn, "keys", "create", "--tenant", "acme", "--name", "billing", "--json").stdout)
	if created.Plaintext == "" || created.TenantID == "" {
		t.Fatalf("keys create: %+v", created)
	}
	if o := ok(t, dsn, "verify", created.Plaintext); !strings.HasPrefix(o.stdout, "valid "+created.ID) {
		t.Fatalf("verify printed %q", o.stdout)
	}
	// Another process would do the same: each command opens the database
	// anew.
	ok(t, "postgresql"+strings.TrimPrefix(dsn, "postgres"), "keys", "revoke", created.ID)
	o = cli(t, dsn, "verify", created.Plaintext)
	if o.code() != 1 || !strings.HasPrefix(o.stdout, "refused: revoked_api_key: ") {
		t.Fatalf("verify after revoke: exit status %d, stdout %q, err %v", o.code(), o.stdout, o.err)
	}
}

// TestServePostgres runs keyward serve on a PostgreSQL database: it logs the
// database without the password, answers the root key it made, accepts a
// key the command line made with the prefix serve gave the database, and
// refuses within 1 s a key revoked from the command line.
func TestServePostgres(t *testing.T) {
	dsn := strings.Replace(newPGDeployment(t).dsn, "postgres@", "postgres:pw-not-logged@", 1)
	s := startNodeOn(t, "S", dsn, "--key-prefix", "kw")
	if strings.Contains(s.stderr.String(), "pw-not-logged") {
		t.Errorf("the server logged the password:\n%s", s.stderr)
	}
	if db := logAttr(s.stderr.String(), "listening", "db"); !strings.HasPrefix(db, "postgres://postgres@127.0.0.1:") {
		t.Errorf("the server logs db %q", db)
	}
	root := strings.TrimSuffix(s.stdout.String(), "\n")
	if !strings.HasPrefix(root, "kw_live_") {
		t.Errorf("serve --key-prefix kw on a new database printed root key %q", root)
	}
	if a := s.call(t, "GET", "/v1/whoami", root, nil); a.status != http.StatusOK {
		t.Fatalf("whoami with the root key: %d %s", a.status, a.body)
	}

	ok(t, dsn, "tenants", "create", "acme")
	key, id := newKey(t, dsn, "--name", "to-revoke")
	if !strings.HasPrefix(key, "kw_live_") {
		t.Errorf("keys create without --key-prefix on a kw database made %q", key)
	}
	if a := s.call(t, "GET", "/v1/whoami", key, nil); a.status != http.StatusOK {
		t.Fatalf("whoami: %d %s", a.status, a.body)
	}
	fails(t, dsn, 1, []string{"keys", "list", "--key-prefix", "sk"}, "--key-prefix sk, but this database's keys use kw")
	ok(t, dsn, "keys", "revoke", id)
	revoked := time.Now()
	for {
		a := s.call(t, "GET", "/v1/whoami", key, nil)
		if a.status == http.StatusUnauthorized && a.code() == keyward.CodeRevokedAPIKey {
			break
		}
		if time.Since(revoked) > time.Second {
			t.Fatalf("1 s after revoking, the server still answers %d %s", a.status, a.body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
