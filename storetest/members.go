package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// newMember returns an active member of the tenant with the role, not
// stored, with every field set: an email in mixed case, permissions, an
// external id.
func (f *fixture) newMember(tenantID string, role keyward.Role) *keyward.Member {
	n := f.next()
	at := f.tick()
	return &keyward.Member{
		ID:          fmt.Sprintf("mem_%04d", n),
		TenantID:    tenantID,
		Email:       fmt.Sprintf("Person.%d@Example.com", n),
		Name:        fmt.Sprintf("Person %d", n),
		Role:        role,
		Permissions: []string{"contacts:read", "contacts:write"},
		ExternalID:  fmt.Sprintf("user-%d", n),
		Status:      keyward.MemberActive,
		CreatedAt:   at,
		UpdatedAt:   at,
	}
}

// createMember stores a new active member of the tenant.
func (f *fixture) createMember(tenantID string, role keyward.Role) *keyward.Member {
	f.t.Helper()
	m := f.newMember(tenantID, role)
	if err := f.s.CreateMember(f.ctx, m, admin); err != nil {
		f.t.Fatalf("CreateMember(%s, %s): %v", m.ID, role, err)
	}
	return m
}

// createTeam stores a tenant and its first member, an active owner.
func (f *fixture) createTeam(slug string) (*keyward.Tenant, *keyward.Member) {
	f.t.Helper()
	tn := f.createTenant(slug)
	return tn, f.createMember(tn.ID, keyward.RoleOwner)
}

// member reads a member that must exist.
func (f *fixture) member(id string) *keyward.Member {
	f.t.Helper()
	m, err := f.s.Member(f.ctx, id)
	if err != nil {
		f.t.Fatalf("Member(%s): %v", id, err)
	}
	return m
}

// memberChange names the change of a member.
func memberChange(id string) keyward.Change {
	return keyward.Change{Kind: keyward.ChangeMember, ID: id}
}

// wantMember fails the test unless got equals want field by field.
func wantMember(t *testing.T, what string, got, want *keyward.Member) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: member is nil", what)
	}
	var d []string
	str := func(name, g, w string) {
		if g != w {
			d = append(d, fmt.Sprintf("%s = %q, want %q", name, g, w))
		}
	}
	str("ID", got.ID, want.ID)
	str("TenantID", got.TenantID, want.TenantID)
	str("Email", got.Email, want.Email)
	str("Name", got.Name, want.Name)
	str("Role", string(got.Role), string(want.Role))
	str("ExternalID", got.ExternalID, want.ExternalID)
	str("Status", string(got.Status), string(want.Status))
	if !slices.Equal(got.Permissions, want.Permissions) {
		d = append(d, fmt.Sprintf("Permissions = %q, want %q", got.Permissions, want.Permissions))
	}
	if got.Permissions == nil {
		d = append(d, "Permissions = nil, want a list")
	}
	for _, s := range []string{timeDiff("CreatedAt", got.CreatedAt, want.CreatedAt), timeDiff("UpdatedAt", got.UpdatedAt, want.UpdatedAt)} {
		if s != "" {
			d = append(d, s)
		}
	}
	for _, s := range d {
		t.Errorf("%s: %s", what, s)
	}
	if len(d) > 0 {
		t.FailNow()
	}
}

// wantField fails the test unless err is a *keyward.Error with the code
// and the field, whose message holds every one of words.
func wantField(t *testing.T, err error, code keyward.Code, field string, words ...string) {
	t.Helper()
	wantCode(t, err, code)
	var e *keyward.Error
	errors.As(err, &e)
	if e.Field != field {
		t.Fatalf("error %q names field %q, want %q", e.Message, e.Field, field)
	}
	wantWords(t, err, words...)
}

// wantWords fails the test unless the public message of err holds every
// one of words.
func wantWords(t *testing.T, err error, words ...string) {
	t.Helper()
	for _, w := range words {
		if !strings.Contains(keyward.ErrorMessage(err), w) {
			t.Fatalf("error %q does not say %q", keyward.ErrorMessage(err), w)
		}
	}
}

// recorded is one audit entry that a write is expected to make, by the
// write's actor and at its time.
type recorded struct {
	action, tenantID, target, related string
}

