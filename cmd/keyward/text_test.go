package main

import (
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/sqlite"
)

// hostile is text that drives a terminal: it sets the window title, clears
// the screen, starts a C1 control sequence, reverses the text around it and
// hides characters.
const hostile = "\x1b]0;pwned\x07\x1b[2J\u009b31m\u202eexe.\u200b\ufeff\r\x00"

// wantInert fails the test unless s holds nothing that could drive a
// terminal or hide what it says: valid UTF-8, no control character but the
// line break, no invisible formatting character (bidirectional, zero-width),
// no line or paragraph separator.
func wantInert(t *testing.T, what, s string) {
	t.Helper()
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\ufffd"):
			t.Errorf("%s holds invalid UTF-8 (byte 0x%02X at %d):\n%q", what, s[i], i, s)
			return
		case r == '\n':
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r), unicode.In(r, unicode.Zl, unicode.Zp):
			t.Errorf("%s holds U+%04X at byte %d:\n%q", what, r, i, s)
			return
		}
	}
}

// TestTextFieldsCommandLine: the command line refuses names and tags that
// are not visible text, as the API does, and the error shows the character
// as U+XXXX.
func TestTextFieldsCommandLine(t *testing.T) {
	db := newDB(t)
	ok(t, db, "tenants", "create", "acme")
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"name with RLO", []string{"--name", "invoice\u202efdp.exe"}, []string{"--name: contains U+202E at character 8", "bidirectional"}},
		{"name with ESC", []string{"--name", "ci\x1b]0;pwned\x07"}, []string{"--name: contains U+001B", "control character"}},
		{"name with zero-width space", []string{"--name", "prod\u200bbot"}, []string{"--name: contains U+200B", "zero-width"}},
		{"name not UTF-8", []string{"--name", "bad\xffname"}, []string{"--name: is not valid UTF-8 text (byte 0xFF at byte 4)"}},
		{"tag value with ESC", []string{"--name", "x", "--metadata", "owner=\x1b[2J"}, []string{"--metadata", "U+001B"}},
		{"tag value with RLI", []string{"--name", "x", "--metadata", "owner=a\u2067b"}, []string{"--metadata", "U+2067"}},
		{"tag name with ZWJ", []string{"--name", "x", "--metadata", "own\u200der=b"}, []string{"--metadata: tag name contains U+200D"}},
		{"tag value over the limit", []string{"--name", "x", "--metadata", "owner=" + strings.Repeat("ü", 200)}, []string{"--metadata", "400 bytes", "at most 256 bytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := fails(t, db, 1, append([]string{"keys", "create", "--tenant", "acme"}, tc.args...), tc.want...)
			wantInert(t, "the message", o.message())
		})
	}
	if o := ok(t, db, "keys", "list", "--json"); strings.Contains(o.stdout, `"key_`) {
		t.Errorf("a refused key was stored:\n%s", o.stdout)
	}
	// An update is checked the same way.
	_, id := newKey(t, db, "--name", "k")
	fails(t, db, 1, []string{"keys", "update", id, "--name", "a\u202eb"}, "--name: contains U+202E")
}

