package verify_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/verify"
)

// createMember stores an active member of the fixture's tenant with the
// given role and permissions.
func (f *fixture) createMember(email string, role keyward.Role, perms ...string) *keyward.Member {
	f.t.Helper()
	now := f.clock.Now()
	m := &keyward.Member{ID: apikey.NewID("mem"), TenantID: f.tenant.ID, Email: email, Name: email, Role: role,
		Permissions: perms, Status: keyward.MemberActive, CreatedAt: now, UpdatedAt: now}
	if err := f.store.CreateMember(context.Background(), m, keyward.CommandLineActor()); err != nil {
		f.t.Fatalf("CreateMember: %v", err)
	}
	return m
}

// updateMember changes a member and applies the change feed.
func (f *fixture) updateMember(id string, u keyward.MemberUpdate) {
	f.t.Helper()
	if _, err := f.store.UpdateMember(context.Background(), id, u, f.clock.Now(), keyward.CommandLineActor()); err != nil {
		f.t.Fatalf("UpdateMember: %v", err)
	}
	f.refresh()
}

// refresh applies the change feed.
func (f *fixture) refresh() {
	f.t.Helper()
	if err := f.v.Refresh(context.Background()); err != nil {
		f.t.Fatalf("Refresh: %v", err)
	}
}

// createPlan stores a plan.
func (f *fixture) createPlan(p *keyward.Plan) {
	f.t.Helper()
	p.CreatedAt, p.UpdatedAt = f.clock.Now(), f.clock.Now()
	if err := f.store.CreatePlan(context.Background(), p, keyward.CommandLineActor()); err != nil {
		f.t.Fatalf("CreatePlan: %v", err)
	}
}

// movePlan moves the fixture's tenant to a plan and applies the change
// feed.
func (f *fixture) movePlan(plan string) {
	f.t.Helper()
	if _, err := f.store.SetTenantPlan(context.Background(), f.tenant.ID, plan, f.clock.Now(), keyward.CommandLineActor()); err != nil {
		f.t.Fatalf("SetTenantPlan: %v", err)
	}
	f.refresh()
}

// wantWithheld fails unless the result's Access withholds exactly want.
func wantWithheld(t *testing.T, r verify.Result, want ...verify.Withheld) {
	t.Helper()
	if r.Access == nil {
		t.Fatalf("no Access in the result (%s: %s)", r.Code, r.Detail)
	}
	if !slices.Equal(r.Access.Withheld, want) {
		t.Fatalf("withheld = %v, want %v", r.Access.Withheld, want)
	}
}

// TestMemberPermissionsBoundKeys is Kinbox's promise: a key inherits the
// permissions of the member who made it, as they are now. The member losing
// one withholds it from the key at the next change-feed read, while the
// key's other permissions still work; giving it back restores it.
func TestMemberPermissionsBoundKeys(t *testing.T) {
	f := newFixture(t, verify.Options{})
	f.refresh()
	f.createMember("owner@example.com", keyward.RoleOwner) // the first member is an owner
	m := f.createMember("ana@example.com", keyward.RoleDeveloper, "contacts:write", "messages:send")
	key, _ := f.createKey(func(k *keyward.Key) {
		k.MemberID = m.ID
		k.Permissions = []string{"contacts:write", "messages:send"}
	})
	f.refresh()
	if r := f.verify(key, "contacts:write", "messages:send"); !r.Valid() {
		t.Fatalf("before: %s: %s", r.Code, r.Detail)
	}

	f.updateMember(m.ID, keyward.MemberUpdate{Permissions: &[]string{"messages:send"}})
	r := f.verify(key, "contacts:write")
	if r.Code != keyward.CodeInsufficientPermissions {
		t.Fatalf("after the member lost contacts:write: %s (%s), want insufficient_permissions", r.Code, r.Detail)
	}
	if !strings.Contains(r.Detail, `"contacts:write"`) || !strings.Contains(r.Detail, "member who made it no longer does") {
		t.Errorf("detail %q does not say the member no longer holds contacts:write", r.Detail)
	}
	wantWithheld(t, r, verify.Withheld{Permission: "contacts:write", By: verify.WithheldByMember})
	r = f.verify(key, "messages:send")
	if !r.Valid() {
		t.Fatalf("messages:send after the change: %s: %s", r.Code, r.Detail)
	}
	if !slices.Equal(r.Access.Permissions, []string{"messages:send"}) {
		t.Errorf("effective permissions = %v, want [messages:send]", r.Access.Permissions)
	}

	f.updateMember(m.ID, keyward.MemberUpdate{Permissions: &[]string{"messages:send", "contacts:write"}})
	if r := f.verify(key, "contacts:write"); !r.Valid() {
		t.Fatalf("after the member got contacts:write back: %s: %s", r.Code, r.Detail)
	}
}

