package storetest

import (
	"time"

	"github.com/keyward/keyward"
)

var updateKeyTests = []test{
	{"EachField", func(f *fixture) {
		later := time.Date(2027, 1, 2, 3, 4, 5, 678901000, zone)
		cases := []struct {
			name   string
			update keyward.KeyUpdate
			apply  func(k *keyward.Key)
		}{
			{"Name", keyward.KeyUpdate{Name: ptr("renamed")}, func(k *keyward.Key) { k.Name = "renamed" }},
			{"Permissions", keyward.KeyUpdate{Permissions: ptr([]string{"reports:read"})},
				func(k *keyward.Key) { k.Permissions = []string{"reports:read"} }},
			{"NoPermissions", keyward.KeyUpdate{Permissions: ptr([]string{})},
				func(k *keyward.Key) { k.Permissions = nil }},
			{"Metadata", keyward.KeyUpdate{Metadata: ptr(map[string]string{"owner": "bob"})},
				func(k *keyward.Key) { k.Metadata = map[string]string{"owner": "bob"} }},
			{"NoMetadata", keyward.KeyUpdate{Metadata: ptr(map[string]string{})},
				func(k *keyward.Key) { k.Metadata = nil }},
			{"ExpiresAt", keyward.KeyUpdate{ExpiresAt: ptr(later)}, func(k *keyward.Key) { k.ExpiresAt = ptr(later) }},
			{"ClearExpiresAt", keyward.KeyUpdate{ExpiresAt: ptr(time.Time{})}, func(k *keyward.Key) { k.ExpiresAt = nil }},
			{"RotateBy", keyward.KeyUpdate{RotateBy: ptr(later)}, func(k *keyward.Key) { k.RotateBy = ptr(later) }},
			{"ClearRotateBy", keyward.KeyUpdate{RotateBy: ptr(time.Time{})}, func(k *keyward.Key) { k.RotateBy = nil }},
			{"Restrictions", keyward.KeyUpdate{Restrictions: &keyward.Restrictions{IPs: []string{"192.0.2.0/24"}}},
				func(k *keyward.Key) { k.Restrictions = keyward.Restrictions{IPs: []string{"192.0.2.0/24"}} }},
			{"EveryRestriction", keyward.KeyUpdate{Restrictions: &keyward.Restrictions{
				IPs:       []string{"192.0.2.0/24"},
				Referrers: []string{"https://*.example.org/*"},
				Endpoints: []string{"POST /v1/contacts"},
				Resources: map[string][]string{"site": {"site_9"}},
			}}, func(k *keyward.Key) {
				k.Restrictions = keyward.Restrictions{
					IPs:       []string{"192.0.2.0/24"},
					Referrers: []string{"https://*.example.org/*"},
					Endpoints: []string{"POST /v1/contacts"},
					Resources: map[string][]string{"site": {"site_9"}},
				}
			}},
			{"NoRestrictions", keyward.KeyUpdate{Restrictions: &keyward.Restrictions{}},
				func(k *keyward.Key) { k.Restrictions = keyward.Restrictions{} }},
			{"Disable", keyward.KeyUpdate{Status: ptr(keyward.KeyDisabled)}, func(k *keyward.Key) { k.Status = keyward.KeyDisabled }},
			{"Nothing", keyward.KeyUpdate{}, func(k *keyward.Key) {}},
			{"Everything", keyward.KeyUpdate{
				Name:         ptr("all"),
				Permissions:  ptr([]string{"admin"}),
				Metadata:     ptr(map[string]string{"team": "ops"}),
				ExpiresAt:    ptr(later),
				RotateBy:     ptr(time.Time{}),
				Restrictions: &keyward.Restrictions{IPs: []string{"198.51.100.7/32"}},
				Status:       ptr(keyward.KeyDisabled),
			}, func(k *keyward.Key) {
				k.Name, k.Permissions, k.Metadata = "all", []string{"admin"}, map[string]string{"team": "ops"}
				k.ExpiresAt, k.RotateBy = ptr(later), nil
				k.Restrictions, k.Status = keyward.Restrictions{IPs: []string{"198.51.100.7/32"}}, keyward.KeyDisabled
			}},
		}
		tn := f.createTenant("acme")
		for _, tc := range cases {
			k := f.createKey(tn.ID, keyward.Live)
			bystander := f.createKey(tn.ID, keyward.Live)
			want := clone(k)
			tc.apply(want)
			at := f.tick()
			want.UpdatedAt = at

			m := f.mark()
			got, err := f.s.UpdateKey(f.ctx, k.ID, tc.update, at, admin)
			if err != nil {
				f.t.Fatalf("%s: UpdateKey: %v", tc.name, err)
			}
			wantKey(f.t, tc.name+": UpdateKey", got, want)
			wantKey(f.t, tc.name+": Key after UpdateKey", f.key(k.ID), want)
			byHash, err := f.s.KeyByHash(f.ctx, k.Hash)
			if err != nil {
				f.t.Fatalf("%s: KeyByHash: %v", tc.name, err)
			}
			wantKey(f.t, tc.name+": KeyByHash after UpdateKey", byHash, want)
			wantKey(f.t, tc.name+": another key", f.key(bystander.ID), bystander)
			f.wantRecorded(m, keyward.ActionKeyUpdate, tn.ID, k.ID, admin, at, keyChange(k.ID))
		}
	}},
	{"Enable", func(f *fixture) {
		tn := f.createTenant("acme")
		k := f.createKey(tn.ID, keyward.Live)
		if _, err := f.s.UpdateKey(f.ctx, k.ID, keyward.KeyUpdate{Status: ptr(keyward.KeyDisabled)}, f.tick(), admin); err != nil {
			f.t.Fatalf("UpdateKey(disabled): %v", err)
		}
		at := f.tick()
		got, err := f.s.UpdateKey(f.ctx, k.ID, keyward.KeyUpdate{Status: ptr(keyward.KeyActive), Name: ptr("back")}, at, cli)
		if err != nil {
			f.t.Fatalf("UpdateKey(active): %v", err)
		}
		want := clone(k)
		want.Name, want.UpdatedAt = "back", at
		wantKey(f.t, "UpdateKey of a disabled key", got, want)
	}},
	{"Refused", func(f *fixture) {
		tn := f.createTenant("acme")
		k := f.createKey(tn.ID, keyward.Live)
		revoked := f.createKey(tn.ID, keyward.Live)
		revoked, err := f.s.RevokeKey(f.ctx, revoked.ID, f.tick(), admin)
		if err != nil {
			f.t.Fatalf("RevokeKey: %v", err)
		}
		m := f.mark()

		_, err = f.s.UpdateKey(f.ctx, "key_nope", keyward.KeyUpdate{Name: ptr("x")}, f.tick(), admin)
		wantCode(f.t, err, keyward.CodeNotFound)
		for _, u := range []keyward.KeyUpdate{{Name: ptr("x")}, {Status: ptr(keyward.KeyActive)}, {}} {
			_, err = f.s.UpdateKey(f.ctx, revoked.ID, u, f.tick(), admin)
			wantCode(f.t, err, keyward.CodeConflict)
		}
		for _, st := range []keyward.KeyStatus{keyward.KeyRevoked, "expired", ""} {
			_, err = f.s.UpdateKey(f.ctx, k.ID, keyward.KeyUpdate{Name: ptr("x"), Status: ptr(st)}, f.tick(), admin)
			wantCode(f.t, err, keyward.CodeInvalidRequest)
		}
		f.wantNothingRecorded(m, "a refused UpdateKey")
		wantKey(f.t, "a key after refused updates", f.key(k.ID), k)
		wantKey(f.t, "a revoked key after refused updates", f.key(revoked.ID), revoked)
	}},
}

