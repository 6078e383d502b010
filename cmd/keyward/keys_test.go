package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// createdKey is the --json output of keys create and keys rotate.
type createdKey struct {
	keyward.Key
	Plaintext string       `json:"key"`
	Previous  *keyward.Key `json:"previous"`
}

// newKey creates a key in tenant acme with args added to keys create, and
// returns its plaintext and its id.
func newKey(t *testing.T, db string, args ...string) (plaintext, id string) {
	t.Helper()
	k := decodeJSON[createdKey](t, ok(t, db, append([]string{"keys", "create", "--tenant", "acme", "--json"}, args...)...).stdout)
	return k.Plaintext, k.ID
}

// showKey returns a key as keys show --json prints it.
func showKey(t *testing.T, db, id string) keyward.Key {
	t.Helper()
	return decodeJSON[keyward.Key](t, ok(t, db, "keys", "show", id, "--json").stdout)
}

func TestKeysCreate(t *testing.T) {
	db := newDB(t)
	ok(t, db, "tenants", "create", "acme")
	format, err := apikey.NewFormat(apikey.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("prints the key alone on stdout", func(t *testing.T) {
		o := ok(t, db, "keys", "create", "--tenant", "acme", "--name", "prod-order-bot")
		if strings.Count(o.stdout, "\n") != 1 || !strings.HasSuffix(o.stdout, "\n") {
			t.Fatalf("stdout is not one line: %q", o.stdout)
		}
		key := strings.TrimSuffix(o.stdout, "\n")
		env, perr := format.Parse(key)
		if perr != nil || env != keyward.Live {
			t.Fatalf("the key does not parse as a live key: %v", perr)
		}
		if strings.Contains(o.stderr, key) {
			t.Error("stderr contains the plaintext key")
		}
		for _, want := range []string{"Store it now", "key_", "prod-order-bot", key[:12] + "…" + key[len(key)-4:]} {
			if !strings.Contains(o.stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, o.stderr)
			}
		}
		v := ok(t, db, "verify", key)
		if !strings.HasPrefix(v.stdout, "valid key_") || !strings.Contains(v.stdout, "acme") || !strings.Contains(v.stdout, "env live") {
			t.Errorf("verify printed %q", v.stdout)
		}
	})

	t.Run("every flag", func(t *testing.T) {
		o := ok(t, db, "keys", "create", "--json", "--tenant", "acme", "--name", "reports",
			"--env", "test", "--permissions", "reports:read,contacts:write", "--expires", "2099-01-01",
			"--allow-ip", "203.0.113.0/24", "--allow-ip", "192.0.2.7", "--metadata", "owner=billing",
			"--metadata", "note=a=b", "--rotate-by", "90d")
		k := decodeJSON[createdKey](t, o.stdout)
		if _, perr := format.Parse(k.Plaintext); perr != nil || !strings.HasPrefix(k.Plaintext, "sk_test_") {
			t.Fatalf("key %q: %v", k.Plaintext, perr)
		}
		if o.stderr != "" {
			t.Errorf("--json printed on stderr: %q", o.stderr)
		}
		got := showKey(t, db, k.ID)
		wantExpiry := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
		switch {
		case got.Name != "reports" || got.Environment != keyward.Test:
			t.Errorf("name %q, environment %q", got.Name, got.Environment)
		case !slices.Equal(got.Permissions, []string{"reports:read", "contacts:write"}):
			t.Errorf("permissions %q", got.Permissions)
		case got.ExpiresAt == nil || !got.ExpiresAt.Equal(wantExpiry):
			t.Errorf("expires_at %v", got.ExpiresAt)
		case !slices.Equal(got.Restrictions.IPs, []string{"203.0.113.0/24", "192.0.2.7/32"}):
			t.Errorf("restrictions %q", got.Restrictions.IPs)
		case got.Metadata["owner"] != "billing" || got.Metadata["note"] != "a=b" || len(got.Metadata) != 2:
			t.Errorf("metadata %v", got.Metadata)
		case got.RotateBy == nil || got.RotateBy.Sub(got.CreatedAt).Round(time.Hour) != 90*24*time.Hour:
			t.Errorf("rotate_by %v, created %v", got.RotateBy, got.CreatedAt)
		case got.TenantID == "" || got.Status != keyward.KeyActive || got.CreatedBy != "cli":
			t.Errorf("key %+v", got)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		create := func(args ...string) []string {
			return append([]string{"keys", "create", "--tenant", "acme", "--name", "bot"}, args...)
		}
		for _, tc := range []struct {
			name string
			args []string
			code int
			want []string
		}{
			{"empty name", []string{"keys", "create", "--tenant", "acme", "--name", "  "}, 1, []string{"--name", "is required"}},
			{"no name", []string{"keys", "create", "--tenant", "acme"}, 1, []string{"--name", "is required"}},
			{"long name", create("--name", strings.Repeat("n", 101)), 1, []string{"--name", "at most 100"}},
			{"past expiry", create("--expires", "2001-01-01"), 1, []string{"--expires", "in the past"}},
			{"unreadable expiry", create("--expires", "soon"), 1, []string{"--expires", `"soon" is not a date`}},
			{"past rotate-by", create("--rotate-by", "2001-01-01"), 1, []string{"--rotate-by", "in the past"}},
			{"bad CIDR", create("--allow-ip", "10.0.0.0/33"), 1, []string{"--allow-ip", `"10.0.0.0/33"`}},
			{"bad address", create("--allow-ip", "example.com"), 1, []string{"--allow-ip", `"example.com"`}},
			{"bad permission", create("--permissions", "reports:read,Bad Perm"), 1, []string{"--permissions", `"Bad Perm" is not a permission`}},
			{"keyward permission", create("--permissions", "keyward:admin"), 1, []string{"--permissions", "system tenant"}},
			{"unknown env", create("--env", "prod"), 1, []string{"--env", `"prod"`, "live", "test"}},
			{"metadata without =", create("--metadata", "owner"), 2, []string{"--metadata", `"owner" is not KEY=VALUE`}},
			{"metadata twice", create("--metadata", "a=1", "--metadata", "a=2"), 2, []string{"--metadata", "twice"}},
			{"bad metadata name", create("--metadata", "a b=1"), 1, []string{"--metadata", `"a b"`}},
			{"unknown tenant", []string{"keys", "create", "--tenant", "nobody", "--name", "bot"}, 1, []string{"No tenant", "nobody"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				o := fails(t, db, tc.code, tc.args, tc.want...)
				if o.stdout != "" {
					t.Errorf("a refused create printed on stdout: %q", o.stdout)
				}
			})
		}
	})
}

func TestKeysManage(t *testing.T) {
	db := newDB(t)
	ok(t, db, "tenants", "create", "acme")
	ok(t, db, "tenants", "create", "beta")
	key, id := newKey(t, db, "--name", "first", "--permissions", "a:read")
	_, testID := newKey(t, db, "--name", "second", "--env", "test")
	ok(t, db, "keys", "create", "--tenant", "beta", "--name", "other")
	ok(t, db, "keys", "create", "--tenant", "beta", "--name", "other too")

	t.Run("list", func(t *testing.T) {
		o := ok(t, db, "keys", "list", "--tenant", "acme")
		lines := strings.Split(strings.TrimSpace(o.stdout), "\n")
		if len(lines) != 3 {
			t.Fatalf("keys list printed\n%s", o.stdout)
		}
		for _, col := range []string{"ID", "NAME", "KEY", "ENV", "STATUS", "CREATED", "LAST USED", "EXPIRES"} {
			if !strings.Contains(lines[0], col) {
				t.Errorf("header lacks %s: %q", col, lines[0])
			}
		}
		// Newest first.
		if !strings.Contains(lines[1], testID) || !strings.Contains(lines[2], id) {
			t.Errorf("keys list printed\n%s", o.stdout)
		}
		if !strings.Contains(lines[2], key[:12]+"…"+key[len(key)-4:]) || !strings.Contains(lines[2], "never") {
			t.Errorf("row %q lacks start…last4 or never", lines[2])
		}
		if strings.Contains(o.stdout, key) {
			t.Error("keys list printed a plaintext key")
		}

		page := decodeList[keyward.Key](t, ok(t, db, "keys", "list", "--tenant", "acme", "--env", "test", "--json").stdout)
		if len(page.Data) != 1 || page.Data[0].ID != testID {
			t.Errorf("--env test: %+v", page.Data)
		}
		all := decodeList[keyward.Key](t, ok(t, db, "keys", "list", "--json").stdout)
		if len(all.Data) != 4 {
			t.Errorf("keys list without --tenant lists %d keys, want 4", len(all.Data))
		}
		first := decodeList[keyward.Key](t, ok(t, db, "keys", "list", "--tenant", "acme", "--json", "--limit", "1").stdout)
		if len(first.Data) != 1 || first.NextCursor == "" {
			t.Fatalf("--limit 1: %+v", first)
		}
		o = ok(t, db, "keys", "list", "--tenant", "acme", "--limit", "1")
		if !strings.Contains(o.stderr, "--cursor "+first.NextCursor) {
			t.Errorf("keys list --limit 1 does not tell the next cursor: %q", o.stderr)
		}
		second := decodeList[keyward.Key](t, ok(t, db, "keys", "list", "--tenant", "acme", "--json", "--cursor", first.NextCursor).stdout)
		if len(second.Data) != 1 || second.Data[0].ID != id {
			t.Errorf("--cursor: %+v", second)
		}
		fails(t, db, 1, []string{"keys", "list", "--tenant", "acme", "--status", "lost"}, "--status")
		fails(t, db, 1, []string{"keys", "list", "--tenant", "acme", "--env", "prod"}, "--env")
		if page := decodeList[keyward.Key](t, ok(t, db, "keys", "list", "--tenant", "beta", "--json").stdout); len(page.Data) != 2 {
			t.Errorf("beta has %d keys, want 2", len(page.Data))
		}
		if page := decodeList[keyward.Key](t, ok(t, db, "keys", "list", "--tenant", "beta", "--env", "test", "--json").stdout); len(page.Data) != 0 {
			t.Errorf("beta has %d test keys, want none", len(page.Data))
		}
	})

	t.Run("show", func(t *testing.T) {
		o := ok(t, db, "keys", "show", id)
		for _, want := range []string{id, "first", "a:read", "live", "active", key[:12] + "…"} {
			if !strings.Contains(o.stdout, want) {
				t.Errorf("keys show lacks %q:\n%s", want, o.stdout)
			}
		}
		if strings.Contains(o.stdout, key) {
			t.Error("keys show printed the plaintext key")
		}
		fails(t, db, 1, []string{"keys", "show", "key_nope"}, "No API key", "key_nope")
	})

	t.Run("update changes only what is given", func(t *testing.T) {
		ok(t, db, "keys", "update", id, "--name", "renamed")
		k := showKey(t, db, id)
		if k.Name != "renamed" || !slices.Equal(k.Permissions, []string{"a:read"}) || k.ExpiresAt != nil {
			t.Fatalf("after --name: %+v", k)
		}
		ok(t, db, "keys", "update", id, "--permissions", "a:read,b:write", "--expires", "30d",
			"--rotate-by", "2098-01-01", "--allow-ip", "10.0.0.0/8", "--metadata", "owner=ops")
		k = showKey(t, db, id)
		if k.Name != "renamed" || !slices.Equal(k.Permissions, []string{"a:read", "b:write"}) || k.ExpiresAt == nil ||
			k.RotateBy == nil || !slices.Equal(k.Restrictions.IPs, []string{"10.0.0.0/8"}) || k.Metadata["owner"] != "ops" {
			t.Fatalf("after update: %+v", k)
		}
		ok(t, db, "keys", "update", id, "--expires", "never", "--rotate-by", "never", "--allow-ip", "", "--metadata", "")
		k = showKey(t, db, id)
		if k.ExpiresAt != nil || k.RotateBy != nil || len(k.Restrictions.IPs) != 0 || len(k.Metadata) != 0 || len(k.Permissions) != 2 {
			t.Fatalf("after clearing: %+v", k)
		}
		k = decodeJSON[keyward.Key](t, ok(t, db, "keys", "update", id, "--disable", "--json").stdout)
		if k.Status != keyward.KeyDisabled {
			t.Fatalf("after --disable: status %q", k.Status)
		}
		fails(t, db, 1, []string{"verify", key}) // disabled
		if k := showKey(t, db, id); k.Status != keyward.KeyDisabled {
			t.Fatalf("status %q", k.Status)
		}
		ok(t, db, "keys", "update", id, "--enable")
		if k := showKey(t, db, id); k.Status != keyward.KeyActive || k.Name != "renamed" {
			t.Fatalf("after --enable: %+v", k)
		}
		fails(t, db, 1, []string{"keys", "update", id, "--name", ""}, "--name")
		fails(t, db, 1, []string{"keys", "update", id, "--expires", "yesterday"}, "--expires")
		fails(t, db, 1, []string{"keys", "update", id, "--allow-ip", "300.1.1.1"}, "--allow-ip")
		fails(t, db, 1, []string{"keys", "update", "key_nope", "--name", "x"}, "No API key")
	})

	t.Run("revoke", func(t *testing.T) {
		_, rid := newKey(t, db, "--name", "doomed")
		o := ok(t, db, "keys", "revoke", rid)
		if !strings.Contains(o.stdout, "API key revoked successfully") {
			t.Errorf("keys revoke printed %q", o.stdout)
		}
		if k := showKey(t, db, rid); k.Status != keyward.KeyRevoked || k.RevokedAt == nil {
			t.Errorf("after revoke: %+v", k)
		}
		v := decodeJSON[map[string]any](t, ok(t, db, "keys", "revoke", rid, "--json").stdout)
		if v["success"] != true || v["message"] != "API key revoked successfully" || v["id"] != rid {
			t.Errorf("keys revoke --json: %v", v)
		}
		fails(t, db, 1, []string{"keys", "update", rid, "--name", "x"}, "revoked")
		fails(t, db, 1, []string{"keys", "rotate", rid}, "revoked")
		fails(t, db, 1, []string{"keys", "revoke", "key_nope"}, "No API key")
	})

	t.Run("rotate", func(t *testing.T) {
		oldKey, oldID := newKey(t, db, "--name", "rotating", "--permissions", "a:read", "--metadata", "owner=ops")
		o := ok(t, db, "keys", "rotate", oldID)
		newKey := strings.TrimSuffix(o.stdout, "\n")
		if strings.Contains(newKey, "\n") || !strings.HasPrefix(newKey, "sk_live_") {
			t.Fatalf("keys rotate stdout is not one key: %q", o.stdout)
		}
		if strings.Contains(o.stderr, newKey) || strings.Contains(o.stderr, oldKey) {
			t.Error("stderr contains a plaintext key")
		}
		old := showKey(t, db, oldID)
		if old.RotatedTo == "" || !strings.Contains(o.stderr, old.RotatedTo) || !strings.Contains(o.stderr, "Store it now") ||
			!strings.Contains(o.stderr, "keeps working until") {
			t.Errorf("keys rotate stderr: %q", o.stderr)
		}
		if old.ExpiresAt == nil || old.ExpiresAt.Sub(time.Now()) < 23*time.Hour || old.ExpiresAt.Sub(time.Now()) > 24*time.Hour {
			t.Errorf("the old key expires at %v, want in 24h", old.ExpiresAt)
		}
		successor := showKey(t, db, old.RotatedTo)
		if successor.RotatedFrom != oldID || successor.Name != "rotating" || !slices.Equal(successor.Permissions, []string{"a:read"}) || successor.Metadata["owner"] != "ops" {
			t.Errorf("successor %+v", successor)
		}
		ok(t, db, "verify", newKey)
		ok(t, db, "verify", oldKey) // within the grace period
		fails(t, db, 1, []string{"keys", "rotate", oldID}, "rotated already")

		r := decodeJSON[createdKey](t, ok(t, db, "keys", "rotate", successor.ID, "--grace", "1h", "--json").stdout)
		if r.Plaintext == "" || r.RotatedFrom != successor.ID || r.Previous == nil || r.Previous.ID != successor.ID || r.Previous.RotatedTo != r.ID {
			t.Errorf("keys rotate --json: %+v", r)
		}
		fails(t, db, 1, []string{"keys", "rotate", r.ID, "--grace", "31d"}, "--grace", "30")
		fails(t, db, 1, []string{"keys", "rotate", r.ID, "--grace", "soon"}, "--grace")
		fails(t, db, 1, []string{"keys", "rotate", "key_nope"}, "No API key")

		o = ok(t, db, "keys", "rotate", r.ID, "--grace", "0")
		if !strings.Contains(o.stderr, "no longer works") {
			t.Errorf("keys rotate --grace 0 stderr: %q", o.stderr)
		}
	})

	t.Run("audit", func(t *testing.T) {
		o := ok(t, db, "audit", "--target", id)
		for _, action := range []string{keyward.ActionKeyCreate, keyward.ActionKeyUpdate} {
			if !strings.Contains(o.stdout, action) {
				t.Errorf("audit of %s lacks %s:\n%s", id, action, o.stdout)
			}
		}
	})
}

// TestKeysExpiredStaysExpired: the command line, root as it is, cannot
// revive an expired key with a new expiry, nor change or rotate it; it can
// still revoke it.
func TestKeysExpiredStaysExpired(t *testing.T) {
	db := newDB(t)
	ok(t, db, "tenants", "create", "acme")
	key, id := newKey(t, db, "--name", "short", "--expires", "1s")
	expires := *showKey(t, db, id).ExpiresAt
	// The key expires by itself: wait until the clock has passed its
	// expiry, as an operator would find it the next day.
	time.Sleep(time.Until(expires) + 10*time.Millisecond)
	if o := fails(t, db, 1, []string{"verify", key}); !strings.Contains(o.stdout, "expired") {
		t.Fatalf("verify of the expired key printed %q", o.stdout)
	}
	when := expires.UTC().Format(time.RFC3339)
	for _, args := range [][]string{
		{"keys", "update", id, "--expires", "90d"},
		{"keys", "update", id, "--expires", "never"},
		{"keys", "update", id, "--name", "renamed"},
		{"keys", "update", id, "--enable"},
		{"keys", "rotate", id},
	} {
		fails(t, db, 1, args, "expired on "+when, "create a new key")
	}
	if o := fails(t, db, 1, []string{"verify", key}); !strings.Contains(o.stdout, "expired") {
		t.Errorf("verify of the expired key printed %q", o.stdout)
	}
	if k := showKey(t, db, id); !k.ExpiresAt.Equal(expires) || k.Name != "short" || k.RotatedTo != "" {
		t.Errorf("the expired key changed: %+v", k)
	}
	ok(t, db, "keys", "revoke", id)
}

// TestKeysRestrictionFlags: keys create and keys update set every kind of
// restriction, an update changes only the restrictions it names, and a bad
// one is refused naming its flag.
func TestKeysRestrictionFlags(t *testing.T) {
	db := newDB(t)
	ok(t, db, "tenants", "create", "acme")
	_, id := newKey(t, db, "--tenant", "acme", "--name", "browser",
		"--allow-referrer", "https://app.example.com", "--allow-referrer", "https://*.example.com/*",
		"--allow-endpoint", "GET /v1/contacts/**", "--allow-resource", "site=site_1,site_2", "--allow-resource", "team=t1")
	got := showKey(t, db, id).Restrictions
	if !slices.Equal(got.Referrers, []string{"https://app.example.com", "https://*.example.com/*"}) ||
		!slices.Equal(got.Endpoints, []string{"GET /v1/contacts/**"}) ||
		!slices.Equal(got.Resources["site"], []string{"site_1", "site_2"}) || !slices.Equal(got.Resources["team"], []string{"t1"}) {
		t.Fatalf("restrictions as created: %+v", got)
	}
	if out := ok(t, db, "keys", "show", id).stdout; !strings.Contains(out, "GET /v1/contacts/**") || !strings.Contains(out, "site=site_1,site_2 team=t1") {
		t.Errorf("keys show does not show the restrictions:\n%s", out)
	}

	// Only --allow-ip changes: the referrers, endpoints and resources stay.
	ok(t, db, "keys", "update", id, "--allow-ip", "10.0.0.0/8")
	after := showKey(t, db, id).Restrictions
	if !slices.Equal(after.IPs, []string{"10.0.0.0/8"}) || !slices.Equal(after.Referrers, got.Referrers) ||
		!slices.Equal(after.Endpoints, got.Endpoints) || len(after.Resources) != 2 {
		t.Fatalf("restrictions after --allow-ip alone: %+v", after)
	}
	ok(t, db, "keys", "update", id, "--allow-endpoint", "")
	if after := showKey(t, db, id).Restrictions; len(after.Endpoints) != 0 || len(after.Referrers) != 2 {
		t.Fatalf("restrictions after clearing the endpoints: %+v", after)
	}

	fails(t, db, 1, []string{"keys", "update", id, "--allow-endpoint", "GET /v1/{id"}, "--allow-endpoint")
	fails(t, db, 1, []string{"keys", "update", id, "--allow-referrer", "https://"}, "--allow-referrer")
	fails(t, db, 2, []string{"keys", "update", id, "--allow-resource", "site_1"}, "--allow-resource", "NAME=VALUE")
}