// TestSuspendedMemberWithholdsEverything: a suspended member's keys may use
// none of the permissions the member holds, but Keyward's own permissions
// are bound by roles, not withheld; resuming restores them.
func TestSuspendedMemberWithholdsEverything(t *testing.T) {
	f := newFixture(t, verify.Options{})
	f.refresh()
	f.createMember("owner@example.com", keyward.RoleOwner) // the first member is an owner
	m := f.createMember("bo@example.com", keyward.RoleAdmin, "contacts:read")
	key, _ := f.createKey(func(k *keyward.Key) {
		k.MemberID = m.ID
		k.Permissions = []string{"contacts:read", keyward.PermManageKeys}
	})
	f.refresh()
	suspended := keyward.MemberSuspended
	f.updateMember(m.ID, keyward.MemberUpdate{Status: &suspended})
	r := f.verify(key, "contacts:read")
	if r.Code != keyward.CodeInsufficientPermissions || !strings.Contains(r.Detail, "suspended") {
		t.Fatalf("suspended member: %s (%s), want insufficient_permissions saying suspended", r.Code, r.Detail)
	}
	wantWithheld(t, r, verify.Withheld{Permission: "contacts:read", By: verify.WithheldByMember})
	if r := f.verify(key, keyward.PermManageKeys); !r.Valid() {
		t.Errorf("keys:manage is bound by the role, not withheld: %s: %s", r.Code, r.Detail)
	}
	active := keyward.MemberActive
	f.updateMember(m.ID, keyward.MemberUpdate{Status: &active})
	if r := f.verify(key, "contacts:read"); !r.Valid() {
		t.Fatalf("resumed member: %s: %s", r.Code, r.Detail)
	}
}

// TestMemberlessKeyBoundByPlanAlone: a key of the tenant as a whole is not
// bound by any member, only by the plan.
func TestMemberlessKeyBoundByPlanAlone(t *testing.T) {
	f := newFixture(t, verify.Options{})
	f.refresh()
	key, _ := f.createKey(nil)
	r := f.verify(key, "messages:send", "contacts:read")
	if !r.Valid() {
		t.Fatalf("%s: %s", r.Code, r.Detail)
	}
	wantWithheld(t, r)
	if r.Access.Member != nil || r.Access.Plan == nil || r.Access.Plan.Name != r.Tenant.Plan {
		t.Errorf("access: member %v, plan %v; want no member and the tenant's plan %q", r.Access.Member, r.Access.Plan, r.Tenant.Plan)
	}

	f.createPlan(&keyward.Plan{Name: "small", APIAccess: true, Permissions: []string{"contacts:read"}})
	f.movePlan("small")
	r = f.verify(key, "messages:send")
	if r.Code != keyward.CodeInsufficientPermissions || !strings.Contains(r.Detail, "plan of this account (small)") {
		t.Fatalf("on a smaller plan: %s (%s), want insufficient_permissions naming the plan", r.Code, r.Detail)
	}
	wantWithheld(t, r, verify.Withheld{Permission: "messages:send", By: verify.WithheldByPlan})
	if r := f.verify(key, "contacts:read"); !r.Valid() {
		t.Fatalf("contacts:read on the smaller plan: %s: %s", r.Code, r.Detail)
	}
}

