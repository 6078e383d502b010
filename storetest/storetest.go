// Package storetest owns the test suite that every keyward.Store passes: the
// SQLite store runs it now, and any other store (PostgreSQL) runs the same
// suite, so that they behave alike.
//
// The suite defines what the Store interface leaves to the implementation:
//
//   - Times are kept to the microsecond and read back in UTC (their Location
//     is time.UTC). The suite only passes times that are whole microseconds,
//     given in another zone than UTC, and compares with time.Equal after
//     truncating to the microsecond, so a store may round or truncate.
//   - Nil and empty permission lists, metadata maps and IP lists are equal.
//   - Every successful mutation writes exactly one audit entry, whose At is
//     the time of the change (CreatedAt for a create, the at argument for an
//     update, the successor's CreatedAt for a rotation), and appends one
//     change per tenant, key, member or plan it changed, with the same At:
//     RotateKey appends two, for the old key and for the successor. The
//     exception is RemoveMember, which writes one entry and one change for
//     each key it revokes or moves besides the member's own. The catalogue's
//     writes append no change. A failed mutation, and a revocation of a
//     revoked key, write neither. Every entry names the actor's member.
//   - RecordUsage writes neither, and leaves UpdatedAt as it is.
//   - Lists hand out opaque cursors; a cursor that is not one is
//     keyward.CodeInvalidRequest. A list with no further page returns an
//     empty next cursor, also when the last page is full. A cursor stays
//     valid when rows are added before it.
//   - Keys are listed newest first by CreatedAt, then by id descending;
//     tenants and members oldest first by CreatedAt, then by id; plans and
//     the catalogue by name; the audit log newest first.
//   - An empty page is an empty, non-nil slice.
//   - A status filter on keys matches the status a key shows at the
//     filter's Now (keyward.Key.StatusAt): expired keys are listed as
//     expired, not as active or disabled.
//   - Page.Limit zero means keyward.DefaultPageLimit; a larger limit than
//     keyward.MaxPageLimit is no error.
//   - RotateKey stores the successor with RotatedFrom set to the old key's
//     id, and refuses a successor whose id or hash is taken
//     (keyward.CodeConflict) without changing anything.
//   - Concurrent writers all succeed, and a revocation or rotation that races
//     with another of the same key takes effect once. The rules that span
//     rows hold against writers at once: a tenant keeps an active owner, a
//     plan's key limit is not passed, no key is made for a member removed.
//   - A new store has the default plan, which includes everything, and an
//     empty catalogue.
//   - InitKeyPrefix stores a prefix once: the first call's prefix is the
//     one every later or simultaneous call returns, and KeyPrefix is
//     CodeNotFound before it. A new, empty store has none.
//   - Change sequence numbers become visible in order: a follower that reads
//     Changes from the last number it saw, while writers commit, misses
//     none.
//
// A store only ever sees the SHA-256 of a key; the suite checks that a key
// is found by that hash and never hands the store a plaintext.
package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// Run runs the suite. newStore returns a new, empty, migrated store for one
// subtest and arranges (with t.Cleanup) to close it and remove what it
// stored; Run never closes a store itself.
//
// The suite is split as the Store interface is: one subtest per interface
// (TenantStore, KeyStore, MemberStore, PlanStore, Catalogue, AuditStore,
// ChangeFeed, Settings), holding the groups of tests of its methods
// (KeyStore has one per write); Store holds Ping and Close, and
// Concurrency the writers that race.
func Run(t *testing.T, newStore func(t *testing.T) keyward.Store) {
	type group struct {
		name  string
		tests []test
	}
	concerns := []struct {
		name   string
		groups []group
	}{
		{"Store", []group{{"", storeTests}}},
		{"TenantStore", []group{{"", tenantTests}}},
		{"KeyStore", []group{
			{"Keys", keyTests},
			{"UpdateKey", updateKeyTests},
			{"RevokeKey", revokeKeyTests},
			{"RotateKey", rotateKeyTests},
			{"RecordUsage", usageTests},
		}},
		{"MemberStore", []group{
			{"Members", memberTests},
			{"OwnerRule", ownerRuleTests},
			{"RemoveMember", removeMemberTests},
			{"KeysOfMembers", keyMemberTests},
		}},
		{"PlanStore", []group{{"", planTests}}},
		{"Catalogue", []group{{"", catalogueTests}}},
		{"AuditStore", []group{{"", auditTests}}},
		{"RequestLogStore", []group{{"", requestLogTests}}},
		{"UsageStore", []group{{"", usageCountTests}}},
		{"Signals", []group{{"", signalTests}}},
		{"AccountStore", []group{{"", accountTests}, {"SignInLinks", linkTests}}},
		{"NoticeStore", []group{{"", noticeTests}}},
		{"ChangeFeed", []group{{"", changeTests}}},
		{"Settings", []group{{"", settingsTests}}},
		{"Limits", []group{{"", limitTests}, {"Meter", meterTests}, {"SpendBatch", spendBatchTests}}},
		{"Concurrency", []group{{"", concurrencyTests}, {"Access", concurrentAccessTests}}},
	}
	run := func(t *testing.T, tests []test) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				tc.fn(newFixture(t, newStore(t)))
			})
		}
	}
	for _, c := range concerns {
		t.Run(c.name, func(t *testing.T) {
			for _, g := range c.groups {
				if g.name == "" {
					run(t, g.tests)
					continue
				}
				t.Run(g.name, func(t *testing.T) { run(t, g.tests) })
			}
		})
	}
}

