package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// newPlan returns a plan that is not stored, with every field set.
func (f *fixture) newPlan(name string) *keyward.Plan {
	at := f.tick()
	return &keyward.Plan{
		Name:         name,
		Capabilities: []string{"m2m_api", "reports"},
		Permissions:  []string{"contacts:read", "contacts:write"},
		APIAccess:    true,
		MaxKeys:      25,
		KeyRateLimits: []keyward.RateLimit{
			{Name: "burst", Limit: 10, Period: keyward.Duration(time.Second), Burst: 20},
			{Name: "hourly", Limit: 1000, Period: keyward.Duration(time.Hour)},
		},
		KeyQuota:         &keyward.Quota{Limit: 100_000, Period: keyward.QuotaMonth},
		TenantRateLimits: []keyward.RateLimit{{Name: "tenant", Limit: 100, Period: keyward.Duration(time.Second)}},
		TenantQuota:      &keyward.Quota{Limit: 5000, Period: keyward.QuotaDay},
		CreatedAt:        at,
		UpdatedAt:        at,
	}
}

// createPlan stores a new plan.
func (f *fixture) createPlan(name string) *keyward.Plan {
	f.t.Helper()
	p := f.newPlan(name)
	if err := f.s.CreatePlan(f.ctx, p, admin); err != nil {
		f.t.Fatalf("CreatePlan(%s): %v", name, err)
	}
	return p
}

// planChange names the change of a plan.
func planChange(name string) keyward.Change {
	return keyward.Change{Kind: keyward.ChangePlan, ID: name}
}