// wantRecordedAll fails the test unless, since m, exactly these audit
// entries were written, oldest first, each by by at at, and exactly these
// changes appended (in any order).
func (f *fixture) wantRecordedAll(m mark, by keyward.Actor, at time.Time, entries []recorded, changes ...keyward.Change) {
	f.t.Helper()
	all := f.allAudit(keyward.AuditFilter{})
	got := all[:len(all)-m.audit]
	if len(got) != len(entries) {
		f.t.Fatalf("wrote %d audit entries, want %d: %v", len(got), len(entries), entries)
	}
	for i, w := range entries {
		e := got[len(got)-1-i]
		wantAudit(f.t, e, w.action, w.tenantID, w.target, by, at)
		if e.Related != w.related {
			f.t.Fatalf("audit entry %s of %s: Related = %q, want %q", e.Action, e.Target, e.Related, w.related)
		}
	}
	f.wantChanges(m, entries[len(entries)-1].action, at, changes...)
}

var memberTests = []test{
	{"CreateAndGet", func(f *fixture) {
		tn := f.createTenant("acme")
		m := f.mark()
		want := f.newMember(tn.ID, keyward.RoleOwner)
		want.Email, want.Name = "Zoë.Ångström@Example.com", "Zoë Ångström"
		if err := f.s.CreateMember(f.ctx, want, byOwner); err != nil {
			f.t.Fatalf("CreateMember: %v", err)
		}
		f.wantRecorded(m, keyward.ActionMemberAdd, tn.ID, want.ID, byOwner, want.CreatedAt, memberChange(want.ID))
		wantMember(f.t, "Member", f.member(want.ID), want)

		// No permissions and no external id: an empty list and "".
		bare := f.newMember(tn.ID, keyward.RoleViewer)
		bare.Permissions, bare.ExternalID = nil, ""
		if err := f.s.CreateMember(f.ctx, bare, cli); err != nil {
			f.t.Fatalf("CreateMember: %v", err)
		}
		wantMember(f.t, "a member without permissions", f.member(bare.ID), bare)
	}},
	{"Refused", func(f *fixture) {
		tn, owner := f.createTeam("acme")
		m := f.mark()
		_, err := f.s.Member(f.ctx, "mem_nope")
		wantCode(f.t, err, keyward.CodeNotFound)
		_, err = f.s.Member(f.ctx, "")
		wantCode(f.t, err, keyward.CodeNotFound)
		wantCode(f.t, f.s.CreateMember(f.ctx, f.newMember("ten_nope", keyward.RoleOwner), admin), keyward.CodeNotFound)
		dup := f.newMember(tn.ID, keyward.RoleViewer)
		dup.ID = owner.ID
		wantCode(f.t, f.s.CreateMember(f.ctx, dup, admin), keyward.CodeConflict)
		for _, bad := range []func(m *keyward.Member){
			func(m *keyward.Member) { m.Role = "boss" },
			func(m *keyward.Member) { m.Role = "" },
			func(m *keyward.Member) { m.Status = "gone" },
		} {
			nm := f.newMember(tn.ID, keyward.RoleViewer)
			bad(nm)
			wantCode(f.t, f.s.CreateMember(f.ctx, nm, admin), keyward.CodeInvalidRequest)
			if _, err := f.s.Member(f.ctx, nm.ID); keyward.ErrorCode(err) != keyward.CodeNotFound {
				f.t.Fatalf("Member(%s) after a refused create: %v, want not found", nm.ID, err)
			}
		}
		_, err = f.s.UpdateMember(f.ctx, "mem_nope", keyward.MemberUpdate{Name: ptr("x")}, f.tick(), admin)
		wantCode(f.t, err, keyward.CodeNotFound)
		_, err = f.s.UpdateMember(f.ctx, owner.ID, keyward.MemberUpdate{Role: ptr(keyward.Role("boss"))}, f.tick(), admin)
		wantField(f.t, err, keyward.CodeInvalidRequest, "role", "viewer, developer, admin or owner")
		_, err = f.s.UpdateMember(f.ctx, owner.ID, keyward.MemberUpdate{Status: ptr(keyward.MemberStatus("gone"))}, f.tick(), admin)
		wantField(f.t, err, keyward.CodeInvalidRequest, "status")
		_, err = f.s.RemoveMember(f.ctx, "mem_nope", "", f.tick(), admin)
		wantCode(f.t, err, keyward.CodeNotFound)
		f.wantNothingRecorded(m, "refused member writes")
		wantMember(f.t, "the owner after refused writes", f.member(owner.ID), owner)
	}},
	{"EmailConflict", func(f *fixture) {
		tn, owner := f.createTeam("acme")
		other, _ := f.createTeam("other")
		bob := f.createMember(tn.ID, keyward.RoleDeveloper)
		m := f.mark()
		// The same email in another case is taken.
		dup := f.newMember(tn.ID, keyward.RoleViewer)
		dup.Email = strings.ToUpper(owner.Email)
		wantField(f.t, f.s.CreateMember(f.ctx, dup, admin), keyward.CodeConflict, "email", dup.Email, tn.ID)
		dup.Email = strings.ToLower(owner.Email)
		wantField(f.t, f.s.CreateMember(f.ctx, dup, admin), keyward.CodeConflict, "email")
		_, err := f.s.UpdateMember(f.ctx, bob.ID, keyward.MemberUpdate{Email: ptr(strings.ToLower(owner.Email))}, f.tick(), admin)
		wantField(f.t, err, keyward.CodeConflict, "email")
		f.wantNothingRecorded(m, "a member with a taken email")
		wantMember(f.t, "a member refused a taken email", f.member(bob.ID), bob)

		// In another tenant it is free; and a member may change the case
		// of their own.
		elsewhere := f.newMember(other.ID, keyward.RoleViewer)
		elsewhere.Email = owner.Email
		if err := f.s.CreateMember(f.ctx, elsewhere, admin); err != nil {
			f.t.Fatalf("CreateMember with the email of another tenant's member: %v", err)
		}
		got, err := f.s.UpdateMember(f.ctx, owner.ID, keyward.MemberUpdate{Email: ptr(strings.ToUpper(owner.Email))}, f.tick(), admin)
		if err != nil || got.Email != strings.ToUpper(owner.Email) {
			f.t.Fatalf("UpdateMember of one's own email's case = %+v, %v", got, err)
		}
		// An email freed by a change is free.
		if _, err := f.s.UpdateMember(f.ctx, bob.ID, keyward.MemberUpdate{Email: ptr("bob@example.net")}, f.tick(), admin); err != nil {
			f.t.Fatalf("UpdateMember(email): %v", err)
		}
		again := f.newMember(tn.ID, keyward.RoleViewer)
		again.Email = bob.Email
		if err := f.s.CreateMember(f.ctx, again, admin); err != nil {
			f.t.Fatalf("CreateMember with an email freed: %v", err)
		}
	}},
	{"ExternalIDConflict", func(f *fixture) {
		tn, owner := f.createTeam("acme")
		other, _ := f.createTeam("other")
		bob := f.createMember(tn.ID, keyward.RoleDeveloper)
		m := f.mark()
		dup := f.newMember(tn.ID, keyward.RoleViewer)
		dup.ExternalID = owner.ExternalID
		wantField(f.t, f.s.CreateMember(f.ctx, dup, admin), keyward.CodeConflict, "external_id", owner.ExternalID)
		_, err := f.s.UpdateMember(f.ctx, bob.ID, keyward.MemberUpdate{ExternalID: ptr(owner.ExternalID)}, f.tick(), admin)
		wantField(f.t, err, keyward.CodeConflict, "external_id")
		f.wantNothingRecorded(m, "a member with a taken external id")

		// Many members have none; another tenant's may be the same.
		for range 2 {
			none := f.newMember(tn.ID, keyward.RoleViewer)
			none.ExternalID = ""
			if err := f.s.CreateMember(f.ctx, none, admin); err != nil {
				f.t.Fatalf("CreateMember without an external id: %v", err)
			}
		}
		elsewhere := f.newMember(other.ID, keyward.RoleViewer)
		elsewhere.ExternalID = owner.ExternalID
		if err := f.s.CreateMember(f.ctx, elsewhere, admin); err != nil {
			f.t.Fatalf("CreateMember with the external id of another tenant's member: %v", err)
		}
		// Clearing one frees it.
		if _, err := f.s.UpdateMember(f.ctx, owner.ID, keyward.MemberUpdate{ExternalID: ptr("")}, f.tick(), admin); err != nil {
			f.t.Fatalf("UpdateMember clearing the external id: %v", err)
		}
		if _, err := f.s.UpdateMember(f.ctx, bob.ID, keyward.MemberUpdate{ExternalID: ptr(owner.ExternalID)}, f.tick(), admin); err != nil {
			f.t.Fatalf("UpdateMember to an external id freed: %v", err)
		}
	}},
	{"Update", func(f *fixture) {
		tn, _ := f.createTeam("acme")
		cases := []struct {
			name   string
			update keyward.MemberUpdate
			apply  func(m *keyward.Member)
		}{
			{"Email", keyward.MemberUpdate{Email: ptr("new@example.com")}, func(m *keyward.Member) { m.Email = "new@example.com" }},
			{"Name", keyward.MemberUpdate{Name: ptr("Renamed")}, func(m *keyward.Member) { m.Name = "Renamed" }},
			{"Role", keyward.MemberUpdate{Role: ptr(keyward.RoleAdmin)}, func(m *keyward.Member) { m.Role = keyward.RoleAdmin }},
			{"Permissions", keyward.MemberUpdate{Permissions: ptr([]string{"reports:read"})},
				func(m *keyward.Member) { m.Permissions = []string{"reports:read"} }},
			{"NoPermissions", keyward.MemberUpdate{Permissions: ptr([]string(nil))},
				func(m *keyward.Member) { m.Permissions = []string{} }},
			{"ExternalID", keyward.MemberUpdate{ExternalID: ptr("crm-42")}, func(m *keyward.Member) { m.ExternalID = "crm-42" }},
			{"ClearExternalID", keyward.MemberUpdate{ExternalID: ptr("")}, func(m *keyward.Member) { m.ExternalID = "" }},
			{"Suspend", keyward.MemberUpdate{Status: ptr(keyward.MemberSuspended)}, func(m *keyward.Member) { m.Status = keyward.MemberSuspended }},
			{"Nothing", keyward.MemberUpdate{}, func(m *keyward.Member) {}},
			{"Everything", keyward.MemberUpdate{
				Email: ptr("all@example.com"), Name: ptr("All"), Role: ptr(keyward.RoleViewer),
				Permissions: ptr([]string{"a:b"}), ExternalID: ptr("x-1"), Status: ptr(keyward.MemberSuspended),
			}, func(m *keyward.Member) {
				m.Email, m.Name, m.Role, m.Permissions, m.ExternalID, m.Status =
					"all@example.com", "All", keyward.RoleViewer, []string{"a:b"}, "x-1", keyward.MemberSuspended
			}},
		}
		for _, tc := range cases {
			mb := f.createMember(tn.ID, keyward.RoleDeveloper)
			bystander := f.createMember(tn.ID, keyward.RoleDeveloper)
			want := *mb
			want.Permissions = slices.Clone(mb.Permissions)
			tc.apply(&want)
			at := f.tick()
			want.UpdatedAt = at
			m := f.mark()
			got, err := f.s.UpdateMember(f.ctx, mb.ID, tc.update, at, byOwner)
			if err != nil {
				f.t.Fatalf("%s: UpdateMember: %v", tc.name, err)
			}
			wantMember(f.t, tc.name+": UpdateMember", got, &want)
			wantMember(f.t, tc.name+": Member after UpdateMember", f.member(mb.ID), &want)
			wantMember(f.t, tc.name+": another member", f.member(bystander.ID), bystander)
			f.wantRecorded(m, keyward.ActionMemberUpdate, tn.ID, mb.ID, byOwner, at, memberChange(mb.ID))
			// Tidy up, so that the next case's email and external id are
			// its own.
			if _, err := f.s.RemoveMember(f.ctx, mb.ID, "", f.tick(), admin); err != nil {
				f.t.Fatalf("%s: RemoveMember: %v", tc.name, err)
			}
		}
	}},
	{"List", func(f *fixture) {
		a, ownerA := f.createTeam("alpha")
		b, ownerB := f.createTeam("beta")
		want := []*keyward.Member{ownerA}
		for range 3 {
			want = append(want, f.createMember(a.ID, keyward.RoleDeveloper))
			f.createMember(b.ID, keyward.RoleViewer)
		}
		// Two members created at the same time are ordered by id.
		same := f.newMember(a.ID, keyward.RoleViewer)
		same.ID = want[3].ID + "b"
		same.CreatedAt, same.UpdatedAt = want[3].CreatedAt, want[3].UpdatedAt
		if err := f.s.CreateMember(f.ctx, same, cli); err != nil {
			f.t.Fatalf("CreateMember: %v", err)
		}
		want = append(want, same)

		var got []*keyward.Member
		var sizes []int
		p := keyward.Page{Limit: 2}
		for range 10 {
			page, next, err := f.s.Members(f.ctx, a.ID, p)
			if err != nil {
				f.t.Fatalf("Members(%s, %+v): %v", a.ID, p, err)
			}
			got = append(got, page...)
			sizes = append(sizes, len(page))
			if next == "" {
				break
			}
			p.Cursor = next
		}
		if fmt.Sprint(sizes) != "[2 2 1]" {
			f.t.Fatalf("page sizes = %v, want [2 2 1]", sizes)
		}
		for i := range want {
			wantMember(f.t, fmt.Sprintf("member %d, oldest first", i), got[i], want[i])
		}

		// Every tenant's: alpha's five and beta's four.
		all, next, err := f.s.Members(f.ctx, "", keyward.Page{})
		if err != nil || len(all) != len(want)+4 || next != "" {
			f.t.Fatalf("Members of every tenant = %d members, next %q, %v; want %d", len(all), next, err, len(want)+4)
		}
		oldestFirst := slices.IsSortedFunc(all, func(x, y *keyward.Member) int {
			if c := x.CreatedAt.Compare(y.CreatedAt); c != 0 {
				return c
			}
			return strings.Compare(x.ID, y.ID)
		})
		if !oldestFirst || all[0].ID != ownerA.ID || all[1].ID != ownerB.ID {
			f.t.Fatalf("Members of every tenant are not oldest first: %v", all)
		}
		none, next, err := f.s.Members(f.ctx, "ten_nope", keyward.Page{})
		if err != nil || none == nil || len(none) != 0 || next != "" {
			f.t.Fatalf("Members of an unknown tenant = %v, next %q, %v; want an empty list", none, next, err)
		}

		_, tenantsCursor, err := f.s.Tenants(f.ctx, keyward.Page{Limit: 1})
		if err != nil || tenantsCursor == "" {
			f.t.Fatalf("Tenants: %q, %v", tenantsCursor, err)
		}
		for _, c := range []string{"not a cursor", "Zm9v", tenantsCursor} {
			_, _, err := f.s.Members(f.ctx, a.ID, keyward.Page{Cursor: c})
			wantCode(f.t, err, keyward.CodeInvalidRequest)
		}
	}},
}