// test is one subtest of the suite.
type test struct {
	name string
	fn   func(f *fixture)
}

// Actors of the changes the suite makes: a root key, the command line, and
// a key that acts for a member (whom the audit log names too).
var (
	admin   = keyward.Actor{ID: "key_root", IP: "203.0.113.7"}
	cli     = keyward.CommandLineActor()
	byOwner = keyward.Actor{ID: "key_owner", IP: "198.51.100.4", MemberID: "mem_owner"}
)

// zone is the time zone the suite gives its times in, to check that a store
// keeps the instant and hands it back in UTC.
var zone = time.FixedZone("UTC+5:30", 5*3600+30*60)

// fixture is one subtest's store, clock and counters.
type fixture struct {
	t   *testing.T
	ctx context.Context
	s   keyward.Store
	now time.Time
	n   int
	// delivered holds the events eventsOf took, by endpoint.
	delivered map[string][]keyward.Event
}

func newFixture(t *testing.T, s keyward.Store) *fixture {
	return &fixture{
		t:   t,
		ctx: t.Context(),
		s:   s,
		now: time.Date(2026, 3, 1, 9, 15, 30, 123456000, zone),
	}
}

// tick moves the clock forward by a little more than a minute (so that the
// microseconds change too) and returns the new time.
func (f *fixture) tick() time.Time {
	f.now = f.now.Add(time.Minute + 1234*time.Microsecond)
	return f.now
}

// next returns a new number for an id.
func (f *fixture) next() int {
	f.n++
	return f.n
}

// newTenant returns a tenant that is not stored.
func (f *fixture) newTenant(slug string) *keyward.Tenant {
	at := f.tick()
	return &keyward.Tenant{
		ID:        "ten_" + slug,
		Slug:      slug,
		Plan:      keyward.DefaultPlan,
		Status:    keyward.TenantActive,
		CreatedAt: at,
		UpdatedAt: at,
	}
}

// createTenant stores a new tenant.
func (f *fixture) createTenant(slug string) *keyward.Tenant {
	f.t.Helper()
	tn := f.newTenant(slug)
	if err := f.s.CreateTenant(f.ctx, tn, admin); err != nil {
		f.t.Fatalf("CreateTenant(%s): %v", slug, err)
	}
	return tn
}

// plaintext returns the plaintext of the key with the given number. Only
// its hash is handed to the store.
func plaintext(env keyward.Environment, n int) string {
	return fmt.Sprintf("sk_%s_%032d", env, n)
}

