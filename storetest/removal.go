package storetest

import (
	"slices"
	"time"

	"github.com/keyward/keyward"
)

// createKeyOf stores a new live key of the tenant that belongs to the
// member.
func (f *fixture) createKeyOf(tenantID, memberID string) *keyward.Key {
	f.t.Helper()
	k := f.newKey(tenantID, keyward.Live)
	k.MemberID = memberID
	if err := f.s.CreateKey(f.ctx, k, admin); err != nil {
		f.t.Fatalf("CreateKey(%s of %s): %v", k.ID, memberID, err)
	}
	return k
}

// countKeys returns CountKeys of a tenant.
func (f *fixture) countKeys(tenantID string) int {
	f.t.Helper()
	n, err := f.s.CountKeys(f.ctx, tenantID)
	if err != nil {
		f.t.Fatalf("CountKeys(%s): %v", tenantID, err)
	}
	return n
}

// keysOf lists the ids of the keys that belong to a member, newest first.
func (f *fixture) keysOf(memberID string) []string {
	f.t.Helper()
	keys, _, err := f.s.Keys(f.ctx, keyward.KeyFilter{MemberID: memberID}, keyward.Page{Limit: keyward.MaxPageLimit})
	if err != nil {
		f.t.Fatalf("Keys(member %s): %v", memberID, err)
	}
	ids := []string{}
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	return ids
}

// memberWithKeys is a tenant, its owner, and a developer who holds four
// keys (as stored, in the order of their ids): an active one, a disabled
// one, a revoked one and an expired one; the owner holds one key, and the
// tenant as a whole one.
type memberWithKeys struct {
	tn                 *keyward.Tenant
	owner, dev         *keyward.Member
	active, disabled   *keyward.Key
	revoked, expired   *keyward.Key
	ownerKey, teamKey  *keyward.Key
	revokedAt, expires time.Time
}

// memberWithKeys stores a memberWithKeys.
func (f *fixture) memberWithKeys() *memberWithKeys {
	f.t.Helper()
	w := &memberWithKeys{}
	w.tn, w.owner = f.createTeam("acme")
	w.dev = f.createMember(w.tn.ID, keyward.RoleDeveloper)
	w.active = f.createKeyOf(w.tn.ID, w.dev.ID)
	w.disabled = f.createKeyOf(w.tn.ID, w.dev.ID)
	w.revoked = f.createKeyOf(w.tn.ID, w.dev.ID)
	w.expires = f.now.Add(time.Minute)
	w.expired = f.newKey(w.tn.ID, keyward.Live)
	w.expired.MemberID, w.expired.ExpiresAt = w.dev.ID, &w.expires
	if err := f.s.CreateKey(f.ctx, w.expired, admin); err != nil {
		f.t.Fatalf("CreateKey: %v", err)
	}
	w.ownerKey = f.createKeyOf(w.tn.ID, w.owner.ID)
	w.teamKey = f.createKey(w.tn.ID, keyward.Live)
	var err error
	if w.disabled, err = f.s.UpdateKey(f.ctx, w.disabled.ID, keyward.KeyUpdate{Status: ptr(keyward.KeyDisabled)}, f.tick(), admin); err != nil {
		f.t.Fatalf("UpdateKey: %v", err)
	}
	w.revokedAt = f.tick()
	if w.revoked, err = f.s.RevokeKey(f.ctx, w.revoked.ID, w.revokedAt, admin); err != nil {
		f.t.Fatalf("RevokeKey: %v", err)
	}
	return w
}