var ownerRuleTests = []test{
	{"FirstMemberIsAnActiveOwner", func(f *fixture) {
		tn := f.createTenant("acme")
		m := f.mark()
		for _, nm := range []*keyward.Member{
			f.newMember(tn.ID, keyward.RoleAdmin),
			f.newMember(tn.ID, keyward.RoleViewer),
			func() *keyward.Member {
				x := f.newMember(tn.ID, keyward.RoleOwner)
				x.Status = keyward.MemberSuspended
				return x
			}(),
		} {
			err := f.s.CreateMember(f.ctx, nm, admin)
			wantCode(f.t, err, keyward.CodeConflict)
			wantWords(f.t, err, "first member", "owner")
		}
		f.wantNothingRecorded(m, "a first member who is not an active owner")
		if members, _, err := f.s.Members(f.ctx, tn.ID, keyward.Page{}); err != nil || len(members) != 0 {
			f.t.Fatalf("Members after refused first members = %v, %v; want none", members, err)
		}
		owner := f.createMember(tn.ID, keyward.RoleOwner)
		// From then on, any role.
		f.createMember(tn.ID, keyward.RoleViewer)
		suspended := f.newMember(tn.ID, keyward.RoleOwner)
		suspended.Status = keyward.MemberSuspended
		if err := f.s.CreateMember(f.ctx, suspended, admin); err != nil {
			f.t.Fatalf("CreateMember of a suspended owner beside an active one: %v", err)
		}
		wantMember(f.t, "the first owner", f.member(owner.ID), owner)
	}},
	{"LastOwnerStays", func(f *fixture) {
		tn, owner := f.createTeam("acme")
		dev := f.createMember(tn.ID, keyward.RoleDeveloper)
		// A suspended owner does not count.
		idle := f.newMember(tn.ID, keyward.RoleOwner)
		idle.Status = keyward.MemberSuspended
		if err := f.s.CreateMember(f.ctx, idle, admin); err != nil {
			f.t.Fatalf("CreateMember: %v", err)
		}
		m := f.mark()
		for _, tc := range []struct {
			what string
			u    keyward.MemberUpdate
		}{
			{"demote", keyward.MemberUpdate{Role: ptr(keyward.RoleAdmin)}},
			{"suspend", keyward.MemberUpdate{Status: ptr(keyward.MemberSuspended)}},
			{"demote", keyward.MemberUpdate{Role: ptr(keyward.RoleViewer), Status: ptr(keyward.MemberSuspended)}},
		} {
			_, err := f.s.UpdateMember(f.ctx, owner.ID, tc.u, f.tick(), admin)
			wantCode(f.t, err, keyward.CodeConflict)
			wantWords(f.t, err, "last active owner", tn.ID, tc.what)
		}
		_, err := f.s.RemoveMember(f.ctx, owner.ID, "", f.tick(), admin)
		wantCode(f.t, err, keyward.CodeConflict)
		wantWords(f.t, err, "last active owner", "remove")
		_, err = f.s.RemoveMember(f.ctx, owner.ID, dev.ID, f.tick(), admin)
		wantCode(f.t, err, keyward.CodeConflict)
		f.wantNothingRecorded(m, "changes that would leave no active owner")
		wantMember(f.t, "the last active owner", f.member(owner.ID), owner)

		// Other changes of the last owner are made.
		if _, err := f.s.UpdateMember(f.ctx, owner.ID, keyward.MemberUpdate{Name: ptr("Still owner"), Role: ptr(keyward.RoleOwner)}, f.tick(), admin); err != nil {
			f.t.Fatalf("UpdateMember of the last owner's name: %v", err)
		}
		// With a second active owner, the first may go: then the second
		// is the last.
		if _, err := f.s.UpdateMember(f.ctx, idle.ID, keyward.MemberUpdate{Status: ptr(keyward.MemberActive)}, f.tick(), admin); err != nil {
			f.t.Fatalf("UpdateMember resuming an owner: %v", err)
		}
		if _, err := f.s.UpdateMember(f.ctx, owner.ID, keyward.MemberUpdate{Role: ptr(keyward.RoleAdmin)}, f.tick(), admin); err != nil {
			f.t.Fatalf("UpdateMember demoting one of two owners: %v", err)
		}
		_, err = f.s.UpdateMember(f.ctx, idle.ID, keyward.MemberUpdate{Status: ptr(keyward.MemberSuspended)}, f.tick(), admin)
		wantCode(f.t, err, keyward.CodeConflict)
		if _, err := f.s.UpdateMember(f.ctx, dev.ID, keyward.MemberUpdate{Role: ptr(keyward.RoleOwner)}, f.tick(), admin); err != nil {
			f.t.Fatalf("UpdateMember promoting a developer: %v", err)
		}
		if _, err := f.s.RemoveMember(f.ctx, idle.ID, "", f.tick(), admin); err != nil {
			f.t.Fatalf("RemoveMember of one of two owners: %v", err)
		}
		if _, err := f.s.RemoveMember(f.ctx, owner.ID, "", f.tick(), admin); err != nil {
			f.t.Fatalf("RemoveMember of an admin: %v", err)
		}
		// Even as the only member, the last active owner stays.
		_, err = f.s.RemoveMember(f.ctx, dev.ID, "", f.tick(), admin)
		wantCode(f.t, err, keyward.CodeConflict)
		if members, _, err := f.s.Members(f.ctx, tn.ID, keyward.Page{}); err != nil || len(members) != 1 || members[0].ID != dev.ID {
			f.t.Fatalf("Members = %v, %v; want the last owner alone", members, err)
		}
	}},
	{"OwnersOfOtherTenantsDoNotCount", func(f *fixture) {
		a, ownerA := f.createTeam("alpha")
		f.createTeam("beta")
		f.createMember(a.ID, keyward.RoleAdmin)
		_, err := f.s.UpdateMember(f.ctx, ownerA.ID, keyward.MemberUpdate{Role: ptr(keyward.RoleAdmin)}, f.tick(), admin)
		wantCode(f.t, err, keyward.CodeConflict)
	}},
}
