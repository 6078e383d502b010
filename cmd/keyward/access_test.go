package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/view"
)

// TestMembers: members add, list, show, update (and its set-role and
// set-permissions forms) and remove, with the errors that name the flag at
// fault; keys create --member and keys list --member.
func TestMembers(t *testing.T) {
	db := newDB(t)
	ok(t, db, "tenants", "create", "acme")
	fails(t, db, 1, []string{"members", "add", "--tenant", "acme", "--email", "d@example.com", "--name", "D", "--role", "developer"}, "owner")

	o := ok(t, db, "members", "add", "--tenant", "acme", "--email", "ada@example.com", "--name", "Ada Lovelace", "--role", "owner",
		"--permissions", "contacts:read,contacts:write", "--external-id", "user_1")
	if !strings.Contains(o.stderr, "Added member mem_") || !strings.Contains(o.stdout, "Ada Lovelace") || !strings.Contains(o.stdout, "contacts:read, contacts:write") {
		t.Errorf("members add printed %q and %q", o.stdout, o.stderr)
	}
	dev := decodeJSON[keyward.Member](t, ok(t, db, "members", "add", "--tenant", "acme", "--email", "dev@example.com", "--name", "Dev",
		"--role", "developer", "--permissions", "contacts:read", "--json").stdout)
	if dev.Role != keyward.RoleDeveloper || dev.Status != keyward.MemberActive || !slices.Equal(dev.Permissions, []string{"contacts:read"}) || !strings.HasPrefix(dev.ID, "mem_") {
		t.Fatalf("member %+v", dev)
	}

	t.Run("list and show", func(t *testing.T) {
		lines := strings.Split(strings.TrimSpace(ok(t, db, "members", "list", "--tenant", "acme").stdout), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], "ada@example.com") || !strings.Contains(lines[2], "dev@example.com") {
			t.Errorf("members list printed\n%s", strings.Join(lines, "\n"))
		}
		page := decodeList[keyward.Member](t, ok(t, db, "members", "list", "--json", "--limit", "1").stdout)
		if len(page.Data) != 1 || page.NextCursor == "" {
			t.Errorf("first page of 1: %+v", page)
		}
		if o := ok(t, db, "members", "show", dev.ID); !strings.Contains(o.stdout, "developer") || !strings.Contains(o.stdout, "dev@example.com") {
			t.Errorf("members show printed %q", o.stdout)
		}
	})

	t.Run("update", func(t *testing.T) {
		got := decodeJSON[keyward.Member](t, ok(t, db, "members", "update", dev.ID, "--name", "Developer", "--external-id", "user_2", "--json").stdout)
		if got.Name != "Developer" || got.ExternalID != "user_2" {
			t.Errorf("after update: %+v", got)
		}
		if o := ok(t, db, "members", "set-role", dev.ID, "admin"); !strings.Contains(o.stdout, "admin") {
			t.Errorf("set-role printed %q", o.stdout)
		}
		ok(t, db, "members", "set-permissions", dev.ID, "contacts:read,contacts:write")
		got = decodeJSON[keyward.Member](t, ok(t, db, "members", "update", dev.ID, "--status", "suspended", "--json").stdout)
		if got.Role != keyward.RoleAdmin || got.Status != keyward.MemberSuspended || !slices.Equal(got.Permissions, []string{"contacts:read", "contacts:write"}) {
			t.Errorf("after set-role, set-permissions and --status: %+v", got)
		}
		ok(t, db, "members", "update", dev.ID, "--status", "active", "--role", "developer")
		if got := decodeJSON[keyward.Member](t, ok(t, db, "members", "set-permissions", dev.ID, "", "--json").stdout); len(got.Permissions) != 0 {
			t.Errorf("set-permissions \"\": %+v", got)
		}
		ok(t, db, "members", "set-permissions", dev.ID, "contacts:read")
	})

	t.Run("keys of a member", func(t *testing.T) {
		_, id := newKey(t, db, "--name", "dev's", "--member", dev.ID, "--permissions", "contacts:read")
		if k := showKey(t, db, id); k.MemberID != dev.ID {
			t.Errorf("keys create --member: member_id %q", k.MemberID)
		}
		if o := ok(t, db, "keys", "show", id); !strings.Contains(o.stdout, dev.ID) {
			t.Errorf("keys show does not print the member: %q", o.stdout)
		}
		newKey(t, db, "--name", "the tenant's")
		ks := decodeList[keyward.Key](t, ok(t, db, "keys", "list", "--member", dev.ID, "--json").stdout)
		if len(ks.Data) != 1 || ks.Data[0].ID != id {
			t.Errorf("keys list --member: %+v", ks.Data)
		}
		fails(t, db, 1, []string{"keys", "create", "--tenant", "acme", "--name", "x", "--member", dev.ID, "--permissions", "billing:write"}, "--permissions", `"billing:write"`, dev.ID)
		fails(t, db, 1, []string{"keys", "create", "--tenant", "acme", "--name", "x", "--member", "mem_nobody"}, "--member", "mem_nobody")
	})

	t.Run("errors", func(t *testing.T) {
		add := func(args ...string) []string {
			return append([]string{"members", "add", "--tenant", "acme", "--email", "new@example.com", "--name", "New", "--role", "viewer"}, args...)
		}
		fails(t, db, 1, add("--email", "not-an-email"), "--email", "not an email address")
		fails(t, db, 1, add("--email", "ADA@example.com"), "--email")
		fails(t, db, 1, add("--role", "boss"), "--role", `"boss" is not a role`)
		fails(t, db, 1, add("--external-id", "user 3"), "--external-id", "space")
		fails(t, db, 1, add("--external-id", "user_1"), "--external-id")
		fails(t, db, 1, add("--permissions", "keys:manage"), "--permissions", "Keyward's own")
		fails(t, db, 2, []string{"members", "add", "--email", "x@example.com"}, "--tenant")
		fails(t, db, 2, []string{"members", "update", dev.ID}, "nothing to change")
		fails(t, db, 1, []string{"members", "update", dev.ID, "--name", "Developer"}, "Nothing to change")
		fails(t, db, 1, []string{"members", "show", "mem_nobody"}, "No member", "mem_nobody")
		fails(t, db, 2, []string{"members", "set-role", dev.ID}, "set-role")
	})

	t.Run("remove", func(t *testing.T) {
		heir := decodeJSON[keyward.Member](t, ok(t, db, "members", "add", "--tenant", "acme", "--email", "heir@example.com", "--name", "Heir",
			"--role", "developer", "--permissions", "contacts:read", "--json").stdout)
		plaintext, id := newKey(t, db, "--name", "moving", "--member", dev.ID, "--permissions", "contacts:read")
		fails(t, db, 1, []string{"members", "remove", dev.ID, "--transfer-keys-to", "mem_nobody"}, "--transfer-keys-to")
		r := decodeJSON[view.Removal](t, ok(t, db, "members", "remove", dev.ID, "--transfer-keys-to", heir.ID, "--json").stdout)
		if r.Moved != 2 || r.Revoked != 0 || r.TransferredTo != heir.ID || !strings.Contains(r.Message, "2 keys moved") {
			t.Errorf("members remove --transfer-keys-to: %+v", r)
		}
		if k := showKey(t, db, id); k.MemberID != heir.ID {
			t.Errorf("the moved key belongs to %q", k.MemberID)
		}
		o := ok(t, db, "members", "remove", heir.ID)
		if strings.TrimSpace(o.stdout) != "Member "+heir.ID+" removed; 2 keys revoked." {
			t.Errorf("members remove printed %q", o.stdout)
		}
		if v := cli(t, db, "verify", plaintext); v.code() != 1 || !strings.Contains(v.stdout, string(keyward.CodeRevokedAPIKey)) {
			t.Errorf("verify after the removal: %q", v.stdout)
		}
		owner := decodeList[keyward.Member](t, ok(t, db, "members", "list", "--tenant", "acme", "--json").stdout).Data[0]
		fails(t, db, 1, []string{"members", "remove", owner.ID}, "owner")
	})

	t.Run("audit", func(t *testing.T) {
		o := ok(t, db, "audit", "--tenant", "acme", "--limit", "200")
		for _, action := range []string{keyward.ActionMemberAdd, keyward.ActionMemberUpdate, keyward.ActionMemberRemove, keyward.ActionKeyTransfer} {
			if !strings.Contains(o.stdout, action) {
				t.Errorf("audit log lacks %s:\n%s", action, o.stdout)
			}
		}
		if !strings.HasPrefix(o.stdout, "AT") || !strings.Contains(strings.SplitN(o.stdout, "\n", 2)[0], "MEMBER") {
			t.Errorf("audit header: %q", strings.SplitN(o.stdout, "\n", 2)[0])
		}
	})
}