var revokeKeyTests = []test{
	{"Revoke", func(f *fixture) {
		tn := f.createTenant("acme")
		k := f.createKey(tn.ID, keyward.Live)
		other := f.createKey(tn.ID, keyward.Live)

		m := f.mark()
		at := f.tick()
		got, err := f.s.RevokeKey(f.ctx, k.ID, at, cli)
		if err != nil {
			f.t.Fatalf("RevokeKey: %v", err)
		}
		want := clone(k)
		want.Status, want.RevokedAt, want.UpdatedAt = keyward.KeyRevoked, ptr(at), at
		wantKey(f.t, "RevokeKey", got, want)
		wantKey(f.t, "Key after RevokeKey", f.key(k.ID), want)
		// A verifier must still find a revoked key, to answer that it is
		// revoked rather than unknown.
		byHash, err := f.s.KeyByHash(f.ctx, k.Hash)
		if err != nil {
			f.t.Fatalf("KeyByHash of a revoked key: %v", err)
		}
		wantKey(f.t, "KeyByHash after RevokeKey", byHash, want)
		f.wantRecorded(m, keyward.ActionKeyRevoke, tn.ID, k.ID, cli, at, keyChange(k.ID))
		wantKey(f.t, "another key", f.key(other.ID), other)
	}},
	{"Idempotent", func(f *fixture) {
		tn := f.createTenant("acme")
		k := f.createKey(tn.ID, keyward.Live)
		first := f.tick()
		want, err := f.s.RevokeKey(f.ctx, k.ID, first, admin)
		if err != nil {
			f.t.Fatalf("RevokeKey: %v", err)
		}
		m := f.mark()
		got, err := f.s.RevokeKey(f.ctx, k.ID, f.tick(), cli)
		if err != nil {
			f.t.Fatalf("RevokeKey of a revoked key: %v", err)
		}
		wantKey(f.t, "RevokeKey again (RevokedAt of the first)", got, want)
		wantKey(f.t, "Key after RevokeKey again", f.key(k.ID), want)
		f.wantNothingRecorded(m, "RevokeKey of a revoked key")
	}},
	{"Disabled", func(f *fixture) {
		tn := f.createTenant("acme")
		k := f.createKey(tn.ID, keyward.Live)
		if _, err := f.s.UpdateKey(f.ctx, k.ID, keyward.KeyUpdate{Status: ptr(keyward.KeyDisabled)}, f.tick(), admin); err != nil {
			f.t.Fatalf("UpdateKey: %v", err)
		}
		got, err := f.s.RevokeKey(f.ctx, k.ID, f.tick(), admin)
		if err != nil {
			f.t.Fatalf("RevokeKey of a disabled key: %v", err)
		}
		if got.Status != keyward.KeyRevoked {
			f.t.Fatalf("Status = %q, want revoked", got.Status)
		}
	}},
	{"NotFound", func(f *fixture) {
		f.createTenant("acme")
		m := f.mark()
		_, err := f.s.RevokeKey(f.ctx, "key_nope", f.tick(), admin)
		wantCode(f.t, err, keyward.CodeNotFound)
		f.wantNothingRecorded(m, "RevokeKey of an unknown key")
	}},
}

