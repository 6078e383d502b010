package storetest

import (
	"fmt"
	"slices"
	"time"

	"github.com/keyward/keyward"
)

// entry is what the suite expects of one audit entry.
type entry struct {
	action, tenantID, target string
	by                       keyward.Actor
	at                       time.Time
}

// history makes one of every mutation, by three actors (one of whom acts
// for a member) and over two tenants, and returns the audit entries it
// expects and the changes of each mutation (none for the catalogue's),
// oldest first.
func (f *fixture) history() ([]entry, [][]keyward.Change) {
	f.t.Helper()
	var entries []entry
	var changes [][]keyward.Change
	a := f.createTenant("a")
	entries = append(entries, entry{keyward.ActionTenantCreate, a.ID, a.ID, admin, a.CreatedAt})
	changes = append(changes, []keyward.Change{tenantChange(a.ID)})

	b := f.newTenant("b")
	if err := f.s.CreateTenant(f.ctx, b, cli); err != nil {
		f.t.Fatalf("CreateTenant: %v", err)
	}
	entries = append(entries, entry{keyward.ActionTenantCreate, b.ID, b.ID, cli, b.CreatedAt})
	changes = append(changes, []keyward.Change{tenantChange(b.ID)})

	ka := f.createKey(a.ID, keyward.Live)
	entries = append(entries, entry{keyward.ActionKeyCreate, a.ID, ka.ID, admin, ka.CreatedAt})
	changes = append(changes, []keyward.Change{keyChange(ka.ID)})

	kb := f.newKey(b.ID, keyward.Test)
	if err := f.s.CreateKey(f.ctx, kb, cli); err != nil {
		f.t.Fatalf("CreateKey: %v", err)
	}
	entries = append(entries, entry{keyward.ActionKeyCreate, b.ID, kb.ID, cli, kb.CreatedAt})
	changes = append(changes, []keyward.Change{keyChange(kb.ID)})

	at := f.tick()
	if _, err := f.s.UpdateKey(f.ctx, ka.ID, keyward.KeyUpdate{Name: ptr("renamed")}, at, admin); err != nil {
		f.t.Fatalf("UpdateKey: %v", err)
	}
	entries = append(entries, entry{keyward.ActionKeyUpdate, a.ID, ka.ID, admin, at})
	changes = append(changes, []keyward.Change{keyChange(ka.ID)})

	if err := f.s.RecordUsage(f.ctx, []keyward.Usage{{KeyID: ka.ID, At: f.tick(), IP: "192.0.2.1"}}); err != nil {
		f.t.Fatalf("RecordUsage: %v", err)
	}

	at = f.tick()
	if _, err := f.s.RevokeKey(f.ctx, kb.ID, at, cli); err != nil {
		f.t.Fatalf("RevokeKey: %v", err)
	}
	entries = append(entries, entry{keyward.ActionKeyRevoke, b.ID, kb.ID, cli, at})
	changes = append(changes, []keyward.Change{keyChange(kb.ID)})

	succ := f.successorOf(ka)
	if _, err := f.s.RotateKey(f.ctx, ka.ID, succ, succ.CreatedAt.Add(time.Hour), admin); err != nil {
		f.t.Fatalf("RotateKey: %v", err)
	}
	entries = append(entries, entry{keyward.ActionKeyRotate, a.ID, ka.ID, admin, succ.CreatedAt})
	changes = append(changes, []keyward.Change{keyChange(ka.ID), keyChange(succ.ID)})

	at = f.tick()
	if _, err := f.s.SetTenantStatus(f.ctx, b.ID, keyward.TenantSuspended, at, admin); err != nil {
		f.t.Fatalf("SetTenantStatus: %v", err)
	}
	entries = append(entries, entry{keyward.ActionTenantSuspend, b.ID, b.ID, admin, at})
	changes = append(changes, []keyward.Change{tenantChange(b.ID)})

	at = f.tick()
	if _, err := f.s.SetTenantStatus(f.ctx, b.ID, keyward.TenantActive, at, cli); err != nil {
		f.t.Fatalf("SetTenantStatus: %v", err)
	}
	entries = append(entries, entry{keyward.ActionTenantResume, b.ID, b.ID, cli, at})
	changes = append(changes, []keyward.Change{tenantChange(b.ID)})

	// The access model's writes, some by a key that acts for a member.
	pro := f.newPlan("pro")
	if err := f.s.CreatePlan(f.ctx, pro, cli); err != nil {
		f.t.Fatalf("CreatePlan: %v", err)
	}
	entries = append(entries, entry{keyward.ActionPlanCreate, "", pro.Name, cli, pro.CreatedAt})
	changes = append(changes, []keyward.Change{planChange(pro.Name)})

	at = f.tick()
	if _, err := f.s.SetTenantPlan(f.ctx, a.ID, pro.Name, at, byOwner); err != nil {
		f.t.Fatalf("SetTenantPlan: %v", err)
	}
	entries = append(entries, entry{keyward.ActionTenantSetPlan, a.ID, a.ID, byOwner, at})
	changes = append(changes, []keyward.Change{tenantChange(a.ID)})

	owner := f.newMember(a.ID, keyward.RoleOwner)
	if err := f.s.CreateMember(f.ctx, owner, admin); err != nil {
		f.t.Fatalf("CreateMember: %v", err)
	}
	entries = append(entries, entry{keyward.ActionMemberAdd, a.ID, owner.ID, admin, owner.CreatedAt})
	changes = append(changes, []keyward.Change{memberChange(owner.ID)})

	ko := f.newKey(a.ID, keyward.Live)
	ko.MemberID = owner.ID
	if err := f.s.CreateKey(f.ctx, ko, byOwner); err != nil {
		f.t.Fatalf("CreateKey: %v", err)
	}
	entries = append(entries, entry{keyward.ActionKeyCreate, a.ID, ko.ID, byOwner, ko.CreatedAt})
	changes = append(changes, []keyward.Change{keyChange(ko.ID)})

	at = f.tick()
	if _, err := f.s.UpdateMember(f.ctx, owner.ID, keyward.MemberUpdate{Name: ptr("Owner")}, at, byOwner); err != nil {
		f.t.Fatalf("UpdateMember: %v", err)
	}
	entries = append(entries, entry{keyward.ActionMemberUpdate, a.ID, owner.ID, byOwner, at})
	changes = append(changes, []keyward.Change{memberChange(owner.ID)})

	at = f.tick()
	if _, err := f.s.UpdatePlan(f.ctx, pro.Name, keyward.PlanUpdate{MaxKeys: ptr(100)}, at, admin); err != nil {
		f.t.Fatalf("UpdatePlan: %v", err)
	}
	entries = append(entries, entry{keyward.ActionPlanUpdate, "", pro.Name, admin, at})
	changes = append(changes, []keyward.Change{planChange(pro.Name)})

	perm := &keyward.Permission{Name: "reports:export", Description: "Export reports.", CreatedAt: f.tick()}
	if err := f.s.CreatePermission(f.ctx, perm, cli); err != nil {
		f.t.Fatalf("CreatePermission: %v", err)
	}
	entries = append(entries, entry{keyward.ActionPermissionAdd, "", perm.Name, cli, perm.CreatedAt})
	changes = append(changes, nil)

	dev := f.newMember(a.ID, keyward.RoleDeveloper)
	if err := f.s.CreateMember(f.ctx, dev, byOwner); err != nil {
		f.t.Fatalf("CreateMember: %v", err)
	}
	entries = append(entries, entry{keyward.ActionMemberAdd, a.ID, dev.ID, byOwner, dev.CreatedAt})
	changes = append(changes, []keyward.Change{memberChange(dev.ID)})

	kd := f.newKey(a.ID, keyward.Test)
	kd.MemberID = dev.ID
	if err := f.s.CreateKey(f.ctx, kd, admin); err != nil {
		f.t.Fatalf("CreateKey: %v", err)
	}
	entries = append(entries, entry{keyward.ActionKeyCreate, a.ID, kd.ID, admin, kd.CreatedAt})
	changes = append(changes, []keyward.Change{keyChange(kd.ID)})

	at = f.tick()
	if _, err := f.s.RemoveMember(f.ctx, dev.ID, "", at, byOwner); err != nil {
		f.t.Fatalf("RemoveMember: %v", err)
	}
	entries = append(entries,
		entry{keyward.ActionKeyRevoke, a.ID, kd.ID, byOwner, at},
		entry{keyward.ActionMemberRemove, a.ID, dev.ID, byOwner, at})
	changes = append(changes, []keyward.Change{keyChange(kd.ID), memberChange(dev.ID)})

	at = f.tick()
	if _, err := f.s.DeletePermission(f.ctx, perm.Name, at, byOwner); err != nil {
		f.t.Fatalf("DeletePermission: %v", err)
	}
	entries = append(entries, entry{keyward.ActionPermissionRemove, "", perm.Name, byOwner, at})
	changes = append(changes, nil)
	return entries, changes
}

