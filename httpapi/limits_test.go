package httpapi

import (
	"fmt"
	"testing"

	"github.com/keyward/keyward"
)

// TestLimitsManagement: rate limits, quotas and credits are set on plans,
// tenants and keys through the API by the operator alone; a tenant's own
// admin key gets 403 naming the field; each value is checked, the error
// naming the field at fault; unset gives back the plan's values.
func TestLimitsManagement(t *testing.T) {
	h := newHarness(t)
	p := h.must(201, "POST", "/v1/plans", h.root, map[string]any{
		"name":               "pro",
		"key_rate_limits":    []map[string]any{{"name": "burst", "limit": 10, "period": "1s", "burst": 20}},
		"key_quota":          map[string]any{"limit": 1000, "period": "day"},
		"tenant_rate_limits": []map[string]any{{"name": "hourly", "limit": 5000, "period": "1h"}},
	}).data()
	if got := fmt.Sprintf("%v %v %v %v", p["key_rate_limits"], p["key_quota"], p["tenant_rate_limits"], p["tenant_quota"]); got !=
		"[map[burst:20 limit:10 name:burst period:1s]] map[limit:1000 period:day] [map[limit:5000 name:hourly period:1h0m0s]] <nil>" {
		t.Errorf("a new plan's limits: %s", got)
	}
	if p := h.must(200, "PATCH", "/v1/plans/pro", h.root, map[string]any{"unset": []string{"key_quota"}, "tenant_rate_limits": []any{}}).data(); p["key_quota"] != nil || fmt.Sprint(p["tenant_rate_limits"]) != "[]" {
		t.Errorf("the plan after unset: %v", p)
	}

	acme := h.must(201, "POST", "/v1/tenants", h.root, map[string]any{"slug": "acme", "plan": "pro"}).data()
	if acme["rate_limits"] != nil || acme["quota"] != nil || acme["time_zone"] != "" {
		t.Errorf("a new tenant's limits: %v", acme)
	}
	tn := h.must(200, "PATCH", "/v1/tenants/acme", h.root, map[string]any{
		"rate_limits": []map[string]any{{"name": "burst", "limit": 100, "period": "1s"}},
		"quota":       map[string]any{"limit": 1000000, "period": "month"},
		"time_zone":   "Europe/Paris",
	}).data()
	if fmt.Sprintf("%v %v %v", tn["rate_limits"], tn["quota"], tn["time_zone"]) != "[map[limit:100 name:burst period:1s]] map[limit:1e+06 period:month] Europe/Paris" {
		t.Errorf("the tenant's limits: %v", tn)
	}
	tn = h.must(200, "PATCH", "/v1/tenants/acme", h.root, map[string]any{"unset": []string{"rate_limits", "quota"}}).data()
	if tn["rate_limits"] != nil || tn["quota"] != nil || tn["time_zone"] != "Europe/Paris" {
		t.Errorf("the tenant after unset: %v", tn)
	}

	admin, _ := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "admin", "permissions": []string{keyward.PermManageKeys}})
	k := h.must(201, "POST", "/v1/api-keys", h.root, map[string]any{
		"tenant_id": "acme", "name": "metered",
		"credits": map[string]any{"remaining": 500, "refill": map[string]any{"amount": 500, "interval": "month"}},
	}).data()
	if fmt.Sprintf("%v %v %v", k["credits"], k["rate_limits"], k["quota"]) != "map[refill:map[amount:500 interval:month] remaining:500] <nil> <nil>" {
		t.Errorf("a new key's credits and limits: %v %v %v", k["credits"], k["rate_limits"], k["quota"])
	}
	id := k["id"].(string)
	k = h.must(200, "PATCH", "/v1/api-keys/"+id, h.root, map[string]any{"rate_limits": []any{}, "credits": map[string]any{"remaining": 7}}).data()
	if fmt.Sprintf("%v %v", k["rate_limits"], k["credits"]) != "[] map[remaining:7]" {
		t.Errorf("the key after PATCH: %v %v", k["rate_limits"], k["credits"])
	}
	k = h.must(200, "PATCH", "/v1/api-keys/"+id, h.root, map[string]any{"unset": []string{"rate_limits", "credits"}}).data()
	if k["rate_limits"] != nil || k["credits"] != nil {
		t.Errorf("the key after unset: %v %v", k["rate_limits"], k["credits"])
	}

	// The tenant's own admin manages keys, not their limits.
	for _, c := range []struct {
		method, path string
		body         map[string]any
		field        string
	}{
		{"POST", "/v1/api-keys", map[string]any{"name": "x", "rate_limits": []any{}}, "rate_limits"},
		{"POST", "/v1/api-keys", map[string]any{"name": "x", "credits": map[string]any{"remaining": 5}}, "credits"},
		{"PATCH", "/v1/api-keys/" + id, map[string]any{"quota": map[string]any{"limit": 5, "period": "day"}}, "quota"},
		{"PATCH", "/v1/api-keys/" + id, map[string]any{"unset": []string{"credits"}}, "credits"},
	} {
		a := h.call(c.method, c.path, admin, c.body)
		problemOf(t, a, 403, keyward.CodeInsufficientPermissions)
		if a.str("field") != c.field {
			t.Errorf("%s %s %v by the tenant's admin: field %q, want %q", c.method, c.path, c.body, a.str("field"), c.field)
		}
	}
	problemOf(t, h.call("PATCH", "/v1/tenants/acme", admin, map[string]any{"time_zone": "UTC"}), 403, keyward.CodeInsufficientPermissions)
	problemOf(t, h.call("PATCH", "/v1/plans/pro", admin, map[string]any{"key_quota": map[string]any{"limit": 1, "period": "day"}}), 403, keyward.CodeInsufficientPermissions)

	rootID := h.must(200, "GET", "/v1/whoami", h.root, nil).data()["key_id"].(string)
	// Each value is checked, the error naming the field.
	for _, c := range []struct {
		method, path, body, field string
	}{
		{"PATCH", "/v1/plans/pro", `{"key_rate_limits": [{"name": "Burst", "limit": 1, "period": "1s"}]}`, "key_rate_limits[0].name"},
		{"PATCH", "/v1/plans/pro", `{"key_rate_limits": [{"name": "b", "limit": 0, "period": "1s"}]}`, "key_rate_limits[0].limit"},
		{"PATCH", "/v1/plans/pro", `{"tenant_rate_limits": [{"name": "b", "limit": 1, "period": "10ms"}]}`, "tenant_rate_limits[0].period"},
		{"PATCH", "/v1/plans/pro", `{"tenant_rate_limits": [{"name": "b", "limit": 1, "period": "1s"}, {"name": "b", "limit": 2, "period": "1m"}]}`, "tenant_rate_limits[1].name"},
		{"PATCH", "/v1/plans/pro", `{"key_quota": {"limit": 5, "period": "week"}}`, "key_quota.period"},
		{"PATCH", "/v1/plans/pro", `{"unset": ["max_keys"]}`, "unset[0]"},
		{"PATCH", "/v1/tenants/acme", `{"time_zone": "Mars/Olympus"}`, "time_zone"},
		{"PATCH", "/v1/tenants/acme", `{"quota": {"limit": 5, "period": "day"}, "unset": ["quota"]}`, "unset[0]"},
		{"PATCH", "/v1/api-keys/" + id, `{"credits": {"remaining": -1}}`, "credits.remaining"},
		{"PATCH", "/v1/api-keys/" + id, `{"credits": {"remaining": 1, "refill": {"amount": 0, "interval": "day"}}}`, "credits.refill.amount"},
		{"POST", "/v1/api-keys", `{"tenant_id": "acme", "name": "x", "rate_limits": [{"name": "b", "limit": 1, "period": "1s", "burst": -1}]}`, "rate_limits[0].burst"},
		// The operator's keys are never limited, so they take no limits.
		{"POST", "/v1/api-keys", `{"tenant_id": "system", "name": "x", "credits": {"remaining": 5}}`, "credits"},
		{"PATCH", "/v1/api-keys/" + rootID, `{"rate_limits": [{"name": "b", "limit": 1, "period": "1s"}]}`, "rate_limits"},
		{"PATCH", "/v1/tenants/system", `{"quota": {"limit": 5, "period": "day"}}`, "quota"},
	} {
		a := h.call(c.method, c.path, h.root, c.body)
		problemOf(t, a, 400, keyward.CodeInvalidRequest)
		if a.str("field") != c.field {
			t.Errorf("%s %s %s: field %q, want %q\n%s", c.method, c.path, c.body, a.str("field"), c.field, a.raw)
		}
	}
	a := h.call("PATCH", "/v1/plans/pro", h.root, `{"key_rate_limits": [{"name": "b", "limit": 1, "period": 5}]}`)
	problemOf(t, a, 400, keyward.CodeInvalidRequest)

	// Their usage says so, whatever the default plan (theirs) says.
	h.must(200, "PATCH", "/v1/plans/default", h.root, map[string]any{"key_rate_limits": []map[string]any{{"name": "burst", "limit": 1, "period": "1h"}},
		"key_quota": map[string]any{"limit": 1, "period": "day"}})
	u := h.must(200, "GET", "/v1/api-keys/"+rootID+"/usage", h.root, nil).data()
	if got := fmt.Sprint(u["key"], u["tenant"], u["credits"]); got != "map[quota:<nil> rate_limits:[] rate_limits_from:system] map[quota:<nil> rate_limits:[] rate_limits_from:system] <nil>" {
		t.Errorf("the usage of a root key: %s", got)
	}
	for range 3 {
		h.must(200, "GET", "/v1/whoami", h.root, nil)
	}
}
