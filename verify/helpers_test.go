package verify_test

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/testclock"
	"github.com/keyward/keyward/sqlite"
	"github.com/keyward/keyward/verify"
)

// t0 is the time every test clock starts at, a whole second so that
// times survive the store's microsecond precision.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// spyStore wraps a real store: it counts the reads that verification makes
// and fails chosen methods on demand.
type spyStore struct {
	keyward.Store

	keyByHash atomic.Int64
	keyByID   atomic.Int64
	tenant    atomic.Int64
	member    atomic.Int64
	plan      atomic.Int64
	changes   atomic.Int64
	// lastChanges is when the last call of Changes that succeeded began,
	// in Unix nanoseconds.
	lastChanges atomic.Int64

	failKeyByHash atomic.Bool
	failTenant    atomic.Bool
	failPlan      atomic.Bool
	failKey       atomic.Bool
	failChanges   atomic.Bool
	// hideChanges makes Changes answer that there are none, as a feed
	// that lost changes would.
	hideChanges     atomic.Bool
	failRecordUsage atomic.Bool
	failSpend       atomic.Bool

	// spendBatches counts the calls of SpendBatch (each one transaction),
	// and spends the spends they held. While spendGate holds a channel,
	// SpendBatch waits for it to be closed before it runs the batch, as
	// a slow database would.
	spendBatches atomic.Int64
	spends       atomic.Int64
	spendGate    atomic.Pointer[chan struct{}]

	// hang makes KeyByHash and Tenant wait for their context to end, as a
	// database that does not answer would; deadline is how far ahead the
	// last such context's deadline was when it was called, or -1 if it had
	// none.
	hang     atomic.Bool
	deadline atomic.Int64
}

// hung records how far ahead ctx's deadline is, waits for ctx to end and
// returns its error as a store would.
func (s *spyStore) hung(ctx context.Context) error {
	if d, ok := ctx.Deadline(); ok {
		s.deadline.Store(int64(time.Until(d)))
	} else {
		s.deadline.Store(-1)
	}
	<-ctx.Done()
	return &keyward.Error{Code: keyward.CodeStorageUnavailable, Message: "did not answer in time", Err: ctx.Err()}
}

// errDown is the cause of every failure a spyStore is told to make.
var errDown = errors.New("spy: the storage is down")

func down() error {
	return &keyward.Error{Code: keyward.CodeInternal, Message: "storage down", Err: errDown}
}

// reads returns the number of reads made so far.
func (s *spyStore) reads() int64 {
	return s.keyByHash.Load() + s.keyByID.Load() + s.tenant.Load() + s.member.Load() + s.plan.Load()
}

func (s *spyStore) Member(ctx context.Context, id string) (*keyward.Member, error) {
	s.member.Add(1)
	return s.Store.Member(ctx, id)
}

func (s *spyStore) Plan(ctx context.Context, name string) (*keyward.Plan, error) {
	s.plan.Add(1)
	if s.failPlan.Load() {
		return nil, down()
	}
	return s.Store.Plan(ctx, name)
}

func (s *spyStore) KeyByHash(ctx context.Context, hash [32]byte) (*keyward.Key, error) {
	s.keyByHash.Add(1)
	if s.failKeyByHash.Load() {
		return nil, down()
	}
	if s.hang.Load() {
		return nil, s.hung(ctx)
	}
	return s.Store.KeyByHash(ctx, hash)
}

func (s *spyStore) Key(ctx context.Context, id string) (*keyward.Key, error) {
	s.keyByID.Add(1)
	if s.failKey.Load() {
		return nil, down()
	}
	return s.Store.Key(ctx, id)
}

func (s *spyStore) Tenant(ctx context.Context, idOrSlug string) (*keyward.Tenant, error) {
	s.tenant.Add(1)
	if s.failTenant.Load() {
		return nil, down()
	}
	if s.hang.Load() {
		return nil, s.hung(ctx)
	}
	return s.Store.Tenant(ctx, idOrSlug)
}

func (s *spyStore) Changes(ctx context.Context, after int64, limit int) ([]keyward.Change, error) {
	s.changes.Add(1)
	began := time.Now()
	if s.failChanges.Load() {
		return nil, down()
	}
	if s.hideChanges.Load() {
		return []keyward.Change{}, nil
	}
	changes, err := s.Store.Changes(ctx, after, limit)
	if err == nil {
		s.lastChanges.Store(began.UnixNano())
	}
	return changes, err
}

func (s *spyStore) SpendBatch(ctx context.Context, spends []keyward.Spend) ([]keyward.Spent, error) {
	s.spendBatches.Add(1)
	s.spends.Add(int64(len(spends)))
	if s.failSpend.Load() {
		return nil, down()
	}
	if gate := s.spendGate.Load(); gate != nil {
		<-*gate
	}
	return s.Store.SpendBatch(ctx, spends)
}

