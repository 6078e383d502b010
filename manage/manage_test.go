package manage

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/sqlite"
	"github.com/keyward/keyward/verify"
)

func newService(t *testing.T, now time.Time) (*Service, *sqlite.Store) {
	t.Helper()
	return newServiceOn(t, func() time.Time { return now })
}

// newServiceOn is a service on a new SQLite database, with clock.
func newServiceOn(t *testing.T, clock keyward.Clock) (*Service, *sqlite.Store) {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f, _ := apikey.NewFormat("sk")
	return New(Config{Store: store, Format: f, Clock: clock}), store
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"90d": 90 * 24 * time.Hour, "2w": 14 * 24 * time.Hour, "1h": time.Hour, "30m": 30 * time.Minute,
		"2s": 2 * time.Second, "0": 0, "1h30m": 90 * time.Minute,
	} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, msg := range map[string]string{
		"":                     `"" is not a duration`,
		"soon":                 `"soon" is not a duration`,
		"5y":                   `"5y" is not a duration`,
		"-1h":                  `"-1h" is negative`,
		"-90d":                 `"-90d" is negative`,
		"-99999999999999d":     `"-99999999999999d" is negative`,
		"36501d":               `"36501d" is longer than the maximum of 36500d (100 years)`,
		"5215w":                `"5215w" is longer than the maximum of 36500d (100 years)`,
		"876001h":              `"876001h" is longer than the maximum of 36500d (100 years)`,
		"99999999999999d":      `"99999999999999d" is longer than the maximum of 36500d (100 years)`,
		"9999999999999999999h": `"9999999999999999999h" is longer than the maximum of 36500d (100 years)`,
	} {
		if _, err := ParseDuration(in); err == nil || err.Error() != msg {
			t.Errorf("ParseDuration(%q): %v; want %q", in, err, msg)
		}
	}
	// The maximum itself, in each unit.
	for _, in := range []string{"36500d", "5214w", "876000h", "52560000m", "3153600000s"} {
		if d, err := ParseDuration(in); err != nil || d > MaxDuration {
			t.Errorf("ParseDuration(%q) = %v, %v; want at most %v", in, d, err, MaxDuration)
		}
	}
}

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2027-01-01":                time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
		"2027-01-01T10:00:00Z":      time.Date(2027, 1, 1, 10, 0, 0, 0, time.UTC),
		"2026-11-24T14:00:00+01:00": time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC),
		"2027-01-01T23:59:00+23:59": time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
		"90d":                       now.Add(90 * 24 * time.Hour),
		"2s":                        now.Add(2 * time.Second),
	} {
		got, err := parseWhen("expires", in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, msg := range map[string]string{
		"2026-11-24": "in the past", "2020-01-01T00:00:00Z": "in the past", "0s": "zero", "tomorrow": "not a date",
		"":       "not a date",
		"-1h":    `"-1h" is negative`,
		"36501d": `"36501d" is longer than the maximum of 36500d (100 years)`,
		// Year 10000 in UTC, which JSON cannot encode; and the first
		// microsecond past 100 years from now.
		"9999-12-31T23:30:00-23:59":   "more than 36500d (100 years) ahead",
		"9999-12-31":                  "more than 36500d (100 years) ahead",
		"2126-10-31T12:00:00.000001Z": "no later than 2126-10-31T12:00:00Z",
		"2027-01-01T00:00:00+24:00":   "offset of 24 hours or more",
		"2027-01-01T00:00:00-24:00":   "offset of 24 hours or more",
	} {
		_, err := parseWhen("expires", in, now)
		if e, ok := err.(*keyward.Error); !ok || e.Field != "expires" || !strings.Contains(e.Message, msg) {
			t.Errorf("parseWhen(%q): %v; want a field error mentioning %q", in, err, msg)
		}
	}
	if got, err := parseWhen("expires", "2126-10-31T12:00:00Z", now); err != nil || !got.Equal(now.Add(MaxDuration)) {
		t.Errorf("100 years ahead: %v, %v", got, err)
	}
}

// TestParseChange: an update's "never" clears a time, "" is refused, and
// a new key's "never" or absent field is no time.
func TestParseChange(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	str := func(s string) *string { return &s }
	if got, err := parseChange("expires", str("never"), now); err != nil || got == nil || !got.IsZero() {
		t.Errorf("never: %v, %v; want the zero time", got, err)
	}
	if got, err := parseChange("expires", nil, now); err != nil || got != nil {
		t.Errorf("absent: %v, %v; want nil", got, err)
	}
	for _, in := range []*string{nil, str("never")} {
		if got, err := parseOptionalWhen("expires", in, now); err != nil || got != nil {
			t.Errorf("a new key's %v: %v, %v; want no time", in, got, err)
		}
	}
	for _, in := range []string{"", " "} {
		_, err := parseChange("rotate_by", str(in), now)
		if e, ok := err.(*keyward.Error); !ok || e.Field != "rotate_by" || !strings.Contains(e.Message, "is empty") {
			t.Errorf("%q: %v; want a field error that says it is empty", in, err)
		}
		if _, err := parseOptionalWhen("expires", str(in), now); keyward.ErrorCode(err) != keyward.CodeInvalidRequest {
			t.Errorf("a new key's %q: %v; want invalid_request", in, err)
		}
	}
}

// TestBootstrap: the first start issues one root key; later starts none,
// and a start that stopped after creating the system tenant but before its
// key still ends with one.
func TestBootstrap(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	svc, store := newService(t, now)
	root, err := svc.Bootstrap(ctx)
	if err != nil || root == "" {
		t.Fatalf("first bootstrap: %q, %v", root, err)
	}
	k, err := store.KeyByHash(ctx, apikey.Hash(root))
	if err != nil || k.TenantID != keyward.SystemTenantID || !k.HasPermission(keyward.PermAdmin) || k.CreatedBy != "cli" {
		t.Fatalf("root key: %+v, %v", k, err)
	}
	if !CallerOf(verify.Result{Key: k}, "").Root() {
		t.Error("the root key's caller is not root")
	}
	if again, err := svc.Bootstrap(ctx); again != "" || err != nil {
		t.Errorf("second bootstrap: %q, %v", again, err)
	}

	half, store2 := newService(t, now)
	sys := &keyward.Tenant{ID: keyward.SystemTenantID, Slug: keyward.SystemTenantSlug, Plan: DefaultPlan, Status: keyward.TenantActive, CreatedAt: now, UpdatedAt: now}
	if err := store2.CreateTenant(ctx, sys, keyward.CommandLineActor()); err != nil {
		t.Fatal(err)
	}
	if root, err := half.Bootstrap(ctx); root == "" || err != nil {
		t.Errorf("bootstrap after a half-done start: %q, %v", root, err)
	}
}

// TestBootstrapAtOnce: processes that start on a new database at the same
// moment issue one root key between them.
func TestBootstrapAtOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.db")
	f, _ := apikey.NewFormat("sk")
	const starts = 4
	var services [starts]*Service
	for i := range services {
		store, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		services[i] = New(Config{Store: store, Format: f})
	}
	var (
		wg    sync.WaitGroup
		roots [starts]string
		errs  [starts]error
	)
	for i, svc := range services {
		wg.Go(func() { roots[i], errs[i] = svc.Bootstrap(t.Context()) })
	}
	wg.Wait()
	printed := 0
	for i := range roots {
		if errs[i] != nil {
			t.Errorf("start %d: %v", i, errs[i])
		}
		if roots[i] != "" {
			printed++
		}
	}
	if printed != 1 {
		t.Errorf("%d of %d simultaneous starts issued a root key, want 1", printed, starts)
	}
	keys, _, err := services[0].Keys(t.Context(), CommandLine(), KeyListInput{TenantID: keyward.SystemTenantID}, keyward.Page{})
	if err != nil || len(keys) != 1 || keys[0].ID != FirstRootKeyID {
		t.Errorf("the system tenant's keys: %v, %v; want the one root key %s", keys, err, FirstRootKeyID)
	}
}

