package storetest

import (
	"errors"
	"time"

	"github.com/keyward/keyward"
)

// limitTests: rate limits, quotas and credits on plans, tenants and keys.
// nil rate limits on a tenant or a key (its plan's) stay apart from an
// empty list (none at all); a quota update with the zero Quota gives the
// plan's again; credits are written only when an update sets them, so
// that an update of anything else leaves the uses counted down meanwhile.
var limitTests = []test{
	{"plan limits are kept and updated", func(f *fixture) {
		p := f.createPlan("pro")
		stored, err := f.s.Plan(f.ctx, p.Name)
		if err != nil {
			f.t.Fatalf("Plan: %v", err)
		}
		wantPlan(f.t, "Plan", stored, p)

		m := f.mark()
		at := f.tick()
		hourly := []keyward.RateLimit{{Name: "hourly", Limit: 500, Period: keyward.Duration(time.Hour)}}
		got, err := f.s.UpdatePlan(f.ctx, p.Name, keyward.PlanUpdate{
			KeyRateLimits:    &hourly,
			KeyQuota:         &keyward.Quota{},
			TenantRateLimits: &[]keyward.RateLimit{},
			TenantQuota:      &keyward.Quota{Limit: 9, Period: keyward.QuotaMonth},
		}, at, admin)
		if err != nil {
			f.t.Fatalf("UpdatePlan: %v", err)
		}
		want := *p
		want.KeyRateLimits, want.KeyQuota = hourly, nil
		want.TenantRateLimits, want.TenantQuota = []keyward.RateLimit{}, &keyward.Quota{Limit: 9, Period: keyward.QuotaMonth}
		want.UpdatedAt = at
		wantPlan(f.t, "UpdatePlan", got, &want)
		f.wantRecorded(m, keyward.ActionPlanUpdate, "", p.Name, admin, at, planChange(p.Name))
	}},
	{"tenant limits are its plan's until set", func(f *fixture) {
		tn := f.createTenant("acme")
		if tn.RateLimits != nil || tn.Quota != nil || tn.TimeZone != "" {
			f.t.Fatalf("a new tenant has limits %+v; want its plan's", tn)
		}
		m := f.mark()
		at := f.tick()
		burst := []keyward.RateLimit{{Name: "burst", Limit: 50, Period: keyward.Duration(time.Second), Burst: 100}}
		zone := "Europe/Paris"
		got, err := f.s.UpdateTenant(f.ctx, tn.ID, keyward.TenantUpdate{
			RateLimits: &burst, Quota: &keyward.Quota{Limit: 1000, Period: keyward.QuotaDay}, TimeZone: &zone,
		}, at, admin)
		if err != nil {
			f.t.Fatalf("UpdateTenant: %v", err)
		}
		want := *tn
		want.RateLimits, want.Quota, want.TimeZone, want.UpdatedAt = burst, &keyward.Quota{Limit: 1000, Period: keyward.QuotaDay}, zone, at
		wantTenant(f.t, "UpdateTenant", got, &want)
		f.wantRecorded(m, keyward.ActionTenantUpdate, tn.ID, tn.ID, admin, at, tenantChange(tn.ID))

		// None at all, then the plan's again.
		at = f.tick()
		got, err = f.s.UpdateTenant(f.ctx, tn.ID, keyward.TenantUpdate{RateLimits: &[]keyward.RateLimit{}, Quota: &keyward.Quota{}}, at, admin)
		if err != nil {
			f.t.Fatalf("UpdateTenant(none): %v", err)
		}
		want.RateLimits, want.Quota, want.UpdatedAt = []keyward.RateLimit{}, nil, at
		wantTenant(f.t, "UpdateTenant(none)", got, &want)
		at = f.tick()
		var inherit []keyward.RateLimit
		got, err = f.s.UpdateTenant(f.ctx, tn.ID, keyward.TenantUpdate{RateLimits: &inherit}, at, admin)
		if err != nil {
			f.t.Fatalf("UpdateTenant(the plan's): %v", err)
		}
		want.RateLimits, want.UpdatedAt = nil, at
		wantTenant(f.t, "UpdateTenant(the plan's)", got, &want)
		stored, err := f.s.Tenant(f.ctx, tn.ID)
		if err != nil {
			f.t.Fatalf("Tenant: %v", err)
		}
		wantTenant(f.t, "Tenant", stored, &want)

		if _, err := f.s.UpdateTenant(f.ctx, "ten_nobody", keyward.TenantUpdate{TimeZone: &zone}, f.tick(), admin); keyward.ErrorCode(err) != keyward.CodeNotFound {
			f.t.Errorf("UpdateTenant of no tenant: %v; want %s", err, keyward.CodeNotFound)
		}
		bad := "Mars/Olympus"
		var e *keyward.Error
		if _, err := f.s.UpdateTenant(f.ctx, tn.ID, keyward.TenantUpdate{TimeZone: &bad}, f.tick(), admin); !errors.As(err, &e) || e.Field != "time_zone" {
			f.t.Errorf("UpdateTenant with time zone %q: %v; want an error naming time_zone", bad, err)
		}
	}},
	{"key limits and credits are kept", func(f *fixture) {
		tn := f.createTenant("acme")
		k := f.newKey(tn.ID, keyward.Live)
		k.RateLimits = []keyward.RateLimit{{Name: "burst", Limit: 5, Period: keyward.Duration(time.Second)}}
		k.Quota = &keyward.Quota{Limit: 300, Period: keyward.QuotaDay}
		k.Credits = &keyward.Credits{Remaining: 42, Refill: &keyward.Refill{Amount: 100, Interval: keyward.QuotaMonth}}
		if err := f.s.CreateKey(f.ctx, k, admin); err != nil {
			f.t.Fatalf("CreateKey: %v", err)
		}
		stored, err := f.s.Key(f.ctx, k.ID)
		if err != nil {
			f.t.Fatalf("Key: %v", err)
		}
		wantKey(f.t, "Key", stored, k)
		byHash, err := f.s.KeyByHash(f.ctx, k.Hash)
		if err != nil {
			f.t.Fatalf("KeyByHash: %v", err)
		}
		wantKey(f.t, "KeyByHash", byHash, k)

		none := f.createKey(tn.ID, keyward.Live)
		if none.RateLimits != nil || none.Quota != nil || none.Credits != nil {
			f.t.Errorf("a key made without limits: %+v; want its plan's, and no credit limit", none)
		}
		stored, err = f.s.Key(f.ctx, none.ID)
		if err != nil {
			f.t.Fatalf("Key: %v", err)
		}
		wantKey(f.t, "a key without limits", stored, none)
	}},
	{"key limits and credits are updated", func(f *fixture) {
		tn := f.createTenant("acme")
		k := f.createKey(tn.ID, keyward.Live)
		m := f.mark()
		at := f.tick()
		empty := []keyward.RateLimit{}
		credits := &keyward.Credits{Remaining: 10}
		got, err := f.s.UpdateKey(f.ctx, k.ID, keyward.KeyUpdate{
			RateLimits: &empty, Quota: &keyward.Quota{Limit: 7, Period: keyward.QuotaMonth}, Credits: credits,
		}, at, admin)
		if err != nil {
			f.t.Fatalf("UpdateKey: %v", err)
		}
		want := *k
		want.RateLimits, want.Quota, want.Credits, want.UpdatedAt = empty, &keyward.Quota{Limit: 7, Period: keyward.QuotaMonth}, credits, at
		wantKey(f.t, "UpdateKey(limits)", got, &want)
		f.wantRecorded(m, keyward.ActionKeyUpdate, tn.ID, k.ID, admin, at, keyChange(k.ID))

		// An update of something else leaves the credits as stored.
		at = f.tick()
		name := "renamed"
		got, err = f.s.UpdateKey(f.ctx, k.ID, keyward.KeyUpdate{Name: &name}, at, admin)
		if err != nil {
			f.t.Fatalf("UpdateKey(name): %v", err)
		}
		want.Name, want.UpdatedAt = name, at
		wantKey(f.t, "UpdateKey(name)", got, &want)

		// The plan's limits again, and no credit limit.
		at = f.tick()
		var inherit []keyward.RateLimit
		got, err = f.s.UpdateKey(f.ctx, k.ID, keyward.KeyUpdate{RateLimits: &inherit, Quota: &keyward.Quota{}, NoCredits: true}, at, admin)
		if err != nil {
			f.t.Fatalf("UpdateKey(the plan's): %v", err)
		}
		want.RateLimits, want.Quota, want.Credits, want.UpdatedAt = nil, nil, nil, at
		wantKey(f.t, "UpdateKey(the plan's)", got, &want)
	}},
}
