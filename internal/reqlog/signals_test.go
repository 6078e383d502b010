package reqlog_test

import (
	"context"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/reqlog"
)

// recording is a store that keeps the signals of every batch it writes.
type recording struct {
	keyward.Store
	mu        sync.Mutex
	sightings []keyward.Sighting
	spikes    []keyward.FailureSpike
}

func (r *recording) WriteRequestLogs(ctx context.Context, b *keyward.LogBatch) error {
	r.mu.Lock()
	r.sightings = append(r.sightings, b.Sightings...)
	r.spikes = append(r.spikes, b.Spikes...)
	r.mu.Unlock()
	return r.Store.WriteRequestLogs(ctx, b)
}

// signalLog returns a log that writes to a recording store of its own.
func signalLog(t *testing.T, c reqlog.Config) (*reqlog.Log, *recording) {
	r := &recording{Store: open(t)}
	c.Store = r
	return reqlog.New(c), r
}

// TestSightings: the writer notes each key's client networks (an IPv4 /24,
// an IPv6 /48), user agents and referrer origins once a day, a key's own
// apart from another's, and none of a request without a key.
func TestSightings(t *testing.T) {
	l, r := signalLog(t, reqlog.Config{Sharing: keyward.SharingRule{Networks: 1}})
	k, other := &keyward.Key{ID: "key_1", TenantID: "ten_1"}, &keyward.Key{ID: "key_2", TenantID: "ten_1"}
	day := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	at := day.Add(10 * time.Hour)
	add := func(k *keyward.Key, at time.Time, ip, ua, ref string) {
		e := &reqlog.Entry{At: at, Surface: keyward.SurfaceGateway, Status: 200, Key: k, UserAgent: ua, Referrer: ref}
		if ip != "" {
			e.ClientIP = netip.MustParseAddr(ip)
		}
		l.Add(e)
	}
	add(k, at, "::ffff:203.0.113.7", "billing/1.0", "https://App.Example.com/page?x=1")
	add(k, at, "203.0.113.200", "billing/1.0", "https://app.example.com/other") // the same three
	add(k, at, "2001:db8:1:2::7", "", "")
	add(k, at, "2001:db8:1:ffff::8", "", "") // the same /48
	add(other, at, "203.0.113.7", "", "")
	add(nil, at, "198.51.100.1", "curl/8", "")
	if err := l.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	add(k, at.Add(time.Hour), "203.0.113.9", "billing/1.0", "") // written already
	add(k, day.Add(25*time.Hour), "203.0.113.9", "", "")        // the next day
	if err := l.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range r.sightings {
		got = append(got, g.KeyID+" "+g.Day.Format("01-02")+" "+g.Kind+" "+g.Value)
	}
	want := []string{
		"key_1 11-29 network 203.0.113.0/24", "key_1 11-29 user_agent billing/1.0", "key_1 11-29 referrer https://app.example.com",
		"key_1 11-29 network 2001:db8:1::/48", "key_2 11-29 network 203.0.113.0/24", "key_1 11-30 network 203.0.113.0/24",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("sightings:\n%q\nwant\n%q", got, want)
	}
}

// TestSightingsCapped: a client that varies its user agent on every
// request makes a node write a bounded number of them per key and day.
func TestSightingsCapped(t *testing.T) {
	l, r := signalLog(t, reqlog.Config{Sharing: keyward.SharingRule{UserAgents: 3}})
	k := &keyward.Key{ID: "key_1", TenantID: "ten_1"}
	for i := range 1000 {
		l.Add(&reqlog.Entry{At: time.Now(), Status: 200, Key: k, UserAgent: "bot/" + string(rune('a'+i%26)) + string(rune('a'+i/26))})
	}
	if err := l.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(r.sightings); n != 2*keyward.MaxEvidence {
		t.Fatalf("%d sightings written; want the cap, %d", n, 2*keyward.MaxEvidence)
	}
}

