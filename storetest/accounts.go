package storetest

import (
	"crypto/sha256"
	"slices"
	"sync"
	"time"

	"github.com/keyward/keyward"
)

// accountTests hold AccountStore (docs/dashboard.md): a password is set
// with its audit entry and ends the member's sessions (a new epoch), as
// signing out everywhere does; members are found by email in every
// tenant, without regard to case, only with a password; failed sign-ins
// are counted per subject within a window; sessions are kept by their
// token's hash until they expire, and pruned after.
var accountTests = []test{
	{"Passwords", func(f *fixture) {
		acme, ada := f.createTeam("acme")
		globex := f.createTenant("globex")
		twin := f.newMember(globex.ID, keyward.RoleOwner)
		twin.Email = "PERSON." + ada.Email[len("Person."):] // the same email, in other case
		if err := f.s.CreateMember(f.ctx, twin, admin); err != nil {
			f.t.Fatal(err)
		}
		if got, err := f.s.CredentialsByEmail(f.ctx, ada.Email, "", 10); err != nil || len(got) != 0 {
			f.t.Fatalf("CredentialsByEmail before any password = %v, %v; want none", got, err)
		}
		c, err := f.s.Credential(f.ctx, ada.ID)
		if err != nil || c.PasswordHash != "" || c.SessionEpoch != 0 || c.Member.ID != ada.ID {
			f.t.Fatalf("Credential = %+v, %v; want no password, epoch 0", c, err)
		}
		m := f.mark()
		at := f.tick()
		if err := f.s.SetPassword(f.ctx, ada.ID, "$argon2id$ada", at, admin); err != nil {
			f.t.Fatal(err)
		}
		f.wantRecorded(m, keyward.ActionMemberPassword, acme.ID, ada.ID, admin, at)
		if err := f.s.SetPassword(f.ctx, twin.ID, "$argon2id$twin", f.tick(), admin); err != nil {
			f.t.Fatal(err)
		}
		got, err := f.s.CredentialsByEmail(f.ctx, "person."+ada.Email[len("Person."):], "", 10)
		if err != nil || len(got) != 2 || got[0].Member.ID != ada.ID || got[0].PasswordHash != "$argon2id$ada" || got[0].SessionEpoch != 1 ||
			got[1].Member.ID != twin.ID || got[1].PasswordHash != "$argon2id$twin" {
			f.t.Fatalf("CredentialsByEmail = %+v, %v; want ada's then twin's, with their hashes", got, err)
		}
		if got, _ := f.s.CredentialsByEmail(f.ctx, ada.Email, "", 1); len(got) != 1 {
			f.t.Fatalf("CredentialsByEmail with limit 1 = %d members", len(got))
		}
		if got, _ := f.s.CredentialsByEmail(f.ctx, ada.Email, globex.ID, 10); len(got) != 1 || got[0].Member.ID != twin.ID {
			f.t.Fatalf("CredentialsByEmail in globex = %+v; want the twin alone", got)
		}
		m = f.mark()
		at = f.tick()
		epoch, err := f.s.EndSessions(f.ctx, ada.ID, at, admin)
		if err != nil || epoch != 2 {
			f.t.Fatalf("EndSessions = %d, %v; want epoch 2", epoch, err)
		}
		f.wantRecorded(m, keyward.ActionMemberSignOut, acme.ID, ada.ID, admin, at)
		if c, _ := f.s.Credential(f.ctx, ada.ID); c.SessionEpoch != 2 || c.PasswordHash != "$argon2id$ada" {
			f.t.Fatalf("after EndSessions: %+v", c)
		}
		for _, err := range []error{
			f.s.SetPassword(f.ctx, "mem_none", "$argon2id$x", f.tick(), admin),
			func() error { _, err := f.s.EndSessions(f.ctx, "mem_none", f.tick(), admin); return err }(),
			func() error { _, err := f.s.Credential(f.ctx, "mem_none"); return err }(),
		} {
			if keyward.ErrorCode(err) != keyward.CodeNotFound {
				f.t.Fatalf("an unknown member: %v; want not_found", err)
			}
		}
	}},
	{"SignInAttempts", func(f *fixture) {
		t0 := f.tick()
		ada, pair, addr := "e:ada@example.com", "e:ada@example.com|a:203.0.113.7", "a:203.0.113.7"
		attempt := func(at time.Time, subjects ...string) map[string]int {
			f.t.Helper()
			got, err := f.s.SignInAttempt(f.ctx, subjects, at, t0.Add(-time.Nanosecond))
			if err != nil {
				f.t.Fatal(err)
			}
			return got
		}
		attempt(t0, addr, pair, ada)
		attempt(t0.Add(time.Minute), addr, pair, ada)
		got := attempt(t0.Add(2*time.Minute), "a:198.51.100.1", ada)
		if got[ada] != 3 || got["a:198.51.100.1"] != 1 {
			f.t.Fatalf("SignInAttempt = %v; want 3 for the account (this one too), 1 for the other address", got)
		}
		// Two at the same moment are counted both.
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				if _, err := f.s.SignInAttempt(f.ctx, []string{addr}, t0.Add(3*time.Minute), t0); err != nil {
					f.t.Error(err)
				}
			})
		}
		wg.Wait()
		if got := attempt(t0.Add(4*time.Minute), addr); got[addr] != 5 {
			f.t.Fatalf("after two at once: %v; want 5", got)
		}
		// A success forgets its own attempt, and only it.
		if err := f.s.ForgetSignInAttempt(f.ctx, []string{addr, ada}, t0.Add(4*time.Minute)); err != nil {
			f.t.Fatal(err)
		}
		if got := attempt(t0.Add(5*time.Minute), addr); got[addr] != 5 {
			f.t.Fatalf("after a forgotten attempt and another: %v; want 5", got)
		}
		// Clearing the account clears it from every address, and no other.
		if err := f.s.ClearSignInFailures(f.ctx, ada); err != nil {
			f.t.Fatal(err)
		}
		got = attempt(t0.Add(6*time.Minute), ada, pair, addr, "e:ada@example.co")
		if got[ada] != 1 || got[pair] != 1 || got[addr] != 6 || got["e:ada@example.co"] != 1 {
			f.t.Fatalf("after clearing the account: %v", got)
		}
		// Pruned a day after.
		n, err := f.s.PruneSessions(f.ctx, t0.Add(25*time.Hour), 100)
		if err != nil || n != 10 {
			f.t.Fatalf("PruneSessions = %d, %v; want the 10 attempts left", n, err)
		}
	}},
	{"Sessions", func(f *fixture) {
		now := f.tick()
		a, b := sha256.Sum256([]byte("token a")), sha256.Sum256([]byte("token b"))
		if _, found, err := f.s.FindSession(f.ctx, a, now); found || err != nil {
			f.t.Fatalf("FindSession of none = %v, %v", found, err)
		}
		if err := f.s.CommitSession(f.ctx, a, []byte("one"), now.Add(time.Hour)); err != nil {
			f.t.Fatal(err)
		}
		if err := f.s.CommitSession(f.ctx, a, []byte("two"), now.Add(2*time.Hour)); err != nil {
			f.t.Fatal(err)
		}
		if err := f.s.CommitSession(f.ctx, b, []byte("b"), now.Add(time.Minute)); err != nil {
			f.t.Fatal(err)
		}
		data, found, err := f.s.FindSession(f.ctx, a, now.Add(90*time.Minute))
		if err != nil || !found || string(data) != "two" {
			f.t.Fatalf("FindSession = %q, %v, %v; want the data committed last, until its new expiry", data, found, err)
		}
		if _, found, _ := f.s.FindSession(f.ctx, b, now.Add(time.Minute)); found {
			f.t.Fatal("a session was found at its expiry")
		}
		if n, err := f.s.PruneSessions(f.ctx, now.Add(time.Minute), 100); err != nil || n != 1 {
			f.t.Fatalf("PruneSessions = %d, %v; want the expired one", n, err)
		}
		if err := f.s.DeleteSession(f.ctx, a); err != nil {
			f.t.Fatal(err)
		}
		if err := f.s.DeleteSession(f.ctx, a); err != nil {
			f.t.Fatalf("deleting a deleted session: %v", err)
		}
		if _, found, _ := f.s.FindSession(f.ctx, a, now); found {
			f.t.Fatal("a deleted session was found")
		}
	}},
	{"RemovedMember", func(f *fixture) {
		acme, owner := f.createTeam("acme")
		dev := f.createMember(acme.ID, keyward.RoleDeveloper)
		for _, id := range []string{owner.ID, dev.ID} {
			if err := f.s.SetPassword(f.ctx, id, "$argon2id$"+id, f.tick(), admin); err != nil {
				f.t.Fatal(err)
			}
		}
		if _, err := f.s.RemoveMember(f.ctx, dev.ID, "", f.tick(), admin); err != nil {
			f.t.Fatal(err)
		}
		got, err := f.s.CredentialsByEmail(f.ctx, dev.Email, "", 10)
		if err != nil || slices.ContainsFunc(got, func(c *keyward.Credential) bool { return c.Member.ID == dev.ID }) {
			f.t.Fatalf("a removed member still signs in: %+v, %v", got, err)
		}
	}},
}

