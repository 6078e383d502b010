package manage

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/testclock"
)

// accounts is a service on a new database, with its clock, and tenant
// acme on a plan that allows contacts:read only, whose owner has a
// password.
type accounts struct {
	t     *testing.T
	ctx   context.Context
	svc   *Service
	clock *testclock.Clock
	owner *keyward.Member
}

const ownerPassword = "correct horse battery"

func newAccounts(t *testing.T) *accounts {
	t.Helper()
	clock := testclock.New(time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC))
	svc, _ := newServiceOn(t, clock.Now)
	a := &accounts{t: t, ctx: context.Background(), clock: clock, svc: svc}
	root := CommandLine()
	if _, err := a.svc.Bootstrap(a.ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"contacts:read", "contacts:write"} {
		if _, err := a.svc.AddPermission(a.ctx, root, CreatePermissionInput{Name: p}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.svc.CreatePlan(a.ctx, root, CreatePlanInput{Name: "small", Permissions: []string{"contacts:read"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.svc.CreateTenant(a.ctx, root, CreateTenantInput{Slug: "acme", Plan: "small"}); err != nil {
		t.Fatal(err)
	}
	a.owner = a.member("acme", "ada@example.com", "owner", ownerPassword, "contacts:read", "contacts:write")
	return a
}

// member adds a member to a tenant, with a password unless it is "".
func (a *accounts) member(tenant, email, role, password string, perms ...string) *keyward.Member {
	a.t.Helper()
	m, err := a.svc.CreateMember(a.ctx, CommandLine(), CreateMemberInput{TenantID: tenant, Email: email, Name: email, Role: role, Permissions: perms})
	if err != nil {
		a.t.Fatal(err)
	}
	if password != "" {
		if err := a.svc.SetPassword(a.ctx, CommandLine(), m.ID, password); err != nil {
			a.t.Fatal(err)
		}
	}
	return m
}

func (a *accounts) signIn(email, password, ip string) (*keyward.Credential, error) {
	return a.svc.SignIn(a.ctx, SignInInput{Email: email, Password: password, IP: ip})
}

func TestPasswordRules(t *testing.T) {
	a := newAccounts(t)
	for pw, want := range map[string]string{
		"short":                         "at least 12",
		strings.Repeat("x", 257):        "at most 256",
		" padded password ":             "space",
		"\xff\xfe not text at all here": "UTF-8",
	} {
		err := a.svc.SetPassword(a.ctx, CommandLine(), a.owner.ID, pw)
		if e, ok := err.(*keyward.Error); !ok || e.Field != "password" || !strings.Contains(e.Message, want) {
			t.Errorf("password %q: %v; want an error about the password saying %q", pw, err, want)
		}
	}
	cred, err := a.signIn("ADA@example.com ", ownerPassword, "203.0.113.7")
	if err != nil || cred.Member.ID != a.owner.ID {
		t.Fatalf("SignIn with the email in other case = %v, %v", cred, err)
	}
	if !strings.HasPrefix(cred.PasswordHash, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q: want argon2id with its parameters", cred.PasswordHash)
	}
	// Only the member, or the operator, sets a password.
	dev := a.member("acme", "dev@example.com", "developer", "", "contacts:read")
	owner, _, err := a.svc.SessionCaller(a.ctx, a.owner.ID, cred.SessionEpoch, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.svc.SetPassword(a.ctx, owner, dev.ID, "a password for dev"); keyward.ErrorCode(err) != keyward.CodeInsufficientPermissions {
		t.Errorf("an owner set another member's password: %v", err)
	}
	if err := a.svc.SetPassword(a.ctx, owner, a.owner.ID, "a new password for ada"); err != nil {
		t.Errorf("a member could not set its own password: %v", err)
	}
	// That ended the session it was set from.
	if _, _, err := a.svc.SessionCaller(a.ctx, a.owner.ID, cred.SessionEpoch, ""); keyward.ErrorCode(err) != keyward.CodeSignInFailed {
		t.Errorf("a session from before the new password: %v; want it over", err)
	}
}

func TestSignInFailures(t *testing.T) {
	a := newAccounts(t)
	sus := a.member("acme", "suspended@example.com", "developer", "a password for sus", "contacts:read")
	status := string(keyward.MemberSuspended)
	if _, err := a.svc.UpdateMember(a.ctx, CommandLine(), sus.ID, UpdateMemberInput{Status: &status}); err != nil {
		t.Fatal(err)
	}
	// Every failure reads the same.
	var msgs []string
	for _, c := range [][2]string{
		{"nobody@example.com", ownerPassword},
		{"ada@example.com", "the wrong password"},
		{"suspended@example.com", "a password for sus"},
	} {
		_, err := a.signIn(c[0], c[1], "198.51.100.1")
		if keyward.ErrorCode(err) != keyward.CodeSignInFailed {
			t.Fatalf("SignIn(%s): %v; want sign_in_failed", c[0], err)
		}
		msgs = append(msgs, err.Error())
	}
	if msgs[0] != msgs[1] || msgs[1] != msgs[2] {
		t.Errorf("the failures tell the cases apart: %q", msgs)
	}
}

func TestSignInLimits(t *testing.T) {
	a := newAccounts(t)
	locked := func(err error) bool { return keyward.ErrorCode(err) == keyward.CodeTooManyFailedAttempts }
	// An account from one address: the sixth try is refused, the right
	// password too, and only from that address.
	for i := range MaxSignInFailures {
		if _, err := a.signIn("ada@example.com", "guess number one", "198.51.100.1"); keyward.ErrorCode(err) != keyward.CodeSignInFailed {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	_, err := a.signIn("ada@example.com", ownerPassword, "198.51.100.1")
	if e, ok := err.(*keyward.Error); !ok || !locked(err) || e.RetryAfter != SignInWindow {
		t.Fatalf("the right password after %d failures from one address: %v; want too_many_failed_attempts for %v", MaxSignInFailures, err, SignInWindow)
	}
	if _, err := a.signIn("ada@example.com", ownerPassword, "203.0.113.9"); err != nil {
		t.Fatalf("from another address: %v; an attacker's address must not lock the account for everyone", err)
	}
	a.clock.Advance(SignInWindow)
	if _, err := a.signIn("ada@example.com", ownerPassword, "198.51.100.1"); err != nil {
		t.Fatalf("after the window: %v", err)
	}

	// An account from many addresses: locked everywhere past the
	// account's own limit, until a new password unlocks it.
	for i := range MaxAccountSignInFails {
		ip := fmt.Sprintf("10.0.%d.%d", i/MaxSignInFailures, i%MaxSignInFailures)
		if _, err := a.signIn("ada@example.com", "a distributed guess", ip); keyward.ErrorCode(err) != keyward.CodeSignInFailed {
			t.Fatalf("distributed failure %d: %v", i+1, err)
		}
	}
	if _, err := a.signIn("ada@example.com", ownerPassword, "203.0.113.9"); !locked(err) {
		t.Fatalf("after %d failures from many addresses: %v; want the account locked", MaxAccountSignInFails, err)
	}
	if err := a.svc.SetPassword(a.ctx, CommandLine(), a.owner.ID, ownerPassword+" again"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.signIn("ada@example.com", ownerPassword+" again", "203.0.113.9"); err != nil {
		t.Fatalf("after a new password: %v", err)
	}

	// An address: many accounts tried from it lock the address, and its
	// refused tries count against no account.
	a.clock.Advance(SignInWindow)
	for i := range MaxAddressSignInFails {
		if _, err := a.signIn(fmt.Sprintf("user%d@example.com", i), "guess number four", "192.0.2.66"); keyward.ErrorCode(err) != keyward.CodeSignInFailed {
			t.Fatalf("failure %d from one address: %v", i+1, err)
		}
	}
	for range MaxAccountSignInFails + 5 {
		if _, err := a.signIn("ada@example.com", "blocked guess", "192.0.2.66"); !locked(err) {
			t.Fatalf("from an address with %d failures: %v; want too_many_failed_attempts", MaxAddressSignInFails, err)
		}
	}
	if _, err := a.signIn("ada@example.com", ownerPassword+" again", "192.0.2.67"); err != nil {
		t.Fatalf("the account, after a blocked address's tries: %v", err)
	}
}

// TestSignInLimitsAtOnce: tries made at once are all counted: of 40 wrong
// passwords sent together for one account from one address, at most 5 are
// checked.
func TestSignInLimitsAtOnce(t *testing.T) {
	a := newAccounts(t)
	var mu sync.Mutex
	checked := 0
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			_, err := a.signIn("ada@example.com", "a guess at once", "198.51.100.1")
			mu.Lock()
			defer mu.Unlock()
			switch keyward.ErrorCode(err) {
			case keyward.CodeSignInFailed:
				checked++
			case keyward.CodeTooManyFailedAttempts:
			default:
				t.Errorf("a try at once: %v", err)
			}
		})
	}
	wg.Wait()
	if checked > MaxSignInFailures {
		t.Errorf("%d of 40 tries at once had their password checked; want at most %d", checked, MaxSignInFailures)
	}
}

// TestSignInSuccessForgetsOnlyItself: an attacker who signs in with an
// account of their own under the victim's email (in another tenant) does
// not wipe the victim's failures.
func TestSignInSuccessForgetsOnlyItself(t *testing.T) {
	a := newAccounts(t)
	if _, err := a.svc.CreateTenant(a.ctx, CommandLine(), CreateTenantInput{Slug: "evil"}); err != nil {
		t.Fatal(err)
	}
	a.member("evil", "ada@example.com", "owner", "the attacker's own password")
	for round := range 3 {
		for range MaxSignInFailures - 1 {
			_, _ = a.signIn("ada@example.com", "a guess", "198.51.100.1")
		}
		_, err := a.signIn("ada@example.com", "the attacker's own password", "198.51.100.1")
		if round == 0 && err != nil {
			t.Fatalf("the attacker's own sign-in: %v", err)
		}
		if round > 0 && keyward.ErrorCode(err) != keyward.CodeTooManyFailedAttempts {
			t.Fatalf("round %d: the attacker's success reset the failures: %v", round, err)
		}
	}
}

func TestSignInSeveralTenants(t *testing.T) {
	a := newAccounts(t)
	if _, err := a.svc.CreateTenant(a.ctx, CommandLine(), CreateTenantInput{Slug: "globex"}); err != nil {
		t.Fatal(err)
	}
	twin := a.member("globex", "ada@example.com", "owner", ownerPassword)
	_, err := a.signIn("ada@example.com", ownerPassword, "")
	if e, ok := err.(*keyward.Error); !ok || e.Field != "tenant" || !strings.Contains(e.Message, "acme, globex") {
		t.Fatalf("an email with one password in two tenants: %v; want to be asked which, acme or globex", err)
	}
	cred, err := a.svc.SignIn(a.ctx, SignInInput{Email: "ada@example.com", Password: ownerPassword, Tenant: "globex"})
	if err != nil || cred.Member.ID != twin.ID {
		t.Fatalf("SignIn to globex = %v, %v", cred, err)
	}
	// Another password in the other tenant: no question.
	if err := a.svc.SetPassword(a.ctx, CommandLine(), twin.ID, "globex has its own"); err != nil {
		t.Fatal(err)
	}
	if cred, err := a.signIn("ada@example.com", ownerPassword, ""); err != nil || cred.Member.ID != a.owner.ID {
		t.Fatalf("SignIn = %v, %v; want acme's member", cred, err)
	}
}

func TestSessionCaller(t *testing.T) {
	a := newAccounts(t)
	cred, err := a.signIn("ada@example.com", ownerPassword, "")
	if err != nil {
		t.Fatal(err)
	}
	c, m, err := a.svc.SessionCaller(a.ctx, a.owner.ID, cred.SessionEpoch, "203.0.113.7")
	if err != nil || m.ID != a.owner.ID {
		t.Fatal(err)
	}
	// The member's permissions, as far as the plan allows, and keys:manage;
	// its role; acting as the dashboard, for the member.
	want := Caller{Actor: keyward.Actor{ID: DashboardActor, IP: "203.0.113.7", MemberID: a.owner.ID}, TenantID: a.owner.TenantID,
		Permissions: []string{keyward.PermManageKeys, "contacts:read"}, Role: keyward.RoleOwner, MemberID: a.owner.ID, Environment: keyward.Live}
	if c.Actor != want.Actor || c.TenantID != want.TenantID || !slices.Equal(c.Permissions, want.Permissions) || c.Role != want.Role || c.MemberID != want.MemberID || c.Root() {
		t.Fatalf("SessionCaller = %+v; want %+v", c, want)
	}
	// What the member may then do is manage's rule: it cannot give a key
	// what the plan withholds.
	if _, _, err := a.svc.CreateKey(a.ctx, c, CreateKeyInput{Name: "k", Permissions: []string{"contacts:write"}}); keyward.ErrorCode(err) != keyward.CodeInsufficientPermissions {
		t.Errorf("a key with a permission the plan withholds: %v", err)
	}
	// Sign out everywhere ends it.
	if _, err := a.svc.EndSessions(a.ctx, c, a.owner.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.svc.SessionCaller(a.ctx, a.owner.ID, cred.SessionEpoch, ""); keyward.ErrorCode(err) != keyward.CodeSignInFailed {
		t.Errorf("after sign-out everywhere: %v", err)
	}
	// A developer cannot sign out an owner; an owner signs out a developer.
	dev := a.member("acme", "dev@example.com", "developer", "a password for dev", "contacts:read")
	devCred, _ := a.signIn("dev@example.com", "a password for dev", "")
	devCaller, _, err := a.svc.SessionCaller(a.ctx, dev.ID, devCred.SessionEpoch, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.svc.EndSessions(a.ctx, devCaller, a.owner.ID); keyward.ErrorCode(err) != keyward.CodeInsufficientPermissions {
		t.Errorf("a developer signed an owner out: %v", err)
	}
	cred, _ = a.signIn("ada@example.com", ownerPassword, "")
	c, _, _ = a.svc.SessionCaller(a.ctx, a.owner.ID, cred.SessionEpoch, "")
	if _, err := a.svc.EndSessions(a.ctx, c, dev.ID); err != nil {
		t.Errorf("an owner could not sign a developer out: %v", err)
	}
	// Suspended or removed: over.
	status := string(keyward.MemberSuspended)
	cred, _ = a.signIn("dev@example.com", "a password for dev", "")
	if _, err := a.svc.UpdateMember(a.ctx, CommandLine(), dev.ID, UpdateMemberInput{Status: &status}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.svc.SessionCaller(a.ctx, dev.ID, cred.SessionEpoch, ""); keyward.ErrorCode(err) != keyward.CodeSignInFailed {
		t.Errorf("a suspended member's session: %v", err)
	}
	if _, err := a.svc.RemoveMember(a.ctx, CommandLine(), dev.ID, ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.svc.SessionCaller(a.ctx, dev.ID, cred.SessionEpoch, ""); keyward.ErrorCode(err) != keyward.CodeSignInFailed {
		t.Errorf("a removed member's session: %v", err)
	}
}

// The operator's staff are members of the system tenant, whom only the
// operator adds: its admins and owners are root in the dashboard, its
// developers and viewers manage nothing.
func TestOperatorStaff(t *testing.T) {
	a := newAccounts(t)
	owner, _, _ := a.svc.SessionCaller(a.ctx, a.owner.ID, 1, "")
	if _, err := a.svc.CreateMember(a.ctx, owner, CreateMemberInput{TenantID: keyward.SystemTenantID, Email: "x@example.com", Name: "x", Role: "owner"}); err == nil {
		t.Fatal("a tenant's owner added a member to the system tenant")
	}
	staff := a.member(keyward.SystemTenantID, "ops@example.com", "owner", "the operator's password")
	viewer := a.member(keyward.SystemTenantID, "intern@example.com", "viewer", "the intern's password")
	c, _, err := a.svc.SessionCaller(a.ctx, staff.ID, 1, "")
	if err != nil || !c.Root() {
		t.Fatalf("an owner of the system tenant: %+v, %v; want root", c, err)
	}
	if _, _, err := a.svc.Keys(a.ctx, c, KeyListInput{TenantID: "acme"}, keyward.Page{}); err != nil {
		t.Errorf("the operator's staff could not list a tenant's keys: %v", err)
	}
	v, _, err := a.svc.SessionCaller(a.ctx, viewer.ID, 1, "")
	if err != nil || v.Root() {
		t.Fatalf("a viewer of the system tenant: %+v, %v; want not root", v, err)
	}
	if _, _, err := a.svc.Keys(a.ctx, v, KeyListInput{TenantID: "acme"}, keyward.Page{}); err == nil {
		t.Error("a viewer of the system tenant listed a tenant's keys")
	}
}
