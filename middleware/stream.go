package middleware

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/verify"
)

// Backoff between two connections of the change stream.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// maxSilence is the longest a connected stream may stay silent before it
// is taken for lost, until the server says its cache TTL: the server
// sends a heartbeat every quarter of its cache TTL, and at least every
// 10 s (see silence).
const maxSilence = 30 * time.Second

// silence is the longest a connected stream of a server whose cache TTL
// is ttl may stay silent before it is taken for lost: three of the
// server's heartbeats.
func silence(ttl time.Duration) time.Duration {
	return 3 * min(max(ttl/4, 10*time.Millisecond), 10*time.Second)
}

// Start connects the change stream of the server, and keeps it connected
// until Close, reconnecting from its last position when it is lost. It
// returns once the stream is connected and caught up (Live), or with an
// error when ctx ends or Close is called first (the Remote goes on trying
// in the background meanwhile, until Close, and asks the server about
// every request until it connects). Start fails if it was called before.
func (rm *Remote) Start(ctx context.Context) error {
	rm.lifeMu.Lock()
	if rm.stop != nil {
		rm.lifeMu.Unlock()
		return errors.New("middleware: Remote.Start called twice")
	}
	loop, stop := context.WithCancel(context.WithoutCancel(ctx))
	rm.stop, rm.done = stop, make(chan struct{})
	rm.lifeMu.Unlock()
	go func() {
		defer close(rm.done)
		rm.follow(loop)
	}()
	select {
	case <-rm.ready:
		return nil
	case <-rm.done:
		return errors.New("middleware: Remote.Close was called before the change stream connected")
	case <-ctx.Done():
		return fmt.Errorf("middleware: the change stream of %s did not connect: %w", rm.base, ctx.Err())
	}
}

// Position returns the change stream's position: every change up to it
// has dropped the cached answers it names. It is -1 before the stream
// first connects.
func (rm *Remote) Position() int64 { return rm.position.Load() }

// Live reports whether the change stream is connected and caught up: a
// change made on the server now reaches the cache within a second, and
// cached answers are given without asking the server. A readiness check
// may report it; while it is false, every request asks the server.
func (rm *Remote) Live() bool { return rm.live.Load() }

// Close stops the change stream, waits for it to end, and closes the idle
// connections of the Remote's own transport. The Remote still answers
// afterwards, asking the server about every request: its cache answers
// only when the server cannot be reached, within the server's cache TTL
// of the stream's last word.
func (rm *Remote) Close() error {
	rm.lifeMu.Lock()
	stop, done := rm.stop, rm.done
	rm.lifeMu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	if rm.ownTransport != nil {
		rm.ownTransport.CloseIdleConnections()
	}
	return nil
}