// TestOutputIsInert: whatever the database holds (a row written by hand, by
// an older version, or by another tool), the command line prints it with
// every control, bidirectional and zero-width character escaped, so that a
// stored byte never drives the operator's terminal.
func TestOutputIsInert(t *testing.T) {
	db := dbFile(t)
	ok(t, db, "migrate")
	ctx := t.Context()
	store, err := sqlite.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	by := keyward.Actor{ID: "key_" + hostile, IP: "192.0.2.1" + hostile}
	plan := &keyward.Plan{Name: "pro" + hostile, APIAccess: true, CreatedAt: now, UpdatedAt: now}
	if err := store.CreatePlan(ctx, plan, by); err != nil {
		t.Fatal(err)
	}
	tn := &keyward.Tenant{ID: "ten_evil" + hostile, Slug: "evil" + hostile, Plan: plan.Name, Status: keyward.TenantActive, CreatedAt: now, UpdatedAt: now}
	if err := store.CreateTenant(ctx, tn, by); err != nil {
		t.Fatal(err)
	}
	format, _ := apikey.NewFormat(apikey.DefaultPrefix)
	plaintext, err := format.Generate(keyward.Live)
	if err != nil {
		t.Fatal(err)
	}
	start, last4 := apikey.Display(plaintext)
	k := &keyward.Key{
		ID: "key_evil" + hostile, TenantID: tn.ID, Environment: keyward.Live, Name: "ci" + hostile,
		Head: apikey.Head(plaintext), Start: start, Last4: last4, Hash: apikey.Hash(plaintext),
		Permissions:  []string{"contacts:read" + hostile},
		Metadata:     map[string]string{"owner" + hostile: "billing" + hostile},
		Restrictions: keyward.Restrictions{IPs: []string{}},
		Status:       keyward.KeyActive, CreatedAt: now, UpdatedAt: now, CreatedBy: by.ID,
		RotatedFrom: "key_old" + hostile,
	}
	if err := store.CreateKey(ctx, k, by); err != nil {
		t.Fatal(err)
	}
	if err := store.RecordUsage(ctx, []keyward.Usage{{KeyID: k.ID, At: now, IP: "198.51.100.7" + hostile}}); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	for _, args := range [][]string{
		{"keys", "list"},
		{"keys", "list", "--tenant", tn.ID},
		{"keys", "show", k.ID},
		{"keys", "update", k.ID, "--disable"},
		{"keys", "update", k.ID, "--enable"},
		{"tenants", "list"},
		{"tenants", "show", tn.ID},
		{"tenants", "suspend", tn.ID},
		{"tenants", "resume", tn.ID},
		{"audit"},
		{"audit", "--target", k.ID},
		{"verify", plaintext},
		{"verify", plaintext, "--permission", "contacts:write"},
		{"keys", "rotate", k.ID},
		{"keys", "revoke", k.ID},
		{"verify", plaintext},
		// Errors that quote what was typed.
		{"keys", "show", "key_" + hostile},
		{"tenants", "show", "t" + hostile},
		{"keys", "list", "--tenant", "t" + hostile},
		{"keys", "list", "--frob" + hostile},
		{"keys", hostile},
		{"verify", "sk_live_" + hostile},
		{"keys", "create", "--tenant", tn.ID, "--name", "x", "--expires", hostile},
		{"keys", "create", "--tenant", tn.ID, "--name", "x", "--permissions", hostile},
		{"keys", "create", "--tenant", tn.ID, "--name", "x", "--metadata", hostile},
		{"keys", "create", "--tenant", tn.ID, "--name", "x", "--allow-ip", hostile},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			o := cli(t, db, args...)
			wantInert(t, "stdout", o.stdout)
			wantInert(t, "stderr", o.stderr)
			wantInert(t, "the message", o.message())
			if o.stdout+o.stderr+o.message() == "" {
				t.Error("printed nothing")
			}
		})
	}
	// The escapes show what is there.
	if o := ok(t, db, "keys", "show", k.ID); !strings.Contains(o.stdout, `"ci\x1b]0;pwned\a\x1b[2J\u009b31m\u202eexe.\u200b\ufeff\r\x00"`) {
		t.Errorf("keys show does not show the name escaped:\n%s", o.stdout)
	}
}

// TestKeyNeverPrintedBack: a key typed where a value belongs is never
// printed back whole in an error, and is never stored in a name or a tag.
func TestKeyNeverPrintedBack(t *testing.T) {
	db := dbFile(t)
	ok(t, db, "migrate")
	ok(t, db, "tenants", "create", "acme")
	key := strings.TrimSpace(ok(t, db, "keys", "create", "--tenant", "acme", "--name", "k").stdout)
	body := key[len("sk_live_"):]
	for _, args := range [][]string{
		{"keys", "create", "--tenant", "acme", "--name", "n", "--permissions", key},
		{"keys", "create", "--tenant", "acme", "--name", "ci " + key},
		{"keys", "create", "--tenant", "acme", "--name", "n", "--metadata", "owner=" + key},
		{"verify", key, "--permission", key},
	} {
		o := cli(t, db, args...)
		if o.code() == 0 && args[0] != "verify" || strings.Contains(o.stdout+o.stderr+errorMessage(o.err), body) {
			t.Errorf("%s %s: exit %d, stdout %q, stderr %q, error %q", args[0], args[1], o.code(), o.stdout, o.stderr, errorMessage(o.err))
		}
	}
}