// linkTests hold the one-time sign-in links: found while neither used nor
// expired, used once (also by two writers at the same moment), the
// password set with an invitation in the same transaction, pruned when
// expired.
var linkTests = []test{
	{"UsedOnce", func(f *fixture) {
		acme, ada := f.createTeam("acme")
		now := f.tick()
		l := &keyward.SignInLink{Hash: sha256.Sum256([]byte("inv_1")), Kind: keyward.LinkInvitation, MemberID: ada.ID, TenantID: acme.ID,
			CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		m := f.mark()
		if err := f.s.CreateSignInLink(f.ctx, l, admin); err != nil {
			f.t.Fatal(err)
		}
		f.wantRecorded(m, keyward.ActionMemberInvite, acme.ID, ada.ID, admin, now)
		if got, err := f.s.SignInLink(f.ctx, l.Hash, keyward.LinkInvitation, now); err != nil || got.MemberID != ada.ID || !got.ExpiresAt.Equal(l.ExpiresAt) {
			f.t.Fatalf("SignInLink = %+v, %v", got, err)
		}
		if _, err := f.s.SignInLink(f.ctx, l.Hash, keyward.LinkPortal, now); keyward.ErrorCode(err) != keyward.CodeSignInFailed {
			f.t.Fatalf("an invitation found as a portal link: %v", err)
		}
		// Two writers at once: one uses it.
		var wins, losses int
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				_, c, err := f.s.UseSignInLink(f.ctx, l.Hash, keyward.LinkInvitation, now.Add(time.Minute), "$argon2id$new")
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil && c.PasswordHash == "$argon2id$new" && c.SessionEpoch == 1:
					wins++
				case keyward.ErrorCode(err) == keyward.CodeSignInFailed:
					losses++
				default:
					f.t.Errorf("UseSignInLink = %+v, %v", c, err)
				}
			})
		}
		wg.Wait()
		if wins != 1 || losses != 1 {
			f.t.Fatalf("two uses at once: %d won, %d refused; want 1 and 1", wins, losses)
		}
		if _, err := f.s.SignInLink(f.ctx, l.Hash, keyward.LinkInvitation, now); keyward.ErrorCode(err) != keyward.CodeSignInFailed {
			f.t.Fatalf("a used link was found: %v", err)
		}
	}},
	{"Expired", func(f *fixture) {
		acme, ada := f.createTeam("acme")
		now := f.tick()
		l := &keyward.SignInLink{Hash: sha256.Sum256([]byte("pst_1")), Kind: keyward.LinkPortal, MemberID: ada.ID, TenantID: acme.ID,
			ReturnURL: "https://app.example.com/settings", CreatedAt: now, ExpiresAt: now.Add(5 * time.Minute)}
		if err := f.s.CreateSignInLink(f.ctx, l, admin); err != nil {
			f.t.Fatal(err)
		}
		if _, _, err := f.s.UseSignInLink(f.ctx, l.Hash, keyward.LinkPortal, l.ExpiresAt, ""); keyward.ErrorCode(err) != keyward.CodeSignInFailed {
			f.t.Fatalf("a link used at its expiry: %v", err)
		}
		got, c, err := f.s.UseSignInLink(f.ctx, l.Hash, keyward.LinkPortal, l.ExpiresAt.Add(-time.Second), "")
		if err != nil || got.ReturnURL != l.ReturnURL || c.Member.ID != ada.ID || c.PasswordHash != "" {
			f.t.Fatalf("UseSignInLink = %+v, %+v, %v", got, c, err)
		}
		if n, err := f.s.PruneSessions(f.ctx, l.ExpiresAt, 100); err != nil || n != 1 {
			f.t.Fatalf("PruneSessions = %d, %v; want the expired link", n, err)
		}
		if err := f.s.CreateSignInLink(f.ctx, &keyward.SignInLink{Hash: sha256.Sum256([]byte("x")), Kind: keyward.LinkPortal, MemberID: "mem_none",
			TenantID: acme.ID, CreatedAt: now, ExpiresAt: now.Add(time.Minute)}, admin); keyward.ErrorCode(err) != keyward.CodeNotFound {
			f.t.Fatalf("a link for an unknown member: %v", err)
		}
	}},
	{"Withdrawn", func(f *fixture) {
		acme, ada := f.createTeam("acme")
		link := func(token, kind string) *keyward.SignInLink {
			now := f.tick()
			l := &keyward.SignInLink{Hash: sha256.Sum256([]byte(token)), Kind: kind, MemberID: ada.ID, TenantID: acme.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
			if err := f.s.CreateSignInLink(f.ctx, l, admin); err != nil {
				f.t.Fatal(err)
			}
			return l
		}
		alive := func(l *keyward.SignInLink) bool {
			_, err := f.s.SignInLink(f.ctx, l.Hash, l.Kind, l.CreatedAt)
			return err == nil
		}
		first := link("inv_1", keyward.LinkInvitation)
		portal := link("pst_1", keyward.LinkPortal)
		second := link("inv_2", keyward.LinkInvitation)
		if alive(first) || !alive(second) || !alive(portal) {
			f.t.Fatal("a new invitation did not replace the earlier one alone")
		}
		if _, err := f.s.EndSessions(f.ctx, ada.ID, f.tick(), admin); err != nil {
			f.t.Fatal(err)
		}
		if alive(second) || alive(portal) {
			f.t.Fatal("sign out everywhere left a link working")
		}
		third := link("inv_3", keyward.LinkInvitation)
		if err := f.s.SetPassword(f.ctx, ada.ID, "$argon2id$x", f.tick(), admin); err != nil {
			f.t.Fatal(err)
		}
		if alive(third) {
			f.t.Fatal("a new password left an invitation working")
		}
		link("inv_4", keyward.LinkInvitation)
		b, c := link("pst_2", keyward.LinkPortal), link("pst_3", keyward.LinkPortal)
		if _, _, err := f.s.UseSignInLink(f.ctx, sha256.Sum256([]byte("inv_4")), keyward.LinkInvitation, f.tick(), "$argon2id$y"); err != nil {
			f.t.Fatal(err)
		}
		if alive(b) || alive(c) {
			f.t.Fatal("the password set by an invitation left other links working")
		}
	}},
	{"MemberByExternalID", func(f *fixture) {
		acme, ada := f.createTeam("acme")
		if m, err := f.s.MemberByExternalID(f.ctx, acme.ID, ada.ExternalID); err != nil || m.ID != ada.ID {
			f.t.Fatalf("MemberByExternalID = %+v, %v", m, err)
		}
		other := f.createTenant("globex")
		for _, c := range [][2]string{{other.ID, ada.ExternalID}, {acme.ID, "user-none"}, {acme.ID, ""}} {
			if _, err := f.s.MemberByExternalID(f.ctx, c[0], c[1]); keyward.ErrorCode(err) != keyward.CodeNotFound {
				f.t.Fatalf("MemberByExternalID(%q, %q): %v; want not_found", c[0], c[1], err)
			}
		}
	}},
}