// successorOf returns the key that replaces k, not stored: same settings,
// a new secret.
func (f *fixture) successorOf(k *keyward.Key) *keyward.Key {
	s := f.newKey(k.TenantID, k.Environment)
	s.Name, s.Permissions, s.Metadata = k.Name, k.Permissions, k.Metadata
	s.Restrictions, s.ExpiresAt, s.RotateBy = k.Restrictions, k.ExpiresAt, k.RotateBy
	s.RotatedFrom = k.ID
	return s
}

var rotateKeyTests = []test{
	{"Rotate", func(f *fixture) {
		tn := f.createTenant("acme")
		old := f.createKey(tn.ID, keyward.Live)
		succ := f.successorOf(old)
		grace := succ.CreatedAt.Add(24 * time.Hour)

		m := f.mark()
		got, err := f.s.RotateKey(f.ctx, old.ID, succ, grace, admin)
		if err != nil {
			f.t.Fatalf("RotateKey: %v", err)
		}
		wantOld := clone(old)
		wantOld.RotatedTo, wantOld.ExpiresAt, wantOld.UpdatedAt = succ.ID, ptr(grace), succ.CreatedAt
		wantKey(f.t, "RotateKey returns the old key", got, wantOld)
		wantKey(f.t, "the old key", f.key(old.ID), wantOld)
		wantKey(f.t, "the successor", f.key(succ.ID), succ)

		// Both keys work until the old one expires.
		for _, k := range []*keyward.Key{wantOld, succ} {
			byHash, err := f.s.KeyByHash(f.ctx, k.Hash)
			if err != nil {
				f.t.Fatalf("KeyByHash(%s): %v", k.ID, err)
			}
			wantKey(f.t, "KeyByHash after RotateKey", byHash, k)
		}
		f.wantRecorded(m, keyward.ActionKeyRotate, tn.ID, old.ID, admin, succ.CreatedAt, keyChange(old.ID), keyChange(succ.ID))
		// The entry names the successor, and a search for either key finds it.
		for _, id := range []string{old.ID, succ.ID} {
			entries := f.allAudit(keyward.AuditFilter{Target: id})
			if len(entries) == 0 || entries[0].Action != keyward.ActionKeyRotate || entries[0].Related != succ.ID {
				f.t.Fatalf("AuditLog(target %s): %+v; want the rotation first, related to %s", id, entries, succ.ID)
			}
		}

		// The successor can be rotated in turn.
		third := f.successorOf(succ)
		if _, err := f.s.RotateKey(f.ctx, succ.ID, third, third.CreatedAt, cli); err != nil {
			f.t.Fatalf("RotateKey of the successor: %v", err)
		}
		if got := f.key(succ.ID); got.RotatedFrom != old.ID || got.RotatedTo != third.ID {
			f.t.Fatalf("successor: RotatedFrom %q, RotatedTo %q; want %q, %q", got.RotatedFrom, got.RotatedTo, old.ID, third.ID)
		}
	}},
	{"Chain", func(f *fixture) {
		// A key in its grace period names the newest key of its chain:
		// each rotation points the live predecessors of the key it
		// rotates on to the successor.
		tn := f.createTenant("acme")
		a := f.createKey(tn.ID, keyward.Live)
		b := f.successorOf(a)
		if _, err := f.s.RotateKey(f.ctx, a.ID, b, b.CreatedAt.Add(24*time.Hour), admin); err != nil {
			f.t.Fatalf("RotateKey(A): %v", err)
		}
		c := f.successorOf(b)
		m := f.mark()
		if _, err := f.s.RotateKey(f.ctx, b.ID, c, c.CreatedAt.Add(24*time.Hour), cli); err != nil {
			f.t.Fatalf("RotateKey(B): %v", err)
		}
		f.wantRecorded(m, keyward.ActionKeyRotate, tn.ID, b.ID, cli, c.CreatedAt, keyChange(a.ID), keyChange(b.ID), keyChange(c.ID))
		wantA := f.key(a.ID)
		if wantA.RotatedTo != c.ID || !wantA.UpdatedAt.Equal(c.CreatedAt) || wantA.RotatedFrom != "" {
			f.t.Fatalf("A after B's rotation: RotatedTo %q, UpdatedAt %v, RotatedFrom %q; want %q, %v, none", wantA.RotatedTo, wantA.UpdatedAt, wantA.RotatedFrom, c.ID, c.CreatedAt)
		}
		if got := f.key(b.ID); got.RotatedTo != c.ID || got.RotatedFrom != a.ID {
			f.t.Fatalf("B: RotatedTo %q, RotatedFrom %q; want %q, %q", got.RotatedTo, got.RotatedFrom, c.ID, a.ID)
		}

		// Rotated once more, both of C's live predecessors move on to D,
		// and A's expiry, name and the rest stay as they were.
		d := f.successorOf(c)
		m = f.mark()
		if _, err := f.s.RotateKey(f.ctx, c.ID, d, d.CreatedAt.Add(time.Hour), admin); err != nil {
			f.t.Fatalf("RotateKey(C): %v", err)
		}
		f.wantRecorded(m, keyward.ActionKeyRotate, tn.ID, c.ID, admin, d.CreatedAt, keyChange(a.ID), keyChange(b.ID), keyChange(c.ID), keyChange(d.ID))
		wantA.RotatedTo, wantA.UpdatedAt = d.ID, d.CreatedAt
		wantKey(f.t, "A after C's rotation", f.key(a.ID), wantA)
		for _, id := range []string{b.ID, c.ID} {
			if got := f.key(id); got.RotatedTo != d.ID {
				f.t.Fatalf("%s after C's rotation: RotatedTo %q, want %q", id, got.RotatedTo, d.ID)
			}
		}

		// A predecessor whose grace period ends the moment its successor
		// is rotated has expired: it keeps the key that replaced it.
		e := f.createKey(tn.ID, keyward.Live)
		g := f.successorOf(e)
		h := f.successorOf(g)
		if _, err := f.s.RotateKey(f.ctx, e.ID, g, h.CreatedAt, admin); err != nil {
			f.t.Fatalf("RotateKey(E): %v", err)
		}
		expired := f.key(e.ID)
		m = f.mark()
		if _, err := f.s.RotateKey(f.ctx, g.ID, h, h.CreatedAt.Add(time.Hour), admin); err != nil {
			f.t.Fatalf("RotateKey(G): %v", err)
		}
		f.wantRecorded(m, keyward.ActionKeyRotate, tn.ID, g.ID, admin, h.CreatedAt, keyChange(g.ID), keyChange(h.ID))
		wantKey(f.t, "an expired predecessor", f.key(e.ID), expired)

		// A revoked predecessor keeps it too.
		r := f.createKey(tn.ID, keyward.Live)
		s := f.successorOf(r)
		if _, err := f.s.RotateKey(f.ctx, r.ID, s, s.CreatedAt.Add(24*time.Hour), admin); err != nil {
			f.t.Fatalf("RotateKey(R): %v", err)
		}
		revoked, err := f.s.RevokeKey(f.ctx, r.ID, f.tick(), admin)
		if err != nil {
			f.t.Fatalf("RevokeKey(R): %v", err)
		}
		u := f.successorOf(s)
		m = f.mark()
		if _, err := f.s.RotateKey(f.ctx, s.ID, u, u.CreatedAt.Add(time.Hour), admin); err != nil {
			f.t.Fatalf("RotateKey(S): %v", err)
		}
		f.wantRecorded(m, keyward.ActionKeyRotate, tn.ID, s.ID, admin, u.CreatedAt, keyChange(s.ID), keyChange(u.ID))
		wantKey(f.t, "a revoked predecessor", f.key(r.ID), revoked)
		if revoked.RotatedTo != s.ID {
			f.t.Fatalf("the revoked predecessor: RotatedTo %q, want %q", revoked.RotatedTo, s.ID)
		}
	}},
	{"Disabled", func(f *fixture) {
		tn := f.createTenant("acme")
		old := f.createKey(tn.ID, keyward.Test)
		if _, err := f.s.UpdateKey(f.ctx, old.ID, keyward.KeyUpdate{Status: ptr(keyward.KeyDisabled)}, f.tick(), admin); err != nil {
			f.t.Fatalf("UpdateKey: %v", err)
		}
		succ := f.successorOf(old)
		got, err := f.s.RotateKey(f.ctx, old.ID, succ, succ.CreatedAt, admin)
		if err != nil {
			f.t.Fatalf("RotateKey of a disabled key: %v", err)
		}
		if got.RotatedTo != succ.ID || got.Status != keyward.KeyDisabled {
			f.t.Fatalf("old key: RotatedTo %q, Status %q; want %q, disabled", got.RotatedTo, got.Status, succ.ID)
		}
	}},
	{"Refused", func(f *fixture) {
		tn := f.createTenant("acme")
		rotated := f.createKey(tn.ID, keyward.Live)
		succ := f.successorOf(rotated)
		if _, err := f.s.RotateKey(f.ctx, rotated.ID, succ, succ.CreatedAt.Add(time.Hour), admin); err != nil {
			f.t.Fatalf("RotateKey: %v", err)
		}
		rotated = f.key(rotated.ID)
		revoked := f.createKey(tn.ID, keyward.Live)
		revoked, err := f.s.RevokeKey(f.ctx, revoked.ID, f.tick(), admin)
		if err != nil {
			f.t.Fatalf("RevokeKey: %v", err)
		}
		other := f.createTenant("other")
		active := f.createKey(tn.ID, keyward.Live)
		m := f.mark()

		for _, tc := range []struct {
			name     string
			oldID    string
			tenantID string
			code     keyward.Code
		}{
			{"rotated twice", rotated.ID, tn.ID, keyward.CodeConflict},
			{"revoked", revoked.ID, tn.ID, keyward.CodeConflict},
			{"unknown", "key_nope", tn.ID, keyward.CodeNotFound},
			{"successor of another tenant", active.ID, other.ID, keyward.CodeInvalidRequest},
		} {
			next := f.newKey(tc.tenantID, keyward.Live)
			next.RotatedFrom = tc.oldID
			_, err := f.s.RotateKey(f.ctx, tc.oldID, next, next.CreatedAt, admin)
			wantCode(f.t, err, tc.code)
			if _, err := f.s.Key(f.ctx, next.ID); keyward.ErrorCode(err) != keyward.CodeNotFound {
				f.t.Fatalf("%s: the refused successor was stored (%v)", tc.name, err)
			}
		}
		f.wantNothingRecorded(m, "a refused RotateKey")
		wantKey(f.t, "an active key after a refused rotation", f.key(active.ID), active)
		wantKey(f.t, "a rotated key after a refused rotation", f.key(rotated.ID), rotated)
		wantKey(f.t, "a revoked key after a refused rotation", f.key(revoked.ID), revoked)
	}},
	{"Atomic", func(f *fixture) {
		tn := f.createTenant("acme")
		old := f.createKey(tn.ID, keyward.Live)
		taken := f.createKey(tn.ID, keyward.Live)
		m := f.mark()

		// The successor cannot be stored: its id, or its hash, is taken.
		// The old key must not change.
		dupID := f.successorOf(old)
		dupID.ID = taken.ID
		_, err := f.s.RotateKey(f.ctx, old.ID, dupID, dupID.CreatedAt, admin)
		wantCode(f.t, err, keyward.CodeConflict)

		dupHash := f.successorOf(old)
		dupHash.Hash = taken.Hash
		_, err = f.s.RotateKey(f.ctx, old.ID, dupHash, dupHash.CreatedAt, admin)
		wantCode(f.t, err, keyward.CodeConflict)
		if _, err := f.s.Key(f.ctx, dupHash.ID); keyward.ErrorCode(err) != keyward.CodeNotFound {
			f.t.Fatalf("the refused successor was stored (%v)", err)
		}

		f.wantNothingRecorded(m, "a RotateKey whose successor cannot be stored")
		wantKey(f.t, "the old key after a failed rotation", f.key(old.ID), old)
		wantKey(f.t, "the key that holds the id and hash", f.key(taken.ID), taken)

		// It can still be rotated.
		succ := f.successorOf(old)
		if _, err := f.s.RotateKey(f.ctx, old.ID, succ, succ.CreatedAt, admin); err != nil {
			f.t.Fatalf("RotateKey after a failed rotation: %v", err)
		}
	}},
}