// TestPlans: plans create, list, show and update, and the plan's checks
// on keys: no API access, and the key limit.
func TestPlans(t *testing.T) {
	db := newDB(t)
	o := ok(t, db, "plans", "create", "pro", "--capabilities", "m2m_api,webhooks", "--max-keys", "2")
	if !strings.Contains(o.stderr, "Created plan pro") || !strings.Contains(o.stdout, "m2m_api, webhooks") || !strings.Contains(o.stdout, "all") {
		t.Errorf("plans create printed %q and %q", o.stdout, o.stderr)
	}
	frozen := decodeJSON[keyward.Plan](t, ok(t, db, "plans", "create", "frozen", "--api-access=false", "--json").stdout)
	if frozen.APIAccess || frozen.MaxKeys != 0 {
		t.Errorf("plans create --api-access=false: %+v", frozen)
	}
	lines := strings.Split(strings.TrimSpace(ok(t, db, "plans", "list").stdout), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "NAME") || !strings.HasPrefix(lines[1], "default") || !strings.Contains(lines[1], "no limit") ||
		!strings.HasPrefix(lines[2], "frozen") || !strings.HasPrefix(lines[3], "pro") {
		t.Errorf("plans list printed\n%s", strings.Join(lines, "\n"))
	}
	if o := ok(t, db, "plans", "show", "pro"); !strings.Contains(o.stdout, "max keys:") || !strings.Contains(o.stdout, "2") {
		t.Errorf("plans show printed %q", o.stdout)
	}

	ok(t, db, "tenants", "create", "acme", "--plan", "frozen")
	fails(t, db, 1, []string{"keys", "create", "--tenant", "acme", "--name", "x"}, "frozen", "API access")
	ok(t, db, "tenants", "update", "acme", "--plan", "pro")
	newKey(t, db, "--name", "one")
	newKey(t, db, "--name", "two")
	fails(t, db, 1, []string{"keys", "create", "--tenant", "acme", "--name", "three"}, "at most 2 keys")
	got := decodeJSON[keyward.Plan](t, ok(t, db, "plans", "update", "pro", "--max-keys", "0", "--capabilities", "", "--json").stdout)
	if got.MaxKeys != 0 || len(got.Capabilities) != 0 {
		t.Errorf("plans update: %+v", got)
	}
	newKey(t, db, "--name", "three")

	fails(t, db, 1, []string{"plans", "create", "Pro"}, "name", "not valid")
	fails(t, db, 1, []string{"plans", "create", "pro"}, "exists already")
	fails(t, db, 1, []string{"plans", "create", "x", "--max-keys", "-1"}, "--max-keys")
	fails(t, db, 1, []string{"plans", "create", "x", "--capabilities", "Bad Cap"}, "--capabilities")
	fails(t, db, 1, []string{"plans", "show", "gold"}, "No plan is named", "default, frozen, pro")
	fails(t, db, 2, []string{"plans", "update", "pro"}, "nothing to change")
	fails(t, db, 1, []string{"plans", "update", "pro", "--max-keys", "0"}, "Nothing to change")

	// The plan's audit: its own entries, and the tenant moved onto it.
	var actions []string
	for _, e := range decodeList[keyward.AuditEntry](t, ok(t, db, "audit", "--json", "--target", "pro").stdout).Data {
		actions = append(actions, e.Action)
	}
	if want := []string{keyward.ActionPlanUpdate, keyward.ActionTenantSetPlan, keyward.ActionPlanCreate}; !slices.Equal(actions, want) {
		t.Errorf("the audit of plan pro: %v, want %v", actions, want)
	}
}