func TestSystemTenantCannotBeSuspended(t *testing.T) {
	svc, _ := newService(t, time.Now())
	if _, err := svc.Bootstrap(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := svc.SuspendTenant(context.Background(), CommandLine(), keyward.SystemTenantSlug)
	if keyward.ErrorCode(err) != keyward.CodeInvalidRequest {
		t.Errorf("suspending the system tenant: %v", err)
	}
}

// TestOutsideIPs: a key's ranges lie inside a restricted caller's when each
// is contained in one of the caller's, whatever the address family or
// notation; a key without ranges (every address) does not.
func TestOutsideIPs(t *testing.T) {
	c := Caller{Restrictions: keyward.Restrictions{IPs: []string{"10.0.0.0/8", "2001:db8::/32", "not a range"}}}
	for _, tc := range []struct {
		ips     []string
		i       int
		outside bool
	}{
		{[]string{"10.0.0.0/8"}, 0, false},
		{[]string{"10.1.2.3", "10.200.0.0/16", "2001:db8:1::/48", "::ffff:10.0.0.1", "2001:db8::1"}, 0, false},
		{nil, -1, true},
		{[]string{"10.0.0.0/7"}, 0, true},
		{[]string{"10.0.0.1", "11.0.0.0/8"}, 1, true},
		{[]string{"0.0.0.0/0"}, 0, true},
		{[]string{"::/0"}, 0, true},
		{[]string{"2001:db8::/31"}, 0, true},
		{[]string{"::ffff:10.0.0.0/96"}, 0, true},
		{[]string{"::a00:1"}, 0, true},
		{[]string{"not a range"}, 0, true},
	} {
		if i, outside := c.outsideIPs(tc.ips); i != tc.i || outside != tc.outside {
			t.Errorf("outsideIPs(%q) = %d, %v; want %d, %v", tc.ips, i, outside, tc.i, tc.outside)
		}
	}
	if _, outside := (Caller{}).outsideIPs(nil); outside {
		t.Error("a caller without ranges bounds nothing, yet refused a key without ranges")
	}
}

// TestRestrictionsOnce: a range given twice, in any notation, is kept once.
func TestRestrictionsOnce(t *testing.T) {
	r, err := checkRestrictions(&keyward.Restrictions{IPs: []string{"2001:db8::/32", "10.0.0.1", "10.0.0.1/32", "::ffff:10.0.0.1", "2001:db8::1/32"}})
	if err != nil || !slices.Equal(r.IPs, []string{"2001:db8::/32", "10.0.0.1/32"}) {
		t.Errorf("checkRestrictions: %v, %v", r.IPs, err)
	}
}

// TestCheckRestrictions: referrers, endpoints and resources are held to
// their limits and shapes, each error naming the entry at fault; repeats
// are kept once.
func TestCheckRestrictions(t *testing.T) {
	r, err := checkRestrictions(&keyward.Restrictions{
		Referrers: []string{"https://app.example.com", " https://app.example.com "},
		Endpoints: []string{"GET /v1/contacts/**", "* /v1/reports/*"},
		Resources: map[string][]string{"site": {"site_1", "site_1", "site_2"}},
	})
	if err != nil || !slices.Equal(r.Referrers, []string{"https://app.example.com"}) || len(r.Endpoints) != 2 || !slices.Equal(r.Resources["site"], []string{"site_1", "site_2"}) {
		t.Errorf("checkRestrictions: %+v, %v", r, err)
	}
	many := make([]string, MaxPatterns+1)
	for i := range many {
		many[i] = fmt.Sprintf("https://%d.example.com", i)
	}
	for field, in := range map[string]keyward.Restrictions{
		"restrictions.referrers":             {Referrers: many},
		"restrictions.referrers[0]":          {Referrers: []string{""}},
		"restrictions.referrers[1]":          {Referrers: []string{"https://a.example", "https://a.example/ x"}},
		"restrictions.endpoints[0]":          {Endpoints: []string{"/v1/contacts"}},
		"restrictions.endpoints[1]":          {Endpoints: []string{"GET /", "GET v1"}},
		"restrictions.endpoints[1] (brace)":  {Endpoints: []string{"GET /", "GET /v1/{id"}},
		"restrictions.endpoints[0] (method)": {Endpoints: []string{"get /v1"}},
		"restrictions.referrers[0] (host)":   {Referrers: []string{"https://"}},
		"restrictions.resources":             {Resources: map[string][]string{"1site": {"a"}}},
		"restrictions.resources.site":        {Resources: map[string][]string{"site": {}}},
		"restrictions.resources.site[0]":     {Resources: map[string][]string{"site": {"a\u200bb"}}},
		"restrictions.resources.site[1]":     {Resources: map[string][]string{"site": {"a", strings.Repeat("x", MaxResourceValueLen+1)}}},
		"restrictions.referrers[0] (length)": {Referrers: []string{"https://" + strings.Repeat("x", MaxPatternLen)}},
	} {
		_, err := checkRestrictions(&in)
		want, _, _ := strings.Cut(field, " ")
		if e, ok := err.(*keyward.Error); !ok || e.Code != keyward.CodeInvalidRequest || e.Field != want {
			t.Errorf("%s: %v", field, err)
		}
	}
}

// TestMemberFields: emails, external ids and roles are checked as a
// person's details are expected to look.
func TestMemberFields(t *testing.T) {
	for _, ok := range []string{"ada@example.com", "Ada.Lovelace+keys@mail.example.co.uk", " ada@example.com "} {
		if _, err := checkEmail(ok); err != nil {
			t.Errorf("checkEmail(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "ada", "ada@", "@example.com", "ada@localhost", "Ada <ada@example.com>", "a@b@example.com",
		"ada@example..com", "ada@.example.com", "a b@example.com", "ada@example.com,bob@example.com", strings.Repeat("a", 65) + "@example.com",
		"ada@" + strings.Repeat("x", 250) + ".com", "ada\u202e@example.com"} {
		if _, err := checkEmail(bad); keyward.ErrorCode(err) != keyward.CodeInvalidRequest {
			t.Errorf("checkEmail(%q): %v", bad, err)
		}
	}
	for id, ok := range map[string]bool{"": true, "user_1": true, "auth0|5f7c8ec7c33c6c004bbafe82": true, strings.Repeat("é", 128): true,
		strings.Repeat("x", 129): false, "user 1": false, "user\t1": false, "user\u200b1": false} {
		if _, err := checkExternalID(id); (err == nil) != ok {
			t.Errorf("checkExternalID(%q): %v", id, err)
		}
	}
	for role, ok := range map[string]bool{"owner": true, "viewer": true, "": false, "Owner": false, "root": false} {
		if _, err := checkRole(role); (err == nil) != ok {
			t.Errorf("checkRole(%q): %v", role, err)
		}
	}
}
