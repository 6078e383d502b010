package httpapi

import (
	"bufio"
	"encoding/json"
	"io"
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

// TestChangesLimits: a key holds at most maxStreamsPerClient streams from
// one address (the next is 429 with Retry-After, and may open once one
// closes), and every stream ends when the server shuts down (Config.Done).
func TestChangesLimits(t *testing.T) {
	done := make(chan struct{})
	h := newHarness(t, func(c *harnessConfig) { c.Done = done })
	verifier, _ := h.key(h.root, map[string]any{"tenant_id": keyward.SystemTenantID, "name": "remote", "permissions": []string{"keyward:verify"}})
	other, _ := h.key(h.root, map[string]any{"tenant_id": keyward.SystemTenantID, "name": "other", "permissions": []string{"keyward:verify"}})
	open := func(key string) *http.Response {
		t.Helper()
		req, err := http.NewRequest("GET", h.url+"/v1/changes", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-API-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	var streams []*http.Response
	for i := range maxStreamsPerClient {
		resp := open(verifier)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d: status %d", i+1, resp.StatusCode)
		}
		streams = append(streams, resp)
	}
	resp := open(verifier)
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("one stream too many: status 200")
	}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(raw), `"code":"rate_limited"`) {
		t.Fatalf("one stream too many: %d %v %s", resp.StatusCode, resp.Header, raw)
	}
	if resp := open(other); resp.StatusCode != http.StatusOK {
		t.Fatalf("another key's stream: status %d", resp.StatusCode)
	}
	streams[0].Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp := open(verifier)
		if resp.StatusCode == http.StatusOK {
			streams[0] = resp
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatalf("a stream closed was still counted: %d", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}

	close(done)
	for i, resp := range streams {
		ended := make(chan error, 1)
		go func() {
			_, err := io.Copy(io.Discard, resp.Body)
			ended <- err
		}()
		select {
		case err := <-ended:
			if err != nil {
				t.Errorf("stream %d ended with %v, want its end", i+1, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("stream %d still open after Done", i+1)
		}
	}
}

// TestChangesOpenAPI: the OpenAPI document gives GET /v1/changes as a
// stream of server-sent events that needs a key, with its Last-Event-ID,
// and its 429 for a stream too many.
func TestChangesOpenAPI(t *testing.T) {
	h := newHarness(t)
	a := h.call("GET", "/openapi.json", "", nil)
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
			Parameters  []struct {
				Name, In string
			} `json:"parameters"`
			Responses map[string]struct {
				Content map[string]any `json:"content"`
			} `json:"responses"`
			Security []map[string]any `json:"security"`
		} `json:"paths"`
	}
	if err := json.Unmarshal([]byte(a.raw), &doc); err != nil {
		t.Fatal(err)
	}
	op, ok := doc.Paths["/v1/changes"]["get"]
	if !ok {
		t.Fatal("no GET /v1/changes in the OpenAPI document")
	}
	if _, ok := op.Responses["200"].Content["text/event-stream"]; !ok {
		t.Errorf("200 is not text/event-stream: %v", op.Responses["200"])
	}
	for _, st := range []string{"401", "403", "429", "503"} {
		if _, ok := op.Responses[st].Content["application/problem+json"]; !ok {
			t.Errorf("no %s problem", st)
		}
	}
	if len(op.Security) == 0 || len(op.Parameters) != 1 || op.Parameters[0].Name != "Last-Event-ID" || op.Parameters[0].In != "header" {
		t.Errorf("security %v, parameters %v", op.Security, op.Parameters)
	}
}
