package postgres

import (
	"strconv"
	"strings"
	"testing"
)

// TestMigrationsTakeTheWriteLock: a migration that writes to the change
// feed takes the write lock by its number, written out in SQL; the number
// must stay the one every writer takes.
func TestMigrationsTakeTheWriteLock(t *testing.T) {
	b, err := migrations.ReadFile("migrations/00004_clamp_key_times.sql")
	if err != nil {
		t.Fatal(err)
	}
	if want := "pg_advisory_xact_lock(" + strconv.FormatInt(writeLock, 10) + ")"; !strings.Contains(string(b), want) {
		t.Errorf("00004_clamp_key_times.sql does not take the write lock: no %s", want)
	}
}