// TestSpikes: a minute of refusals that reaches both the rule's minimum
// and ten times the subject's own baseline is reported once, for the key
// and for its tenant, with its codes and addresses; a subject that
// refuses steadily has a baseline that a modest minute does not pass;
// refusals of unknown keys are the operator's (tenant ""); accepted
// requests and 429s are not refusals of this kind.
func TestSpikes(t *testing.T) {
	l, r := signalLog(t, reqlog.Config{Spikes: reqlog.DefaultSpikeRule})
	k := &keyward.Key{ID: "key_1", TenantID: "ten_1"}
	noisy := &keyward.Key{ID: "key_2", TenantID: "ten_2"}
	start := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	refuse := func(k *keyward.Key, at time.Time, n int, code keyward.Code, ip string) {
		for range n {
			l.Add(&reqlog.Entry{At: at, Status: code.Status(), Code: code, Key: k, ClientIP: netip.MustParseAddr(ip)})
		}
	}
	// Three hours of 5 refusals a minute for the noisy key; nothing
	// else for the other.
	for m := range 180 {
		refuse(noisy, start.Add(time.Duration(m)*time.Minute), 5, keyward.CodeIPNotAllowed, "192.0.2.1")
	}
	spike := start.Add(180 * time.Minute)
	refuse(noisy, spike, 30, keyward.CodeIPNotAllowed, "192.0.2.1") // 6 times its baseline of about 4.8
	refuse(k, spike, 12, keyward.CodeRevokedAPIKey, "198.51.100.7")
	refuse(k, spike, 8, keyward.CodeInsufficientPermissions, "198.51.100.8") // the 20th
	refuse(k, spike, 40, keyward.CodeRateLimited, "198.51.100.9")            // not counted
	refuse(k, spike, 5, keyward.CodeRevokedAPIKey, "198.51.100.7")           // reported already
	refuse(nil, spike, 20, keyward.CodeInvalidAPIKey, "203.0.113.5")
	for range 30 {
		l.Add(&reqlog.Entry{At: spike, Status: 200, Key: k})
	}
	if err := l.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range r.spikes {
		got = append(got, f.Subject+" "+f.TenantID+" "+f.KeyID)
	}
	slices.Sort(got)
	want := []string{"key ten_1 key_1", "tenant  ", "tenant ten_1 "}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("spikes %q; want %q", got, want)
	}
	for _, f := range r.spikes {
		if f.KeyID != "key_1" {
			continue
		}
		wantCodes := map[keyward.Code]int64{keyward.CodeRevokedAPIKey: 12, keyward.CodeInsufficientPermissions: 8}
		wantAddrs := []keyward.AddressCount{{Address: "198.51.100.7", Count: 12}, {Address: "198.51.100.8", Count: 8}}
		if f.Refusals != 20 || f.Threshold != 20 || !f.Minute.Equal(spike) || !reflect.DeepEqual(f.Codes, wantCodes) || !reflect.DeepEqual(f.Addresses, wantAddrs) {
			t.Fatalf("spike %+v; want 20 refusals at %s, codes %v, addresses %v", f, spike, wantCodes, wantAddrs)
		}
	}
	// The noisy key passes its own baseline ten times over: 48 refusals.
	refuse(noisy, spike, 18, keyward.CodeIPNotAllowed, "192.0.2.1")
	if err := l.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	last := r.spikes[len(r.spikes)-1]
	if len(r.spikes) != 5 || last.KeyID != "" && last.KeyID != "key_2" || last.Threshold != 48 || last.Baseline < 4.7 || last.Baseline > 4.8 {
		t.Fatalf("after 48 refusals of the noisy key: %+v; want its key's and its tenant's spikes, threshold 48", r.spikes[3:])
	}
}

// TestSpikesSeeded: a node that starts with a key that has been refused
// steadily (1500 times in the hour before, as the usage counts say) does
// not take its usual rate for a spike: its baseline starts at 25 a
// minute, its threshold at 250.
func TestSpikesSeeded(t *testing.T) {
	store := open(t)
	now := time.Now().UTC()
	hour := now.Truncate(time.Hour)
	if err := store.WriteRequestLogs(t.Context(), &keyward.LogBatch{Usage: []keyward.UsageCount{
		{TenantID: "ten_1", KeyID: "key_1", Granularity: keyward.Hourly, Start: hour.Add(-time.Hour), Code: keyward.CodeIPNotAllowed, Count: 1500},
		{TenantID: "ten_1", KeyID: "key_1", Granularity: keyward.Hourly, Start: hour.Add(-time.Hour), Code: keyward.CodeRateLimited, Count: 9000},
	}}); err != nil {
		t.Fatal(err)
	}
	r := &recording{Store: store}
	l := reqlog.New(reqlog.Config{Store: r, Spikes: reqlog.DefaultSpikeRule})
	k := &keyward.Key{ID: "key_1", TenantID: "ten_1"}
	for range 60 {
		l.Add(&reqlog.Entry{At: now, Status: 403, Code: keyward.CodeIPNotAllowed, Key: k, ClientIP: netip.MustParseAddr("192.0.2.1")})
	}
	if err := l.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(r.spikes) != 0 {
		t.Fatalf("60 refusals against a baseline of 25 a minute: %+v; want no spike", r.spikes)
	}
	for range 190 {
		l.Add(&reqlog.Entry{At: now, Status: 403, Code: keyward.CodeIPNotAllowed, Key: k, ClientIP: netip.MustParseAddr("192.0.2.1")})
	}
	if err := l.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(r.spikes) != 2 || r.spikes[0].Threshold != 250 {
		t.Fatalf("250 refusals: %+v; want the key's and the tenant's spikes at a threshold of 250", r.spikes)
	}
}
