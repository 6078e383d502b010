package storetest

import (
	"crypto/sha256"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/keyward/keyward"
)

var keyTests = []test{
	{"RoundTrip", func(f *fixture) {
		tn := f.createTenant("acme")
		// Every field set, the optional times included, in another zone
		// than UTC and to the microsecond.
		k := f.newKey(tn.ID, keyward.Live)
		k.RevokedAt = ptr(k.CreatedAt.Add(3*time.Hour + 17*time.Microsecond))
		k.LastUsedAt = ptr(k.CreatedAt.Add(time.Hour + 999999*time.Microsecond))
		k.LastUsedIP = "2001:db8::1"
		k.RotatedFrom = "key_previous"
		k.RotatedTo = "key_following"
		k.Status = keyward.KeyDisabled
		k.Permissions = []string{"conversations:read", "messages:send", "crm:access", "reports:read"}
		k.Metadata = map[string]string{"owner": "alice@example.com", "service": "billing", "env": "prod", "unicode": "ключ ✓"}
		k.UpdatedAt = k.CreatedAt.Add(time.Microsecond)

		m := f.mark()
		want := clone(k)
		if err := f.s.CreateKey(f.ctx, k, admin); err != nil {
			f.t.Fatalf("CreateKey: %v", err)
		}
		if !reflect.DeepEqual(k, want) {
			f.t.Fatalf("CreateKey changed its argument to %+v", k)
		}
		f.wantRecorded(m, keyward.ActionKeyCreate, tn.ID, k.ID, admin, k.CreatedAt, keyChange(k.ID))

		wantKey(f.t, "Key", f.key(k.ID), want)
		got, err := f.s.KeyByHash(f.ctx, sha256.Sum256([]byte(plaintext(keyward.Live, 1))))
		if err != nil {
			f.t.Fatalf("KeyByHash(SHA-256 of the plaintext): %v", err)
		}
		wantKey(f.t, "KeyByHash", got, want)
		list, _, err := f.s.Keys(f.ctx, keyward.KeyFilter{}, keyward.Page{})
		if err != nil || len(list) != 1 {
			f.t.Fatalf("Keys = %d keys, %v; want 1", len(list), err)
		}
		wantKey(f.t, "Keys", list[0], want)
	}},
	{"RoundTripEmpty", func(f *fixture) {
		tn := f.createTenant("acme")
		// No optional field set: nil times stay nil, and nil lists and maps
		// come back empty (or nil).
		k := f.newKey(tn.ID, keyward.Test)
		k.Permissions, k.Metadata, k.Restrictions = nil, nil, keyward.Restrictions{}
		k.ExpiresAt, k.RotateBy, k.CreatedBy = nil, nil, ""
		if err := f.s.CreateKey(f.ctx, k, cli); err != nil {
			f.t.Fatalf("CreateKey: %v", err)
		}
		got := f.key(k.ID)
		wantKey(f.t, "Key", got, k)
		r := got.Restrictions
		if len(got.Permissions) != 0 || len(got.Metadata) != 0 || len(r.IPs) != 0 || len(r.Referrers) != 0 || len(r.Endpoints) != 0 || len(r.Resources) != 0 {
			f.t.Fatalf("empty lists came back as %v %v %+v", got.Permissions, got.Metadata, r)
		}
	}},
	{"Precision", func(f *fixture) {
		tn := f.createTenant("acme")
		k := f.newKey(tn.ID, keyward.Live)
		for _, d := range []time.Duration{1, 999, 1000, 500000} {
			// Times an exact number of microseconds apart stay apart.
			k2 := f.newKey(tn.ID, keyward.Live)
			k2.CreatedAt = k.CreatedAt.Add(d * time.Microsecond)
			k2.ExpiresAt = ptr(k.CreatedAt.Add(d * time.Microsecond))
			if err := f.s.CreateKey(f.ctx, k2, cli); err != nil {
				f.t.Fatalf("CreateKey: %v", err)
			}
			got := f.key(k2.ID)
			if got.CreatedAt.Sub(k.CreatedAt) != d*time.Microsecond || got.ExpiresAt.Sub(k.CreatedAt) != d*time.Microsecond {
				f.t.Fatalf("times %v apart came back %v and %v apart", d*time.Microsecond, got.CreatedAt.Sub(k.CreatedAt), got.ExpiresAt.Sub(k.CreatedAt))
			}
		}
	}},
	{"CreateConflicts", func(f *fixture) {
		tn := f.createTenant("acme")
		orig := f.createKey(tn.ID, keyward.Live)
		m := f.mark()

		dupID := f.newKey(tn.ID, keyward.Live)
		dupID.ID = orig.ID
		wantCode(f.t, f.s.CreateKey(f.ctx, dupID, admin), keyward.CodeConflict)

		dupHash := f.newKey(tn.ID, keyward.Live)
		dupHash.Hash = orig.Hash
		wantCode(f.t, f.s.CreateKey(f.ctx, dupHash, admin), keyward.CodeConflict)
		if _, err := f.s.Key(f.ctx, dupHash.ID); keyward.ErrorCode(err) != keyward.CodeNotFound {
			f.t.Fatalf("Key(%s) after a refused create: %v, want not found", dupHash.ID, err)
		}

		noTenant := f.newKey("ten_nope", keyward.Live)
		wantCode(f.t, f.s.CreateKey(f.ctx, noTenant, admin), keyward.CodeNotFound)
		if _, err := f.s.Key(f.ctx, noTenant.ID); keyward.ErrorCode(err) != keyward.CodeNotFound {
			f.t.Fatalf("Key(%s) of an unknown tenant: %v, want not found", noTenant.ID, err)
		}

		f.wantNothingRecorded(m, "a refused CreateKey")
		wantKey(f.t, "the key that holds the id and hash", f.key(orig.ID), orig)
	}},
	{"NotFound", func(f *fixture) {
		tn := f.createTenant("acme")
		k := f.createKey(tn.ID, keyward.Live)
		_, err := f.s.Key(f.ctx, "key_nope")
		wantCode(f.t, err, keyward.CodeNotFound)
		_, err = f.s.Key(f.ctx, "")
		wantCode(f.t, err, keyward.CodeNotFound)
		_, err = f.s.KeyByHash(f.ctx, sha256.Sum256([]byte("sk_live_unknown")))
		wantCode(f.t, err, keyward.CodeNotFound)
		_, err = f.s.KeyByHash(f.ctx, [32]byte{})
		wantCode(f.t, err, keyward.CodeNotFound)
		// The plaintext's bytes are not the hash.
		var raw [32]byte
		copy(raw[:], plaintext(keyward.Live, 1))
		_, err = f.s.KeyByHash(f.ctx, raw)
		wantCode(f.t, err, keyward.CodeNotFound)
		if _, err := f.s.KeyByHash(f.ctx, k.Hash); err != nil {
			f.t.Fatalf("KeyByHash: %v", err)
		}
	}},
	{"Filters", func(f *fixture) {
		a := f.createTenant("a")
		b := f.createTenant("b")
		var all []*keyward.Key
		for _, tn := range []string{a.ID, b.ID} {
			for _, env := range []keyward.Environment{keyward.Live, keyward.Test} {
				for range 2 {
					all = append(all, f.createKey(tn, env))
				}
			}
		}
		// One disabled and one revoked key of tenant a in live.
		if _, err := f.s.UpdateKey(f.ctx, all[0].ID, keyward.KeyUpdate{Status: ptr(keyward.KeyDisabled)}, f.tick(), admin); err != nil {
			f.t.Fatalf("UpdateKey: %v", err)
		}
		if _, err := f.s.RevokeKey(f.ctx, all[1].ID, f.tick(), admin); err != nil {
			f.t.Fatalf("RevokeKey: %v", err)
		}
		status := map[string]keyward.KeyStatus{all[0].ID: keyward.KeyDisabled, all[1].ID: keyward.KeyRevoked}

		for _, filter := range []keyward.KeyFilter{
			{},
			{TenantID: a.ID},
			{TenantID: b.ID},
			{TenantID: "ten_nope"},
			{Environment: keyward.Test},
			{TenantID: a.ID, Environment: keyward.Live},
			{Status: keyward.KeyActive},
			{Status: keyward.KeyDisabled},
			{Status: keyward.KeyRevoked},
			{TenantID: a.ID, Environment: keyward.Live, Status: keyward.KeyActive},
			{TenantID: b.ID, Status: keyward.KeyRevoked},
		} {
			var want []string
			for _, k := range slices.Backward(all) {
				st := keyward.KeyActive
				if s, ok := status[k.ID]; ok {
					st = s
				}
				if (filter.TenantID == "" || filter.TenantID == k.TenantID) &&
					(filter.Environment == "" || filter.Environment == k.Environment) &&
					(filter.Status == "" || filter.Status == st) {
					want = append(want, k.ID)
				}
			}
			keys, next, err := f.s.Keys(f.ctx, filter, keyward.Page{})
			if err != nil {
				f.t.Fatalf("Keys(%+v): %v", filter, err)
			}
			if got := ids(keys); !slices.Equal(got, want) || next != "" {
				f.t.Fatalf("Keys(%+v) = %v, next %q; want %v", filter, got, next, want)
			}
		}
	}},
	{"FilterByStatusAt", func(f *fixture) {
		tn := f.createTenant("acme")
		// Keys of each stored status, each with no expiry, one that has
		// passed at the filter's time, one exactly at it (expired: an expiry
		// is the first instant a key no longer works), and one after it.
		at := f.now.Add(30 * 24 * time.Hour)
		expiries := []*time.Time{nil, ptr(at.Add(-time.Microsecond)), ptr(at), ptr(at.Add(time.Microsecond))}
		var all []*keyward.Key
		for _, st := range []keyward.KeyStatus{keyward.KeyActive, keyward.KeyDisabled, keyward.KeyRevoked} {
			for _, exp := range expiries {
				k := f.newKey(tn.ID, keyward.Live)
				k.ExpiresAt, k.Status = exp, st
				if st == keyward.KeyRevoked {
					k.RevokedAt = ptr(k.CreatedAt)
				}
				if err := f.s.CreateKey(f.ctx, k, admin); err != nil {
					f.t.Fatalf("CreateKey: %v", err)
				}
				all = append(all, k)
			}
		}
		for _, now := range []time.Time{at, {}} {
			for _, st := range []keyward.KeyStatus{keyward.KeyActive, keyward.KeyDisabled, keyward.KeyExpired, keyward.KeyRevoked} {
				var want []string
				for _, k := range slices.Backward(all) {
					if k.StatusAt(now) == st {
						want = append(want, k.ID)
					}
				}
				filter := keyward.KeyFilter{TenantID: tn.ID, Status: st, Now: now}
				keys, _, err := f.s.Keys(f.ctx, filter, keyward.Page{})
				if err != nil {
					f.t.Fatalf("Keys(%+v): %v", filter, err)
				}
				if got := ids(keys); !slices.Equal(got, want) {
					f.t.Fatalf("Keys(status %s at %s) = %v, want %v", st, now.Format(time.RFC3339Nano), got, want)
				}
			}
		}
		// Each key is listed under exactly one status.
		n := 0
		for _, st := range []keyward.KeyStatus{keyward.KeyActive, keyward.KeyDisabled, keyward.KeyExpired, keyward.KeyRevoked} {
			keys, _, err := f.s.Keys(f.ctx, keyward.KeyFilter{Status: st, Now: at}, keyward.Page{})
			if err != nil {
				f.t.Fatalf("Keys: %v", err)
			}
			n += len(keys)
		}
		if n != len(all) {
			f.t.Fatalf("the four statuses list %d keys, want each of the %d once", n, len(all))
		}
	}},
	{"EmptyPage", func(f *fixture) {
		// An empty page is an empty list, never nil, so that it is written
		// as [] wherever it is shown.
		keys, next, err := f.s.Keys(f.ctx, keyward.KeyFilter{TenantID: "ten_nope"}, keyward.Page{})
		if err != nil || keys == nil || len(keys) != 0 || next != "" {
			f.t.Fatalf("Keys of no tenant = %#v, %q, %v; want an empty, non-nil page", keys, next, err)
		}
		tenants, _, err := f.s.Tenants(f.ctx, keyward.Page{})
		if err != nil || tenants == nil || len(tenants) != 0 {
			f.t.Fatalf("Tenants of an empty store = %#v, %v; want an empty, non-nil page", tenants, err)
		}
		entries, _, err := f.s.AuditLog(f.ctx, keyward.AuditFilter{Target: "key_nope"}, keyward.Page{})
		if err != nil || entries == nil || len(entries) != 0 {
			f.t.Fatalf("AuditLog of no target = %#v, %v; want an empty, non-nil page", entries, err)
		}
	}},
	{"Pagination", func(f *fixture) {
		tn := f.createTenant("acme")
		other := f.createTenant("other")
		var keys []*keyward.Key
		for i := range 7 {
			k := f.newKey(tn.ID, keyward.Live)
			// Keys 2, 3 and 4 share a creation time: the id breaks the tie,
			// across the boundary between the first and second pages.
			if i == 3 || i == 4 {
				k.CreatedAt = keys[2].CreatedAt
			}
			if err := f.s.CreateKey(f.ctx, k, admin); err != nil {
				f.t.Fatalf("CreateKey: %v", err)
			}
			keys = append(keys, k)
			f.createKey(other.ID, keyward.Live)
		}
		var want []string
		for _, k := range slices.Backward(keys) {
			want = append(want, k.ID)
		}

		filter := keyward.KeyFilter{TenantID: tn.ID}
		var got []string
		var sizes []int
		p := keyward.Page{Limit: 3}
		for range 10 {
			page, next, err := f.s.Keys(f.ctx, filter, p)
			if err != nil {
				f.t.Fatalf("Keys(%+v): %v", p, err)
			}
			got = append(got, ids(page)...)
			sizes = append(sizes, len(page))
			if next == "" {
				break
			}
			if p.Cursor == "" {
				// A key created after the first page does not show up on
				// the next ones, nor moves them.
				f.createKey(tn.ID, keyward.Live)
			}
			p.Cursor = next
		}
		if fmt.Sprint(sizes) != "[3 3 1]" {
			f.t.Fatalf("page sizes = %v, want [3 3 1]", sizes)
		}
		if !slices.Equal(got, want) {
			f.t.Fatalf("pages = %v, want %v (newest first, each key once)", got, want)
		}

		// A last page that is full has no next cursor.
		page, next, err := f.s.Keys(f.ctx, keyward.KeyFilter{TenantID: other.ID}, keyward.Page{Limit: 7})
		if err != nil || len(page) != 7 || next != "" {
			f.t.Fatalf("Keys(limit 7 of 7) = %d keys, next %q, %v; want 7 and no cursor", len(page), next, err)
		}
		page, next, err = f.s.Keys(f.ctx, keyward.KeyFilter{}, keyward.Page{Limit: keyward.MaxPageLimit + 1})
		if err != nil || len(page) != 15 || next != "" {
			f.t.Fatalf("Keys(limit above the maximum) = %d keys, next %q, %v; want 15", len(page), next, err)
		}
	}},
	{"InvalidCursor", func(f *fixture) {
		tn := f.createTenant("acme")
		f.createKey(tn.ID, keyward.Live)
		for _, c := range []string{"not a cursor", "Zm9v", "!!!", "AAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
			_, _, err := f.s.Keys(f.ctx, keyward.KeyFilter{}, keyward.Page{Cursor: c})
			wantCode(f.t, err, keyward.CodeInvalidRequest)
		}
	}},
}

// ids returns the ids of keys.
func ids(keys []*keyward.Key) []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k.ID)
	}
	return out
}