// noticeTests hold NoticeStore: a rotation for reveal leaves its
// successor waiting, in the same transaction; the reveal gives it its
// secret once, also when two race; the old keys used since their
// successor was made are listed while their notice lasts.
var noticeTests = []test{
	{"RevealOnce", func(f *fixture) {
		tn := f.createTenant("acme")
		old := f.createKey(tn.ID, keyward.Live)
		succ := f.successorOf(old)
		sunset := succ.CreatedAt.Add(30 * 24 * time.Hour)
		if _, err := f.s.RotateKeyForReveal(f.ctx, old.ID, succ, sunset, admin); err != nil {
			f.t.Fatal(err)
		}
		if got, err := f.s.PendingReveals(f.ctx, tn.ID, nil); err != nil || !slices.Equal(got, []string{succ.ID}) {
			f.t.Fatalf("PendingReveals = %v, %v; want the successor", got, err)
		}
		for ids, want := range map[*[]string]int{{}: 0, {old.ID}: 0, {old.ID, succ.ID}: 1} {
			if got, err := f.s.PendingReveals(f.ctx, tn.ID, *ids); err != nil || len(got) != want {
				f.t.Fatalf("PendingReveals among %v = %v, %v; want %d", *ids, got, err, want)
			}
		}
		if got, _ := f.s.PendingReveals(f.ctx, f.createTenant("globex").ID, nil); len(got) != 0 {
			f.t.Fatalf("another tenant's PendingReveals = %v", got)
		}
		hash := sha256.Sum256([]byte("the revealed secret"))
		m := f.mark()
		at := f.tick()
		var wins, conflicts int
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				k, err := f.s.RevealKey(f.ctx, succ.ID, hash, "sk_live_abcd", "wxyz", at, admin)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil && k.Hash == hash && k.Start == "sk_live_abcd" && k.Last4 == "wxyz":
					wins++
				case keyward.ErrorCode(err) == keyward.CodeConflict:
					conflicts++
				default:
					f.t.Errorf("RevealKey = %+v, %v", k, err)
				}
			})
		}
		wg.Wait()
		if wins != 1 || conflicts != 1 {
			f.t.Fatalf("two reveals at once: %d won, %d refused; want 1 and 1", wins, conflicts)
		}
		f.wantRecorded(m, keyward.ActionKeyReveal, tn.ID, succ.ID, admin, at, keyward.Change{Kind: keyward.ChangeKey, ID: succ.ID})
		if k, err := f.s.KeyByHash(f.ctx, hash); err != nil || k.ID != succ.ID {
			f.t.Fatalf("KeyByHash of the revealed secret = %v, %v", k, err)
		}
		if got, _ := f.s.PendingReveals(f.ctx, tn.ID, nil); len(got) != 0 {
			f.t.Fatalf("PendingReveals after the reveal = %v", got)
		}
		// A key rotated the usual way never waits.
		plain := f.createKey(tn.ID, keyward.Live)
		next := f.successorOf(plain)
		if _, err := f.s.RotateKey(f.ctx, plain.ID, next, next.CreatedAt.Add(time.Hour), admin); err != nil {
			f.t.Fatal(err)
		}
		if _, err := f.s.RevealKey(f.ctx, next.ID, hash, "x", "y", f.tick(), admin); keyward.ErrorCode(err) != keyward.CodeConflict {
			f.t.Fatalf("RevealKey of a key that does not wait: %v", err)
		}
	}},
	{"KeysInNotice", func(f *fixture) {
		tn := f.createTenant("acme")
		used, idle, revoked := f.createKey(tn.ID, keyward.Live), f.createKey(tn.ID, keyward.Live), f.createKey(tn.ID, keyward.Live)
		var rotatedAt time.Time
		for _, k := range []*keyward.Key{used, idle, revoked} {
			succ := f.successorOf(k)
			rotatedAt = succ.CreatedAt
			if _, err := f.s.RotateKeyForReveal(f.ctx, k.ID, succ, succ.CreatedAt.Add(30*24*time.Hour), admin); err != nil {
				f.t.Fatal(err)
			}
		}
		after := rotatedAt.Add(time.Minute)
		if err := f.s.RecordUsage(f.ctx, []keyward.Usage{{KeyID: used.ID, At: after, IP: "203.0.113.7"}, {KeyID: revoked.ID, At: after, IP: "203.0.113.7"},
			{KeyID: idle.ID, At: rotatedAt.Add(-time.Hour), IP: "203.0.113.7"}}); err != nil {
			f.t.Fatal(err)
		}
		f.revoke(revoked.ID)
		got, err := f.s.KeysInNotice(f.ctx, after, 10)
		if err != nil || len(got) != 1 || got[0].ID != used.ID {
			f.t.Fatalf("KeysInNotice = %v, %v; want the key used after its rotation", got, err)
		}
		if got, _ := f.s.KeysInNotice(f.ctx, after.Add(31*24*time.Hour), 10); len(got) != 0 {
			f.t.Fatalf("KeysInNotice after the notice = %v", got)
		}
	}},
}
