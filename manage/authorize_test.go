package manage

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/verify"
)

// TestAuthorize is the table of who meets which requirement: a root key
// and the command line everything; keys:manage and keyward:verify their
// own; a key of the system tenant without keyward:admin is not root; an
// unknown requirement no one.
func TestAuthorize(t *testing.T) {
	var (
		plain    = Caller{TenantID: "ten_acme", Permissions: []string{"contacts:read"}}
		manager  = Caller{TenantID: "ten_acme", Permissions: []string{keyward.PermManageKeys}}
		verifier = Caller{TenantID: keyward.SystemTenantID, Permissions: []string{keyward.PermVerify}}
		// A tenant's key that names keyward:admin is no root key.
		pretender = Caller{TenantID: "ten_acme", Permissions: []string{keyward.PermAdmin, keyward.PermManageKeys}}
		root      = Caller{TenantID: keyward.SystemTenantID, Permissions: []string{keyward.PermAdmin}}
	)
	refusals := map[Requirement]string{
		Manager:  `This key cannot manage keys: it needs the "keys:manage" permission (or be a root key).`,
		Verifier: `This key cannot verify other keys: it needs the "keyward:verify" permission, or to be a root key.`,
		Root:     `Only a root key (system tenant, "keyward:admin") can do this.`,
	}
	for _, tc := range []struct {
		name   string
		c      Caller
		admits []Requirement
	}{
		{"no permissions", Caller{}, []Requirement{NoKey, AnyKey}},
		{"plain", plain, []Requirement{NoKey, AnyKey}},
		{"manager", manager, []Requirement{NoKey, AnyKey, Manager}},
		{"verifier", verifier, []Requirement{NoKey, AnyKey, Verifier}},
		{"pretender", pretender, []Requirement{NoKey, AnyKey, Manager}},
		{"root", root, []Requirement{NoKey, AnyKey, Manager, Verifier, Root}},
		{"command line", CommandLine(), []Requirement{NoKey, AnyKey, Manager, Verifier, Root}},
	} {
		for _, r := range []Requirement{NoKey, AnyKey, Manager, Verifier, Root} {
			err := Authorize(tc.c, r)
			var msg string
			if e, ok := err.(*keyward.Error); ok {
				msg = e.Message
			}
			admitted := false
			for _, a := range tc.admits {
				admitted = admitted || a == r
			}
			switch {
			case admitted && err != nil:
				t.Errorf("%s, %s: refused: %v", tc.name, r, err)
			case !admitted && (keyward.ErrorCode(err) != keyward.CodeInsufficientPermissions || msg != refusals[r]):
				t.Errorf("%s, %s: %v; want insufficient_permissions: %s", tc.name, r, err, refusals[r])
			}
		}
	}
	if err := Authorize(root, Requirement(99)); keyward.ErrorCode(err) != keyward.CodeInternal {
		t.Errorf("an unknown requirement: %v; want an internal error", err)
	}
}

