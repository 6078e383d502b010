package storetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
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

// meterTests: Spend takes a request's cost from a key's credits and from
// the key's and the tenant's quotas, all or nothing, exactly under
// concurrency; credits are refilled at the start of their interval, a
// quota counts afresh in a new period, and credits set by the API are not
// undone by the spends that follow.
var meterTests = []test{
	{"credits are exact under concurrency", func(f *fixture) {
		tn := f.createTenant("acme")
		k := f.meteredKey(tn.ID, &keyward.Credits{Remaining: 150}, nil)
		const goroutines, each = workers, 25 // more spends than credits
		var allowed atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, goroutines*each)
		for range goroutines {
			wg.Go(func() {
				for range each {
					got, err := f.spendOne(f.spend(k, 1, nil, nil))
					switch {
					case err != nil:
						errs <- err
					case got.Allowed:
						allowed.Add(1)
					case got.Refused != keyward.SpentCredits || got.CreditsRemaining != 0:
						errs <- fmt.Errorf("a refused spend: %+v; want one refused by credits, with 0 left", got)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			f.t.Error(err)
		}
		if allowed.Load() != 150 {
			f.t.Errorf("%d spends allowed from 150 credits, want exactly 150", allowed.Load())
		}
		f.wantCredits(k.ID, 0)
	}},
	{"a refused spend takes nothing", func(f *fixture) {
		tn := f.createTenant("acme")
		k := f.meteredKey(tn.ID, &keyward.Credits{Remaining: 10}, nil)
		keyQuota := &keyward.QuotaSpend{Limit: 4, Period: "2026-11-28"}
		tenantQuota := &keyward.QuotaSpend{Limit: 100, Period: "2026-11"}
		for i := range 4 {
			got, err := f.spendOne(f.spend(k, 1, keyQuota, tenantQuota))
			if err != nil || !got.Allowed || got.CreditsRemaining != int64(9-i) || got.KeyQuotaUsed != int64(i+1) || got.TenantQuotaUsed != int64(i+1) {
				f.t.Fatalf("spend %d: %+v, %v", i+1, got, err)
			}
		}
		got, err := f.spendOne(f.spend(k, 1, keyQuota, tenantQuota))
		if err != nil || got.Allowed || got.Refused != keyward.SpentKeyQuota || got.KeyQuotaUsed != 4 {
			f.t.Fatalf("the spend past the key's quota: %+v, %v; want refused by key_quota at 4", got, err)
		}
		f.wantCredits(k.ID, 6)
		f.wantQuotaUsed(keyward.QuotaSubject('t', tn.ID), "2026-11", 4)
		// A cost larger than what is left is refused whole.
		got, err = f.spendOne(f.spend(k, 7, nil, tenantQuota))
		if err != nil || got.Allowed || got.Refused != keyward.SpentCredits || got.CreditsRemaining != 6 {
			f.t.Fatalf("a spend of 7 from 6 credits: %+v, %v", got, err)
		}
		f.wantQuotaUsed(keyward.QuotaSubject('t', tn.ID), "2026-11", 4)
		// A cost is taken from credits; a quota counts the request once.
		if got, err := f.spendOne(f.spend(k, 5, nil, tenantQuota)); err != nil || !got.Allowed || got.CreditsRemaining != 1 || got.TenantQuotaUsed != 5 {
			f.t.Fatalf("a spend of 5: %+v, %v; want 1 credit left and the quota at 5", got, err)
		}
		// The tenant's quota, shared by its keys, refuses too.
		other := f.meteredKey(tn.ID, nil, nil)
		smallQuota := &keyward.QuotaSpend{Limit: 6, Period: "2026-11"}
		if got, err := f.spendOne(f.spend(other, 1, nil, smallQuota)); err != nil || !got.Allowed || got.TenantQuotaUsed != 6 {
			f.t.Fatalf("a spend up to the tenant's quota: %+v, %v", got, err)
		}
		got, err = f.spendOne(f.spend(other, 1, nil, smallQuota))
		if err != nil || got.Allowed || got.Refused != keyward.SpentTenantQuota || got.TenantQuotaUsed != 6 {
			f.t.Fatalf("a spend past the tenant's quota: %+v, %v", got, err)
		}
		// A new period counts afresh.
		if got, err := f.spendOne(f.spend(k, 1, &keyward.QuotaSpend{Limit: 4, Period: "2026-11-29"}, nil)); err != nil || !got.Allowed || got.KeyQuotaUsed != 1 {
			f.t.Fatalf("a spend in the next day: %+v, %v", got, err)
		}
	}},
	{"a check takes nothing", func(f *fixture) {
		tn := f.createTenant("acme")
		k := f.meteredKey(tn.ID, &keyward.Credits{Remaining: 2}, nil)
		quota := &keyward.QuotaSpend{Limit: 1, Period: "2026-11"}
		check := f.spend(k, 1, nil, quota)
		check.Check = true
		for range 3 {
			if got, err := f.spendOne(check); err != nil || !got.Allowed || got.CreditsRemaining != 1 || got.TenantQuotaUsed != 1 {
				f.t.Fatalf("a check with 2 credits and a quota of 1: %+v, %v; want allowed, 1 left, the quota at 1", got, err)
			}
		}
		f.wantCredits(k.ID, 2)
		f.wantQuotaUsed(keyward.QuotaSubject('t', tn.ID), "2026-11", 0)
		if got, err := f.spendOne(f.spend(k, 1, nil, quota)); err != nil || !got.Allowed {
			f.t.Fatalf("the spend after the checks: %+v, %v", got, err)
		}
		if got, err := f.spendOne(check); err != nil || got.Allowed || got.Refused != keyward.SpentTenantQuota {
			f.t.Fatalf("a check past the quota: %+v, %v; want refused by tenant_quota", got, err)
		}
		f.wantCredits(k.ID, 1)
		f.wantQuotaUsed(keyward.QuotaSubject('t', tn.ID), "2026-11", 1)
	}},
	{"credits are refilled at the start of their interval", func(f *fixture) {
		tn := f.createTenant("acme")
		k := f.meteredKey(tn.ID, &keyward.Credits{Remaining: 2, Refill: &keyward.Refill{Amount: 10, Interval: keyward.QuotaDay}}, nil)
		day := time.Date(k.CreatedAt.Year(), k.CreatedAt.Month(), k.CreatedAt.Day(), 0, 0, 0, 0, time.UTC)
		sp := f.spend(k, 1, nil, nil)
		sp.DayStart, sp.MonthStart, sp.At = day, day.AddDate(0, 0, 1-day.Day()), k.CreatedAt
		for _, want := range []int64{1, 0} {
			if got, err := f.spendOne(sp); err != nil || !got.Allowed || got.CreditsRemaining != want {
				f.t.Fatalf("a spend the day the key was made: %+v, %v; want %d left", got, err, want)
			}
		}
		if got, err := f.spendOne(sp); err != nil || got.Allowed {
			f.t.Fatalf("a spend with no credits left: %+v, %v", got, err)
		}
		sp.DayStart, sp.At = day.AddDate(0, 0, 1), day.AddDate(0, 0, 1).Add(time.Hour)
		if got, err := f.spendOne(sp); err != nil || !got.Allowed || got.CreditsRemaining != 9 {
			f.t.Fatalf("the first spend of the next day: %+v, %v; want 10 refilled, 9 left", got, err)
		}
		if got, err := f.spendOne(sp); err != nil || !got.Allowed || got.CreditsRemaining != 8 {
			f.t.Fatalf("the second spend of the next day: %+v, %v; want no second refill", got, err)
		}
	}},
	{"a successor takes the credits as they are", func(f *fixture) {
		tn := f.createTenant("acme")
		k := f.meteredKey(tn.ID, &keyward.Credits{Remaining: 10, Refill: &keyward.Refill{Amount: 10, Interval: keyward.QuotaMonth}}, nil)
		for range 3 {
			if got, err := f.spendOne(f.spend(k, 1, nil, nil)); err != nil || !got.Allowed {
				f.t.Fatalf("spend: %+v, %v", got, err)
			}
		}
		next := f.newKey(tn.ID, keyward.Live)
		next.Credits = k.Credits // as the caller read them: 10
		if _, err := f.s.RotateKey(f.ctx, k.ID, next, f.tick(), admin); err != nil {
			f.t.Fatalf("RotateKey: %v", err)
		}
		got, err := f.s.Key(f.ctx, next.ID)
		if err != nil {
			f.t.Fatal(err)
		}
		if got.Credits == nil || got.Credits.Remaining != 7 || got.Credits.Refill == nil || got.Credits.Refill.Amount != 10 {
			f.t.Errorf("the successor's credits: %s; want the 7 left, refilled to 10", jsonOf(got.Credits))
		}
	}},
	{"credits set by the API are spent from", func(f *fixture) {
		tn := f.createTenant("acme")
		k := f.meteredKey(tn.ID, &keyward.Credits{Remaining: 5}, nil)
		if got, err := f.spendOne(f.spend(k, 1, nil, nil)); err != nil || got.CreditsRemaining != 4 {
			f.t.Fatalf("spend: %+v, %v", got, err)
		}
		if _, err := f.s.UpdateKey(f.ctx, k.ID, keyward.KeyUpdate{Credits: &keyward.Credits{Remaining: 100}}, f.tick(), admin); err != nil {
			f.t.Fatal(err)
		}
		if got, err := f.spendOne(f.spend(k, 2, nil, nil)); err != nil || got.CreditsRemaining != 98 {
			f.t.Fatalf("spend after the API set 100: %+v, %v", got, err)
		}
		// A key whose credits were taken away is not refused for them.
		if _, err := f.s.UpdateKey(f.ctx, k.ID, keyward.KeyUpdate{NoCredits: true}, f.tick(), admin); err != nil {
			f.t.Fatal(err)
		}
		if got, err := f.spendOne(f.spend(k, 1000, nil, nil)); err != nil || !got.Allowed {
			f.t.Fatalf("spend from a key without credits: %+v, %v", got, err)
		}
	}},
}

// meteredKey stores a key of tenantID with credits and a quota.
func (f *fixture) meteredKey(tenantID string, credits *keyward.Credits, quota *keyward.Quota) *keyward.Key {
	f.t.Helper()
	k := f.newKey(tenantID, keyward.Live)
	k.Credits, k.Quota = credits, quota
	if err := f.s.CreateKey(f.ctx, k, admin); err != nil {
		f.t.Fatalf("CreateKey: %v", err)
	}
	return k
}

// spend is a Spend of cost by key k, counted against the quotas given.
func (f *fixture) spend(k *keyward.Key, cost int64, keyQuota, tenantQuota *keyward.QuotaSpend) keyward.Spend {
	now := k.CreatedAt
	return keyward.Spend{KeyID: k.ID, TenantID: k.TenantID, Cost: cost, Credits: k.Credits != nil,
		DayStart: now.Truncate(24 * time.Hour), MonthStart: now.AddDate(0, 0, 1-now.Day()).Truncate(24 * time.Hour),
		KeyQuota: keyQuota, TenantQuota: tenantQuota, At: now}
}

// wantCredits fails the test unless key id has remaining credits left.
func (f *fixture) wantCredits(id string, remaining int64) {
	f.t.Helper()
	k, err := f.s.Key(f.ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	if k.Credits == nil || k.Credits.Remaining != remaining {
		f.t.Errorf("key %s has credits %s, want %d left", id, jsonOf(k.Credits), remaining)
	}
}

// wantQuotaUsed fails the test unless a subject's count in a period is used.
func (f *fixture) wantQuotaUsed(subject, period string, used int64) {
	f.t.Helper()
	got, err := f.s.QuotaUsed(f.ctx, subject, period)
	if err != nil || got != used {
		f.t.Errorf("QuotaUsed(%s, %s) = %d, %v; want %d", subject, period, got, err, used)
	}
}

// spendOne is a batch of the one spend sp: what it did, and its error or
// the batch's. It may be called from any goroutine.
func (f *fixture) spendOne(sp keyward.Spend) (keyward.Spent, error) {
	spent, err := f.s.SpendBatch(f.ctx, []keyward.Spend{sp})
	if err != nil {
		return keyward.Spent{}, err
	}
	if len(spent) != 1 {
		return keyward.Spent{}, fmt.Errorf("SpendBatch of 1 spend returned %d", len(spent))
	}
	return spent[0], spent[0].Err
}
