package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/testclock"
	"github.com/keyward/keyward/internal/webhook"
	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/sqlite"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// receiver is a webhook endpoint of the test: it checks every delivery's
// signature with the Standard Webhooks library (not our own code) and
// keeps the deliveries it accepted; it fails the first fail ones with 500.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	secret []string // any one of them must verify
	fail   int
	got    []delivery
	tries  int
	// moved says the test moved its clock ahead of the real one: the
	// signatures are checked without the library's check of the
	// timestamp against the real clock.
	moved bool
	// delay is how long it takes to answer; inFlight and most count the
	// deliveries it is answering at once.
	delay          time.Duration
	inFlight, most int
}

// delivery is what a receiver accepted.
type delivery struct {
	id   string
	body struct {
		Type      string          `json:"type"`
		Timestamp time.Time       `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}
	signature string
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		payload, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		delay := r.delay
		r.inFlight++
		r.most = max(r.most, r.inFlight)
		r.mu.Unlock()
		time.Sleep(delay)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.inFlight--
		r.tries++
		if r.fail > 0 {
			r.fail--
			http.Error(w, "down for a moment", http.StatusInternalServerError)
			return
		}
		for _, s := range r.secret {
			wh, err := standardwebhooks.NewWebhook(s)
			if err != nil {
				t.Errorf("secret %q: %v", s, err)
				continue
			}
			verify := wh.Verify
			if r.moved {
				verify = wh.VerifyIgnoringTimestamp
			}
			if err := verify(payload, req.Header); err != nil {
				t.Errorf("the delivery does not verify with secret %s…: %v\nheaders %v", s[:10], err, req.Header)
				http.Error(w, "bad signature", http.StatusUnauthorized)
				return
			}
		}
		d := delivery{id: req.Header.Get("webhook-id"), signature: req.Header.Get("webhook-signature")}
		if err := json.Unmarshal(payload, &d.body); err != nil {
			t.Errorf("the body is not JSON: %v", err)
		}
		r.got = append(r.got, d)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

// fixture is a store with a tenant acme, a key of it, and a service on a
// clock of the test's.
type fixture struct {
	store keyward.Store
	svc   *manage.Service
	clock *testclock.Clock
	keyID string
}

func newFixture(t *testing.T, allowPrivate bool) *fixture {
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "keyward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	clk := testclock.New(time.Now().UTC().Truncate(time.Second))
	svc := manage.New(manage.Config{Store: s, Clock: clk.Now, AllowPrivateWebhooks: allowPrivate})
	if _, err := svc.Bootstrap(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateTenant(t.Context(), manage.CommandLine(), manage.CreateTenantInput{Slug: "acme"}); err != nil {
		t.Fatal(err)
	}
	k, _, err := svc.CreateKey(t.Context(), manage.CommandLine(), manage.CreateKeyInput{TenantID: "acme", Name: "app"})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{store: s, svc: svc, clock: clk, keyID: k.ID}
}

// hook registers r as acme's endpoint for events, and returns its id and
// secret.
func (f *fixture) hook(t *testing.T, r *receiver, events ...string) (string, string) {
	w, secret, err := f.svc.CreateWebhook(t.Context(), manage.CommandLine(), manage.WebhookInput{TenantID: "acme", URL: r.srv.URL + "/hook", Events: events})
	if err != nil {
		t.Fatal(err)
	}
	r.secret = []string{secret}
	return w.ID, secret
}

// TestDelivered: a revocation's key.revoked reaches the endpoint, signed
// (checked by the Standard Webhooks library), with the key in its data and
// never its plaintext or hash; an endpoint that did not ask for the type
// gets nothing; the delivery log shows it delivered.
func TestDelivered(t *testing.T) {
	f := newFixture(t, true)
	r := newReceiver(t)
	id, _ := f.hook(t, r, keyward.EventKeyRevoked)
	other := newReceiver(t)
	f.hook(t, other, keyward.EventKeyRotated)
	other.secret = nil
	if _, err := f.svc.RevokeKey(t.Context(), manage.CommandLine(), f.keyID); err != nil {
		t.Fatal(err)
	}
	d := webhook.NewDispatcher(webhook.Config{Store: f.store, AllowPrivate: true, Now: f.clock.Now})
	if n, err := d.Once(t.Context()); err != nil || n != 1 {
		t.Fatalf("Once = %d, %v; want the one delivery", n, err)
	}
	got := r.deliveries()
	if len(got) != 1 || got[0].body.Type != keyward.EventKeyRevoked || !strings.HasPrefix(got[0].id, "msg_") {
		t.Fatalf("delivered %+v", got)
	}
	var data struct {
		Key struct {
			ID, Status string
		}
		Actor string
	}
	if err := json.Unmarshal(got[0].body.Data, &data); err != nil || data.Key.ID != f.keyID || data.Key.Status != "revoked" || data.Actor != "cli" {
		t.Errorf("data %s (%v)", got[0].body.Data, err)
	}
	if len(other.deliveries()) != 0 {
		t.Errorf("an endpoint for key.rotated got %v", other.deliveries())
	}
	log, _, err := f.svc.WebhookDeliveries(t.Context(), manage.CommandLine(), id, manage.DeliveryListInput{}, keyward.Page{})
	if err != nil || len(log) != 1 || log[0].Status != keyward.DeliveryDelivered || log[0].Attempts != 1 || log[0].LastStatus != 200 {
		t.Fatalf("delivery log %+v, %v", log, err)
	}
	if n, _ := d.Once(t.Context()); n != 0 {
		t.Errorf("a delivered delivery was taken again")
	}
}

// TestRetries: a receiver that fails twice gets the event on the third
// attempt, each after the schedule's wait and not before; one that fails
// every attempt of the schedule leaves the delivery failed, and a
// redelivery by hand delivers it.
func TestRetries(t *testing.T) {
	f := newFixture(t, true)
	r := newReceiver(t)
	id, _ := f.hook(t, r, "*")
	r.fail, r.moved = 2, true
	if _, err := f.svc.RevokeKey(t.Context(), manage.CommandLine(), f.keyID); err != nil {
		t.Fatal(err)
	}
	schedule := []time.Duration{0, time.Minute, time.Hour}
	d := webhook.NewDispatcher(webhook.Config{Store: f.store, AllowPrivate: true, Now: f.clock.Now, Schedule: schedule})
	for i, wait := range []time.Duration{0, time.Minute, time.Hour} {
		f.clock.Advance(wait - time.Second)
		if i > 0 {
			if n, _ := d.Once(t.Context()); n != 0 {
				t.Fatalf("attempt %d taken before its wait", i+1)
			}
		}
		f.clock.Advance(time.Second)
		if n, err := d.Once(t.Context()); err != nil || n != 1 {
			t.Fatalf("attempt %d: Once = %d, %v", i+1, n, err)
		}
	}
	if got := r.deliveries(); len(got) != 1 || r.tries != 3 {
		t.Fatalf("%d tries, %d delivered; want 3 and 1", r.tries, len(got))
	}
	list, _, _ := f.svc.WebhookDeliveries(t.Context(), manage.CommandLine(), id, manage.DeliveryListInput{}, keyward.Page{})
	one, err := f.svc.WebhookDelivery(t.Context(), manage.CommandLine(), id, itoa(list[0].ID))
	if err != nil || one.Status != keyward.DeliveryDelivered || len(one.Log) != 3 || one.Log[2].Status != 500 || one.Log[0].Status != 200 {
		t.Fatalf("delivery %+v, %v", one, err)
	}

	// Failing every attempt: failed once the schedule is spent.
	r.fail = 100
	if _, err := f.svc.UpdateKey(t.Context(), manage.CommandLine(), f.keyID, manage.UpdateKeyInput{Name: ptr("renamed")}); err == nil {
		t.Fatal("a revoked key was updated")
	}
	k, _, err := f.svc.CreateKey(t.Context(), manage.CommandLine(), manage.CreateKeyInput{TenantID: "acme", Name: "second"})
	if err != nil {
		t.Fatal(err)
	}
	for _, wait := range schedule {
		f.clock.Advance(wait)
		if n, _ := d.Once(t.Context()); n != 1 {
			t.Fatalf("after %v: nothing taken", wait)
		}
	}
	f.clock.Advance(24 * time.Hour)
	if n, _ := d.Once(t.Context()); n != 0 {
		t.Fatal("taken again after the schedule was spent")
	}
	failed, _, _ := f.svc.WebhookDeliveries(t.Context(), manage.CommandLine(), id, manage.DeliveryListInput{Status: keyward.DeliveryFailed}, keyward.Page{})
	if len(failed) != 1 || failed[0].Attempts != 3 || failed[0].NextAt != nil {
		t.Fatalf("failed deliveries %+v", failed)
	}
	var data struct{ Key struct{ ID string } }
	r.fail = 0
	if _, err := f.svc.Redeliver(t.Context(), manage.CommandLine(), id, itoa(failed[0].ID)); err != nil {
		t.Fatal(err)
	}
	if n, _ := d.Once(t.Context()); n != 1 {
		t.Fatal("a redelivery was not taken")
	}
	got := r.deliveries()
	if err := json.Unmarshal(got[len(got)-1].body.Data, &data); err != nil || data.Key.ID != k.ID || got[len(got)-1].body.Type != keyward.EventKeyCreated {
		t.Fatalf("redelivered %+v", got[len(got)-1])
	}
}

// TestSecretRotation: after a rotation of the secret, deliveries carry a
// signature by each secret during the overlap (the library accepts either
// alone), and by the new one alone after it.
func TestSecretRotation(t *testing.T) {
	f := newFixture(t, true)
	r := newReceiver(t)
	id, old := f.hook(t, r, "*")
	r.moved = true
	_, secret, err := f.svc.RotateWebhookSecret(t.Context(), manage.CommandLine(), id, ptr("1h"))
	if err != nil {
		t.Fatal(err)
	}
	d := webhook.NewDispatcher(webhook.Config{Store: f.store, AllowPrivate: true, Now: f.clock.Now})
	for _, s := range [][]string{{old}, {secret}} {
		r.secret = s
		if _, _, err := f.svc.CreateKey(t.Context(), manage.CommandLine(), manage.CreateKeyInput{TenantID: "acme", Name: "k"}); err != nil {
			t.Fatal(err)
		}
		if n, _ := d.Once(t.Context()); n != 1 {
			t.Fatal("not delivered")
		}
	}
	f.clock.Advance(time.Hour + time.Second)
	r.secret = []string{secret}
	if _, _, err := f.svc.CreateKey(t.Context(), manage.CommandLine(), manage.CreateKeyInput{TenantID: "acme", Name: "k"}); err != nil {
		t.Fatal(err)
	}
	d.Once(t.Context())
	got := r.deliveries()
	if len(got) != 3 || strings.Count(got[0].signature, "v1,") != 2 || strings.Count(got[2].signature, "v1,") != 1 {
		t.Fatalf("signatures %q, %q, %q", got[0].signature, got[1].signature, got[2].signature)
	}
}

// TestPrivateRefused: without AllowPrivate an endpoint on loopback or a
// private address is refused when registered, and a delivery to one that
// got in (registered while allowed) is refused when it would connect.
func TestPrivateRefused(t *testing.T) {
	f := newFixture(t, false)
	for _, u := range []string{"http://127.0.0.1:8080/x", "http://10.1.2.3/x", "http://[::1]/x", "http://169.254.169.254/latest/meta-data",
		"http://[::ffff:127.0.0.1]/x", "http://0.0.0.0/x", "http://100.64.0.1/x", "ftp://203.0.113.1/x", "https://user:pw@203.0.113.1/x", "not a url"} {
		_, _, err := f.svc.CreateWebhook(t.Context(), manage.CommandLine(), manage.WebhookInput{TenantID: "acme", URL: u, Events: []string{"*"}})
		if keyward.ErrorCode(err) != keyward.CodeInvalidRequest || !strings.Contains(err.Error(), "url") {
			t.Errorf("%s: %v; want a refusal that names url", u, err)
		}
	}
	if _, _, err := f.svc.CreateWebhook(t.Context(), manage.CommandLine(), manage.WebhookInput{TenantID: "acme", URL: "https://203.0.113.7/x", Events: []string{"*"}}); err != nil {
		t.Errorf("a public address: %v", err)
	}
	// Registered while private addresses were allowed; delivered by a
	// dispatcher that does not allow them.
	allowing := manage.New(manage.Config{Store: f.store, Clock: f.clock.Now, AllowPrivateWebhooks: true})
	r := newReceiver(t)
	if _, _, err := allowing.CreateWebhook(t.Context(), manage.CommandLine(), manage.WebhookInput{TenantID: "acme", URL: r.srv.URL, Events: []string{"*"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.RevokeKey(t.Context(), manage.CommandLine(), f.keyID); err != nil {
		t.Fatal(err)
	}
	d := webhook.NewDispatcher(webhook.Config{Store: f.store, Now: f.clock.Now})
	d.Once(t.Context())
	if r.tries != 0 {
		t.Fatal("a delivery reached a loopback address")
	}
	for _, a := range []string{"203.0.113.1", "2001:db8::1", "8.8.8.8", "2a00:1450::1", "64:ff9b::808:808", "2002:808:808::1"} {
		if !webhook.Public(netip.MustParseAddr(a)) {
			t.Errorf("%s: not public", a)
		}
	}
	for _, a := range []string{"64:ff9b::a00:1", "2002:a00:1::1", "::127.0.0.1", "fec0::1", "fe80::1", "fc00::1", "::", "::1",
		"198.18.0.1", "192.0.0.1", "240.0.0.1", "255.255.255.255", "2001::1", "ff02::1", "::ffff:10.0.0.1", "224.0.0.1"} {
		if webhook.Public(netip.MustParseAddr(a)) {
			t.Errorf("%s: public", a)
		}
	}
}

// TestKeyDates: key.expiring is raised once for a key within the notice of
// its expiry, and key.rotation_due once past its rotate_by; a new date
// raises it again.
func TestKeyDates(t *testing.T) {
	f := newFixture(t, true)
	r := newReceiver(t)
	f.hook(t, r, keyward.EventKeyExpiring, keyward.EventKeyRotationDue)
	r.moved = true
	expires, rotate := "3d", "1d"
	if _, _, err := f.svc.CreateKey(t.Context(), manage.CommandLine(), manage.CreateKeyInput{TenantID: "acme", Name: "dated", Expires: &expires, RotateBy: &rotate}); err != nil {
		t.Fatal(err)
	}
	d := webhook.NewDispatcher(webhook.Config{Store: f.store, AllowPrivate: true, Now: f.clock.Now, ExpiryNotice: 48 * time.Hour, ScanInterval: time.Hour})
	run := func() []string {
		n := len(r.deliveries())
		d.Scan(t.Context())
		for {
			if taken, err := d.Once(t.Context()); err != nil || taken == 0 {
				break
			}
		}
		var types []string
		for _, d := range r.deliveries()[n:] {
			types = append(types, d.body.Type)
		}
		return types
	}
	if got := run(); len(got) != 0 {
		t.Fatalf("at creation: %v", got)
	}
	f.clock.Advance(25 * time.Hour) // past rotate_by, 47 h before expiry
	got := run()
	if len(got) != 2 {
		t.Fatalf("a day later: %v; want key.expiring and key.rotation_due", got)
	}
	if again := run(); len(again) != 0 {
		t.Fatalf("raised again: %v", again)
	}
}

func ptr[T any](v T) *T { return &v }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestLease: a delivery a node is attempting cannot be redelivered by hand
// (a conflict, not a second sender), and an attempt whose lease ran out
// and was taken again records its try but leaves the new claim's state.
func TestLease(t *testing.T) {
	f := newFixture(t, true)
	r := newReceiver(t)
	id, _ := f.hook(t, r, "*")
	if _, err := f.svc.RevokeKey(t.Context(), manage.CommandLine(), f.keyID); err != nil {
		t.Fatal(err)
	}
	first, err := f.store.ClaimDeliveries(t.Context(), f.clock.Now(), time.Minute, 10)
	if err != nil || len(first) != 1 {
		t.Fatalf("claim: %v, %v", first, err)
	}
	d := first[0]
	if _, err := f.svc.Redeliver(t.Context(), manage.CommandLine(), id, itoa(d.ID)); keyward.ErrorCode(err) != keyward.CodeConflict {
		t.Fatalf("redeliver while leased: %v, want a conflict", err)
	}
	f.clock.Advance(2 * time.Minute)
	second, err := f.store.ClaimDeliveries(t.Context(), f.clock.Now(), time.Minute, 10)
	if err != nil || len(second) != 1 {
		t.Fatalf("claim after the lease ran out: %v, %v", second, err)
	}
	// The first attempt ends late, failed: its outcome does not touch the
	// second claim; the second's delivery does.
	if err := f.store.FinishDelivery(t.Context(), d.ID, d.LeaseUntil, keyward.Attempt{At: f.clock.Now(), Status: 500, Error: "late"}, false, time.Time{}); err != nil {
		t.Fatal(err)
	}
	got, _ := f.store.Delivery(t.Context(), d.ID)
	if got.Status != keyward.DeliveryPending || len(got.Log) != 1 {
		t.Fatalf("after the stale attempt: %+v", got)
	}
	if err := f.store.FinishDelivery(t.Context(), d.ID, second[0].LeaseUntil, keyward.Attempt{At: f.clock.Now(), Status: 200}, true, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.store.Delivery(t.Context(), d.ID); got.Status != keyward.DeliveryDelivered || len(got.Log) != 2 {
		t.Fatalf("after the second attempt: %+v", got)
	}
}

// TestPrune: past the retention, events whose deliveries are over are
// deleted with their delivery logs, and the marks of old dates with them;
// an event still being retried is kept.
func TestPrune(t *testing.T) {
	f := newFixture(t, true)
	r := newReceiver(t)
	hookID, _ := f.hook(t, r, keyward.EventKeyUpdated, keyward.EventKeyRevoked)
	r.moved = true
	d := webhook.NewDispatcher(webhook.Config{Store: f.store, AllowPrivate: true, Now: f.clock.Now, Retention: 30 * 24 * time.Hour})
	deliverAll := func() {
		for {
			if n, err := d.Once(t.Context()); err != nil || n == 0 {
				return
			}
		}
	}
	ctx := t.Context()
	if _, err := f.svc.UpdateKey(ctx, manage.CommandLine(), f.keyID, manage.UpdateKeyInput{Name: ptr("renamed")}); err != nil {
		t.Fatal(err)
	}
	deliverAll()
	r.mu.Lock()
	r.fail = 1000
	r.mu.Unlock()
	if _, err := f.svc.RevokeKey(ctx, manage.CommandLine(), f.keyID); err != nil {
		t.Fatal(err)
	}
	deliverAll()
	mark := []*keyward.Mark{{Kind: "test", KeyID: f.keyID, Due: f.clock.Now()}}
	emit := func() int {
		n, err := f.store.Emit(ctx, []keyward.Event{{Type: keyward.EventKeyExpiring, At: f.clock.Now()}}, mark)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if emit() != 1 || emit() != 0 {
		t.Fatal("a mark did not hold")
	}
	statuses := func() []string {
		ds, _, err := f.store.Deliveries(ctx, keyward.DeliveryFilter{WebhookID: hookID}, keyward.Page{})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range ds {
			out = append(out, d.EventType+" "+d.Status)
		}
		return out
	}
	if got := statuses(); !slices.Equal(got, []string{"key.revoked pending", "key.updated delivered"}) {
		t.Fatalf("before: %v", got)
	}
	if n, err := d.Prune(ctx); err != nil || n != 0 {
		t.Fatalf("Prune within the retention = %d, %v; want 0", n, err)
	}
	f.clock.Advance(31 * 24 * time.Hour)
	if n, err := d.Prune(ctx); err != nil || n < 2 {
		t.Fatalf("Prune = %d, %v; want key.updated and the key.expiring of the mark, at least", n, err)
	}
	if got := statuses(); !slices.Equal(got, []string{"key.revoked pending"}) {
		t.Fatalf("after: %v; want the delivery still retried", got)
	}
	if n, err := d.Prune(ctx); err != nil || n != 0 {
		t.Fatalf("Prune again = %d, %v; want 0", n, err)
	}
	mark[0].Due = f.clock.Now().Add(-31 * 24 * time.Hour)
	if emit() != 1 {
		t.Fatal("the mark of a date past the retention was kept")
	}

	// A key past its rotate_by for longer than the retention keeps its
	// mark, so key.rotation_due is not raised again after a prune.
	due, _ := f.hook(t, newReceiver(t), keyward.EventKeyRotationDue)
	rotate := "1h"
	if _, _, err := f.svc.CreateKey(ctx, manage.CommandLine(), manage.CreateKeyInput{TenantID: "acme", Name: "overdue", RotateBy: &rotate}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Hour)
	if n := dueRaised(t, f, d, due); n != 1 {
		t.Fatalf("key.rotation_due raised %d times; want 1", n)
	}
	f.clock.Advance(40 * 24 * time.Hour)
	if _, err := d.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if n := dueRaised(t, f, d, due); n != 0 {
		t.Fatalf("key.rotation_due raised again %d times after a prune; want 0", n)
	}
}

// dueRaised runs a scan of d and returns how many events it raised for
// endpoint hook.
func dueRaised(t *testing.T, f *fixture, d *webhook.Dispatcher, hook string) int {
	t.Helper()
	count := func() int {
		ds, _, err := f.store.Deliveries(t.Context(), keyward.DeliveryFilter{WebhookID: hook}, keyward.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return len(ds)
	}
	before := count()
	d.Scan(t.Context())
	return count() - before
}

// TestSlowEndpoint: an endpoint that takes a second to answer holds one
// worker, not the others: a fast endpoint's deliveries all arrive while
// the slow one is on its first; and an endpoint gets its deliveries one
// at a time.
func TestSlowEndpoint(t *testing.T) {
	f := newFixture(t, true)
	slow, fast := newReceiver(t), newReceiver(t)
	f.hook(t, slow, keyward.EventKeyCreated)
	f.hook(t, fast, keyward.EventKeyCreated)
	slow.delay = time.Second
	for i := range 5 {
		if _, _, err := f.svc.CreateKey(t.Context(), manage.CommandLine(), manage.CreateKeyInput{TenantID: "acme", Name: "k" + itoa(int64(i))}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		webhook.NewDispatcher(webhook.Config{Store: f.store, AllowPrivate: true, Workers: 3, Interval: 20 * time.Millisecond}).Run(ctx)
		close(done)
	}()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for len(fast.deliveries()) < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("the fast endpoint got %d of 5 in 10 s", len(fast.deliveries()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(slow.deliveries()); n > 1 {
		t.Fatalf("the slow endpoint had answered %d when the fast one had all 5; want the fast one not to wait for it", n)
	}
	for len(slow.deliveries()) < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("the slow endpoint got %d of 5 in 10 s", len(slow.deliveries()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	slow.mu.Lock()
	defer slow.mu.Unlock()
	if slow.most != 1 {
		t.Fatalf("the slow endpoint was sent %d deliveries at once; want 1", slow.most)
	}
}
