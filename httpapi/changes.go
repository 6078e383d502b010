package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/verifyapi"
	"github.com/keyward/keyward/policy"
)

// changesRequest documents what GET /v1/changes reads.
type changesRequest struct {
	LastEventID string `header:"Last-Event-ID" description:"the position (the id of the last event) a remote verifier read up to, to resume after a lost stream without missing a change; without it, the stream starts at the current position, and the verifier must drop what it cached"`
}

// changeStream documents the events of GET /v1/changes, a stream of
// server-sent events (text/event-stream), one JSON object in each event's
// data:
//
//	event: ready    data: {"position", "cache_ttl", "reset", "routes"}    once, first
//	event: change   data: {"seq", "kind", "id", "at"}           with id: seq
//	event: policy   data: {"position"}                          when the route policy (serve --routes) was reloaded
//	event: sync     data: {"position"}                          once the changes before the stream began are sent, then every heartbeat, with id: position
type changeStream struct {
	Ready  streamReady    `json:"ready"`
	Change keyward.Change `json:"change"`
	Policy streamSync     `json:"policy" description:"the route policy was reloaded: every answer may have changed, and the verifier must drop what it cached"`
	Sync   streamSync     `json:"sync"`
}

// streamReady is the first event of a change stream.
type streamReady struct {
	Position int64   `json:"position" description:"the position the stream goes on from: each change after it follows"`
	CacheTTL float64 `json:"cache_ttl" description:"the server's cache time to live, in seconds (with a fraction for part of one): a remote verifier answers from its cache for no longer than this after it last heard from the stream"`
	Reset    bool    `json:"reset" description:"true when the stream cannot go on from Last-Event-ID (it names a position this server's feed never reached): the verifier must drop what it cached"`
	Routes   bool    `json:"routes" description:"true when the server has a route policy (serve --routes), which may make a route public; without one, a verifier refuses a request without a key without asking the server"`
}

// streamSync says that every change up to Position was sent: once the
// stream has sent the changes before it began (the client is caught up),
// then at each heartbeat.
type streamSync struct {
	Position int64 `json:"position"`
}

// changesBatch is the most changes read from the store at once for a
// stream.
const changesBatch = 500

// maxHeartbeat is the longest time between two events of a change stream.
const maxHeartbeat = 10 * time.Second

// policyCheck is how often a change stream checks whether the route
// policy was reloaded, to send a policy event: the remote verifiers'
// cached answers were decided by the policy before.
const policyCheck = 250 * time.Millisecond

// heartbeat is how often a change stream says it is alive when nothing
// changes: often enough within the cache TTL that a remote verifier never
// takes a quiet stream for a lost one.
func (s *server) heartbeat() time.Duration {
	return max(min(s.verifier.CacheTTL()/4, maxHeartbeat), 10*time.Millisecond)
}

// maxStreamsPerClient is the most change streams one key may hold open
// from one client address at once: a remote verifier holds one, and a
// moment two while the server has not yet seen its lost stream end, so
// that a client that leaks streams cannot hold a goroutine and a
// connection of the server each without end.
const maxStreamsPerClient = 16

// detailTooManyStreams is the detail of a stream refused for
// maxStreamsPerClient.
var detailTooManyStreams = "This key already holds " + strconv.Itoa(maxStreamsPerClient) + " change streams open from this address, " +
	"the most it may; a remote verifier needs one. Close the remote verifiers (middleware.Remote) you no longer use, " +
	"or give each process its own key, then connect again."

// streamCounts counts the open change streams of each key and client
// address; its zero value counts none.
type streamCounts struct {
	mu sync.Mutex
	n  map[streamClient]int
}

// streamClient is the key and client address a change stream is counted
// under.
type streamClient struct{ keyID, addr string }

// open counts a stream of c, and reports whether it may be opened: c holds
// fewer than maxStreamsPerClient. A stream counted must be closed.
func (sc *streamCounts) open(c streamClient) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.n[c] >= maxStreamsPerClient {
		return false
	}
	if sc.n == nil {
		sc.n = make(map[streamClient]int)
	}
	sc.n[c]++
	return true
}

// close stops counting a stream of c.
func (sc *streamCounts) close(c streamClient) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.n[c]--; sc.n[c] <= 0 {
		delete(sc.n, c)
	}
}