// newKey returns a key of the tenant that is not stored, with every field a
// new key has set.
func (f *fixture) newKey(tenantID string, env keyward.Environment) *keyward.Key {
	n := f.next()
	secret := plaintext(env, n)
	at := f.tick()
	expires := at.Add(90 * 24 * time.Hour)
	rotateBy := at.Add(60 * 24 * time.Hour)
	return &keyward.Key{
		ID:          fmt.Sprintf("key_%04d", n),
		TenantID:    tenantID,
		Environment: env,
		Name:        fmt.Sprintf("service %d", n),
		Head:        "sk_" + string(env) + "_",
		Start:       secret[:len("sk_"+string(env)+"_")+4],
		Last4:       secret[len(secret)-4:],
		Hash:        sha256.Sum256([]byte(secret)),
		Permissions: []string{"messages:send", "contacts:write"},
		Metadata:    map[string]string{"owner": "alice", "service": "billing"},
		ExpiresAt:   &expires,
		RotateBy:    &rotateBy,
		Restrictions: keyward.Restrictions{
			IPs:       []string{"10.0.0.0/8", "2001:db8::/32"},
			Referrers: []string{"https://app.example.com", "https://*.example.com/*"},
			Endpoints: []string{"GET /v1/contacts/**", "* /v1/reports/*"},
			Resources: map[string][]string{"site": {"site_1", "site_2"}, "region": {"eu"}},
		},
		Status:    keyward.KeyActive,
		CreatedAt: at,
		CreatedBy: "mem_alice",
		UpdatedAt: at,
	}
}

// createKey stores a new key of the tenant.
func (f *fixture) createKey(tenantID string, env keyward.Environment) *keyward.Key {
	f.t.Helper()
	k := f.newKey(tenantID, env)
	if err := f.s.CreateKey(f.ctx, k, admin); err != nil {
		f.t.Fatalf("CreateKey(%s): %v", k.ID, err)
	}
	return k
}

// key reads a key that must exist.
func (f *fixture) key(id string) *keyward.Key {
	f.t.Helper()
	k, err := f.s.Key(f.ctx, id)
	if err != nil {
		f.t.Fatalf("Key(%s): %v", id, err)
	}
	return k
}

// wantCode fails the test unless err is a *keyward.Error with the code.
func wantCode(t *testing.T, err error, code keyward.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("error = nil, want code %q", code)
	}
	var e *keyward.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *keyward.Error, want code %q", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("error code = %q, want %q (error: %v)", e.Code, code, err)
	}
}

// micro is the precision the suite asks of a store.
const micro = time.Microsecond

// timeDiff describes how got differs from want, or returns "".
func timeDiff(name string, got, want time.Time) string {
	switch {
	case !got.Truncate(micro).Equal(want.Truncate(micro)):
		return fmt.Sprintf("%s = %s, want %s", name, got.Format(time.RFC3339Nano), want.UTC().Format(time.RFC3339Nano))
	case got.Location() != time.UTC:
		return fmt.Sprintf("%s is in %s, want UTC", name, got.Location())
	}
	return ""
}

// optTimeDiff describes how the optional times differ, or returns "".
func optTimeDiff(name string, got, want *time.Time) string {
	switch {
	case got == nil && want == nil:
		return ""
	case got == nil:
		return fmt.Sprintf("%s = nil, want %s", name, want.UTC().Format(time.RFC3339Nano))
	case want == nil:
		return fmt.Sprintf("%s = %s, want nil", name, got.Format(time.RFC3339Nano))
	}
	return timeDiff(name, *got, *want)
}

