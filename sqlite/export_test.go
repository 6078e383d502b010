package sqlite

import "database/sql"

// Pools returns the write pool and the read pool of s, for tests that check
// how their connections are set up.
func Pools(s *Store) (w, r *sql.DB) { return s.w, s.r }

// WithSynchronous sets the synchronous pragma of the write connection to
// mode (NORMAL, FULL), for the benchmark that measures what FULL costs.
func WithSynchronous(mode string) Option {
	return func(o *options) { o.synchronous = mode }
}