// TestVerifyRule: Verify, which POST /v1/verify and keyward verify both
// call, admits the command line and a key with keyward:verify, and refuses
// any other caller with Authorize's refusal before it looks at the key.
func TestVerifyRule(t *testing.T) {
	ctx := context.Background()
	svc, store := newService(t, time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	rootKey, err := svc.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := apikey.NewFormat("sk")
	v := verify.New(store, verify.Options{Format: f})
	t.Cleanup(func() { _ = v.Close(ctx) })
	req := verify.Request{Key: rootKey}
	for name, c := range map[string]Caller{
		"command line": CommandLine(),
		"verifier":     {TenantID: keyward.SystemTenantID, Permissions: []string{keyward.PermVerify}},
	} {
		if res, err := Verify(ctx, c, v, req); err != nil || !res.Valid() {
			t.Errorf("%s: %+v, %v; want the key valid", name, res, err)
		}
	}
	manager := Caller{TenantID: "ten_acme", Permissions: []string{keyward.PermManageKeys}}
	res, err := Verify(ctx, manager, v, req)
	if want := Authorize(manager, Verifier); err == nil || err.Error() != want.Error() || res.Key != nil || res.Code != "" {
		t.Errorf("a manager: %+v, %v; want no result and %v", res, err, want)
	}
}

// TestCallerOf: a verified key acts with its effective permissions, as the
// operator when it is a root key, as an admin when it is a tenant's key
// without a member, and with its member's current role otherwise; a
// suspended or removed member's key is no manager.
func TestCallerOf(t *testing.T) {
	key := func(tenant, member string, perms ...string) *keyward.Key {
		return &keyward.Key{ID: "key_x", TenantID: tenant, MemberID: member, Permissions: perms}
	}
	manage := []string{keyward.PermManageKeys, "contacts:write"}
	dev := &keyward.Member{ID: "mem_dev", Role: keyward.RoleDeveloper, Status: keyward.MemberActive}
	suspended := &keyward.Member{ID: "mem_dev", Role: keyward.RoleOwner, Status: keyward.MemberSuspended}
	for _, tc := range []struct {
		name    string
		res     verify.Result
		role    keyward.Role
		state   string
		manager bool
	}{
		{"root", verify.Result{Key: key(keyward.SystemTenantID, "", keyward.PermAdmin), Access: &verify.Access{Permissions: []string{keyward.PermAdmin}}}, "", "", true},
		{"memberless", verify.Result{Key: key("ten_a", "", manage...), Access: &verify.Access{Permissions: manage}}, keyward.RoleAdmin, "", true},
		{"developer", verify.Result{Key: key("ten_a", "mem_dev", manage...), Access: &verify.Access{Member: dev, Permissions: manage[:1]}}, keyward.RoleDeveloper, "", true},
		{"suspended", verify.Result{Key: key("ten_a", "mem_dev", manage...), Access: &verify.Access{Member: suspended, Permissions: manage[:1]}}, keyward.RoleOwner, MemberSuspended, false},
		{"removed", verify.Result{Key: key("ten_a", "mem_gone", manage...), Access: &verify.Access{MemberRemoved: true, Permissions: manage[:1]}}, "", MemberRemoved, false},
	} {
		c := CallerOf(tc.res, "203.0.113.7")
		if c.Role != tc.role || c.MemberState != tc.state || c.Actor.MemberID != tc.res.Key.MemberID || c.Actor.IP != "203.0.113.7" {
			t.Errorf("%s: %+v", tc.name, c)
		}
		if !slices.Equal(c.Permissions, tc.res.Access.Permissions) {
			t.Errorf("%s: permissions %v, want the effective %v", tc.name, c.Permissions, tc.res.Access.Permissions)
		}
		if err := Authorize(c, Manager); (err == nil) != tc.manager {
			t.Errorf("%s: Authorize(Manager) = %v", tc.name, err)
		}
	}
}

// TestAuthorizeMember is the table of who may add, change and remove which
// member: owners and root everyone, admins no owner and no one into an
// owner, developers and viewers no one; each refusal names the role.
func TestAuthorizeMember(t *testing.T) {
	owner := &keyward.Member{ID: "mem_o", Role: keyward.RoleOwner}
	dev := &keyward.Member{ID: "mem_d", Role: keyward.RoleDeveloper}
	caller := func(r keyward.Role) Caller {
		return Caller{TenantID: "ten_a", Role: r, MemberID: "mem_" + string(r), Permissions: []string{keyward.PermManageKeys}}
	}
	type action struct {
		name   string
		act    memberAction
		target *keyward.Member
		role   keyward.Role
	}
	actions := []action{
		{"add a developer", memberAdd, nil, keyward.RoleDeveloper},
		{"add an owner", memberAdd, nil, keyward.RoleOwner},
		{"change a developer", memberChange, dev, ""},
		{"make a developer an owner", memberChange, dev, keyward.RoleOwner},
		{"change an owner", memberChange, owner, ""},
		{"remove a developer", memberRemove, dev, ""},
		{"remove an owner", memberRemove, owner, ""},
	}
	allowed := map[string][]string{
		"root":      {"add a developer", "add an owner", "change a developer", "make a developer an owner", "change an owner", "remove a developer", "remove an owner"},
		"owner":     {"add a developer", "add an owner", "change a developer", "make a developer an owner", "change an owner", "remove a developer", "remove an owner"},
		"admin":     {"add a developer", "change a developer", "remove a developer"},
		"developer": {},
		"viewer":    {},
	}
	for who, ok := range allowed {
		c := CommandLine()
		if who != "root" {
			c = caller(keyward.Role(who))
		}
		for _, a := range actions {
			err := authorizeMember(c, a.act, a.target, a.role)
			switch {
			case slices.Contains(ok, a.name) && err != nil:
				t.Errorf("%s may %s: %v", who, a.name, err)
			case !slices.Contains(ok, a.name) && (keyward.ErrorCode(err) != keyward.CodeInsufficientPermissions ||
				!strings.Contains(strings.ToLower(err.(*keyward.Error).Message), "role in this tenant is "+who)):
				t.Errorf("%s may not %s: %v", who, a.name, err)
			}
		}
	}
}

// TestAuthorizeKeyRoles: on an existing key, a developer acts on its own
// member's keys only and a viewer on none, before any bound is looked at.
func TestAuthorizeKeyRoles(t *testing.T) {
	perms := []string{keyward.PermManageKeys}
	mine := &keyward.Key{MemberID: "mem_dev"}
	theirs := &keyward.Key{MemberID: "mem_other"}
	tenants := &keyward.Key{}
	dev := Caller{TenantID: "ten_a", Role: keyward.RoleDeveloper, MemberID: "mem_dev", Permissions: perms}
	viewer := Caller{TenantID: "ten_a", Role: keyward.RoleViewer, MemberID: "mem_v", Permissions: perms}
	admin := Caller{TenantID: "ten_a", Role: keyward.RoleAdmin, Permissions: perms}
	for _, tc := range []struct {
		c    Caller
		k    *keyward.Key
		want string // "" when allowed, else what the refusal says
	}{
		{dev, mine, ""},
		{dev, theirs, "belongs to another member (mem_other)"},
		{dev, tenants, "belongs to the account as a whole"},
		{viewer, mine, "viewer, which can read keys but not change, rotate or revoke them"},
		{admin, theirs, ""},
		{admin, tenants, ""},
		{Caller{TenantID: "ten_a", Permissions: perms}, mine, "Your role in this tenant is none"},
	} {
		err := authorizeKey(tc.c, tc.k)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s on a key of %q: %v, want %q", tc.c.Role, tc.k.MemberID, err, tc.want)
		}
	}
}