// wantEntries fails the test unless got (newest first) are the entries of
// want (oldest first) that match the filter.
func wantEntries(f *fixture, filter keyward.AuditFilter, got []*keyward.AuditEntry, want []entry) {
	f.t.Helper()
	var match []entry
	for _, e := range slices.Backward(want) {
		if (filter.TenantID == "" || filter.TenantID == e.tenantID) && (filter.Target == "" || filter.Target == e.target) {
			match = append(match, e)
		}
	}
	if len(got) != len(match) {
		f.t.Fatalf("AuditLog(%+v) = %d entries, want %d", filter, len(got), len(match))
	}
	seen := map[int64]bool{}
	for i, e := range got {
		wantAudit(f.t, e, match[i].action, match[i].tenantID, match[i].target, match[i].by, match[i].at)
		if seen[e.ID] {
			f.t.Fatalf("AuditLog(%+v): entry id %d twice", filter, e.ID)
		}
		seen[e.ID] = true
	}
}

var auditTests = []test{
	{"EveryMutation", func(f *fixture) {
		want, _ := f.history()
		entries, next, err := f.s.AuditLog(f.ctx, keyward.AuditFilter{}, keyward.Page{})
		if err != nil || next != "" {
			f.t.Fatalf("AuditLog: next %q, %v", next, err)
		}
		wantEntries(f, keyward.AuditFilter{}, entries, want)
	}},
	{"Filters", func(f *fixture) {
		want, _ := f.history()
		for _, filter := range []keyward.AuditFilter{
			{TenantID: "ten_a"},
			{TenantID: "ten_b"},
			{TenantID: "ten_nope"},
			{Target: "ten_b"},
			{Target: "key_0001"},
			{TenantID: "ten_a", Target: "key_0001"},
			{TenantID: "ten_b", Target: "key_0001"},
			{Target: "reports:export"},
			{Target: "mem_0006"},
		} {
			entries, next, err := f.s.AuditLog(f.ctx, filter, keyward.Page{})
			if err != nil || next != "" {
				f.t.Fatalf("AuditLog(%+v): next %q, %v", filter, next, err)
			}
			wantEntries(f, filter, entries, want)
		}
	}},
	{"Pagination", func(f *fixture) {
		want, _ := f.history()
		for _, filter := range []keyward.AuditFilter{{}, {TenantID: "ten_b"}} {
			var got []*keyward.AuditEntry
			p := keyward.Page{Limit: 2}
			pages := 0
			for range 100 {
				entries, next, err := f.s.AuditLog(f.ctx, filter, p)
				if err != nil {
					f.t.Fatalf("AuditLog(%+v, %+v): %v", filter, p, err)
				}
				if len(entries) == 0 || len(entries) > 2 {
					f.t.Fatalf("AuditLog(%+v, %+v) = %d entries, want 1 or 2", filter, p, len(entries))
				}
				got = append(got, entries...)
				pages++
				if next == "" {
					break
				}
				p.Cursor = next
			}
			wantEntries(f, filter, got, want)
			if wantPages := (len(got) + 1) / 2; pages != wantPages {
				f.t.Fatalf("AuditLog(%+v) took %d pages of 2 for %d entries, want %d", filter, pages, len(got), wantPages)
			}
		}
		for _, c := range []string{"not a cursor", "Zm9v", "!!!"} {
			_, _, err := f.s.AuditLog(f.ctx, keyward.AuditFilter{}, keyward.Page{Cursor: c})
			wantCode(f.t, err, keyward.CodeInvalidRequest)
		}
	}},
}