// keyDiff lists the fields in which got differs from want.
func keyDiff(got, want *keyward.Key) []string {
	var d []string
	add := func(s string) {
		if s != "" {
			d = append(d, s)
		}
	}
	str := func(name, g, w string) {
		if g != w {
			add(fmt.Sprintf("%s = %q, want %q", name, g, w))
		}
	}
	str("ID", got.ID, want.ID)
	str("TenantID", got.TenantID, want.TenantID)
	str("Environment", string(got.Environment), string(want.Environment))
	str("Name", got.Name, want.Name)
	str("Prefix", got.Head, want.Head)
	str("Start", got.Start, want.Start)
	str("Last4", got.Last4, want.Last4)
	if got.Hash != want.Hash {
		add("Hash differs")
	}
	if !slices.Equal(got.Permissions, want.Permissions) {
		add(fmt.Sprintf("Permissions = %q, want %q", got.Permissions, want.Permissions))
	}
	if !maps.Equal(got.Metadata, want.Metadata) {
		add(fmt.Sprintf("Metadata = %v, want %v", got.Metadata, want.Metadata))
	}
	add(optTimeDiff("ExpiresAt", got.ExpiresAt, want.ExpiresAt))
	add(optTimeDiff("RotateBy", got.RotateBy, want.RotateBy))
	add(limitsDiff("", got.RateLimits, want.RateLimits, got.Quota, want.Quota))
	if !reflect.DeepEqual(got.Credits, want.Credits) {
		add(fmt.Sprintf("Credits = %s, want %s", jsonOf(got.Credits), jsonOf(want.Credits)))
	}
	// Compare every field of Restrictions as it grows.
	if !slices.Equal(got.Restrictions.IPs, want.Restrictions.IPs) {
		add(fmt.Sprintf("Restrictions.IPs = %q, want %q", got.Restrictions.IPs, want.Restrictions.IPs))
	}
	if !slices.Equal(got.Restrictions.Referrers, want.Restrictions.Referrers) {
		add(fmt.Sprintf("Restrictions.Referrers = %q, want %q", got.Restrictions.Referrers, want.Restrictions.Referrers))
	}
	if !slices.Equal(got.Restrictions.Endpoints, want.Restrictions.Endpoints) {
		add(fmt.Sprintf("Restrictions.Endpoints = %q, want %q", got.Restrictions.Endpoints, want.Restrictions.Endpoints))
	}
	if !maps.EqualFunc(got.Restrictions.Resources, want.Restrictions.Resources, slices.Equal) {
		add(fmt.Sprintf("Restrictions.Resources = %q, want %q", got.Restrictions.Resources, want.Restrictions.Resources))
	}
	str("Status", string(got.Status), string(want.Status))
	add(timeDiff("CreatedAt", got.CreatedAt, want.CreatedAt))
	str("CreatedBy", got.CreatedBy, want.CreatedBy)
	str("MemberID", got.MemberID, want.MemberID)
	add(timeDiff("UpdatedAt", got.UpdatedAt, want.UpdatedAt))
	add(optTimeDiff("RevokedAt", got.RevokedAt, want.RevokedAt))
	add(optTimeDiff("LastUsedAt", got.LastUsedAt, want.LastUsedAt))
	str("LastUsedIP", got.LastUsedIP, want.LastUsedIP)
	str("RotatedFrom", got.RotatedFrom, want.RotatedFrom)
	str("RotatedTo", got.RotatedTo, want.RotatedTo)
	return d
}

// wantKey fails the test unless got equals want field by field.
func wantKey(t *testing.T, what string, got, want *keyward.Key) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: key is nil", what)
	}
	for _, d := range keyDiff(got, want) {
		t.Errorf("%s: %s", what, d)
	}
	if t.Failed() {
		t.FailNow()
	}
}

