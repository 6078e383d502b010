package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// hookReceiver is a webhook endpoint of the test: it checks each
// delivery's signature with the Standard Webhooks library and counts the
// deliveries of each webhook-id and type.
type hookReceiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	secret string
	byID   map[string]int
	types  map[string]int
	bad    int
	// data holds the data of the deliveries of each type.
	data map[string][]json.RawMessage
}

func newHookReceiver(t *testing.T) *hookReceiver {
	r := &hookReceiver{byID: map[string]int{}, types: map[string]int{}, data: map[string][]json.RawMessage{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		payload, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		wh, err := standardwebhooks.NewWebhook(r.secret)
		if err == nil {
			err = wh.Verify(payload, req.Header)
		}
		if err != nil {
			r.bad++
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var body struct {
			Type string
			Data json.RawMessage
		}
		_ = json.Unmarshal(payload, &body)
		r.byID[req.Header.Get("webhook-id")]++
		r.types[body.Type]++
		r.data[body.Type] = append(r.data[body.Type], body.Data)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// counts returns the number of distinct events delivered, the most
// deliveries of one, those of type typ, and the deliveries refused for
// their signature.
func (r *hookReceiver) counts(typ string) (events, most, ofType, bad int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.byID {
		most = max(most, n)
	}
	return len(r.byID), most, r.types[typ], r.bad
}

// dataOf returns the data of the deliveries of type typ so far.
func (r *hookReceiver) dataOf(typ string) []json.RawMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.data[typ])
}

// register makes r the operator's endpoint (every tenant's events) of
// types through node s, and keeps its secret.
func (r *hookReceiver) register(t *testing.T, s *server, root string, events ...string) {
	t.Helper()
	a := s.call(t, "POST", "/v1/webhooks", root, map[string]any{"url": r.srv.URL + "/events", "events": events})
	var out struct{ Secret string }
	if a.status != http.StatusCreated || json.Unmarshal(a.body, &out) != nil || !strings.HasPrefix(out.Secret, "whsec_") {
		t.Fatalf("POST /v1/webhooks: %d %s", a.status, a.body)
	}
	r.mu.Lock()
	r.secret = out.Secret
	r.mu.Unlock()
}

// waitFor polls until cond holds, or fails the test after 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWebhookAfterSIGKILL: a revocation's event is written with the
// revocation; the node that made it, which delivers nothing
// (--webhook-workers 0), is killed with SIGKILL before any node delivered
// it; a node started afterwards on the database delivers it, signed.
func TestWebhookAfterSIGKILL(t *testing.T) {
	db := "sqlite:" + dbFile(t)
	r := newHookReceiver(t)
	k := startProcess(t, db, "--webhook-workers", "0", "--webhook-allow-private")
	k.waitHealthy(t)
	root := strings.TrimSpace(k.stdout.String())
	r.register(t, k.server, root, keyward.EventKeyRevoked)
	acme := createTenant(t, k.server, root, "acme")
	_, id := createKey(t, k.server, root, acme, "to-revoke")
	if a := k.call(t, "DELETE", "/v1/api-keys/"+id, root, nil); a.status != http.StatusOK {
		t.Fatalf("revoke: %d %s", a.status, a.body)
	}
	if err := k.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	k.exited <- <-k.exited // read again by the test's cleanup
	if events, _, _, _ := r.counts(keyward.EventKeyRevoked); events != 0 {
		t.Fatal("delivered by a node with --webhook-workers 0")
	}

	n := startProcess(t, db, "--webhook-allow-private")
	n.waitHealthy(t)
	waitFor(t, "key.revoked delivered by the node started after the kill", func() bool {
		_, _, revoked, _ := r.counts(keyward.EventKeyRevoked)
		return revoked == 1
	})
	if _, most, _, bad := r.counts(""); most != 1 || bad != 0 {
		t.Errorf("deliveries: most of one event %d, refused signatures %d", most, bad)
	}
	// Its delivery log says so.
	list := n.call(t, "GET", "/v1/webhooks", root, nil)
	var hooks struct{ Data []struct{ ID string } }
	if json.Unmarshal(list.body, &hooks) != nil || len(hooks.Data) != 1 {
		t.Fatalf("webhooks: %s", list.body)
	}
	waitFor(t, "the delivery log shows it delivered", func() bool {
		a := n.call(t, "GET", "/v1/webhooks/"+hooks.Data[0].ID+"/deliveries?status=delivered", root, nil)
		var log struct {
			Data []struct {
				EventType string `json:"event_type"`
			}
		}
		return json.Unmarshal(a.body, &log) == nil && len(log.Data) == 1 && log.Data[0].EventType == keyward.EventKeyRevoked
	})
}

// TestWebhooksTwoNodes: two nodes on one PostgreSQL database deliver the
// events of 40 keys made through both, each exactly once: no event is
// delivered by both.
func TestWebhooksTwoNodes(t *testing.T) {
	d := newPGDeployment(t)
	root := d.migrate(t)
	a := d.startProcessNode(t, "A", "--webhook-allow-private")
	b := d.startProcessNode(t, "B", "--webhook-allow-private")
	r := newHookReceiver(t)
	r.register(t, a.server, root, keyward.EventKeyCreated)
	acme := createTenant(t, a.server, root, "acme")
	const keys = 40
	var wg sync.WaitGroup
	for i := range keys {
		node := a
		if i%2 == 1 {
			node = b
		}
		wg.Go(func() { createKey(t, node.server, root, acme, fmt.Sprintf("k%d", i)) })
	}
	wg.Wait()
	waitFor(t, fmt.Sprintf("%d key.created delivered", keys), func() bool {
		events, _, _, _ := r.counts(keyward.EventKeyCreated)
		return events == keys
	})
	time.Sleep(2 * time.Second) // a second delivery, were there one, would have come
	if events, most, created, bad := r.counts(keyward.EventKeyCreated); events != keys || most != 1 || created != keys || bad != 0 {
		t.Fatalf("%d events, %d deliveries of key.created, at most %d of one, %d refused signatures; want %d, %d, 1, 0",
			events, created, most, bad, keys, keys)
	}
}

// TestWebhooksCommandLine: keyward webhooks registers an endpoint (its
// secret printed once), lists it, shows its delivery log, redelivers,
// rotates its secret and deletes it, through the rules of the API; a
// private address is refused.
func TestWebhooksCommandLine(t *testing.T) {
	db := newDB(t)
	ok(t, db, "tenants", "create", "acme")
	fails(t, db, 1, []string{"webhooks", "create", "--tenant", "acme", "--url", "http://10.0.0.1/hook", "--events", "*"}, "url", "private")
	secret := strings.TrimSpace(ok(t, db, "webhooks", "create", "--tenant", "acme", "--url", "https://203.0.113.5/hook", "--events", "key.revoked").stdout)
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("webhooks create printed %q", secret)
	}
	var list struct{ Data []struct{ ID, URL string } }
	if err := json.Unmarshal([]byte(ok(t, db, "webhooks", "list", "--json").stdout), &list); err != nil || len(list.Data) != 1 {
		t.Fatalf("webhooks list: %+v, %v", list, err)
	}
	id := list.Data[0].ID
	if strings.Contains(ok(t, db, "webhooks", "list").stdout, secret) {
		t.Error("webhooks list shows the secret")
	}
	_, keyID := newKey(t, db, "--name", "gone")
	ok(t, db, "keys", "revoke", keyID)
	var log struct {
		Data []struct {
			ID        int64  `json:"id"`
			EventType string `json:"event_type"`
			Status    string
		}
	}
	if err := json.Unmarshal([]byte(ok(t, db, "webhooks", "deliveries", id, "--json").stdout), &log); err != nil || len(log.Data) != 1 ||
		log.Data[0].EventType != keyward.EventKeyRevoked || log.Data[0].Status != keyward.DeliveryPending {
		t.Fatalf("webhooks deliveries: %+v, %v", log, err)
	}
	if o := ok(t, db, "webhooks", "redeliver", id, fmt.Sprint(log.Data[0].ID)).stdout; !strings.Contains(o, "due again") {
		t.Errorf("webhooks redeliver: %q", o)
	}
	if next := strings.TrimSpace(ok(t, db, "webhooks", "rotate-secret", id).stdout); !strings.HasPrefix(next, "whsec_") || next == secret {
		t.Errorf("webhooks rotate-secret printed %q", next)
	}
	ok(t, db, "webhooks", "delete", id)
	fails(t, db, 1, []string{"webhooks", "deliveries", id}, "No webhook", id)
}
