package httpapi

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// TestChangesStream: GET /v1/changes needs keyward:verify, starts with a
// ready event at the verifier's position, streams each change applied
// after it (ids and kinds, never a key), and resumes after Last-Event-ID.
func TestChangesStream(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	plain, _ := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "c"})
	problemOf(t, h.call("GET", "/v1/changes", plain, nil), http.StatusForbidden, keyward.CodeInsufficientPermissions)
	problemOf(t, h.call("GET", "/v1/changes", h.root, nil, "Last-Event-ID", "x"), http.StatusBadRequest, keyward.CodeInvalidRequest)
	verifier, _ := h.key(h.root, map[string]any{"tenant_id": keyward.SystemTenantID, "name": "remote", "permissions": []string{"keyward:verify"}})

	open := func(lastEventID string) (*bufio.Scanner, func()) {
		t.Helper()
		req, err := http.NewRequest("GET", h.url+"/v1/changes", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-API-Key", verifier)
		if lastEventID != "" {
			req.Header.Set("Last-Event-ID", lastEventID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		return bufio.NewScanner(resp.Body), func() { resp.Body.Close() }
	}
	// next reads the next event that is not a heartbeat.
	next := func(sc *bufio.Scanner) string {
		t.Helper()
		var ev []string
		for sc.Scan() {
			if line := sc.Text(); line != "" {
				ev = append(ev, line)
				continue
			}
			if len(ev) > 0 && ev[0] != "event: sync" {
				return strings.Join(ev, "\n")
			}
			ev = nil
		}
		t.Fatalf("the stream ended: %v", sc.Err())
		return ""
	}

	sc, closeStream := open("")
	defer closeStream()
	applied, _ := h.verifier.Applied()
	if ev := next(sc); !strings.HasPrefix(ev, "event: ready\ndata: {\"position\":"+itoa(applied)+",") || !strings.Contains(ev, `"reset":false`) {
		t.Fatalf("first event %q, want ready at %d", ev, applied)
	}
	_, id := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "new"})
	ev := next(sc)
	if !strings.HasPrefix(ev, "event: change\nid: ") || !strings.Contains(ev, `"kind":"key","id":"`+id+`"`) || strings.Contains(ev, "sk_") {
		t.Fatalf("change event %q, want the creation of %s", ev, id)
	}
	seq := strings.TrimPrefix(strings.Split(ev, "\n")[1], "id: ")

	// Resumed from before that change, the stream sends it again; from a
	// position the feed never reached, it says to reset.
	sc2, close2 := open(itoa(applied))
	defer close2()
	if ev := next(sc2); !strings.Contains(ev, `"position":`+itoa(applied)+",") {
		t.Fatalf("resumed: first event %q", ev)
	}
	if ev := next(sc2); !strings.Contains(ev, "id: "+seq+"\n") {
		t.Fatalf("resumed: the change %s was not sent again: %q", seq, ev)
	}
	// Then at once, not at the next heartbeat, a sync: the client has
	// every change before the stream began, and may trust its cache.
	synced := make(chan string, 1)
	go func() {
		var ev []string
		for sc2.Scan() && sc2.Text() != "" {
			ev = append(ev, sc2.Text())
		}
		synced <- strings.Join(ev, "\n")
	}()
	select {
	case ev := <-synced:
		if ev != "event: sync\nid: "+seq+"\ndata: {\"position\":"+seq+"}" {
			t.Fatalf("resumed: after the changes it missed, %q, want a sync at %s", ev, seq)
		}
	case <-time.After(min(h.verifier.CacheTTL()/4, 10*time.Second) / 2): // half a heartbeat
		t.Fatalf("resumed: no sync after the changes it missed")
	}
	sc3, close3 := open("999999")
	defer close3()
	if ev := next(sc3); !strings.Contains(ev, `"reset":true`) {
		t.Fatalf("from a position past the feed: %q, want reset", ev)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
