package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRoutesCheck(t *testing.T) {
	db := dbFile(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "routes.yaml")
	if err := os.WriteFile(good, []byte(`default: deny
routes:
  - match: GET /health
    public: true
  - match: GET /v1/contacts/**
    permissions: [contacts:read]
  - match: GET /v1/tenants/{tenant}/sites/{site}/**
    tenant: tenant
    resources: [site]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	o := ok(t, db, "routes", "check", good)
	if want := good + ": 3 routes (1 public), default: deny\n"; o.stdout != want {
		t.Errorf("routes check printed %q, want %q", o.stdout, want)
	}
	s := decodeJSON[routesSummary](t, ok(t, db, "routes", "check", good, "--json").stdout)
	if s != (routesSummary{File: good, Routes: 3, Public: 1, Default: "deny"}) {
		t.Errorf("routes check --json printed %+v", s)
	}

	one := filepath.Join(dir, "one.yaml")
	if err := os.WriteFile(one, []byte("default: authenticated\nroutes:\n  - match: \"* /v1/**\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if o := ok(t, db, "routes", "check", one); o.stdout != one+": 1 route (0 public), default: authenticated\n" {
		t.Errorf("routes check printed %q", o.stdout)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(`default: deny
routes:
  - match: GET /v1/{a}/x
  - match: GET /v1/x/{b}
  - match: GET /v1/contacts
    permissions: [Contacts]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	o = fails(t, db, 1, []string{"routes", "check", bad},
		bad+" is not a valid routes file:\n  ",
		bad+`:4: route "GET /v1/x/{b}" conflicts with route "GET /v1/{a}/x" at line 3: both match GET /v1/x/x`,
		"\n  "+bad+`:5: route "GET /v1/contacts": permission "Contacts" is not valid`)
	if o.stdout != "" {
		t.Errorf("a bad file printed %q on stdout", o.stdout)
	}

	unknown := filepath.Join(dir, "unknown.yaml")
	if err := os.WriteFile(unknown, []byte("routes:\n  - match: GET /x\n    costs: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fails(t, db, 1, []string{"routes", "check", unknown}, unknown+`:3:5: unknown field "costs"`)

	fails(t, db, 1, []string{"routes", "check", filepath.Join(dir, "missing.yaml")}, "missing.yaml: no such file or directory")
	fails(t, db, 2, []string{"routes", "check"}, "accepts 1 arg(s), received 0")
	fails(t, db, 2, []string{"routes"}, "routes needs a subcommand: check")
	if _, err := os.Stat(db); err == nil {
		t.Error("routes check created the database; it should not open it")
	}
	if strings.Contains(o.stderr, "Usage") {
		t.Errorf("a bad file printed the usage:\n%s", o.stderr)
	}
}
