package storetest

import (
	"context"
	"database/sql"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// Database is one new, empty database of an engine, for the tests of the
// migrations that upgrade a database made by an earlier release.
type Database struct {
	// Open opens a store on the database, migrating its schema.
	Open func(ctx context.Context) (keyward.Store, error)
	// Driver and DSN are the database/sql driver's name and the database's
	// address for it, for the test's own SQL, written with $1, $2…
	// placeholders (SQLite's driver takes them too).
	Driver, DSN string
}

// OldDatabases checks the migrations on databases taken back to an earlier
// schema. newDatabase returns a new database for one subtest.
func OldDatabases(t *testing.T, newDatabase func(t *testing.T) Database) {
	t.Run("KeyPrefix", func(t *testing.T) { oldKeyPrefix(t, newDatabase) })
	t.Run("KeyTimesBeyondYear9999", func(t *testing.T) { oldKeyTimesBeyondYear9999(t, newOld(t, newDatabase(t))) })
	t.Run("BeforeAccess", func(t *testing.T) { oldBeforeAccess(t, newOld(t, newDatabase(t))) })
	t.Run("BeforeLimits", func(t *testing.T) { oldBeforeLimits(t, newOld(t, newDatabase(t))) })
	t.Run("BeforeLogBlocks", func(t *testing.T) { oldBeforeLogBlocks(t, newOld(t, newDatabase(t))) })
}

// old is a Database opened for a test: its stores, and its own connection.
type old struct {
	Database
	raw *sql.DB
}

// newOld connects to db for the test's own SQL, until the test ends.
func newOld(t *testing.T, db Database) old {
	t.Helper()
	raw, err := sql.Open(db.Driver, db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return old{Database: db, raw: raw}
}

// open opens a store on the database; the test closes it.
func (db old) open(t *testing.T) keyward.Store {
	t.Helper()
	s, err := db.Open(t.Context())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// openOld opens a store on db that is closed when the test ends.
func openOld(t *testing.T, db old) keyward.Store {
	t.Helper()
	return Opened(t, db.open(t), nil)
}

// rawExec runs the test's own statements on db.
func rawExec(t *testing.T, db old, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := db.raw.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// undoAccess takes db back to its schema before the access model
// (migrations 6 and 7), as their Down sections would: a test that takes it
// further back runs the later migrations again.
func undoAccess(t *testing.T, db old) {
	t.Helper()
	undoLimits(t, db)
	rawExec(t, db,
		`DROP INDEX keys_member_created`,
		`ALTER TABLE audit_log DROP COLUMN actor_member`,
		`ALTER TABLE keys DROP COLUMN member_id`,
		`DROP TABLE permissions`,
		`DROP TABLE plans`,
		`DROP TABLE members`,
		`DELETE FROM goose_db_version WHERE version_id >= 6`)
}

// undoRotatedToIndex takes db back to its schema before the index of the
// keys by rotated_to (migration 9), as its Down section would.
func undoRotatedToIndex(t *testing.T, db old) {
	t.Helper()
	undoRequestLogs(t, db)
	rawExec(t, db, `DROP INDEX keys_rotated_to`, `DELETE FROM goose_db_version WHERE version_id >= 9`)
}

// undoRequestLogs takes db back to its schema before the request logs
// (migration 10), as its Down section would.
func undoRequestLogs(t *testing.T, db old) {
	t.Helper()
	undoUsage(t, db)
	rawExec(t, db, `DROP TABLE request_logs`, `DELETE FROM goose_db_version WHERE version_id >= 10`)
}

// undoUsage takes db back to its schema before the usage counts
// (migration 11), as its Down section would.
func undoUsage(t *testing.T, db old) {
	t.Helper()
	undoWebhooks(t, db)
	rawExec(t, db, `DROP TABLE usage_counts`, `DELETE FROM goose_db_version WHERE version_id >= 11`)
}

// undoWebhooks takes db back to its schema before webhooks (migration 12),
// as its Down section would.
func undoWebhooks(t *testing.T, db old) {
	t.Helper()
	undoSignals(t, db)
	rawExec(t, db, `DROP TABLE webhook_marks`, `DROP TABLE webhook_attempts`, `DROP TABLE webhook_deliveries`,
		`DROP TABLE webhook_events`, `DROP TABLE webhook_endpoints`, `DELETE FROM goose_db_version WHERE version_id >= 12`)
}

// undoSignals takes db back to its schema before the signals of the
// request logs (migration 13), as its Down section would.
func undoSignals(t *testing.T, db old) {
	t.Helper()
	undoLogBlocks(t, db)
	rawExec(t, db, `DROP TABLE failure_episodes`, `ALTER TABLE keys DROP COLUMN sharing`, `DROP TABLE key_sightings`,
		`DELETE FROM goose_db_version WHERE version_id >= 13`)
}

// undoLogBlocks takes db back to its schema before the request logs were
// stored in blocks (migration 14): an empty table of a row per entry, as
// migration 10 made it (in types both engines read).
func undoLogBlocks(t *testing.T, db old) {
	t.Helper()
	undoAccounts(t, db)
	rawExec(t, db, `DROP INDEX webhook_deliveries_endpoint_status`, `DROP TABLE request_log_ids`, `DROP TABLE request_log_needles`, `DROP TABLE request_log_blocks`,
		`CREATE TABLE request_logs (id BIGINT PRIMARY KEY, at BIGINT NOT NULL, request_id TEXT NOT NULL, surface TEXT NOT NULL,
			key_id TEXT NOT NULL, tenant_id TEXT NOT NULL, member_id TEXT NOT NULL, environment TEXT NOT NULL, method TEXT NOT NULL,
			route TEXT NOT NULL, path TEXT NOT NULL, status BIGINT NOT NULL, code TEXT NOT NULL, client_ip TEXT NOT NULL,
			user_agent TEXT NOT NULL, referrer TEXT NOT NULL, latency_us BIGINT NOT NULL, rl_limit BIGINT, rl_remaining BIGINT, rl_reset_ms BIGINT)`,
		`DELETE FROM goose_db_version WHERE version_id >= 14`)
}

// undoAccounts takes a database back to before migration 15: no
// passwords, sessions, sign-in failures, sign-in links or reveals
// (migrations 15 to 17).
func undoAccounts(t *testing.T, db old) {
	t.Helper()
	rawExec(t, db, `DROP INDEX sign_in_links_member`, `DROP TABLE key_reveals`, `DROP TABLE sign_in_links`, `DROP TABLE sign_in_failures`, `DROP TABLE sessions`, `DROP INDEX members_email_lower`,
		`ALTER TABLE members DROP COLUMN session_epoch`, `ALTER TABLE members DROP COLUMN password_hash`,
		`DELETE FROM goose_db_version WHERE version_id >= 15`)
}

// oldBeforeLogBlocks: the entries of a database made before the request
// logs were stored in blocks keep their ids and fields, every filter finds
// them, and a new entry is given a higher id.
func oldBeforeLogBlocks(t *testing.T, db old) {
	s := db.open(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	undoLogBlocks(t, db)
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	rawExec(t, db,
		`INSERT INTO request_logs VALUES (5, `+itoa(at.UnixMicro())+`, 'req_a', 'gateway', 'key_1', 'ten_1', 'mem_1', 'live', 'GET', 'GET /v1/**', '/v1/a', 200, '', '192.0.2.1', 'curl/8 "q"', '', 120, 100, 41, 1500)`,
		`INSERT INTO request_logs VALUES (6, `+itoa(at.Add(time.Second).UnixMicro())+`, 'req_b', 'api', '', '', '', '', 'GET', '', '/v1/whoami', 401, 'invalid_api_key', '192.0.2.2', '', '', 80, NULL, NULL, NULL)`,
		`INSERT INTO request_logs VALUES (9, `+itoa(at.Add(2*time.Second).UnixMicro())+`, 'req_c', 'forward-auth', 'key_2', 'ten_1', '', 'test', 'POST', '', '/v1/b', 403, 'ip_not_allowed', '192.0.2.3', 'app/1', 'https://x.example', 95, NULL, NULL, NULL)`)
	s = openOld(t, db)
	ctx := t.Context()
	ids := func(f keyward.RequestLogFilter) []int64 {
		t.Helper()
		logs, _, err := s.RequestLogs(ctx, f, keyward.Page{})
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, l := range logs {
			out = append(out, l.ID)
		}
		return out
	}
	for _, tc := range []struct {
		f    keyward.RequestLogFilter
		want []int64
	}{
		{keyward.RequestLogFilter{}, []int64{9, 6, 5}},
		{keyward.RequestLogFilter{TenantID: "ten_1"}, []int64{9, 5}},
		{keyward.RequestLogFilter{KeyID: "key_1"}, []int64{5}},
		{keyward.RequestLogFilter{RequestID: "req_b"}, []int64{6}},
		{keyward.RequestLogFilter{Code: keyward.CodeIPNotAllowed}, []int64{9}},
		{keyward.RequestLogFilter{After: 5}, []int64{6, 9}},
	} {
		if got := ids(tc.f); !equalInts(got, tc.want) {
			t.Errorf("%+v: ids %v, want %v", tc.f, got, tc.want)
		}
	}
	logs, _, err := s.RequestLogs(ctx, keyward.RequestLogFilter{RequestID: "req_a"}, keyward.Page{})
	want := keyward.RequestLog{ID: 5, At: at, RequestID: "req_a", Surface: "gateway", KeyID: "key_1", TenantID: "ten_1", MemberID: "mem_1",
		Environment: "live", Method: "GET", Route: "GET /v1/**", Path: "/v1/a", Status: 200, ClientIP: "192.0.2.1", UserAgent: `curl/8 "q"`,
		LatencyMicros: 120, RateLimit: &keyward.LoggedRateLimit{Limit: 100, Remaining: 41, ResetMillis: 1500}}
	if err != nil || len(logs) != 1 || !logs[0].At.Equal(at) {
		t.Fatalf("req_a: %v, %v", logs, err)
	}
	logs[0].At = at
	if got := *logs[0]; !jsonEqual(got, want) {
		t.Fatalf("req_a:\n got %+v\nwant %+v", got, want)
	}
	if err := s.WriteRequestLogs(ctx, &keyward.LogBatch{Logs: []keyward.RequestLog{{At: at.Add(time.Hour), RequestID: "req_new", Surface: "api", Status: 200}}}); err != nil {
		t.Fatal(err)
	}
	if got := ids(keyward.RequestLogFilter{}); !equalInts(got, []int64{10, 9, 6, 5}) {
		t.Fatalf("after a new entry: ids %v, want 10, 9, 6, 5", got)
	}
}

// itoa is n in decimal.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// equalInts reports whether a and b hold the same numbers in order.
func equalInts(a, b []int64) bool { return slices.Equal(a, b) }

// jsonEqual reports whether a and b show as the same JSON.
func jsonEqual(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

// undoLimits takes db back to its schema before rate limits, quotas and
// credits (migration 8), as its Down section would.
func undoLimits(t *testing.T, db old) {
	t.Helper()
	undoRotatedToIndex(t, db)
	stmts := []string{}
	stmts = append(stmts, `DROP TABLE quota_usage`)
	for _, c := range []string{"credits_refilled_at", "credits_refill_interval", "credits_refill_amount", "credits_remaining", "quota", "rate_limits"} {
		stmts = append(stmts, `ALTER TABLE keys DROP COLUMN `+c)
	}
	for _, c := range []string{"time_zone", "quota", "rate_limits"} {
		stmts = append(stmts, `ALTER TABLE tenants DROP COLUMN `+c)
	}
	for _, c := range []string{"tenant_quota", "tenant_rate_limits", "key_quota", "key_rate_limits"} {
		stmts = append(stmts, `ALTER TABLE plans DROP COLUMN `+c)
	}
	rawExec(t, db, append(stmts, `DELETE FROM goose_db_version WHERE version_id >= 8`)...)
}

// oldBeforeLimits: a database made before rate limits, quotas and credits
// keeps every tenant, plan and key; its tenants and keys take their plan's
// limits (none), and its keys have no credit limit.
func oldBeforeLimits(t *testing.T, db old) {
	ctx := t.Context()
	s := db.open(t)
	f := newFixture(t, s)
	ten := f.newTenant("acme")
	if err := s.CreateTenant(ctx, ten, keyward.CommandLineActor()); err != nil {
		t.Fatal(err)
	}
	k := f.newKey(ten.ID, keyward.Live)
	if err := s.CreateKey(ctx, k, keyward.CommandLineActor()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	undoLimits(t, db)

	s2 := openOld(t, db)
	gotKey, err := s2.Key(ctx, k.ID)
	if err != nil {
		t.Fatalf("Key after migrating: %v", err)
	}
	if gotKey.RateLimits != nil || gotKey.Quota != nil || gotKey.Credits != nil || gotKey.Name != k.Name {
		t.Errorf("key after migrating: %+v; want its plan's limits and no credit limit", gotKey)
	}
	gotTenant, err := s2.Tenant(ctx, ten.ID)
	if err != nil {
		t.Fatalf("Tenant after migrating: %v", err)
	}
	if gotTenant.RateLimits != nil || gotTenant.Quota != nil || gotTenant.TimeZone != "" {
		t.Errorf("tenant after migrating: %+v; want its plan's limits, in UTC", gotTenant)
	}
	plan, err := s2.Plan(ctx, keyward.DefaultPlan)
	if err != nil {
		t.Fatalf("Plan after migrating: %v", err)
	}
	if len(plan.KeyRateLimits) != 0 || len(plan.TenantRateLimits) != 0 || plan.KeyQuota != nil || plan.TenantQuota != nil {
		t.Errorf("default plan after migrating: %+v; want no limits", plan)
	}
}

// oldKeyPrefix: a database made before the key prefix was stored gets, when
// it is migrated, the prefix that most of its unrevoked keys have, then the
// first root key's; one without keys gets none.
func oldKeyPrefix(t *testing.T, newDatabase func(t *testing.T) Database) {
	type k struct{ id, prefix, status string }
	for _, tc := range []struct {
		name string
		keys []k
		want string // "" for none
	}{
		{"no keys", nil, ""},
		{"one prefix", []k{{"key_root", "kw_live_", "active"}, {"key_a", "kw_test_", "revoked"}}, "kw"},
		{"most unrevoked keys", []k{{"key_root", "sk_live_", "active"}, {"key_a", "kw_live_", "active"}, {"key_b", "kw_test_", "disabled"}, {"key_c", "sk_live_", "revoked"}}, "kw"},
		{"revoked keys do not count", []k{{"key_root", "sk_live_", "active"}, {"key_a", "kw_live_", "revoked"}, {"key_b", "kw_live_", "revoked"}}, "sk"},
		{"a tie goes to the root key", []k{{"key_a", "kw_live_", "active"}, {"key_root", "ab_live_", "active"}}, "ab"},
		{"a stored prefix is kept", []k{{"key_root", "sk_live_", "active"}, {"key_a", "sk_test_", "active"}}, "kw"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			db := newOld(t, newDatabase(t))
			s := db.open(t)
			f := newFixture(t, s)
			ten := f.newTenant("acme")
			if err := s.CreateTenant(ctx, ten, keyward.CommandLineActor()); err != nil {
				t.Fatal(err)
			}
			for _, tk := range tc.keys {
				kk := f.newKey(ten.ID, keyward.Live)
				kk.ID, kk.Head, kk.Status = tk.id, tk.prefix, keyward.KeyStatus(tk.status)
				if err := s.CreateKey(ctx, kk, keyward.CommandLineActor()); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			// Take the database back to its schema before settings; or,
			// for a database that a release with the old migration 00003
			// gave its prefix, back to before migration 5, which must keep
			// the prefix stored.
			if tc.name == "a stored prefix is kept" {
				if _, err := openOld(t, db).InitKeyPrefix(ctx, "kw"); err != nil {
					t.Fatal(err)
				}
				undoAccess(t, db)
				rawExec(t, db, `DELETE FROM goose_db_version WHERE version_id >= 5`)
			} else {
				undoAccess(t, db)
				rawExec(t, db, `DROP TABLE settings`, `DELETE FROM goose_db_version WHERE version_id >= 3`)
			}

			got, err := openOld(t, db).KeyPrefix(ctx)
			if tc.want == "" {
				if keyward.ErrorCode(err) != keyward.CodeNotFound {
					t.Fatalf("KeyPrefix = %q, %v; want none", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("KeyPrefix = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// oldKeyTimesBeyondYear9999: a database written by a release that accepted
// an expiry or rotate-by time after the year 9999 in UTC
// (9999-12-31T23:30:00-23:59) has those times brought down, when it is
// migrated, to 9999-12-31T23:59:59.999999Z, revoked keys included, so that
// every key encodes as JSON again. Each key changed gets a change in the
// feed and no audit entry; other keys are left alone.
func oldKeyTimesBeyondYear9999(t *testing.T, db old) {
	ctx := t.Context()
	s := db.open(t)
	f := newFixture(t, s)
	ten := f.newTenant("acme")
	if err := s.CreateTenant(ctx, ten, keyward.CommandLineActor()); err != nil {
		t.Fatal(err)
	}
	t0 := f.now
	near := t0.AddDate(1, 0, 0)
	for _, id := range []string{"key_far", "key_revoked", "key_rotate", "key_max", "key_near"} {
		k := f.newKey(ten.ID, keyward.Live)
		k.ID, k.ExpiresAt, k.RotateBy = id, &near, &near
		if id == "key_revoked" {
			k.Status, k.RevokedAt = keyward.KeyRevoked, &t0
		}
		if err := s.CreateKey(ctx, k, keyward.CommandLineActor()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Take the database back to schema version 3 and store what an older
	// release stored for 9999-12-31T23:30:00-23:59.
	undoAccess(t, db)
	year10000 := time.Date(9999, 12, 31, 23, 30, 0, 0, time.FixedZone("", -(23*3600+59*60))).UnixMicro()
	maxTime := time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`DELETE FROM goose_db_version WHERE version_id >= 4`, nil},
		{`UPDATE keys SET expires_at = $1, rotate_by = $1 WHERE id IN ('key_far', 'key_revoked')`, []any{year10000}},
		{`UPDATE keys SET rotate_by = $1 WHERE id = 'key_rotate'`, []any{year10000}},
		{`UPDATE keys SET expires_at = $1, rotate_by = $1 WHERE id = 'key_max'`, []any{maxTime.UnixMicro()}},
	} {
		if _, err := db.raw.ExecContext(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	var lastSeq, audits int64
	if err := db.raw.QueryRowContext(ctx, `SELECT (SELECT max(seq) FROM changes), (SELECT count(*) FROM audit_log)`).Scan(&lastSeq, &audits); err != nil {
		t.Fatal(err)
	}

	migrated := time.Now()
	s2 := openOld(t, db)
	want := map[string][2]time.Time{
		"key_far":     {maxTime, maxTime},
		"key_revoked": {maxTime, maxTime},
		"key_rotate":  {near, maxTime},
		"key_max":     {maxTime, maxTime},
		"key_near":    {near, near},
	}
	for id, w := range want {
		k, err := s2.Key(ctx, id)
		if err != nil {
			t.Fatalf("Key(%s): %v", id, err)
		}
		if k.ExpiresAt == nil || !k.ExpiresAt.Equal(w[0]) || k.RotateBy == nil || !k.RotateBy.Equal(w[1]) {
			t.Errorf("%s: expires_at %v, rotate_by %v; want %v, %v", id, k.ExpiresAt, k.RotateBy, w[0], w[1])
		}
		if _, err := json.Marshal(k); err != nil {
			t.Errorf("%s: json.Marshal: %v", id, err)
		}
	}
	if k, err := s2.Key(ctx, "key_revoked"); err != nil || k.Status != keyward.KeyRevoked {
		t.Errorf("key_revoked: %+v, %v; want it still revoked", k, err)
	}
	keys, _, err := s2.Keys(ctx, keyward.KeyFilter{}, keyward.Page{})
	if err != nil {
		t.Fatalf("Keys: %v", err)
	}
	if _, err := json.Marshal(keys); err != nil {
		t.Errorf("json.Marshal(Keys): %v", err)
	}
	// The migration stored the clamped times: the store does not only read
	// them so.
	var over int
	if err := db.raw.QueryRowContext(ctx, `SELECT count(*) FROM keys WHERE expires_at > $1 OR rotate_by > $1`, maxTime.UnixMicro()).Scan(&over); err != nil || over != 0 {
		t.Errorf("%d keys store a time after %v (%v); want none", over, maxTime, err)
	}

	changes, err := s2.Changes(ctx, lastSeq, 0)
	if err != nil {
		t.Fatal(err)
	}
	var changed []string
	for _, c := range changes {
		if c.Kind != keyward.ChangeKey {
			t.Errorf("change %+v; want a key's", c)
		}
		if c.At.Before(migrated.Add(-time.Second)) || c.At.After(time.Now().Add(time.Second)) {
			t.Errorf("change %+v made at %v; want the time of the migration, %v", c, c.At, migrated)
		}
		changed = append(changed, c.ID)
	}
	if got, want := strings.Join(changed, " "), "key_far key_revoked key_rotate"; got != want {
		t.Errorf("changes of keys %q; want %q", got, want)
	}
	var audits2 int64
	if err := db.raw.QueryRowContext(ctx, `SELECT count(*) FROM audit_log`).Scan(&audits2); err != nil || audits2 != audits {
		t.Errorf("%d audit entries after migrating (%v); want %d as before", audits2, err, audits)
	}
}

// oldBeforeAccess: a database made before the access model, whose tenants
// are on plans that were only names ("pro", "free"), gets when it is
// migrated one plan per name in use and the default plan, each including
// everything, so that every key verifies as before: it is found by its
// hash, belongs to no member, keeps its restrictions as stored then
// ({"ips":[...]} alone), and its tenant's plan exists and allows API access
// without a limit. Migrating writes no audit entry and no change, and
// opening the database again changes nothing.
func oldBeforeAccess(t *testing.T, db old) {
	ctx := t.Context()
	s := db.open(t)
	f := newFixture(t, s)
	plans := map[string]string{"ten_acme": "pro", "ten_beta": "pro", "ten_gamma": "free", "ten_delta": keyward.DefaultPlan}
	var keys []*keyward.Key
	for _, id := range []string{"ten_acme", "ten_beta", "ten_gamma", "ten_delta"} {
		ten := f.newTenant(id[len("ten_"):])
		if err := s.CreateTenant(ctx, ten, keyward.CommandLineActor()); err != nil {
			t.Fatal(err)
		}
		k := f.newKey(ten.ID, keyward.Live)
		if err := s.CreateKey(ctx, k, admin); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// What a release before the access model stored: plans as names only,
	// and restrictions with IPs alone.
	undoAccess(t, db)
	for id, plan := range plans {
		if _, err := db.raw.ExecContext(ctx, `UPDATE tenants SET plan = $1 WHERE id = $2`, plan, id); err != nil {
			t.Fatal(err)
		}
	}
	rawExec(t, db,
		`UPDATE keys SET restrictions = '{"ips":[]}' WHERE tenant_id = 'ten_acme'`,
		`UPDATE keys SET restrictions = '{"ips":["10.0.0.0/8"]}' WHERE tenant_id <> 'ten_acme'`)
	keys[0].Restrictions = keyward.Restrictions{}
	for _, k := range keys[1:] {
		k.Restrictions = keyward.Restrictions{IPs: []string{"10.0.0.0/8"}}
	}
	var lastSeq, audits int64
	if err := db.raw.QueryRowContext(ctx, `SELECT (SELECT max(seq) FROM changes), (SELECT count(*) FROM audit_log)`).Scan(&lastSeq, &audits); err != nil {
		t.Fatal(err)
	}

	before := time.Now().Add(-time.Second)
	s2 := openOld(t, db)
	f2 := newFixture(t, s2)
	f2.n = 100 // new keys' ids and secrets after those above
	got, err := s2.Plans(ctx)
	if err != nil {
		t.Fatalf("Plans: %v", err)
	}
	var names []string
	for _, p := range got {
		names = append(names, p.Name)
		if !p.APIAccess || p.MaxKeys != 0 || len(p.Permissions) != 0 || len(p.Capabilities) != 0 {
			t.Errorf("plan %+v; want one that includes everything", p)
		}
		if p.CreatedAt.Before(before) || p.CreatedAt.After(time.Now().Add(time.Second)) || !p.UpdatedAt.Equal(p.CreatedAt) {
			t.Errorf("plan %s created at %v, updated at %v; want the time of the migration", p.Name, p.CreatedAt, p.UpdatedAt)
		}
	}
	if got, want := strings.Join(names, " "), "default free pro"; got != want {
		t.Fatalf("Plans after migrating = %q; want %q", got, want)
	}
	for _, k := range keys {
		stored, err := s2.KeyByHash(ctx, k.Hash)
		if err != nil {
			t.Fatalf("KeyByHash(%s): %v", k.ID, err)
		}
		wantKey(t, "a key of a database before the access model", stored, k)
		if stored.MemberID != "" {
			t.Errorf("%s belongs to member %q; want none", k.ID, stored.MemberID)
		}
		ten, err := s2.Tenant(ctx, k.TenantID)
		if err != nil || ten.Plan != plans[k.TenantID] {
			t.Fatalf("Tenant(%s) = %+v, %v; want it on plan %q", k.TenantID, ten, err, plans[k.TenantID])
		}
		if p, err := s2.Plan(ctx, ten.Plan); err != nil || !p.APIAccess || !p.Allows("contacts:write") {
			t.Fatalf("Plan(%s) of tenant %s = %+v, %v; want one that allows every key", ten.Plan, ten.ID, p, err)
		}
	}
	for _, e := range f2.allAudit(keyward.AuditFilter{}) {
		if e.ActorMember != "" {
			t.Errorf("audit entry %+v names a member; an entry made before members names none", e)
		}
	}
	var lastSeq2, audits2 int64
	if err := db.raw.QueryRowContext(ctx, `SELECT (SELECT max(seq) FROM changes), (SELECT count(*) FROM audit_log)`).Scan(&lastSeq2, &audits2); err != nil {
		t.Fatal(err)
	}
	if lastSeq2 != lastSeq || audits2 != audits {
		t.Errorf("migrating wrote changes up to %d and %d audit entries; want none, as before (%d, %d)", lastSeq2, audits2, lastSeq, audits)
	}

	// The plans work as any other: a tenant may be created on one, moved
	// between them, and given keys.
	ten := f2.newTenant("epsilon")
	ten.Plan = "free"
	if err := s2.CreateTenant(ctx, ten, cli); err != nil {
		t.Fatalf("CreateTenant on a migrated plan: %v", err)
	}
	if _, err := s2.SetTenantPlan(ctx, "ten_gamma", "pro", f2.tick(), cli); err != nil {
		t.Fatalf("SetTenantPlan between migrated plans: %v", err)
	}
	if err := s2.CreateKey(ctx, f2.newKey("ten_gamma", keyward.Live), cli); err != nil {
		t.Fatalf("CreateKey after migrating: %v", err)
	}

	// Opening the database again changes nothing: the plans keep the time
	// they were made.
	again, err := openOld(t, db).Plans(ctx)
	if err != nil || len(again) != len(got) {
		t.Fatalf("Plans after another Open = %d plans, %v; want %d", len(again), err, len(got))
	}
	for i, p := range again {
		if !p.CreatedAt.Equal(got[i].CreatedAt) {
			t.Errorf("plan %s made again at another Open: %v, was %v", p.Name, p.CreatedAt, got[i].CreatedAt)
		}
	}
}