var changeTests = []test{
	{"Prune", func(f *fixture) {
		entries, _ := f.history()
		all := f.changesSince(0)
		// Pruned: the changes made before the middle one's time.
		cut := all[len(all)/2].At
		var kept []int64
		for _, c := range all {
			if !c.At.Before(cut) {
				kept = append(kept, c.Seq)
			}
		}
		n, err := f.s.PruneChanges(f.ctx, cut)
		if err != nil || n != int64(len(all)-len(kept)) {
			f.t.Fatalf("PruneChanges(%v) = %d, %v; want %d of the %d changes", cut, n, err, len(all)-len(kept), len(all))
		}
		var got []int64
		for _, c := range f.changesSince(0) {
			got = append(got, c.Seq)
		}
		if !slices.Equal(got, kept) {
			f.t.Fatalf("after PruneChanges, the feed holds %v, want %v", got, kept)
		}
		if last, err := f.s.LastChange(f.ctx); err != nil || last != all[len(all)-1].Seq {
			f.t.Fatalf("LastChange after PruneChanges = %d, %v; want %d", last, err, all[len(all)-1].Seq)
		}
		if n, err := f.s.PruneChanges(f.ctx, cut); err != nil || n != 0 {
			f.t.Fatalf("PruneChanges again = %d, %v; want 0", n, err)
		}
		// The audit log is not the feed: it keeps every entry.
		if audit := f.allAudit(keyward.AuditFilter{}); len(audit) != len(entries) {
			f.t.Fatalf("after PruneChanges, the audit log holds %d entries, want %d", len(audit), len(entries))
		}

		// With every change pruned, a new change still numbers above
		// every deleted one: a reader's position stays valid.
		if _, err := f.s.PruneChanges(f.ctx, f.tick()); err != nil {
			f.t.Fatal(err)
		}
		if rest := f.changesSince(0); len(rest) != 0 {
			f.t.Fatalf("after pruning everything, the feed holds %v", rest)
		}
		tn := f.createTenant("after-pruning")
		after := f.changesSince(all[len(all)-1].Seq)
		if len(after) != 1 || after[0].ID != tn.ID {
			f.t.Fatalf("Changes after the last pruned one = %v, want the creation of %s", after, tn.ID)
		}
	}},
	{"Empty", func(f *fixture) {
		last, err := f.s.LastChange(f.ctx)
		if err != nil || last != 0 {
			f.t.Fatalf("LastChange on a new store = %d, %v; want 0", last, err)
		}
		changes, err := f.s.Changes(f.ctx, 0, 10)
		if err != nil || len(changes) != 0 {
			f.t.Fatalf("Changes on a new store = %v, %v; want none", changes, err)
		}
	}},
	{"EveryMutation", func(f *fixture) {
		_, want := f.history()
		got := f.changesSince(0)
		rest := got
		for _, group := range want {
			if len(rest) < len(group) {
				f.t.Fatalf("Changes = %v, want %v", got, want)
			}
			// The changes of one mutation may come in any order.
			var g []string
			for _, c := range rest[:len(group)] {
				g = append(g, c.Kind+" "+c.ID)
			}
			var w []string
			for _, c := range group {
				w = append(w, c.Kind+" "+c.ID)
			}
			slices.Sort(g)
			slices.Sort(w)
			if !slices.Equal(g, w) {
				f.t.Fatalf("Changes = %v, want %v", got, want)
			}
			rest = rest[len(group):]
		}
		if len(rest) != 0 {
			f.t.Fatalf("Changes = %v, want %v", got, want)
		}
		for i, c := range got {
			if i > 0 && c.Seq <= got[i-1].Seq {
				f.t.Fatalf("change seq %d follows %d; want strictly increasing", c.Seq, got[i-1].Seq)
			}
			if c.At.IsZero() || c.At.Location() != time.UTC {
				f.t.Fatalf("change At = %v, want a time in UTC", c.At)
			}
		}
		last, err := f.s.LastChange(f.ctx)
		if err != nil || last != got[len(got)-1].Seq {
			f.t.Fatalf("LastChange = %d, %v; want %d", last, err, got[len(got)-1].Seq)
		}
	}},
	{"Paging", func(f *fixture) {
		f.history()
		all := f.changesSince(0)
		if len(all) < 5 {
			f.t.Fatalf("only %d changes", len(all))
		}
		var got []keyward.Change
		after := int64(0)
		for range 100 {
			page, err := f.s.Changes(f.ctx, after, 3)
			if err != nil {
				f.t.Fatalf("Changes(%d, 3): %v", after, err)
			}
			if len(page) > 3 {
				f.t.Fatalf("Changes(%d, 3) = %d changes", after, len(page))
			}
			if len(page) == 0 {
				break
			}
			got = append(got, page...)
			after = page[len(page)-1].Seq
		}
		if fmt.Sprint(got) != fmt.Sprint(all) {
			f.t.Fatalf("Changes in pages of 3 = %v, want %v", got, all)
		}
		// From the middle of the feed.
		mid := all[2].Seq
		page, err := f.s.Changes(f.ctx, mid, 2)
		if err != nil || fmt.Sprint(page) != fmt.Sprint(all[3:5]) {
			f.t.Fatalf("Changes(%d, 2) = %v, %v; want %v", mid, page, err, all[3:5])
		}
		// After the last change there is nothing.
		last, err := f.s.LastChange(f.ctx)
		if err != nil {
			f.t.Fatalf("LastChange: %v", err)
		}
		if page, err := f.s.Changes(f.ctx, last, 10); err != nil || len(page) != 0 {
			f.t.Fatalf("Changes(LastChange) = %v, %v; want none", page, err)
		}
		// A limit of zero returns something rather than nothing.
		if page, err := f.s.Changes(f.ctx, 0, 0); err != nil || len(page) == 0 {
			f.t.Fatalf("Changes(0, 0) = %v, %v; want changes", page, err)
		}
	}},
}
