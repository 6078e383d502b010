package main

import (
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/pgtest"
)

// pgDeployment is what the PostgreSQL process tests run on: a database of
// the test's own, on a throwaway PostgreSQL server of the test's own (which
// it may halt and resume), shared by the keyward nodes the test starts.
type pgDeployment struct {
	pg  *pgtest.Server
	dsn string
}

// newPGDeployment starts a PostgreSQL server for the test alone and makes
// an empty database on it; both go when the test ends, after the nodes.
func newPGDeployment(t *testing.T) *pgDeployment {
	t.Helper()
	d := &pgDeployment{pg: pgtest.New()}
	t.Cleanup(d.pg.Stop)
	d.dsn = d.pg.Database(t)
	return d
}

// migrate creates the database's schema with keyward migrate and returns
// the root key that it prints.
func (d *pgDeployment) migrate(t *testing.T) string {
	t.Helper()
	return strings.TrimSpace(ok(t, d.dsn, "migrate").stdout)
}

// startNode runs keyward serve on the database with args added (see
// startServer), waits until it answers /healthz, and shows its log as the
// log of node name if the test fails.
func (d *pgDeployment) startNode(t *testing.T, name string, args ...string) *server {
	t.Helper()
	return startNodeOn(t, name, d.dsn, args...)
}

// startNodeOn is startNode on the database URL db: the deployment's
// database reached another way, through a proxy or with a password.
func startNodeOn(t *testing.T, name, db string, args ...string) *server {
	t.Helper()
	s := startServer(t, db, args...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node %s's logs:\n%s", name, s.stderr)
		}
	})
	s.waitHealthy(t)
	return s
}

// startProcessNode is startNode with keyward serve as a process of its
// own (startProcess), as nodes of a real deployment are: no memory, no
// runtime and no scheduler shared with the test or the other nodes.
func (d *pgDeployment) startProcessNode(t *testing.T, name string, args ...string) *process {
	t.Helper()
	p := startProcess(t, d.dsn, args...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node %s's logs:\n%s", name, p.stderr)
		}
	})
	p.waitHealthy(t)
	return p
}
