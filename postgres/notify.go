package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// notifyChannel is the channel that every transaction appending to the
// change feed notifies, on commit.
const notifyChannel = "keyward_changes"

// listenAppName is the application_name of the connection that
// Notifications holds, so that it can be told apart in pg_stat_activity.
const listenAppName = "keyward-listen"

// Backoff between attempts to connect the listener again.
const (
	listenMinBackoff = 100 * time.Millisecond
	listenMaxBackoff = 5 * time.Second
)

// Notifications returns a channel that receives a signal soon after any
// store on the same database commits a change to the change feed, so that a
// reader of the feed can read it at once rather than at its next poll. The
// signals are a hint, never the changes themselves: the feed stays the
// source of truth, and several changes may yield one signal.
//
// It holds one connection of its own, listening (application_name
// keyward-listen). When that connection breaks, it connects again, waiting
// 100 ms and then up to 5 s between attempts; after every connection,
// the first one included, it sends a signal, since changes committed while
// it was not listening were not notified. The channel is closed when ctx
// ends, and the connection with it.
func (s *Store) Notifications(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	go s.listen(ctx, ch)
	return ch
}

// listen keeps a connection listening and signals ch until ctx ends.
func (s *Store) listen(ctx context.Context, ch chan<- struct{}) {
	defer close(ch)
	signal := func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	backoff := listenMinBackoff
	failures := 0
	for ctx.Err() == nil {
		conn, err := s.connectListener(ctx)
		if err == nil {
			if failures > 0 {
				s.log.InfoContext(ctx, "postgres: listening for changes again", "db", s.where, "failed_attempts", failures)
			}
			failures = 0
			backoff = listenMinBackoff
			signal()
			for {
				if _, err = conn.WaitForNotification(ctx); err != nil {
					break
				}
				signal()
			}
			closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			_ = conn.Close(closeCtx)
			cancel()
		}
		if ctx.Err() != nil {
			return
		}
		failures++
		if failures%50 == 1 {
			// The error comes from pgconn, which never includes the
			// password; s.where has none either.
			s.log.WarnContext(ctx, "postgres: not listening for changes; reading the change feed by polling meanwhile",
				"db", s.where, "err", err, "failed_attempts", failures)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, listenMaxBackoff)
	}
}

// connectListener opens a connection of its own with the pool's settings
// and listens on notifyChannel.
func (s *Store) connectListener(ctx context.Context) (*pgx.Conn, error) {
	cfg := s.pool.Config().ConnConfig.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = listenAppName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `LISTEN `+notifyChannel); err != nil {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		return nil, errors.Join(err, conn.Close(closeCtx))
	}
	return conn, nil
}