// follow reads the change stream until ctx ends, connecting again after a
// backoff when it is lost: minBackoff after a stream that had connected, then
// doubling up to maxBackoff. A run of failures is logged once, and its end.
func (rm *Remote) follow(ctx context.Context) {
	backoff, failures := minBackoff, 0
	for ctx.Err() == nil {
		connected, err := rm.read(ctx)
		if ctx.Err() != nil {
			return
		}
		if connected {
			backoff = minBackoff
			if failures > 0 {
				rm.log.InfoContext(ctx, "middleware: the change stream reconnected", "failed_attempts", failures)
			}
			failures = 0
		}
		failures++
		if failures == 1 {
			rm.log.WarnContext(ctx, "middleware: the change stream was lost; reconnecting from its last position", "position", rm.position.Load(), "err", err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// read connects the change stream once, from the last position when
// there is one (Last-Event-ID), and applies its events until it ends. It
// reports whether the stream connected, and why it ended.
func (rm *Remote) read(ctx context.Context) (connected bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Whatever ends the stream, the cache no longer hears of changes.
	defer rm.live.Store(false)
	// A stream that stays silent past maxSilence is taken for lost: the
	// connection may have died without a word.
	quiet := maxSilence
	watchdog := time.AfterFunc(quiet, cancel)
	defer watchdog.Stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rm.base+"/v1/changes", nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("X-API-Key", rm.key)
	req.Header.Set("Accept", "text/event-stream")
	if p := rm.position.Load(); p >= 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(p, 10))
	}
	resp, err := rm.streamer.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return false, serverRefusal("GET /v1/changes", resp.StatusCode, raw)
	}
	sc := bufio.NewScanner(resp.Body)
	var event, data string
	for sc.Scan() {
		line := sc.Text()
		if line != "" {
			name, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch name {
			case "event":
				event = value
			case "data":
				data = value
			}
			continue
		}
		if err := rm.apply(event, data); err != nil {
			return connected, err
		}
		if event == "ready" {
			quiet = silence(time.Duration(rm.ttl.Load()))
		}
		watchdog.Reset(quiet)
		connected = connected || event == "ready"
		event, data = "", ""
	}
	if err := sc.Err(); err != nil {
		return connected, err
	}
	return connected, io.ErrUnexpectedEOF
}

// Events of the change stream (httpapi's handleChanges).
type (
	streamReady struct {
		Position int64   `json:"position"`
		CacheTTL float64 `json:"cache_ttl"` // seconds
		Reset    bool    `json:"reset"`
		// Routes is absent from the ready event of an older server,
		// which may have a route policy.
		Routes *bool `json:"routes"`
	}
	streamSync struct {
		Position int64 `json:"position"`
	}
)

// apply applies one event of the change stream.
func (rm *Remote) apply(event, data string) error {
	now := rm.now().UnixNano()
	switch event {
	case "ready":
		var e streamReady
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			return fmt.Errorf("read the stream's ready event: %w", err)
		}
		if e.CacheTTL > 0 {
			rm.ttl.Store(int64(min(time.Duration(e.CacheTTL*float64(time.Second)), verify.MaxCacheTTL)))
		}
		rm.noRoutes.Store(e.Routes != nil && !*e.Routes)
		if e.Reset || rm.position.Load() < 0 {
			// The stream does not go on from where this cache was
			// current: what it holds may predate changes it will never
			// hear of.
			rm.drop(func(*answer) bool { return true })
		}
		rm.position.Store(e.Position)
		rm.lastSync.Store(now)
	case "change":
		var c keyward.Change
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			return fmt.Errorf("read a change of the stream: %w", err)
		}
		rm.drop(func(a *answer) bool { return names(a, c) })
		rm.position.Store(c.Seq)
		rm.lastSync.Store(now)
	case "policy":
		// The server's route policy was reloaded: any answer may have
		// been decided by a route that changed.
		var e streamSync
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			return fmt.Errorf("read the stream's policy event: %w", err)
		}
		rm.drop(func(*answer) bool { return true })
		rm.position.Store(e.Position)
		rm.lastSync.Store(now)
	case "sync":
		var e streamSync
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			return fmt.Errorf("read the stream's sync event: %w", err)
		}
		rm.position.Store(e.Position)
		rm.lastSync.Store(now)
		// The server sends a sync once it has sent the changes that
		// came before this connection, then at each heartbeat: the
		// cache is current from the first.
		if !rm.live.Swap(true) {
			select {
			case <-rm.ready:
			default:
				close(rm.ready)
			}
		}
	}
	return nil
}

// names reports whether the change c is of the key, tenant, member or
// plan that the cached answer a depends on.
func names(a *answer, c keyward.Change) bool {
	switch c.Kind {
	case keyward.ChangeKey:
		return a.v.KeyID == c.ID
	case keyward.ChangeTenant:
		return a.v.TenantID == c.ID
	case keyward.ChangeMember:
		return a.memberID == c.ID
	case keyward.ChangePlan:
		return a.v.Plan == c.ID
	}
	// A kind this Remote does not know: anything may depend on it.
	return true
}

// drop removes the cached answers that match, and keeps match for the
// answers being asked for now, so that those it matches are not cached
// (see store).
func (rm *Remote) drop(match func(*answer) bool) {
	rm.storeMu.Lock()
	defer rm.storeMu.Unlock()
	rm.recent[rm.gen.Load()%recentDrops] = match
	rm.gen.Add(1)
	for h, a := range rm.cache.All() {
		if match(a) {
			rm.cache.Invalidate(h)
		}
	}
}
