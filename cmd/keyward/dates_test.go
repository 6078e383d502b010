package main

import (
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/sqlite"
)

// keyStatusJSON is the status of a key as --json prints it.
type keyStatusJSON struct {
	ID     string            `json:"id"`
	Status keyward.KeyStatus `json:"status"`
}

// TestKeysTimes: the command line reads expiry, rotation and grace as the
// API does, through the same code, with the same errors.
func TestKeysTimes(t *testing.T) {
	db := newDB(t)
	ok(t, db, "tenants", "create", "acme")
	_, id := newKey(t, db, "--name", "dated", "--expires", "30d", "--rotate-by", "20d")
	create := func(args ...string) []string {
		return append([]string{"keys", "create", "--tenant", "acme", "--name", "bot"}, args...)
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"year 10000", create("--expires", "9999-12-31T23:30:00-23:59"), []string{"--expires: ", "more than 36500d (100 years) ahead"}},
		{"rotate-by year 10000", create("--rotate-by", "9999-12-31T23:30:00-23:59"), []string{"--rotate-by: ", "100 years"}},
		{"negative", create("--expires", "-1h"), []string{`--expires: "-1h" is negative`}},
		{"too long", create("--rotate-by", "36501d"), []string{`--rotate-by: "36501d" is longer than the maximum of 36500d (100 years)`}},
		{"empty expires", create("--expires", ""), []string{"--expires: is empty", `"never"`}},
		{"empty rotate-by", create("--rotate-by", ""), []string{"--rotate-by: is empty"}},
		{"update empty expires", []string{"keys", "update", id, "--expires", ""}, []string{"--expires: is empty"}},
		{"update empty rotate-by", []string{"keys", "update", id, "--rotate-by", ""}, []string{"--rotate-by: is empty"}},
		{"update negative", []string{"keys", "update", id, "--expires", "-1h"}, []string{`--expires: "-1h" is negative`}},
		{"negative grace", []string{"keys", "rotate", id, "--grace", "-1h"}, []string{`--grace: "-1h" is negative`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if o := fails(t, db, 1, tc.args, tc.want...); o.stdout != "" {
				t.Errorf("a refused command printed on stdout: %q", o.stdout)
			}
		})
	}
	if k := showKey(t, db, id); k.ExpiresAt == nil || k.RotateBy == nil || k.RotatedTo != "" {
		t.Errorf("a refused command changed the key: %+v", k)
	}
	if page := decodeList[keyward.Key](t, ok(t, db, "keys", "list", "--tenant", "acme", "--json").stdout); len(page.Data) != 1 {
		t.Errorf("a refused create stored a key: %d keys", len(page.Data))
	}
	k := decodeJSON[createdKey](t, ok(t, db, create("--expires", "never", "--rotate-by", "never", "--json")...).stdout)
	if k.ExpiresAt != nil || k.RotateBy != nil {
		t.Errorf("--expires never: expires_at %v, rotate_by %v", k.ExpiresAt, k.RotateBy)
	}
}

// TestKeysUpdateWithoutChange: an update to the values a key has is refused
// and writes no audit entry.
func TestKeysUpdateWithoutChange(t *testing.T) {
	db := newDB(t)
	ok(t, db, "tenants", "create", "acme")
	_, id := newKey(t, db, "--name", "same", "--permissions", "a:read,b:write", "--metadata", "owner=ops")
	entries := len(decodeList[keyward.AuditEntry](t, ok(t, db, "audit", "--target", id, "--json").stdout).Data)
	for _, args := range [][]string{
		{"--name", "same"},
		{"--permissions", "b:write,a:read"},
		{"--metadata", "owner=ops"},
		{"--enable"},
		{"--expires", "never", "--allow-ip", ""},
	} {
		fails(t, db, 1, append([]string{"keys", "update", id}, args...), "Nothing to change")
	}
	fails(t, db, 2, []string{"keys", "update", id}, "nothing to change")
	if n := len(decodeList[keyward.AuditEntry](t, ok(t, db, "audit", "--target", id, "--json").stdout).Data); n != entries {
		t.Errorf("updates without a change wrote %d audit entries", n-entries)
	}
	// An empty page of the audit log is [], as every list.
	page := ok(t, db, "audit", "--target", "key_nope", "--json").stdout
	if !strings.Contains(page, `"data": []`) {
		t.Errorf("empty audit page: %s", page)
	}
}