// handleChanges streams the change feed to a remote verifier (the Go
// middleware in remote mode, package middleware) as server-sent events:
// which keys, tenants, members and plans changed, never what they hold.
// It sends only changes this server's verifier has applied, so that a
// remote verifier that drops an answer and asks again gets the new one. A
// lost stream resumes after Last-Event-ID. A key holds at most
// maxStreamsPerClient streams from one client address. The stream ends when the
// client goes, when the store cannot be read (the client reconnects), or
// when the server shuts down (Config.Done).
func (s *server) handleChanges(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.ContentLength != 0 {
		// A body is no question this route asks; the stream would never
		// read it.
		s.writeError(w, r, keyward.Errorf(keyward.CodeInvalidRequest, "GET /v1/changes takes no body: send the request without one."))
		return
	}
	client := streamClient{addr: verifyapi.AddrString(s.clientIP(r))}
	if k := admissionOf(r).key.Key; k != nil {
		client.keyID = k.ID
	}
	if !s.streams.open(client) {
		s.writeError(w, r, &keyward.Error{Code: keyward.CodeRateLimited, Message: detailTooManyStreams, RetryAfter: time.Second})
		return
	}
	defer s.streams.close(client)
	applied, wake := s.verifier.Applied()
	after, reset := applied, false
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil || n < 0 {
			s.writeError(w, r, keyward.Errorf(keyward.CodeInvalidRequest, "Last-Event-ID must be a position of the change feed (the id of the last event read), a whole number of zero or more."))
			return
		}
		after = n
		if n > applied {
			last, err := s.store.LastChange(ctx)
			if err != nil {
				s.writeError(w, r, &keyward.Error{Code: keyward.CodeStorageUnavailable, Err: err,
					Message: "The change feed could not be read; reconnect shortly."})
				return
			}
			// A position past the end of the feed is of another database
			// (restored, or replaced): nothing the client cached can be
			// trusted. One short of it is a node that is a moment behind.
			if n > last {
				after, reset = applied, true
			}
		}
	}
	// The stream outlives the server's read and write timeouts.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	ttl := s.verifier.CacheTTL().Seconds()
	if err := writeEvent(w, "ready", -1, streamReady{Position: after, CacheTTL: ttl, Reset: reset, Routes: s.policyFile != nil}); err != nil || rc.Flush() != nil {
		return
	}
	// The changes since the position the client resumes from, then a
	// sync, at once: the client is caught up, and may answer from its
	// cache again.
	var err error
	if after, err = s.sendChanges(ctx, w, after, applied); err != nil {
		s.log.WarnContext(ctx, "change stream: ending it; the client will reconnect", "request_id", requestID(w), "err", err)
		return
	}
	if writeEvent(w, "sync", after, streamSync{Position: after}) != nil || rc.Flush() != nil {
		return
	}
	beat := time.NewTicker(s.heartbeat())
	defer beat.Stop()
	// The policy that the answers since the stream began were decided by;
	// nil without one.
	var pol *policy.Policy
	var policyReloaded <-chan time.Time
	if s.policyFile != nil {
		pol = s.policyFile.Policy()
		t := time.NewTicker(policyCheck)
		defer t.Stop()
		policyReloaded = t.C
	}
	for {
		if after, err = s.sendChanges(ctx, w, after, applied); err != nil {
			s.log.WarnContext(ctx, "change stream: ending it; the client will reconnect", "request_id", requestID(w), "err", err)
			return
		}
		if rc.Flush() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case <-wake:
			applied, wake = s.verifier.Applied()
		case <-beat.C:
			if writeEvent(w, "sync", after, streamSync{Position: after}) != nil {
				return
			}
		case <-policyReloaded:
			if p := s.policyFile.Policy(); p != pol {
				pol = p
				if writeEvent(w, "policy", after, streamSync{Position: after}) != nil {
					return
				}
			}
		}
	}
}

// sendChanges writes the changes after position after, up to applied, as
// events, and returns the position reached: applied, also when changes
// in between were pruned.
func (s *server) sendChanges(ctx context.Context, w http.ResponseWriter, after, applied int64) (int64, error) {
	for after < applied {
		changes, err := s.store.Changes(ctx, after, changesBatch)
		if err != nil {
			return after, fmt.Errorf("read the change feed after %d: %w", after, err)
		}
		for _, c := range changes {
			if c.Seq > applied {
				return applied, nil
			}
			if err := writeEvent(w, "change", c.Seq, c); err != nil {
				return after, err
			}
			after = c.Seq
		}
		if len(changes) < changesBatch {
			break
		}
	}
	return max(after, applied), nil
}

// writeEvent writes one server-sent event: its name, its id when id is
// not negative, and v as JSON in its data.
func writeEvent(w http.ResponseWriter, name string, id int64, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	buf := make([]byte, 0, len(data)+64)
	buf = append(buf, "event: "...)
	buf = append(buf, name...)
	buf = append(buf, '\n')
	if id >= 0 {
		buf = append(buf, "id: "...)
		buf = strconv.AppendInt(buf, id, 10)
		buf = append(buf, '\n')
	}
	buf = append(buf, "data: "...)
	buf = append(buf, data...)
	buf = append(buf, "\n\n"...)
	_, err = w.Write(buf)
	return err
}