func (s *spyStore) RecordUsage(ctx context.Context, uses []keyward.Usage) error {
	if s.failRecordUsage.Load() {
		return down()
	}
	return s.Store.RecordUsage(ctx, uses)
}

// fixture is a real SQLite store in a temporary directory, a verifier that
// reads it through a spyStore, and a clock moved by hand.
type fixture struct {
	t      testing.TB
	path   string
	store  *sqlite.Store
	spy    *spyStore
	format apikey.Format
	clock  *testclock.Clock
	v      *verify.Verifier
	tenant *keyward.Tenant
}

// newFixture opens a store, creates a tenant and builds a verifier with
// opts, filling in the store, the format and, unless opts has one, the
// fixture's clock. It does not start the verifier.
func newFixture(t testing.TB, opts verify.Options) *fixture {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keyward.db")
	store := openStore(t, path)
	format, err := apikey.NewFormat(apikey.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{
		t:      t,
		path:   path,
		store:  store,
		spy:    &spyStore{Store: store},
		format: format,
		clock:  testclock.New(t0),
	}
	opts.Format = format
	if opts.Clock == nil {
		opts.Clock = f.clock.Now
	}
	f.v = verify.New(f.spy, opts)
	t.Cleanup(func() {
		if err := f.v.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	f.tenant = f.createTenant("acme")
	return f
}

// openStore opens the SQLite database at path and closes it when the test
// ends.
func openStore(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// start starts the verifier.
func (f *fixture) start() {
	f.t.Helper()
	if err := f.v.Start(context.Background()); err != nil {
		f.t.Fatalf("Start: %v", err)
	}
}

// createTenant stores an active tenant.
func (f *fixture) createTenant(slug string) *keyward.Tenant {
	f.t.Helper()
	return createTenant(f.t, f.store, apikey.NewID("ten"), slug, f.clock.Now())
}

func createTenant(t testing.TB, s keyward.Store, id, slug string, now time.Time) *keyward.Tenant {
	t.Helper()
	ten := &keyward.Tenant{ID: id, Slug: slug, Plan: keyward.DefaultPlan, Status: keyward.TenantActive, CreatedAt: now, UpdatedAt: now}
	if err := s.CreateTenant(context.Background(), ten, keyward.CommandLineActor()); err != nil {
		t.Fatalf("CreateTenant: %v", err)
	}
	return ten
}

// newKey generates a key of the fixture's tenant without storing it; edit
// may change its fields. It returns the plaintext and the key.
func (f *fixture) newKey(edit func(k *keyward.Key)) (string, *keyward.Key) {
	f.t.Helper()
	return f.newKeyIn(keyward.Live, edit)
}

// newKeyIn is newKey for a key of environment env.
func (f *fixture) newKeyIn(env keyward.Environment, edit func(k *keyward.Key)) (string, *keyward.Key) {
	f.t.Helper()
	plain, err := f.format.Generate(env)
	if err != nil {
		f.t.Fatal(err)
	}
	startHint, last4 := apikey.Display(plain)
	now := f.clock.Now()
	k := &keyward.Key{
		ID:          apikey.NewID("key"),
		TenantID:    f.tenant.ID,
		Environment: env,
		Name:        "test key",
		Head:        apikey.Head(plain),
		Start:       startHint,
		Last4:       last4,
		Hash:        apikey.Hash(plain),
		Permissions: []string{"messages:send", "contacts:read"},
		Metadata:    map[string]string{},
		Status:      keyward.KeyActive,
		CreatedAt:   now,
		CreatedBy:   "cli",
		UpdatedAt:   now,
	}
	if edit != nil {
		edit(k)
	}
	return plain, k
}

// createKey generates and stores a key; edit may change its fields first.
func (f *fixture) createKey(edit func(k *keyward.Key)) (string, *keyward.Key) {
	f.t.Helper()
	return f.createKeyIn(keyward.Live, edit)
}

// createKeyIn is createKey for a key of environment env.
func (f *fixture) createKeyIn(env keyward.Environment, edit func(k *keyward.Key)) (string, *keyward.Key) {
	f.t.Helper()
	plain, k := f.newKeyIn(env, edit)
	if err := f.store.CreateKey(context.Background(), k, keyward.CommandLineActor()); err != nil {
		f.t.Fatalf("CreateKey: %v", err)
	}
	return plain, k
}

// verify verifies key with the given permissions from 192.0.2.10.
func (f *fixture) verify(key string, perms ...string) verify.Result {
	return f.v.Verify(context.Background(), verify.Request{
		Key:         key,
		IP:          netip.MustParseAddr("192.0.2.10"),
		Permissions: perms,
	})
}

// eventually polls cond until it holds or within has passed since the call.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	begin := time.Now()
	for !cond() {
		if time.Since(begin) > within {
			t.Fatalf("%s: not seen within %v", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("%s: seen after %v", what, time.Since(begin).Round(time.Millisecond))
}