// TestKeysExpiredStatus: a key past its expiry shows expired in the text
// and the --json output, and --status expired lists it, not --status
// active.
func TestKeysExpiredStatus(t *testing.T) {
	db := newDB(t)
	ok(t, db, "tenants", "create", "acme")
	_, oldID := newKey(t, db, "--name", "old")
	_, activeID := newKey(t, db, "--name", "active")
	r := decodeJSON[struct {
		keyStatusJSON
		Previous keyStatusJSON `json:"previous"`
	}](t, ok(t, db, "keys", "rotate", oldID, "--grace", "0", "--json").stdout)
	if r.Previous.ID != oldID || r.Previous.Status != "expired" || r.Status != keyward.KeyActive {
		t.Errorf("keys rotate --json: previous %+v, successor %+v", r.Previous, r.keyStatusJSON)
	}
	if k := decodeJSON[keyStatusJSON](t, ok(t, db, "keys", "show", oldID, "--json").stdout); k.Status != "expired" {
		t.Errorf("keys show --json: status %q", k.Status)
	}
	if o := ok(t, db, "keys", "show", oldID).stdout; !strings.Contains(o, "expired") {
		t.Errorf("keys show:\n%s", o)
	}
	for st, want := range map[string][]string{"expired": {oldID}, "active": {r.ID, activeID}, "disabled": nil} {
		page := decodeList[keyStatusJSON](t, ok(t, db, "keys", "list", "--tenant", "acme", "--status", st, "--json").stdout)
		if len(page.Data) != len(want) {
			t.Errorf("--status %s: %+v, want %v", st, page.Data, want)
		}
		for i, k := range page.Data {
			if i < len(want) && (k.ID != want[i] || string(k.Status) != st) {
				t.Errorf("--status %s: %+v, want %v", st, page.Data, want)
			}
		}
	}
	for _, k := range decodeList[keyStatusJSON](t, ok(t, db, "keys", "list", "--tenant", "acme", "--json").stdout).Data {
		if (k.ID == oldID) != (k.Status == "expired") {
			t.Errorf("keys list --json: %+v", k)
		}
	}
}

// TestKeysJSONUnencodable: a key whose expiry JSON cannot encode, put into
// the database past every check, makes --json an error with nothing on
// stdout; the text output shows it, and it can be revoked.
func TestKeysJSONUnencodable(t *testing.T) {
	db := newDB(t)
	ok(t, db, "tenants", "create", "acme")
	tenant := decodeJSON[keyward.Tenant](t, ok(t, db, "tenants", "show", "acme", "--json").stdout)
	store, err := sqlite.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	format, _ := apikey.NewFormat(apikey.DefaultPrefix)
	plaintext, err := format.Generate(keyward.Live)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	year10000 := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	k := &keyward.Key{ID: apikey.NewID("key"), TenantID: tenant.ID, Environment: keyward.Live, Name: "far",
		Hash: apikey.Hash(plaintext), Head: apikey.Head(plaintext), ExpiresAt: &year10000,
		Status: keyward.KeyActive, CreatedAt: now, UpdatedAt: now}
	k.Start, k.Last4 = apikey.Display(plaintext)
	if err := store.CreateKey(t.Context(), k, keyward.CommandLineActor()); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"keys", "show", k.ID, "--json"}, {"keys", "list", "--tenant", "acme", "--json"}} {
		if o := fails(t, db, 1, args, "--json", "cannot be encoded", "year outside of range"); o.stdout != "" {
			t.Errorf("keyward %s printed %q", strings.Join(args, " "), o.stdout)
		}
	}
	if o := ok(t, db, "keys", "show", k.ID); !strings.Contains(o.stdout, "10000-01-01") {
		t.Errorf("keys show:\n%s", o.stdout)
	}
	ok(t, db, "keys", "revoke", k.ID)
	fails(t, db, 1, []string{"verify", plaintext})
}

// TestKeysRotationDue: a key past its rotate_by says so in keys show, as
// text and as JSON (rotation_due); a key before it does not.
func TestKeysRotationDue(t *testing.T) {
	db := newDB(t)
	ok(t, db, "tenants", "create", "acme")
	_, dueID := newKey(t, db, "--name", "due", "--rotate-by", "20d")
	_, laterID := newKey(t, db, "--name", "later", "--rotate-by", "20d")
	store, err := sqlite.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	if _, err := store.UpdateKey(t.Context(), dueID, keyward.KeyUpdate{RotateBy: &past}, time.Now(), keyward.CommandLineActor()); err != nil {
		t.Fatal(err)
	}
	store.Close()
	type rotation struct {
		RotationDue bool `json:"rotation_due"`
	}
	for id, due := range map[string]bool{dueID: true, laterID: false} {
		if k := decodeJSON[rotation](t, ok(t, db, "keys", "show", id, "--json").stdout); k.RotationDue != due {
			t.Errorf("keys show %s --json: rotation_due %v, want %v", id, k.RotationDue, due)
		}
		if o := ok(t, db, "keys", "show", id).stdout; strings.Contains(o, "(due: rotate the key)") != due {
			t.Errorf("keys show %s (due %v):\n%s", id, due, o)
		}
	}
}
