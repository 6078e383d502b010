package main

import (
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/sqlite"
)

func TestTenants(t *testing.T) {
	db := newDB(t)
	// A tenant's plan must exist; the command line that creates plans
	// comes with the access model's commands.
	store, err := sqlite.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := store.CreatePlan(t.Context(), &keyward.Plan{Name: "pro", APIAccess: true, CreatedAt: now, UpdatedAt: now}, keyward.CommandLineActor()); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	o := ok(t, db, "tenants", "create", "acme", "--plan", "pro")
	if !strings.Contains(o.stdout, "slug:") || !strings.Contains(o.stdout, "acme") || !strings.Contains(o.stdout, "pro") {
		t.Errorf("tenants create printed %q", o.stdout)
	}
	acme := decodeJSON[keyward.Tenant](t, ok(t, db, "tenants", "show", "acme", "--json").stdout)
	if acme.Slug != "acme" || acme.Plan != "pro" || acme.Status != keyward.TenantActive || !strings.HasPrefix(acme.ID, "ten_") {
		t.Fatalf("tenant %+v", acme)
	}
	beta := decodeJSON[keyward.Tenant](t, ok(t, db, "tenants", "create", "beta", "--json").stdout)
	if beta.Plan != "default" {
		t.Errorf("a tenant created without --plan has plan %q", beta.Plan)
	}

	t.Run("show by id", func(t *testing.T) {
		o := ok(t, db, "tenants", "show", acme.ID)
		if !strings.Contains(o.stdout, acme.ID) || !strings.Contains(o.stdout, "active") {
			t.Errorf("tenants show printed %q", o.stdout)
		}
	})

	t.Run("list", func(t *testing.T) {
		o := ok(t, db, "tenants", "list")
		lines := strings.Split(strings.TrimSpace(o.stdout), "\n")
		// The header, acme and beta, oldest first. The system tenant is
		// made by the first start of serve, which this test does not run.
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], "acme") || !strings.Contains(lines[2], "beta") {
			t.Errorf("tenants list printed\n%s", o.stdout)
		}
		page := decodeList[keyward.Tenant](t, ok(t, db, "tenants", "list", "--json", "--limit", "1").stdout)
		if len(page.Data) != 1 || page.Data[0].Slug != "acme" || page.NextCursor == "" {
			t.Fatalf("first page of 1: %+v", page)
		}
		rest := decodeList[keyward.Tenant](t, ok(t, db, "tenants", "list", "--json", "--cursor", page.NextCursor).stdout)
		if len(rest.Data) != 1 || rest.Data[0].Slug != "beta" {
			t.Errorf("second page: %+v", rest)
		}
	})

	t.Run("suspend and resume", func(t *testing.T) {
		o := ok(t, db, "tenants", "suspend", "acme")
		if !strings.Contains(o.stdout, "suspended") {
			t.Errorf("tenants suspend printed %q", o.stdout)
		}
		if got := decodeJSON[keyward.Tenant](t, ok(t, db, "tenants", "show", "acme", "--json").stdout); got.Status != keyward.TenantSuspended {
			t.Errorf("after suspend, status %q", got.Status)
		}
		got := decodeJSON[keyward.Tenant](t, ok(t, db, "tenants", "resume", acme.ID, "--json").stdout)
		if got.Status != keyward.TenantActive {
			t.Errorf("after resume, status %q", got.Status)
		}
	})

	t.Run("errors", func(t *testing.T) {
		fails(t, db, 1, []string{"tenants", "create", "acme"}, "slug", `"acme" exists already`)
		fails(t, db, 1, []string{"tenants", "create", "Not A Slug"}, "slug", "not valid")
		fails(t, db, 1, []string{"tenants", "create", "system"}, "reserved")
		fails(t, db, 1, []string{"tenants", "create", "gamma", "--plan", "Bad Plan"}, "--plan")
		fails(t, db, 1, []string{"tenants", "create", "gamma", "--plan", "gold"}, "--plan", `no plan is named "gold"`, `"default", "pro"`)
		fails(t, db, 1, []string{"tenants", "show", "nobody"}, "No tenant", "nobody")
		fails(t, db, 1, []string{"tenants", "resume", "nobody"}, "No tenant")
		fails(t, db, 1, []string{"tenants", "list", "--limit", "1000"}, "--limit")
	})

	t.Run("audit", func(t *testing.T) {
		o := ok(t, db, "audit", "--tenant", "acme")
		for _, action := range []string{keyward.ActionTenantCreate, keyward.ActionTenantSuspend, keyward.ActionTenantResume} {
			if !strings.Contains(o.stdout, action) {
				t.Errorf("audit log lacks %s:\n%s", action, o.stdout)
			}
		}
		entries := decodeList[keyward.AuditEntry](t, ok(t, db, "audit", "--json").stdout)
		if len(entries.Data) == 0 || entries.Data[0].Actor != "cli" {
			t.Errorf("audit --json: %+v", entries)
		}
		// An empty page is an empty list, as over HTTP.
		if none := decodeList[keyward.AuditEntry](t, ok(t, db, "audit", "--json", "--target", "key_nope").stdout); len(none.Data) != 0 || none.NextCursor != "" {
			t.Errorf("audit --json of nothing: %+v", none)
		}
	})
}