var usageTests = []test{
	{"Batch", func(f *fixture) {
		tn := f.createTenant("acme")
		a := f.createKey(tn.ID, keyward.Live)
		b := f.createKey(tn.ID, keyward.Test)
		c := f.createKey(tn.ID, keyward.Live)
		t1, t2, t3 := f.tick(), f.tick(), f.tick()
		m := f.mark()

		err := f.s.RecordUsage(f.ctx, []keyward.Usage{
			{KeyID: a.ID, At: t1, IP: "192.0.2.1"},
			{KeyID: "key_nope", At: t1, IP: "192.0.2.9"},
			{KeyID: b.ID, At: t3, IP: "2001:db8::2"},
			// Within one batch, an older use after a newer one is ignored.
			{KeyID: b.ID, At: t2, IP: "192.0.2.3"},
		})
		if err != nil {
			f.t.Fatalf("RecordUsage: %v", err)
		}
		wantA, wantB := clone(a), clone(b)
		wantA.LastUsedAt, wantA.LastUsedIP = ptr(t1), "192.0.2.1"
		wantB.LastUsedAt, wantB.LastUsedIP = ptr(t3), "2001:db8::2"
		wantKey(f.t, "a used key", f.key(a.ID), wantA)
		wantKey(f.t, "a key used twice", f.key(b.ID), wantB)
		wantKey(f.t, "an unused key", f.key(c.ID), c)
		f.wantNothingRecorded(m, "RecordUsage")

		// An older use does not overwrite a newer one; a newer does.
		if err := f.s.RecordUsage(f.ctx, []keyward.Usage{
			{KeyID: a.ID, At: t1.Add(-time.Second), IP: "192.0.2.200"},
			{KeyID: b.ID, At: t3.Add(time.Microsecond), IP: "192.0.2.4"},
		}); err != nil {
			f.t.Fatalf("RecordUsage: %v", err)
		}
		wantB.LastUsedAt, wantB.LastUsedIP = ptr(t3.Add(time.Microsecond)), "192.0.2.4"
		wantKey(f.t, "a key used earlier than recorded", f.key(a.ID), wantA)
		wantKey(f.t, "a key used later than recorded", f.key(b.ID), wantB)
		byHash, err := f.s.KeyByHash(f.ctx, b.Hash)
		if err != nil {
			f.t.Fatalf("KeyByHash: %v", err)
		}
		wantKey(f.t, "KeyByHash after RecordUsage", byHash, wantB)
		f.wantNothingRecorded(m, "RecordUsage")
	}},
	{"Empty", func(f *fixture) {
		if err := f.s.RecordUsage(f.ctx, nil); err != nil {
			f.t.Fatalf("RecordUsage(nil): %v", err)
		}
		if err := f.s.RecordUsage(f.ctx, []keyward.Usage{{KeyID: "key_nope", At: f.tick()}}); err != nil {
			f.t.Fatalf("RecordUsage(unknown key): %v", err)
		}
	}},
	{"Large", func(f *fixture) {
		tn := f.createTenant("acme")
		k := f.createKey(tn.ID, keyward.Live)
		var uses []keyward.Usage
		var last time.Time
		for i := range 2000 {
			last = f.now.Add(time.Duration(i) * time.Millisecond)
			id := k.ID
			if i%2 == 1 {
				id = "key_unknown"
			}
			uses = append(uses, keyward.Usage{KeyID: id, At: last, IP: "192.0.2.7"})
		}
		if err := f.s.RecordUsage(f.ctx, uses); err != nil {
			f.t.Fatalf("RecordUsage(2000 uses): %v", err)
		}
		want := last.Add(-time.Millisecond)
		if got := f.key(k.ID); got.LastUsedAt == nil || !got.LastUsedAt.Equal(want) {
			f.t.Fatalf("LastUsedAt = %v, want %v", got.LastUsedAt, want)
		}
	}},
}
