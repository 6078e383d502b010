package storetest

import (
	"fmt"

	"github.com/keyward/keyward"
)

var tenantTests = []test{
	{"CreateAndGet", func(f *fixture) {
		m := f.mark()
		want := f.newTenant("acme")
		if err := f.s.CreateTenant(f.ctx, want, admin); err != nil {
			f.t.Fatalf("CreateTenant: %v", err)
		}
		f.wantRecorded(m, keyward.ActionTenantCreate, want.ID, want.ID, admin, want.CreatedAt, tenantChange(want.ID))
		for _, name := range []string{want.ID, want.Slug} {
			got, err := f.s.Tenant(f.ctx, name)
			if err != nil {
				f.t.Fatalf("Tenant(%s): %v", name, err)
			}
			wantTenant(f.t, "Tenant("+name+")", got, want)
		}
	}},
	{"SlugOrID", func(f *fixture) {
		// A tenant whose slug is another tenant's id: the id wins.
		a := f.createTenant("alpha")
		b := f.newTenant("beta")
		b.Slug = a.ID
		if err := f.s.CreateTenant(f.ctx, b, admin); err != nil {
			f.t.Fatalf("CreateTenant: %v", err)
		}
		got, err := f.s.Tenant(f.ctx, a.ID)
		if err != nil {
			f.t.Fatalf("Tenant: %v", err)
		}
		wantTenant(f.t, "Tenant(id of one, slug of another)", got, a)
	}},
	{"DuplicateSlug", func(f *fixture) {
		orig := f.createTenant("acme")
		m := f.mark()
		dup := f.newTenant("other")
		dup.Slug = orig.Slug
		wantCode(f.t, f.s.CreateTenant(f.ctx, dup, admin), keyward.CodeConflict)
		f.wantNothingRecorded(m, "CreateTenant with a taken slug")
		if _, err := f.s.Tenant(f.ctx, dup.ID); keyward.ErrorCode(err) != keyward.CodeNotFound {
			f.t.Fatalf("Tenant(%s) after a refused create: %v, want not found", dup.ID, err)
		}
		got, err := f.s.Tenant(f.ctx, orig.Slug)
		if err != nil {
			f.t.Fatalf("Tenant: %v", err)
		}
		wantTenant(f.t, "the tenant that holds the slug", got, orig)
	}},
	{"DuplicateID", func(f *fixture) {
		orig := f.createTenant("acme")
		m := f.mark()
		dup := f.newTenant("other")
		dup.ID = orig.ID
		wantCode(f.t, f.s.CreateTenant(f.ctx, dup, admin), keyward.CodeConflict)
		f.wantNothingRecorded(m, "CreateTenant with a taken id")
		got, err := f.s.Tenant(f.ctx, orig.ID)
		if err != nil {
			f.t.Fatalf("Tenant: %v", err)
		}
		wantTenant(f.t, "the tenant that holds the id", got, orig)
	}},
	{"NotFound", func(f *fixture) {
		f.createTenant("acme")
		for _, name := range []string{"ten_nope", "nope", ""} {
			_, err := f.s.Tenant(f.ctx, name)
			wantCode(f.t, err, keyward.CodeNotFound)
		}
	}},
	{"List", func(f *fixture) {
		var want []*keyward.Tenant
		for i := range 5 {
			want = append(want, f.createTenant(fmt.Sprintf("t%d", i)))
		}
		// Two tenants created at the same time are ordered by id.
		same := f.newTenant("t5")
		same.CreatedAt, same.UpdatedAt = want[4].CreatedAt, want[4].UpdatedAt
		if err := f.s.CreateTenant(f.ctx, same, cli); err != nil {
			f.t.Fatalf("CreateTenant: %v", err)
		}
		want = append(want, same)

		var got []*keyward.Tenant
		var sizes []int
		p := keyward.Page{Limit: 2}
		for range 10 {
			page, next, err := f.s.Tenants(f.ctx, p)
			if err != nil {
				f.t.Fatalf("Tenants(%+v): %v", p, err)
			}
			got = append(got, page...)
			sizes = append(sizes, len(page))
			if next == "" {
				break
			}
			p.Cursor = next
		}
		if fmt.Sprint(sizes) != "[2 2 2]" {
			f.t.Fatalf("page sizes = %v, want [2 2 2]", sizes)
		}
		for i := range want {
			wantTenant(f.t, fmt.Sprintf("tenant %d, oldest first", i), got[i], want[i])
		}

		all, next, err := f.s.Tenants(f.ctx, keyward.Page{})
		if err != nil || len(all) != len(want) || next != "" {
			f.t.Fatalf("Tenants with the default limit = %d tenants, next %q, %v; want %d", len(all), next, err, len(want))
		}
		all, next, err = f.s.Tenants(f.ctx, keyward.Page{Limit: keyward.MaxPageLimit + 1})
		if err != nil || len(all) != len(want) || next != "" {
			f.t.Fatalf("Tenants with a limit above the maximum = %d tenants, next %q, %v; want %d", len(all), next, err, len(want))
		}
	}},
	{"InvalidCursor", func(f *fixture) {
		f.createTenant("acme")
		for _, c := range []string{"not a cursor", "Zm9v", "!!!"} {
			_, _, err := f.s.Tenants(f.ctx, keyward.Page{Cursor: c})
			wantCode(f.t, err, keyward.CodeInvalidRequest)
		}
	}},
	{"SetStatus", func(f *fixture) {
		tn := f.createTenant("acme")
		other := f.createTenant("other")

		m := f.mark()
		at := f.tick()
		got, err := f.s.SetTenantStatus(f.ctx, tn.ID, keyward.TenantSuspended, at, cli)
		if err != nil {
			f.t.Fatalf("SetTenantStatus(suspended): %v", err)
		}
		want := *tn
		want.Status, want.UpdatedAt = keyward.TenantSuspended, at
		wantTenant(f.t, "SetTenantStatus(suspended)", got, &want)
		stored, err := f.s.Tenant(f.ctx, tn.Slug)
		if err != nil {
			f.t.Fatalf("Tenant: %v", err)
		}
		wantTenant(f.t, "Tenant after suspension", stored, &want)
		f.wantRecorded(m, keyward.ActionTenantSuspend, tn.ID, tn.ID, cli, at, tenantChange(tn.ID))

		m = f.mark()
		at = f.tick()
		got, err = f.s.SetTenantStatus(f.ctx, tn.ID, keyward.TenantActive, at, admin)
		if err != nil {
			f.t.Fatalf("SetTenantStatus(active): %v", err)
		}
		want.Status, want.UpdatedAt = keyward.TenantActive, at
		wantTenant(f.t, "SetTenantStatus(active)", got, &want)
		f.wantRecorded(m, keyward.ActionTenantResume, tn.ID, tn.ID, admin, at, tenantChange(tn.ID))

		stored, err = f.s.Tenant(f.ctx, other.ID)
		if err != nil {
			f.t.Fatalf("Tenant: %v", err)
		}
		wantTenant(f.t, "another tenant", stored, other)
	}},
	{"SetStatusErrors", func(f *fixture) {
		tn := f.createTenant("acme")
		m := f.mark()
		_, err := f.s.SetTenantStatus(f.ctx, "ten_nope", keyward.TenantSuspended, f.tick(), admin)
		wantCode(f.t, err, keyward.CodeNotFound)
		_, err = f.s.SetTenantStatus(f.ctx, tn.ID, "deleted", f.tick(), admin)
		wantCode(f.t, err, keyward.CodeInvalidRequest)
		f.wantNothingRecorded(m, "a refused SetTenantStatus")
		stored, err := f.s.Tenant(f.ctx, tn.ID)
		if err != nil {
			f.t.Fatalf("Tenant: %v", err)
		}
		wantTenant(f.t, "Tenant after a refused SetTenantStatus", stored, tn)
	}},
}
