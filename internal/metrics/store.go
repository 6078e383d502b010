package metrics

import (
	"context"

	"github.com/keyward/keyward"
)

// Store is a keyward.Store whose operations on the request path and in
// the background (lookups of keys, tenants, members and plans, the change
// feed, last-used times, spends, request logs and usage) are timed, and
// their failures counted, by op. Management operations pass through
// untimed.
type Store struct {
	keyward.Store
	m *Metrics
}

// Store wraps s to time its operations.
func (m *Metrics) Store(s keyward.Store) *Store { return &Store{Store: s, m: m} }

// timed runs op and records it as name; it returns op's value and error.
func timed[T any](s *Store, name string, op func() (T, error)) (T, error) {
	var v T
	err := s.m.Timed(name, func() error {
		var err error
		v, err = op()
		return err
	})
	return v, err
}

func (s *Store) KeyByHash(ctx context.Context, hash [32]byte) (*keyward.Key, error) {
	return timed(s, "key_by_hash", func() (*keyward.Key, error) { return s.Store.KeyByHash(ctx, hash) })
}

func (s *Store) Tenant(ctx context.Context, idOrSlug string) (*keyward.Tenant, error) {
	return timed(s, "tenant", func() (*keyward.Tenant, error) { return s.Store.Tenant(ctx, idOrSlug) })
}

func (s *Store) Member(ctx context.Context, id string) (*keyward.Member, error) {
	return timed(s, "member", func() (*keyward.Member, error) { return s.Store.Member(ctx, id) })
}

func (s *Store) Plan(ctx context.Context, name string) (*keyward.Plan, error) {
	return timed(s, "plan", func() (*keyward.Plan, error) { return s.Store.Plan(ctx, name) })
}

func (s *Store) Changes(ctx context.Context, after int64, limit int) ([]keyward.Change, error) {
	return timed(s, "changes", func() ([]keyward.Change, error) { return s.Store.Changes(ctx, after, limit) })
}

func (s *Store) RecordUsage(ctx context.Context, uses []keyward.Usage) error {
	return s.m.Timed("record_usage", func() error { return s.Store.RecordUsage(ctx, uses) })
}

func (s *Store) SpendBatch(ctx context.Context, spends []keyward.Spend) ([]keyward.Spent, error) {
	return timed(s, "spend_batch", func() ([]keyward.Spent, error) { return s.Store.SpendBatch(ctx, spends) })
}

func (s *Store) WriteRequestLogs(ctx context.Context, b *keyward.LogBatch) error {
	return s.m.Timed("write_request_logs", func() error { return s.Store.WriteRequestLogs(ctx, b) })
}

func (s *Store) Ping(ctx context.Context) error {
	return s.m.Timed("ping", func() error { return s.Store.Ping(ctx) })
}

// Notifications passes on those of a store that sends them (PostgreSQL's
// LISTEN, verify.Notifier), or returns nil.
func (s *Store) Notifications(ctx context.Context) <-chan struct{} {
	if n, ok := s.Store.(interface {
		Notifications(ctx context.Context) <-chan struct{}
	}); ok {
		return n.Notifications(ctx)
	}
	return nil
}