var removeMemberTests = []test{
	{"RevokesTheirKeys", func(f *fixture) {
		w := f.memberWithKeys()
		if n := f.countKeys(w.tn.ID); n != 5 {
			f.t.Fatalf("CountKeys before = %d, want 5", n)
		}
		m := f.mark()
		at := f.tick() // the expired key has expired by now
		r, err := f.s.RemoveMember(f.ctx, w.dev.ID, "", at, byOwner)
		if err != nil {
			f.t.Fatalf("RemoveMember: %v", err)
		}
		if r.Revoked != 3 || r.Moved != 0 || r.TransferredTo != "" {
			f.t.Fatalf("RemoveMember = %+v; want 3 keys revoked, none moved", r)
		}
		wantMember(f.t, "the member removed, as it was", r.Member, w.dev)
		_, err = f.s.Member(f.ctx, w.dev.ID)
		wantCode(f.t, err, keyward.CodeNotFound)

		for _, k := range []*keyward.Key{w.active, w.disabled, w.expired} {
			want := clone(k)
			want.Status, want.RevokedAt, want.UpdatedAt = keyward.KeyRevoked, ptr(at), at
			wantKey(f.t, "a key of the member removed", f.key(k.ID), want)
			byHash, err := f.s.KeyByHash(f.ctx, k.Hash)
			if err != nil {
				f.t.Fatalf("KeyByHash: %v", err)
			}
			wantKey(f.t, "KeyByHash of a key of the member removed", byHash, want)
		}
		wantKey(f.t, "a key revoked before", f.key(w.revoked.ID), w.revoked)
		wantKey(f.t, "the owner's key", f.key(w.ownerKey.ID), w.ownerKey)
		wantKey(f.t, "the tenant's key", f.key(w.teamKey.ID), w.teamKey)

		f.wantRecordedAll(m, byOwner, at, []recorded{
			{keyward.ActionKeyRevoke, w.tn.ID, w.active.ID, ""},
			{keyward.ActionKeyRevoke, w.tn.ID, w.disabled.ID, ""},
			{keyward.ActionKeyRevoke, w.tn.ID, w.expired.ID, ""},
			{keyward.ActionMemberRemove, w.tn.ID, w.dev.ID, ""},
		}, keyChange(w.active.ID), keyChange(w.disabled.ID), keyChange(w.expired.ID), memberChange(w.dev.ID))

		// The revoked keys still say whose they were.
		if got, want := f.keysOf(w.dev.ID), []string{w.expired.ID, w.revoked.ID, w.disabled.ID, w.active.ID}; !slices.Equal(got, want) {
			f.t.Fatalf("Keys of the member removed = %v, want %v", got, want)
		}
		if n := f.countKeys(w.tn.ID); n != 2 {
			f.t.Fatalf("CountKeys after = %d, want 2", n)
		}
	}},
	{"TransfersTheirKeys", func(f *fixture) {
		w := f.memberWithKeys()
		m := f.mark()
		at := f.tick()
		r, err := f.s.RemoveMember(f.ctx, w.dev.ID, w.owner.ID, at, byOwner)
		if err != nil {
			f.t.Fatalf("RemoveMember: %v", err)
		}
		if r.Revoked != 0 || r.Moved != 3 || r.TransferredTo != w.owner.ID {
			f.t.Fatalf("RemoveMember = %+v; want 3 keys moved to %s, none revoked", r, w.owner.ID)
		}
		wantMember(f.t, "the member removed, as it was", r.Member, w.dev)
		_, err = f.s.Member(f.ctx, w.dev.ID)
		wantCode(f.t, err, keyward.CodeNotFound)

		for _, k := range []*keyward.Key{w.active, w.disabled, w.expired} {
			want := clone(k)
			want.MemberID, want.UpdatedAt = w.owner.ID, at
			wantKey(f.t, "a key moved", f.key(k.ID), want)
		}
		wantKey(f.t, "a key revoked before", f.key(w.revoked.ID), w.revoked)
		f.wantRecordedAll(m, byOwner, at, []recorded{
			{keyward.ActionKeyTransfer, w.tn.ID, w.active.ID, w.owner.ID},
			{keyward.ActionKeyTransfer, w.tn.ID, w.disabled.ID, w.owner.ID},
			{keyward.ActionKeyTransfer, w.tn.ID, w.expired.ID, w.owner.ID},
			{keyward.ActionMemberRemove, w.tn.ID, w.dev.ID, w.owner.ID},
		}, keyChange(w.active.ID), keyChange(w.disabled.ID), keyChange(w.expired.ID), memberChange(w.dev.ID))

		if got, want := f.keysOf(w.owner.ID), []string{w.ownerKey.ID, w.expired.ID, w.disabled.ID, w.active.ID}; !slices.Equal(got, want) {
			f.t.Fatalf("Keys of the member the keys moved to = %v, want %v", got, want)
		}
		if got, want := f.keysOf(w.dev.ID), []string{w.revoked.ID}; !slices.Equal(got, want) {
			f.t.Fatalf("Keys of the member removed = %v, want %v", got, want)
		}
		if n := f.countKeys(w.tn.ID); n != 5 {
			f.t.Fatalf("CountKeys after a transfer = %d, want 5", n)
		}
		// A search of the audit log for the member the keys moved to finds
		// the moves.
		if n := len(f.allAudit(keyward.AuditFilter{Target: w.owner.ID})); n != 5 {
			f.t.Fatalf("AuditLog(target %s) = %d entries, want its creation and the 4 of the removal", w.owner.ID, n)
		}
	}},
	{"TransferRefused", func(f *fixture) {
		w := f.memberWithKeys()
		_, otherOwner := f.createTeam("other")
		suspended := f.createMember(w.tn.ID, keyward.RoleAdmin)
		if _, err := f.s.UpdateMember(f.ctx, suspended.ID, keyward.MemberUpdate{Status: ptr(keyward.MemberSuspended)}, f.tick(), admin); err != nil {
			f.t.Fatalf("UpdateMember: %v", err)
		}
		m := f.mark()
		for _, tc := range []struct{ to, says string }{
			{w.dev.ID, "being removed"},
			{"mem_nope", "no member"},
			{otherOwner.ID, "no member"},
			{suspended.ID, "suspended"},
		} {
			_, err := f.s.RemoveMember(f.ctx, w.dev.ID, tc.to, f.tick(), admin)
			wantField(f.t, err, keyward.CodeInvalidRequest, "transfer_keys_to", tc.says)
		}
		f.wantNothingRecorded(m, "a refused transfer")
		wantMember(f.t, "a member whose removal was refused", f.member(w.dev.ID), w.dev)
		for _, k := range []*keyward.Key{w.active, w.disabled, w.revoked, w.expired} {
			wantKey(f.t, "a key of a member whose removal was refused", f.key(k.ID), k)
		}
	}},
	{"WithoutKeys", func(f *fixture) {
		tn, _ := f.createTeam("acme")
		v := f.createMember(tn.ID, keyward.RoleViewer)
		f.createKey(tn.ID, keyward.Live)
		m := f.mark()
		at := f.tick()
		r, err := f.s.RemoveMember(f.ctx, v.ID, "", at, cli)
		if err != nil || r.Revoked != 0 || r.Moved != 0 {
			f.t.Fatalf("RemoveMember of a member without keys = %+v, %v", r, err)
		}
		f.wantRecorded(m, keyward.ActionMemberRemove, tn.ID, v.ID, cli, at, memberChange(v.ID))
	}},
	{"SameEmailAfterRemoval", func(f *fixture) {
		// A member removed frees their email and external id.
		tn, _ := f.createTeam("acme")
		v := f.createMember(tn.ID, keyward.RoleViewer)
		if _, err := f.s.RemoveMember(f.ctx, v.ID, "", f.tick(), admin); err != nil {
			f.t.Fatalf("RemoveMember: %v", err)
		}
		again := f.newMember(tn.ID, keyward.RoleViewer)
		again.Email, again.ExternalID = v.Email, v.ExternalID
		if err := f.s.CreateMember(f.ctx, again, admin); err != nil {
			f.t.Fatalf("CreateMember with a removed member's email: %v", err)
		}
	}},
}