// TestPermissionCatalogue: permissions add, list and remove; once the
// catalogue has entries, keys hold only catalogued permissions, and one in
// use is not removed.
func TestPermissionCatalogue(t *testing.T) {
	db := newDB(t)
	ok(t, db, "tenants", "create", "acme")
	newKey(t, db, "--name", "free", "--permissions", "anything:goes")
	if o := ok(t, db, "permissions", "add", "contacts:read", "--description", "Read contacts"); !strings.Contains(o.stdout, "Added contacts:read") {
		t.Errorf("permissions add printed %q", o.stdout)
	}
	ok(t, db, "permissions", "add", "contacts:write")
	lines := strings.Split(strings.TrimSpace(ok(t, db, "permissions", "list").stdout), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "Read contacts") || !strings.HasPrefix(lines[2], "contacts:write") {
		t.Errorf("permissions list printed\n%s", strings.Join(lines, "\n"))
	}
	fails(t, db, 1, []string{"keys", "create", "--tenant", "acme", "--name", "x", "--permissions", "contacts:read,billing:write"},
		"--permissions", `"billing:write" is not in the permission catalogue`)
	_, id := newKey(t, db, "--name", "reader", "--permissions", "keys:manage,contacts:read")
	fails(t, db, 1, []string{"permissions", "remove", "contacts:read"}, "contacts:read")
	ok(t, db, "keys", "revoke", id)
	if o := ok(t, db, "permissions", "remove", "contacts:read"); strings.TrimSpace(o.stdout) != "Permission contacts:read removed from the catalogue." {
		t.Errorf("permissions remove printed %q", o.stdout)
	}
	fails(t, db, 1, []string{"permissions", "remove", "contacts:read"}, "No permission")
	fails(t, db, 1, []string{"permissions", "add", "keys:manage"}, "built in")
	fails(t, db, 1, []string{"permissions", "add", "contacts:write"}, "already")
	fails(t, db, 1, []string{"permissions", "add", "Bad"}, "not a permission")
	list := decodeList[keyward.Permission](t, ok(t, db, "permissions", "list", "--json").stdout)
	if len(list.Data) != 1 || list.Data[0].Name != "contacts:write" {
		t.Errorf("permissions list --json: %+v", list)
	}
	o := ok(t, db, "audit", "--json", "--target", "contacts:read")
	if es := decodeList[keyward.AuditEntry](t, o.stdout).Data; len(es) != 2 || es[0].Action != keyward.ActionPermissionRemove {
		t.Errorf("the audit of contacts:read: %+v", es)
	}
}
