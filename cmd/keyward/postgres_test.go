package main

import (
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/pgtest"
)

// TestPostgres runs the command line against a PostgreSQL database of its
// own: migrate, tenants create, keys create, verify, then a revocation that
// the next verify sees.
func TestPostgres(t *testing.T) {
	dsn := pgtest.Start(t)
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
