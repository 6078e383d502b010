package main

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/view"
)

// TestLimitsFlags: the command line sets rate limits, quotas and credits
// on plans, tenants and keys as the API does, and prints them.
func TestLimitsFlags(t *testing.T) {
	db := newDB(t)
	p := decodeJSON[keyward.Plan](t, ok(t, db, "plans", "create", "pro", "--json",
		"--key-rate-limit", "burst:10/1s:20", "--key-rate-limit", "hourly:1000/1h",
		"--key-quota", "100000/month", "--tenant-rate-limit", "all:100/1s", "--tenant-quota", "5000/day").stdout)
	wantRates := []keyward.RateLimit{
		{Name: "burst", Limit: 10, Period: keyward.Duration(time.Second), Burst: 20},
		{Name: "hourly", Limit: 1000, Period: keyward.Duration(time.Hour)},
	}
	if !reflect.DeepEqual(p.KeyRateLimits, wantRates) || *p.KeyQuota != (keyward.Quota{Limit: 100000, Period: keyward.QuotaMonth}) ||
		len(p.TenantRateLimits) != 1 || *p.TenantQuota != (keyward.Quota{Limit: 5000, Period: keyward.QuotaDay}) {
		t.Fatalf("plans create with limits: %+v", p)
	}
	o := ok(t, db, "plans", "show", "pro")
	if !strings.Contains(o.stdout, "burst 10 per 1s (burst 20), hourly 1000 per 1h") || !strings.Contains(o.stdout, "5000 per day") {
		t.Errorf("plans show printed\n%s", o.stdout)
	}
	p = decodeJSON[keyward.Plan](t, ok(t, db, "plans", "update", "pro", "--json", "--key-rate-limit", "", "--unset", "tenant_quota").stdout)
	if p.KeyRateLimits == nil || len(p.KeyRateLimits) != 0 || p.TenantQuota != nil {
		t.Errorf("plans update --key-rate-limit \"\" --unset tenant_quota: %+v", p)
	}

	ok(t, db, "tenants", "create", "acme", "--plan", "pro")
	tn := decodeJSON[keyward.Tenant](t, ok(t, db, "tenants", "update", "acme", "--json", "--rate-limit", "burst:50/1s", "--quota", "9/month", "--time-zone", "Europe/Paris").stdout)
	if len(tn.RateLimits) != 1 || tn.Quota.Limit != 9 || tn.TimeZone != "Europe/Paris" || tn.Plan != "pro" {
		t.Errorf("tenants update with limits: %+v", tn)
	}
	o = ok(t, db, "tenants", "update", "acme", "--unset", "rate_limits,quota")
	if !strings.Contains(o.stderr, "Updated tenant acme") || !strings.Contains(o.stdout, "the plan's") || !strings.Contains(o.stdout, "Europe/Paris") {
		t.Errorf("tenants update --unset printed %q and %q", o.stdout, o.stderr)
	}

	k := decodeJSON[view.CreatedKey](t, ok(t, db, "keys", "create", "--tenant", "acme", "--name", "metered", "--json",
		"--credits", "500", "--refill", "500/month", "--rate-limit", "burst:5/1s").stdout)
	if k.Credits == nil || k.Credits.Remaining != 500 || k.Credits.Refill.Amount != 500 || len(k.RateLimits) != 1 {
		t.Fatalf("keys create with credits: %+v", k.Key.Key)
	}
	o = ok(t, db, "keys", "update", k.ID, "--credits", "7", "--unset", "rate_limits")
	if !strings.Contains(o.stdout, "7 left") || !strings.Contains(o.stdout, "the plan's") {
		t.Errorf("keys update --credits 7 printed\n%s", o.stdout)
	}
	o = ok(t, db, "keys", "usage", k.ID)
	if !strings.Contains(o.stdout, "7 left") || !strings.Contains(o.stdout, "0 of 100000 used") || !strings.Contains(o.stdout, "(plan's)") {
		t.Errorf("keys usage printed\n%s", o.stdout)
	}
	if u := decodeJSON[manage.TenantUsage](t, ok(t, db, "tenants", "usage", "acme", "--json").stdout); u.TimeZone != "Europe/Paris" || u.RateLimitsFrom != "plan" {
		t.Errorf("tenants usage --json: %+v", u)
	}
	fails(t, db, 2, []string{"keys", "update", k.ID, "--rate-limit", "burst/10"}, "--rate-limit", "NAME:LIMIT/PERIOD")
	fails(t, db, 2, []string{"keys", "update", k.ID, "--refill", "5/day"}, "--refill needs --credits")
	fails(t, db, 2, []string{"keys", "update", k.ID, "--quota", "5/week"}, "neither day nor month")
	fails(t, db, 1, []string{"keys", "update", k.ID, "--quota", "0/day"}, "quota.limit", "from 1")
}