// wantPlan fails the test unless got equals want field by field.
func wantPlan(t *testing.T, what string, got, want *keyward.Plan) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: plan is nil", what)
	}
	var d []string
	if got.Name != want.Name || got.APIAccess != want.APIAccess || got.MaxKeys != want.MaxKeys {
		d = append(d, fmt.Sprintf("got {%s api_access %t max_keys %d}, want {%s %t %d}",
			got.Name, got.APIAccess, got.MaxKeys, want.Name, want.APIAccess, want.MaxKeys))
	}
	if !slices.Equal(got.Capabilities, want.Capabilities) || got.Capabilities == nil {
		d = append(d, fmt.Sprintf("Capabilities = %#v, want %q", got.Capabilities, want.Capabilities))
	}
	if !slices.Equal(got.Permissions, want.Permissions) || got.Permissions == nil {
		d = append(d, fmt.Sprintf("Permissions = %#v, want %q", got.Permissions, want.Permissions))
	}
	// A plan's rate limits are never nil: none is an empty list.
	wantKeyRates, wantTenantRates := want.KeyRateLimits, want.TenantRateLimits
	if wantKeyRates == nil {
		wantKeyRates = []keyward.RateLimit{}
	}
	if wantTenantRates == nil {
		wantTenantRates = []keyward.RateLimit{}
	}
	if l := limitsDiff("Key", got.KeyRateLimits, wantKeyRates, got.KeyQuota, want.KeyQuota); l != "" {
		d = append(d, l)
	}
	if l := limitsDiff("Tenant", got.TenantRateLimits, wantTenantRates, got.TenantQuota, want.TenantQuota); l != "" {
		d = append(d, l)
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

// plan reads a plan that must exist.
func (f *fixture) plan(name string) *keyward.Plan {
	f.t.Helper()
	p, err := f.s.Plan(f.ctx, name)
	if err != nil {
		f.t.Fatalf("Plan(%s): %v", name, err)
	}
	return p
}

// onPlan stores a tenant on the plan, which must exist.
func (f *fixture) onPlan(slug, plan string) *keyward.Tenant {
	f.t.Helper()
	tn := f.newTenant(slug)
	tn.Plan = plan
	if err := f.s.CreateTenant(f.ctx, tn, admin); err != nil {
		f.t.Fatalf("CreateTenant(%s on %s): %v", slug, plan, err)
	}
	return tn
}

var planTests = []test{
	{"Default", func(f *fixture) {
		// A new store has the default plan, which includes everything.
		plans, err := f.s.Plans(f.ctx)
		if err != nil || len(plans) != 1 || plans[0].Name != keyward.DefaultPlan {
			f.t.Fatalf("Plans on a new store = %v, %v; want the default plan alone", plans, err)
		}
		p := f.plan(keyward.DefaultPlan)
		if !p.APIAccess || p.MaxKeys != 0 || len(p.Permissions) != 0 || !p.Allows("anything:at-all") {
			f.t.Fatalf("the default plan = %+v; want one that includes everything", p)
		}
		if p.CreatedAt.Location() != time.UTC || p.CreatedAt.IsZero() {
			f.t.Fatalf("the default plan was created at %v", p.CreatedAt)
		}
	}},
	{"CreateAndGet", func(f *fixture) {
		m := f.mark()
		want := f.newPlan("pro")
		if err := f.s.CreatePlan(f.ctx, want, byOwner); err != nil {
			f.t.Fatalf("CreatePlan: %v", err)
		}
		f.wantRecorded(m, keyward.ActionPlanCreate, "", "pro", byOwner, want.CreatedAt, planChange("pro"))
		wantPlan(f.t, "Plan", f.plan("pro"), want)

		// No capabilities, no permissions, no API access.
		bare := f.newPlan("basic")
		bare.Capabilities, bare.Permissions, bare.APIAccess, bare.MaxKeys = nil, nil, false, 0
		if err := f.s.CreatePlan(f.ctx, bare, cli); err != nil {
			f.t.Fatalf("CreatePlan: %v", err)
		}
		wantPlan(f.t, "a plan of nothing", f.plan("basic"), bare)

		plans, err := f.s.Plans(f.ctx)
		if err != nil {
			f.t.Fatalf("Plans: %v", err)
		}
		var names []string
		for _, p := range plans {
			names = append(names, p.Name)
		}
		if got := strings.Join(names, " "); got != "basic default pro" {
			f.t.Fatalf("Plans = %q, want them by name", got)
		}
	}},
	{"Refused", func(f *fixture) {
		pro := f.createPlan("pro")
		m := f.mark()
		dup := f.newPlan("pro")
		dup.MaxKeys = 1
		wantField(f.t, f.s.CreatePlan(f.ctx, dup, admin), keyward.CodeConflict, "name", "pro")
		wantCode(f.t, f.s.CreatePlan(f.ctx, f.newPlan(keyward.DefaultPlan), admin), keyward.CodeConflict)
		_, err := f.s.Plan(f.ctx, "nope")
		wantCode(f.t, err, keyward.CodeNotFound)
		_, err = f.s.UpdatePlan(f.ctx, "nope", keyward.PlanUpdate{MaxKeys: ptr(1)}, f.tick(), admin)
		wantCode(f.t, err, keyward.CodeNotFound)
		f.wantNothingRecorded(m, "refused plan writes")
		wantPlan(f.t, "the plan that holds the name", f.plan("pro"), pro)
	}},
	{"Update", func(f *fixture) {
		cases := []struct {
			name   string
			update keyward.PlanUpdate
			apply  func(p *keyward.Plan)
		}{
			{"Capabilities", keyward.PlanUpdate{Capabilities: ptr([]string{"webhooks"})}, func(p *keyward.Plan) { p.Capabilities = []string{"webhooks"} }},
			{"NoCapabilities", keyward.PlanUpdate{Capabilities: ptr([]string{})}, func(p *keyward.Plan) { p.Capabilities = nil }},
			{"Permissions", keyward.PlanUpdate{Permissions: ptr([]string{"reports:read"})}, func(p *keyward.Plan) { p.Permissions = []string{"reports:read"} }},
			{"NoPermissions", keyward.PlanUpdate{Permissions: ptr([]string(nil))}, func(p *keyward.Plan) { p.Permissions = nil }},
			{"NoAPIAccess", keyward.PlanUpdate{APIAccess: ptr(false)}, func(p *keyward.Plan) { p.APIAccess = false }},
			{"MaxKeys", keyward.PlanUpdate{MaxKeys: ptr(3)}, func(p *keyward.Plan) { p.MaxKeys = 3 }},
			{"Nothing", keyward.PlanUpdate{}, func(p *keyward.Plan) {}},
			{"Everything", keyward.PlanUpdate{Capabilities: ptr([]string{"a"}), Permissions: ptr([]string{"b:c"}), APIAccess: ptr(false), MaxKeys: ptr(0)},
				func(p *keyward.Plan) {
					p.Capabilities, p.Permissions, p.APIAccess, p.MaxKeys = []string{"a"}, []string{"b:c"}, false, 0
				}},
		}
		for i, tc := range cases {
			p := f.createPlan(fmt.Sprintf("plan-%d", i))
			want := *p
			tc.apply(&want)
			at := f.tick()
			want.UpdatedAt = at
			m := f.mark()
			got, err := f.s.UpdatePlan(f.ctx, p.Name, tc.update, at, cli)
			if err != nil {
				f.t.Fatalf("%s: UpdatePlan: %v", tc.name, err)
			}
			wantPlan(f.t, tc.name+": UpdatePlan", got, &want)
			wantPlan(f.t, tc.name+": Plan after UpdatePlan", f.plan(p.Name), &want)
			f.wantRecorded(m, keyward.ActionPlanUpdate, "", p.Name, cli, at, planChange(p.Name))
		}
		// The default plan can be changed too.
		if _, err := f.s.UpdatePlan(f.ctx, keyward.DefaultPlan, keyward.PlanUpdate{Capabilities: ptr([]string{"m2m_api"})}, f.tick(), admin); err != nil {
			f.t.Fatalf("UpdatePlan(default): %v", err)
		}
	}},
	{"SetTenantPlan", func(f *fixture) {
		f.createPlan("pro")
		tn := f.createTenant("acme")
		other := f.createTenant("other")
		m := f.mark()
		at := f.tick()
		got, err := f.s.SetTenantPlan(f.ctx, tn.ID, "pro", at, byOwner)
		if err != nil {
			f.t.Fatalf("SetTenantPlan: %v", err)
		}
		want := *tn
		want.Plan, want.UpdatedAt = "pro", at
		wantTenant(f.t, "SetTenantPlan", got, &want)
		stored, err := f.s.Tenant(f.ctx, tn.Slug)
		if err != nil {
			f.t.Fatalf("Tenant: %v", err)
		}
		wantTenant(f.t, "Tenant after SetTenantPlan", stored, &want)
		f.wantRecordedAll(m, byOwner, at, []recorded{{keyward.ActionTenantSetPlan, tn.ID, tn.ID, "pro"}}, tenantChange(tn.ID))
		stored, err = f.s.Tenant(f.ctx, other.ID)
		if err != nil {
			f.t.Fatalf("Tenant: %v", err)
		}
		wantTenant(f.t, "another tenant", stored, other)

		// Back to the default plan.
		if got, err := f.s.SetTenantPlan(f.ctx, tn.ID, keyward.DefaultPlan, f.tick(), admin); err != nil || got.Plan != keyward.DefaultPlan {
			f.t.Fatalf("SetTenantPlan(default) = %+v, %v", got, err)
		}
	}},
	{"SetTenantPlanRefused", func(f *fixture) {
		f.createPlan("pro")
		tn := f.createTenant("acme")
		sys := f.newTenant("system")
		sys.ID, sys.Slug = keyward.SystemTenantID, keyward.SystemTenantSlug
		if err := f.s.CreateTenant(f.ctx, sys, cli); err != nil {
			f.t.Fatalf("CreateTenant(system): %v", err)
		}
		m := f.mark()
		_, err := f.s.SetTenantPlan(f.ctx, tn.ID, "gold", f.tick(), admin)
		wantField(f.t, err, keyward.CodeInvalidRequest, "plan", `"gold"`, `"default", "pro"`)
		_, err = f.s.SetTenantPlan(f.ctx, "ten_nope", "pro", f.tick(), admin)
		wantCode(f.t, err, keyward.CodeNotFound)
		_, err = f.s.SetTenantPlan(f.ctx, tn.Slug, "pro", f.tick(), admin)
		wantCode(f.t, err, keyward.CodeNotFound)
		_, err = f.s.SetTenantPlan(f.ctx, keyward.SystemTenantID, "pro", f.tick(), admin)
		wantField(f.t, err, keyward.CodeInvalidRequest, "plan", "system tenant")
		f.wantNothingRecorded(m, "a refused SetTenantPlan")
		stored, err := f.s.Tenant(f.ctx, tn.ID)
		if err != nil {
			f.t.Fatalf("Tenant: %v", err)
		}
		wantTenant(f.t, "a tenant after a refused SetTenantPlan", stored, tn)
		// The system tenant may be set to the plan it is on.
		if _, err := f.s.SetTenantPlan(f.ctx, keyward.SystemTenantID, keyward.DefaultPlan, f.tick(), admin); err != nil {
			f.t.Fatalf("SetTenantPlan(system, default): %v", err)
		}
	}},
	{"CreateTenantOnAPlan", func(f *fixture) {
		f.createPlan("pro")
		tn := f.onPlan("acme", "pro")
		stored, err := f.s.Tenant(f.ctx, tn.ID)
		if err != nil || stored.Plan != "pro" {
			f.t.Fatalf("Tenant = %+v, %v; want it on pro", stored, err)
		}
		m := f.mark()
		unknown := f.newTenant("beta")
		unknown.Plan = "gold"
		wantField(f.t, f.s.CreateTenant(f.ctx, unknown, admin), keyward.CodeInvalidRequest, "plan", `"gold"`, `"pro"`, "create")
		sys := f.newTenant("system")
		sys.ID, sys.Slug, sys.Plan = keyward.SystemTenantID, keyward.SystemTenantSlug, "pro"
		wantField(f.t, f.s.CreateTenant(f.ctx, sys, admin), keyward.CodeInvalidRequest, "plan", "system tenant")
		f.wantNothingRecorded(m, "a tenant on a plan that does not exist")
		for _, id := range []string{unknown.ID, sys.ID} {
			if _, err := f.s.Tenant(f.ctx, id); keyward.ErrorCode(err) != keyward.CodeNotFound {
				f.t.Fatalf("Tenant(%s) after a refused create: %v, want not found", id, err)
			}
		}
	}},
	{"CountKeys", func(f *fixture) {
		tn := f.createTenant("acme")
		other := f.createTenant("other")
		if n := f.countKeys(tn.ID); n != 0 {
			f.t.Fatalf("CountKeys of a tenant without keys = %d", n)
		}
		f.createKey(tn.ID, keyward.Live)
		f.createKey(tn.ID, keyward.Test)
		disabled := f.createKey(tn.ID, keyward.Live)
		if _, err := f.s.UpdateKey(f.ctx, disabled.ID, keyward.KeyUpdate{Status: ptr(keyward.KeyDisabled)}, f.tick(), admin); err != nil {
			f.t.Fatalf("UpdateKey: %v", err)
		}
		expired := f.newKey(tn.ID, keyward.Live)
		expired.ExpiresAt = ptr(expired.CreatedAt.Add(-time.Hour))
		if err := f.s.CreateKey(f.ctx, expired, admin); err != nil {
			f.t.Fatalf("CreateKey: %v", err)
		}
		revoked := f.createKey(tn.ID, keyward.Live)
		if _, err := f.s.RevokeKey(f.ctx, revoked.ID, f.tick(), admin); err != nil {
			f.t.Fatalf("RevokeKey: %v", err)
		}
		f.createKey(other.ID, keyward.Live)
		if n := f.countKeys(tn.ID); n != 4 {
			f.t.Fatalf("CountKeys = %d, want 4: active, test, disabled and expired, not revoked", n)
		}
		if n := f.countKeys("ten_nope"); n != 0 {
			f.t.Fatalf("CountKeys of an unknown tenant = %d, want 0", n)
		}
	}},
	{"KeyLimit", func(f *fixture) {
		small := f.newPlan("small")
		small.MaxKeys = 2
		if err := f.s.CreatePlan(f.ctx, small, admin); err != nil {
			f.t.Fatalf("CreatePlan: %v", err)
		}
		tn := f.onPlan("acme", "small")
		free := f.createTenant("free")
		first := f.createKey(tn.ID, keyward.Live)
		f.createKey(tn.ID, keyward.Test)
		m := f.mark()
		err := f.s.CreateKey(f.ctx, f.newKey(tn.ID, keyward.Live), admin)
		wantCode(f.t, err, keyward.CodePlanNotEntitled)
		wantWords(f.t, err, `"small"`, "at most 2 keys", tn.ID)
		f.wantNothingRecorded(m, "a key past the plan's limit")
		if n := f.countKeys(tn.ID); n != 2 {
			f.t.Fatalf("CountKeys = %d, want 2", n)
		}
		// Another tenant, on another plan, is not limited.
		for range 3 {
			f.createKey(free.ID, keyward.Live)
		}
		// A rotation at the limit is made: the old key expires.
		succ := f.successorOf(first)
		if _, err := f.s.RotateKey(f.ctx, first.ID, succ, succ.CreatedAt.Add(time.Hour), admin); err != nil {
			f.t.Fatalf("RotateKey at the key limit: %v", err)
		}
		// Revoking the old key leaves two, the limit; revoking another
		// makes room.
		if _, err := f.s.RevokeKey(f.ctx, first.ID, f.tick(), admin); err != nil {
			f.t.Fatalf("RevokeKey: %v", err)
		}
		wantCode(f.t, f.s.CreateKey(f.ctx, f.newKey(tn.ID, keyward.Live), admin), keyward.CodePlanNotEntitled)
		if _, err := f.s.RevokeKey(f.ctx, succ.ID, f.tick(), admin); err != nil {
			f.t.Fatalf("RevokeKey: %v", err)
		}
		f.createKey(tn.ID, keyward.Live)
		// Lowering the limit keeps the keys; raising it, or no limit,
		// makes room.
		if _, err := f.s.UpdatePlan(f.ctx, "small", keyward.PlanUpdate{MaxKeys: ptr(1)}, f.tick(), admin); err != nil {
			f.t.Fatalf("UpdatePlan: %v", err)
		}
		if n := f.countKeys(tn.ID); n != 2 {
			f.t.Fatalf("CountKeys after lowering the limit = %d, want 2", n)
		}
		wantCode(f.t, f.s.CreateKey(f.ctx, f.newKey(tn.ID, keyward.Live), admin), keyward.CodePlanNotEntitled)
		if _, err := f.s.UpdatePlan(f.ctx, "small", keyward.PlanUpdate{MaxKeys: ptr(0)}, f.tick(), admin); err != nil {
			f.t.Fatalf("UpdatePlan: %v", err)
		}
		f.createKey(tn.ID, keyward.Live)
		// Moving the tenant moves its limit.
		if _, err := f.s.SetTenantPlan(f.ctx, free.ID, "small", f.tick(), admin); err != nil {
			f.t.Fatalf("SetTenantPlan: %v", err)
		}
		if _, err := f.s.UpdatePlan(f.ctx, "small", keyward.PlanUpdate{MaxKeys: ptr(3)}, f.tick(), admin); err != nil {
			f.t.Fatalf("UpdatePlan: %v", err)
		}
		wantCode(f.t, f.s.CreateKey(f.ctx, f.newKey(free.ID, keyward.Live), admin), keyward.CodePlanNotEntitled)
	}},
}