// TestMemberBeforePlan: a permission that both the member and the plan
// withhold is withheld by the member, which the member's admin can fix.
func TestMemberBeforePlan(t *testing.T) {
	f := newFixture(t, verify.Options{})
	f.refresh()
	m := f.createMember("cy@example.com", keyward.RoleOwner, "contacts:read")
	key, _ := f.createKey(func(k *keyward.Key) { k.MemberID = m.ID })
	f.createPlan(&keyward.Plan{Name: "reads", APIAccess: true, Permissions: []string{"contacts:read"}})
	f.movePlan("reads")
	r := f.verify(key, "contacts:read")
	if !r.Valid() {
		t.Fatalf("%s: %s", r.Code, r.Detail)
	}
	wantWithheld(t, r, verify.Withheld{Permission: "messages:send", By: verify.WithheldByMember})
}

// TestPlanWithoutAPIAccess is the M2M guide's prerequisite: the keys of a
// tenant whose plan does not include API access are refused with
// plan_not_entitled, after the checks of the key itself; moving the tenant
// to a plan with API access lets them through again.
func TestPlanWithoutAPIAccess(t *testing.T) {
	f := newFixture(t, verify.Options{})
	f.refresh()
	key, _ := f.createKey(nil)
	disabled, _ := f.createKey(func(k *keyward.Key) { k.Status = keyward.KeyDisabled })
	f.createPlan(&keyward.Plan{Name: "no-api"})
	f.movePlan("no-api")
	r := f.verify(key)
	if r.Code != keyward.CodePlanNotEntitled || !strings.Contains(r.Detail, "does not include API access") {
		t.Fatalf("plan without API access: %s (%s), want plan_not_entitled", r.Code, r.Detail)
	}
	if r := f.verify(disabled); r.Code != keyward.CodeKeyDisabled {
		t.Errorf("a disabled key on a plan without API access: %s, want key_disabled (row 6 before row 10)", r.Code)
	}
	f.movePlan(keyward.DefaultPlan)
	if r := f.verify(key); !r.Valid() {
		t.Fatalf("back on the default plan: %s: %s", r.Code, r.Detail)
	}
}

// TestAccessCachedWithoutReads: once a key's access is worked out, verifying
// it again reads nothing from the store, with a member and a plan as with
// neither, and allocates nothing.
func TestAccessCachedWithoutReads(t *testing.T) {
	f := newFixture(t, verify.Options{})
	f.refresh()
	m := f.createMember("di@example.com", keyward.RoleOwner, "messages:send")
	key, _ := f.createKey(func(k *keyward.Key) { k.MemberID = m.ID })
	if r := f.verify(key, "messages:send"); !r.Valid() {
		t.Fatalf("%s: %s", r.Code, r.Detail)
	}
	before := f.spy.reads()
	req := verify.Request{Key: key, IP: netip.MustParseAddr("192.0.2.10"), Permissions: []string{"messages:send"}}
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		if r := f.v.Verify(ctx, req); !r.Valid() {
			t.Fatalf("%s: %s", r.Code, r.Detail)
		}
	})
	if n := f.spy.reads() - before; n != 0 {
		t.Errorf("%d store reads for cached verifications, want 0", n)
	}
	if allocs != 0 {
		t.Errorf("%v allocations per cached verification, want 0", allocs)
	}
}

// TestMemberChangeReachesAnotherNode: a member's change made through one
// store reaches a verifier reading another store of the same database
// through the change feed within a second, as revocations do.
func TestMemberChangeReachesAnotherNode(t *testing.T) {
	f := newFixture(t, verify.Options{PollInterval: 50 * time.Millisecond})
	m := f.createMember("ed@example.com", keyward.RoleOwner, "contacts:write", "messages:send")
	key, _ := f.createKey(func(k *keyward.Key) {
		k.MemberID = m.ID
		k.Permissions = []string{"contacts:write", "messages:send"}
	})
	f.start()
	if r := f.verify(key, "contacts:write"); !r.Valid() {
		t.Fatalf("%s: %s", r.Code, r.Detail)
	}
	other := openStore(t, f.path)
	if _, err := other.UpdateMember(context.Background(), m.ID, keyward.MemberUpdate{Permissions: &[]string{"messages:send"}},
		f.clock.Now(), keyward.CommandLineActor()); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "contacts:write withheld", func() bool {
		return f.verify(key, "contacts:write").Code == keyward.CodeInsufficientPermissions
	})
	if r := f.verify(key, "messages:send"); !r.Valid() {
		t.Fatalf("messages:send: %s: %s", r.Code, r.Detail)
	}
}