var keyMemberTests = []test{
	{"RoundTrip", func(f *fixture) {
		tn, owner := f.createTeam("acme")
		k := f.newKey(tn.ID, keyward.Live)
		k.MemberID = owner.ID
		m := f.mark()
		if err := f.s.CreateKey(f.ctx, k, byOwner); err != nil {
			f.t.Fatalf("CreateKey: %v", err)
		}
		f.wantRecorded(m, keyward.ActionKeyCreate, tn.ID, k.ID, byOwner, k.CreatedAt, keyChange(k.ID))
		wantKey(f.t, "Key", f.key(k.ID), k)
		byHash, err := f.s.KeyByHash(f.ctx, k.Hash)
		if err != nil {
			f.t.Fatalf("KeyByHash: %v", err)
		}
		wantKey(f.t, "KeyByHash", byHash, k)
	}},
	{"NotAMemberOfTheTenant", func(f *fixture) {
		tn, _ := f.createTeam("acme")
		_, otherOwner := f.createTeam("other")
		m := f.mark()
		for _, id := range []string{"mem_nope", otherOwner.ID} {
			k := f.newKey(tn.ID, keyward.Live)
			k.MemberID = id
			wantField(f.t, f.s.CreateKey(f.ctx, k, admin), keyward.CodeInvalidRequest, "member_id", id, tn.ID)
			if _, err := f.s.Key(f.ctx, k.ID); keyward.ErrorCode(err) != keyward.CodeNotFound {
				f.t.Fatalf("Key(%s) after a refused create: %v, want not found", k.ID, err)
			}
		}
		f.wantNothingRecorded(m, "a key of a member of another tenant")
	}},
	{"ListByMember", func(f *fixture) {
		a, ownerA := f.createTeam("alpha")
		b, ownerB := f.createTeam("beta")
		dev := f.createMember(a.ID, keyward.RoleDeveloper)
		var want []string
		for range 3 {
			want = append(want, f.createKeyOf(a.ID, dev.ID).ID)
			f.createKeyOf(a.ID, ownerA.ID)
			f.createKeyOf(b.ID, ownerB.ID)
			f.createKey(a.ID, keyward.Test)
		}
		slices.Reverse(want)
		var got []string
		p := keyward.Page{Limit: 2}
		for range 10 {
			keys, next, err := f.s.Keys(f.ctx, keyward.KeyFilter{TenantID: a.ID, MemberID: dev.ID}, p)
			if err != nil {
				f.t.Fatalf("Keys: %v", err)
			}
			for _, k := range keys {
				got = append(got, k.ID)
			}
			if next == "" {
				break
			}
			p.Cursor = next
		}
		if !slices.Equal(got, want) {
			f.t.Fatalf("Keys of member %s in pages of 2 = %v, want %v", dev.ID, got, want)
		}
		if got := f.keysOf(dev.ID); !slices.Equal(got, want) {
			f.t.Fatalf("Keys of member %s without a tenant = %v, want %v", dev.ID, got, want)
		}
		if keys, _, err := f.s.Keys(f.ctx, keyward.KeyFilter{TenantID: b.ID, MemberID: dev.ID}, keyward.Page{}); err != nil || len(keys) != 0 {
			f.t.Fatalf("Keys of a member in another tenant = %d, %v; want none", len(keys), err)
		}
		if keys, _, err := f.s.Keys(f.ctx, keyward.KeyFilter{TenantID: a.ID}, keyward.Page{Limit: keyward.MaxPageLimit}); err != nil || len(keys) != 9 {
			f.t.Fatalf("Keys of a tenant = %d, %v; want all 9, of members or not", len(keys), err)
		}
	}},
	{"RotationKeepsTheMember", func(f *fixture) {
		tn, owner := f.createTeam("acme")
		old := f.createKeyOf(tn.ID, owner.ID)
		succ := f.successorOf(old)
		succ.MemberID = "" // the store sets it
		if _, err := f.s.RotateKey(f.ctx, old.ID, succ, succ.CreatedAt.Add(time.Hour), admin); err != nil {
			f.t.Fatalf("RotateKey: %v", err)
		}
		if got := f.key(succ.ID); got.MemberID != owner.ID {
			f.t.Fatalf("the successor belongs to %q, want %q as the old key", got.MemberID, owner.ID)
		}
	}},
	{"NoKeyForAMemberRemoved", func(f *fixture) {
		tn, _ := f.createTeam("acme")
		dev := f.createMember(tn.ID, keyward.RoleDeveloper)
		if _, err := f.s.RemoveMember(f.ctx, dev.ID, "", f.tick(), admin); err != nil {
			f.t.Fatalf("RemoveMember: %v", err)
		}
		k := f.newKey(tn.ID, keyward.Live)
		k.MemberID = dev.ID
		wantField(f.t, f.s.CreateKey(f.ctx, k, admin), keyward.CodeInvalidRequest, "member_id")
	}},
}