// wantTenant fails the test unless got equals want field by field.
func wantTenant(t *testing.T, what string, got, want *keyward.Tenant) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: tenant is nil", what)
	}
	var d []string
	if got.ID != want.ID || got.Slug != want.Slug || got.Plan != want.Plan || got.Status != want.Status {
		d = append(d, fmt.Sprintf("got {%s %s %s %s}, want {%s %s %s %s}",
			got.ID, got.Slug, got.Plan, got.Status, want.ID, want.Slug, want.Plan, want.Status))
	}
	if got.TimeZone != want.TimeZone {
		d = append(d, fmt.Sprintf("TimeZone = %q, want %q", got.TimeZone, want.TimeZone))
	}
	if l := limitsDiff("", got.RateLimits, want.RateLimits, got.Quota, want.Quota); l != "" {
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

// clone returns a deep copy of k, to build what a key should look like
// after a change.
func clone(k *keyward.Key) *keyward.Key {
	c := *k
	c.Permissions = slices.Clone(k.Permissions)
	c.Metadata = maps.Clone(k.Metadata)
	c.Restrictions.IPs = slices.Clone(k.Restrictions.IPs)
	c.Restrictions.Referrers = slices.Clone(k.Restrictions.Referrers)
	c.Restrictions.Endpoints = slices.Clone(k.Restrictions.Endpoints)
	if k.Restrictions.Resources != nil {
		c.Restrictions.Resources = map[string][]string{}
		for name, values := range k.Restrictions.Resources {
			c.Restrictions.Resources[name] = slices.Clone(values)
		}
	}
	for _, p := range []**time.Time{&c.ExpiresAt, &c.RotateBy, &c.RevokedAt, &c.LastUsedAt} {
		if *p != nil {
			v := **p
			*p = &v
		}
	}
	return &c
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }

// mark is how far the audit log and the change feed went at one moment.
type mark struct {
	audit int
	seq   int64
}

// mark returns the current length of the audit log and the last change.
func (f *fixture) mark() mark {
	f.t.Helper()
	seq, err := f.s.LastChange(f.ctx)
	if err != nil {
		f.t.Fatalf("LastChange: %v", err)
	}
	return mark{audit: len(f.allAudit(keyward.AuditFilter{})), seq: seq}
}

// allAudit reads every page of the audit log, newest first.
func (f *fixture) allAudit(filter keyward.AuditFilter) []*keyward.AuditEntry {
	f.t.Helper()
	var all []*keyward.AuditEntry
	p := keyward.Page{Limit: keyward.MaxPageLimit}
	for range 1000 {
		entries, next, err := f.s.AuditLog(f.ctx, filter, p)
		if err != nil {
			f.t.Fatalf("AuditLog: %v", err)
		}
		all = append(all, entries...)
		if next == "" {
			return all
		}
		p.Cursor = next
	}
	f.t.Fatal("AuditLog: the cursor never ends")
	return nil
}

// changesSince reads every change after seq.
func (f *fixture) changesSince(seq int64) []keyward.Change {
	f.t.Helper()
	changes, err := f.s.Changes(f.ctx, seq, 10000)
	if err != nil {
		f.t.Fatalf("Changes(%d): %v", seq, err)
	}
	return changes
}

// wantAudit fails the test unless e is the entry.
func wantAudit(t *testing.T, e *keyward.AuditEntry, action, tenantID, target string, by keyward.Actor, at time.Time) {
	t.Helper()
	if e.Action != action || e.TenantID != tenantID || e.Target != target || e.Actor != by.ID || e.ActorIP != by.IP || e.ActorMember != by.MemberID {
		t.Fatalf("audit entry = {action %s, tenant %s, target %s, actor %s, ip %s, member %s}, want {%s, %s, %s, %s, %s, %s}",
			e.Action, e.TenantID, e.Target, e.Actor, e.ActorIP, e.ActorMember, action, tenantID, target, by.ID, by.IP, by.MemberID)
	}
	if d := timeDiff("audit entry At", e.At, at); d != "" {
		t.Fatal(d)
	}
	if e.ID == 0 {
		t.Fatal("audit entry ID = 0")
	}
}

// wantRecorded fails the test unless, since m, exactly one audit entry was
// written, with these fields, and exactly these changes (in any order)
// appended, with increasing sequence numbers and the entry's time.
func (f *fixture) wantRecorded(m mark, action, tenantID, target string, by keyward.Actor, at time.Time, changes ...keyward.Change) {
	f.t.Helper()
	all := f.allAudit(keyward.AuditFilter{})
	if n := len(all) - m.audit; n != 1 {
		f.t.Fatalf("%s wrote %d audit entries, want 1", action, n)
	}
	wantAudit(f.t, all[0], action, tenantID, target, by, at)
	f.wantChanges(m, action, at, changes...)
}

// wantChanges fails the test unless, since m, exactly these changes (in any
// order) were appended, with increasing sequence numbers and the time at.
func (f *fixture) wantChanges(m mark, action string, at time.Time, changes ...keyward.Change) {
	f.t.Helper()
	got := f.changesSince(m.seq)
	if len(got) != len(changes) {
		f.t.Fatalf("%s appended %d changes %v, want %d %v", action, len(got), got, len(changes), changes)
	}
	want := map[keyward.Change]int{}
	for _, c := range changes {
		want[keyward.Change{Kind: c.Kind, ID: c.ID}]++
	}
	prev := m.seq
	for _, c := range got {
		if c.Seq <= prev {
			f.t.Fatalf("change seq %d follows %d; want strictly increasing", c.Seq, prev)
		}
		prev = c.Seq
		k := keyward.Change{Kind: c.Kind, ID: c.ID}
		if want[k] == 0 {
			f.t.Fatalf("%s appended change {%s %s}, want %v", action, c.Kind, c.ID, changes)
		}
		want[k]--
		if d := timeDiff("change At", c.At, at); d != "" {
			f.t.Fatal(d)
		}
	}
	last, err := f.s.LastChange(f.ctx)
	if err != nil {
		f.t.Fatalf("LastChange: %v", err)
	}
	if last != prev {
		f.t.Fatalf("LastChange = %d, want %d", last, prev)
	}
}

// wantNothingRecorded fails the test if an audit entry or a change was
// written since m.
func (f *fixture) wantNothingRecorded(m mark, what string) {
	f.t.Helper()
	if n := len(f.allAudit(keyward.AuditFilter{})) - m.audit; n != 0 {
		f.t.Fatalf("%s wrote %d audit entries, want none", what, n)
	}
	if got := f.changesSince(m.seq); len(got) != 0 {
		f.t.Fatalf("%s appended changes %v, want none", what, got)
	}
}

// keyChange names the change of a key.
func keyChange(id string) keyward.Change {
	return keyward.Change{Kind: keyward.ChangeKey, ID: id}
}

// tenantChange names the change of a tenant.
func tenantChange(id string) keyward.Change {
	return keyward.Change{Kind: keyward.ChangeTenant, ID: id}
}

var storeTests = []test{
	{"Ping", func(f *fixture) {
		if err := f.s.Ping(f.ctx); err != nil {
			f.t.Fatalf("Ping: %v", err)
		}
	}},
	{"Empty", func(f *fixture) {
		tenants, next, err := f.s.Tenants(f.ctx, keyward.Page{})
		if err != nil || len(tenants) != 0 || next != "" {
			f.t.Fatalf("Tenants on a new store = %d tenants, next %q, %v; want none", len(tenants), next, err)
		}
		keys, next, err := f.s.Keys(f.ctx, keyward.KeyFilter{}, keyward.Page{})
		if err != nil || len(keys) != 0 || next != "" {
			f.t.Fatalf("Keys on a new store = %d keys, next %q, %v; want none", len(keys), next, err)
		}
		entries, next, err := f.s.AuditLog(f.ctx, keyward.AuditFilter{}, keyward.Page{})
		if err != nil || len(entries) != 0 || next != "" {
			f.t.Fatalf("AuditLog on a new store = %d entries, next %q, %v; want none", len(entries), next, err)
		}
	}},
	{"CanceledContext", func(f *fixture) {
		ctx, cancel := context.WithCancel(f.ctx)
		cancel()
		if _, err := f.s.Key(ctx, "key_0001"); err == nil {
			f.t.Fatal("Key with a canceled context: no error")
		}
		if err := f.s.CreateTenant(ctx, f.newTenant("acme"), admin); err == nil {
			f.t.Fatal("CreateTenant with a canceled context: no error")
		}
		if _, err := f.s.Tenant(f.ctx, "acme"); keyward.ErrorCode(err) != keyward.CodeNotFound {
			f.t.Fatalf("Tenant after a canceled CreateTenant: %v, want not found", err)
		}
	}},
}

// limitsDiff says how rate limits and a quota differ from those wanted,
// telling nil (inherited) rate limits from empty ones, or returns "".
// prefix names them, as in "Key" for KeyRateLimits.
func limitsDiff(prefix string, got, want []keyward.RateLimit, gotQuota, wantQuota *keyward.Quota) string {
	var d []string
	if !reflect.DeepEqual(got, want) {
		d = append(d, fmt.Sprintf("%sRateLimits = %s, want %s", prefix, jsonOf(got), jsonOf(want)))
	}
	if !reflect.DeepEqual(gotQuota, wantQuota) {
		d = append(d, fmt.Sprintf("%sQuota = %s, want %s", prefix, jsonOf(gotQuota), jsonOf(wantQuota)))
	}
	return strings.Join(d, "; ")
}

// jsonOf writes v as JSON for a message.
func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
