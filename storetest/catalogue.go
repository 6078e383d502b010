package storetest

import (
	"fmt"
	"slices"
	"strings"

	"github.com/keyward/keyward"
)

// createPermission adds a permission to the catalogue.
func (f *fixture) createPermission(name string) *keyward.Permission {
	f.t.Helper()
	p := &keyward.Permission{Name: name, Description: "Lets a key " + name + ".", CreatedAt: f.tick()}
	if err := f.s.CreatePermission(f.ctx, p, admin); err != nil {
		f.t.Fatalf("CreatePermission(%s): %v", name, err)
	}
	return p
}

// catalogue lists the names in the catalogue.
func (f *fixture) catalogue() []string {
	f.t.Helper()
	perms, err := f.s.Permissions(f.ctx)
	if err != nil {
		f.t.Fatalf("Permissions: %v", err)
	}
	names := []string{}
	for _, p := range perms {
		names = append(names, p.Name)
	}
	return names
}

var catalogueTests = []test{
	{"Empty", func(f *fixture) {
		perms, err := f.s.Permissions(f.ctx)
		if err != nil || perms == nil || len(perms) != 0 {
			f.t.Fatalf("Permissions on a new store = %#v, %v; want an empty list", perms, err)
		}
	}},
	{"AddListRemove", func(f *fixture) {
		m := f.mark()
		want := &keyward.Permission{Name: "contacts:write", Description: "Create and change contacts — ✓", CreatedAt: f.tick()}
		if err := f.s.CreatePermission(f.ctx, want, byOwner); err != nil {
			f.t.Fatalf("CreatePermission: %v", err)
		}
		// An audit entry of no tenant, and no change: no verification
		// reads the catalogue.
		f.wantRecorded(m, keyward.ActionPermissionAdd, "", want.Name, byOwner, want.CreatedAt)
		f.createPermission("contacts:read")
		f.createPermission("a_b%c")
		perms, err := f.s.Permissions(f.ctx)
		if err != nil || len(perms) != 3 {
			f.t.Fatalf("Permissions = %v, %v; want 3", perms, err)
		}
		if got := f.catalogue(); !slices.Equal(got, []string{"a_b%c", "contacts:read", "contacts:write"}) {
			f.t.Fatalf("Permissions = %v, want them by name", got)
		}
		got := perms[2]
		if got.Name != want.Name || got.Description != want.Description {
			f.t.Fatalf("Permissions[2] = %+v, want %+v", got, want)
		}
		if d := timeDiff("CreatedAt", got.CreatedAt, want.CreatedAt); d != "" {
			f.t.Fatal(d)
		}

		m = f.mark()
		dup := &keyward.Permission{Name: "contacts:write", Description: "again", CreatedAt: f.tick()}
		wantField(f.t, f.s.CreatePermission(f.ctx, dup, admin), keyward.CodeConflict, "name", "contacts:write")
		_, err = f.s.DeletePermission(f.ctx, "nope:nope", f.tick(), admin)
		wantCode(f.t, err, keyward.CodeNotFound)
		f.wantNothingRecorded(m, "refused catalogue writes")

		at := f.tick()
		use, err := f.s.DeletePermission(f.ctx, "contacts:write", at, cli)
		if err != nil || use.InUse() {
			f.t.Fatalf("DeletePermission of a permission no one holds = %+v, %v", use, err)
		}
		f.wantRecorded(m, keyward.ActionPermissionRemove, "", "contacts:write", cli, at)
		if got := f.catalogue(); !slices.Equal(got, []string{"a_b%c", "contacts:read"}) {
			f.t.Fatalf("Permissions after DeletePermission = %v", got)
		}
		// Removed, it may be added again.
		f.createPermission("contacts:write")
	}},
	{"InUse", func(f *fixture) {
		f.createPermission("contacts:write")
		f.createPermission("contacts:read")
		tn, owner := f.createTeam("acme")
		dev := f.createMember(tn.ID, keyward.RoleDeveloper)
		viewer := f.createMember(tn.ID, keyward.RoleViewer)
		if _, err := f.s.UpdateMember(f.ctx, viewer.ID, keyward.MemberUpdate{Permissions: ptr([]string{"contacts:read"})}, f.tick(), admin); err != nil {
			f.t.Fatalf("UpdateMember: %v", err)
		}
		pro := f.createPlan("pro") // contacts:read and contacts:write
		basic := f.newPlan("basic")
		basic.Permissions = []string{"contacts:read"}
		if err := f.s.CreatePlan(f.ctx, basic, admin); err != nil {
			f.t.Fatalf("CreatePlan: %v", err)
		}
		// Two unrevoked keys hold contacts:write, one revoked does too.
		kept := []*keyward.Key{f.createKeyOf(tn.ID, dev.ID), f.createKey(tn.ID, keyward.Test)}
		revoked := f.createKey(tn.ID, keyward.Live)
		if _, err := f.s.RevokeKey(f.ctx, revoked.ID, f.tick(), admin); err != nil {
			f.t.Fatalf("RevokeKey: %v", err)
		}

		m := f.mark()
		use, err := f.s.DeletePermission(f.ctx, "contacts:write", f.tick(), admin)
		wantCode(f.t, err, keyward.CodeConflict)
		wantWords(f.t, err, "contacts:write", "2 unrevoked keys", owner.ID, dev.ID, "pro")
		if strings.Contains(keyward.ErrorMessage(err), viewer.ID) {
			f.t.Fatalf("error %q names %s, who does not hold the permission", keyward.ErrorMessage(err), viewer.ID)
		}
		if use.Keys != 2 || !slices.Equal(use.Members, []string{owner.ID, dev.ID}) || !slices.Equal(use.Plans, []string{"pro"}) {
			f.t.Fatalf("DeletePermission in use = %+v; want 2 keys, members %s %s, plan pro", use, owner.ID, dev.ID)
		}
		f.wantNothingRecorded(m, "a refused DeletePermission")
		if got := f.catalogue(); !slices.Contains(got, "contacts:write") {
			f.t.Fatalf("Permissions after a refused DeletePermission = %v", got)
		}

		// Each use taken away in turn: the permission goes once none is
		// left.
		steps := []func(){
			func() { f.revoke(kept[0].ID) },
			func() {
				if _, err := f.s.UpdateKey(f.ctx, kept[1].ID, keyward.KeyUpdate{Permissions: ptr([]string{"contacts:read"})}, f.tick(), admin); err != nil {
					f.t.Fatalf("UpdateKey: %v", err)
				}
			},
			func() {
				for _, id := range []string{owner.ID, dev.ID} {
					if _, err := f.s.UpdateMember(f.ctx, id, keyward.MemberUpdate{Permissions: ptr([]string{"contacts:read"})}, f.tick(), admin); err != nil {
						f.t.Fatalf("UpdateMember: %v", err)
					}
				}
			},
		}
		for i, step := range steps {
			step()
			use, err := f.s.DeletePermission(f.ctx, "contacts:write", f.tick(), admin)
			wantCode(f.t, err, keyward.CodeConflict)
			if !use.InUse() {
				f.t.Fatalf("after step %d, DeletePermission = %+v; want it in use still", i, use)
			}
		}
		if _, err := f.s.UpdatePlan(f.ctx, pro.Name, keyward.PlanUpdate{Permissions: ptr([]string{"contacts:read"})}, f.tick(), admin); err != nil {
			f.t.Fatalf("UpdatePlan: %v", err)
		}
		if use, err := f.s.DeletePermission(f.ctx, "contacts:write", f.tick(), admin); err != nil || use.InUse() {
			f.t.Fatalf("DeletePermission once no one holds it = %+v, %v", use, err)
		}
		// contacts:read is held by every one of them.
		use, err = f.s.DeletePermission(f.ctx, "contacts:read", f.tick(), admin)
		wantCode(f.t, err, keyward.CodeConflict)
		if use.Keys != 1 || len(use.Members) != 3 || !slices.Equal(use.Plans, []string{"basic", "pro"}) {
			f.t.Fatalf("use of contacts:read = %+v", use)
		}
	}},
	{"InUseIsExact", func(f *fixture) {
		// Only a permission held as it is named counts: not another case,
		// a longer name, a name with a quote in it, or one that a LIKE
		// wildcard would match.
		for _, name := range []string{"contacts:write", "a_b", "50%", `back\slash`} {
			f.createPermission(name)
		}
		tn, owner := f.createTeam("acme")
		if _, err := f.s.UpdateMember(f.ctx, owner.ID, keyward.MemberUpdate{Permissions: ptr([]string{"Contacts:Write", "axb"})}, f.tick(), admin); err != nil {
			f.t.Fatalf("UpdateMember: %v", err)
		}
		k := f.newKey(tn.ID, keyward.Live)
		k.Permissions = []string{"contacts:write:all", `x"contacts:write`, "500", `back\\slash`, "CONTACTS:WRITE"}
		if err := f.s.CreateKey(f.ctx, k, admin); err != nil {
			f.t.Fatalf("CreateKey: %v", err)
		}
		p := f.newPlan("odd")
		p.Permissions = []string{"a_bc", "x50%", `"contacts:write"`}
		if err := f.s.CreatePlan(f.ctx, p, admin); err != nil {
			f.t.Fatalf("CreatePlan: %v", err)
		}
		for _, name := range []string{"contacts:write", "a_b", "50%", `back\slash`} {
			if use, err := f.s.DeletePermission(f.ctx, name, f.tick(), admin); err != nil || use.InUse() {
				f.t.Fatalf("DeletePermission(%s), held by no one as named = %+v, %v", name, use, err)
			}
		}

		// And the same names, held as named, are in use.
		for _, name := range []string{"contacts:write", "a_b", "50%", `back\slash`} {
			f.createPermission(name)
		}
		held := f.newKey(tn.ID, keyward.Live)
		held.Permissions = []string{"contacts:write", "a_b", "50%", `back\slash`}
		if err := f.s.CreateKey(f.ctx, held, admin); err != nil {
			f.t.Fatalf("CreateKey: %v", err)
		}
		for _, name := range held.Permissions {
			use, err := f.s.DeletePermission(f.ctx, name, f.tick(), admin)
			wantCode(f.t, err, keyward.CodeConflict)
			if use.Keys != 1 || len(use.Members) != 0 || len(use.Plans) != 0 {
				f.t.Fatalf("use of %s = %+v; want the one key", name, use)
			}
		}
	}},
	{"ManyHolders", func(f *fixture) {
		// The message names ten members and says how many more.
		f.createPermission("reports:read")
		tn, owner := f.createTeam("acme")
		ids := []string{owner.ID}
		for range 11 {
			ids = append(ids, f.createMember(tn.ID, keyward.RoleViewer).ID)
		}
		for _, id := range ids {
			if _, err := f.s.UpdateMember(f.ctx, id, keyward.MemberUpdate{Permissions: ptr([]string{"reports:read"})}, f.tick(), admin); err != nil {
				f.t.Fatalf("UpdateMember: %v", err)
			}
		}
		use, err := f.s.DeletePermission(f.ctx, "reports:read", f.tick(), admin)
		wantCode(f.t, err, keyward.CodeConflict)
		wantWords(f.t, err, ids[9], "and 2 more")
		if len(use.Members) != 12 || use.Keys != 0 {
			f.t.Fatalf("use = %+v; want 12 members", use)
		}
		if strings.Contains(keyward.ErrorMessage(err), ids[10]) {
			f.t.Fatalf("error %q names more than ten members", keyward.ErrorMessage(err))
		}
		if got := fmt.Sprint(use.Plans); got != "[]" || use.Plans == nil {
			f.t.Fatalf("use.Plans = %#v; want an empty list", use.Plans)
		}
	}},
}

// revoke revokes a key that must exist.
func (f *fixture) revoke(id string) {
	f.t.Helper()
	if _, err := f.s.RevokeKey(f.ctx, id, f.tick(), admin); err != nil {
		f.t.Fatalf("RevokeKey(%s): %v", id, err)
	}
}