// TestOutsideRestrictions: a caller with referrers, endpoints or resources
// makes and touches only keys whose own lie inside them, entry by entry.
func TestOutsideRestrictions(t *testing.T) {
	c := Caller{Restrictions: keyward.Restrictions{
		Referrers: []string{"https://app.example.com", "https://*.example.com/*"},
		Endpoints: []string{"GET /v1/contacts/**"},
		Resources: map[string][]string{"site": {"site_1", "site_2"}},
	}}
	inside := keyward.Restrictions{
		Referrers: []string{"https://app.example.com"},
		Endpoints: []string{"GET /v1/contacts/**"},
		Resources: map[string][]string{"site": {"site_2"}, "team": {"t1"}},
	}
	if b := c.outsideRestrictions(inside); b != nil {
		t.Errorf("inside: %+v", b)
	}
	for field, r := range map[string]keyward.Restrictions{
		"restrictions.referrers":         {Endpoints: inside.Endpoints, Resources: inside.Resources},
		"restrictions.referrers[1]":      {Referrers: []string{"https://app.example.com", "https://evil.example"}, Endpoints: inside.Endpoints, Resources: inside.Resources},
		"restrictions.endpoints":         {Referrers: inside.Referrers, Resources: inside.Resources},
		"restrictions.endpoints[0]":      {Referrers: inside.Referrers, Endpoints: []string{"* /v1/**"}, Resources: inside.Resources},
		"restrictions.resources":         {Referrers: inside.Referrers, Endpoints: inside.Endpoints, Resources: map[string][]string{"team": {"t1"}}},
		"restrictions.resources.site[1]": {Referrers: inside.Referrers, Endpoints: inside.Endpoints, Resources: map[string][]string{"site": {"site_1", "site_3"}}},
	} {
		if b := c.outsideRestrictions(r); b == nil || b.field != field {
			t.Errorf("%s: %+v", field, b)
		}
	}
	// Narrower patterns written differently lie within the caller's.
	narrower := keyward.Restrictions{
		Referrers: []string{"https://app.example.com/reports/*", "https://eu.example.com/x"},
		Endpoints: []string{"GET /v1/contacts/{id}", "GET /v1/contacts"},
		Resources: inside.Resources,
	}
	if b := c.outsideRestrictions(narrower); b != nil {
		t.Errorf("narrower patterns: %+v", b)
	}
	if b := c.outsideRestrictions(keyward.Restrictions{Referrers: inside.Referrers, Endpoints: []string{"POST /v1/contacts/**"}, Resources: inside.Resources}); b == nil || b.field != "restrictions.endpoints[0]" {
		t.Errorf("another method is not within GET: %+v", b)
	}
	if b := (Caller{}).outsideRestrictions(inside); b != nil {
		t.Errorf("a caller without restrictions bounds nothing, yet: %+v", b)
	}
	err := checkBounds(c, &keyward.Key{Restrictions: keyward.Restrictions{Referrers: []string{"https://evil.example"}}})
	if e, ok := err.(*keyward.Error); !ok || e.Code != keyward.CodeInsufficientPermissions || e.Field != "restrictions.referrers[0]" || !strings.Contains(e.Message, "https://evil.example") {
		t.Errorf("checkBounds: %v", err)
	}
}
