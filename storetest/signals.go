package storetest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keyward/keyward"
)

// signalTests hold the signals of RequestLogStore (docs/signals.md): a key
// seen from more clients in a day than the sharing rule allows is flagged
// once, with the evidence, and key.sharing_suspected raised in the same
// transaction; a spike starts an episode, and raises auth.failure_spike,
// only after its subject was quiet, also when two writers report it at
// once; old signals are pruned.
var signalTests = []test{
	{"SharingFlagged", func(f *fixture) {
		tn := f.createTenant("acme")
		k, calm := f.createKey(tn.ID, keyward.Live), f.createKey(tn.ID, keyward.Live)
		hook := f.operatorWebhook()
		day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		rule := keyward.SharingRule{Networks: 1, UserAgents: 2}
		at := day.Add(9 * time.Hour)
		f.writeSignals(&keyward.LogBatch{Sharing: rule, At: at, Sightings: []keyward.Sighting{
			sighting(k, day, keyward.SightNetwork, "203.0.113.0/24", at),
			sighting(k, day, keyward.SightUserAgent, "billing/1.0", at),
			sighting(calm, day, keyward.SightNetwork, "203.0.113.0/24", at),
		}})
		if got := f.key(k.ID).Sharing; got != nil {
			f.t.Fatalf("a key seen from one network was flagged: %+v", got)
		}
		later := at.Add(time.Hour)
		f.writeSignals(&keyward.LogBatch{Sharing: rule, At: later, Sightings: []keyward.Sighting{
			sighting(k, day, keyward.SightNetwork, "198.51.100.0/24", later),
			sighting(k, day, keyward.SightNetwork, "203.0.113.0/24", later), // seen already: written once
			sighting(calm, day, keyward.SightUserAgent, "billing/1.0", later),
		}})
		got := f.key(k.ID).Sharing
		want := &keyward.Sharing{Day: day, FlaggedAt: later, Reasons: []string{keyward.SightNetwork},
			Networks: []string{"203.0.113.0/24", "198.51.100.0/24"}, UserAgents: []string{"billing/1.0"}, Referrers: []string{}}
		if got == nil || !got.Day.Equal(want.Day) || !got.FlaggedAt.Equal(want.FlaggedAt) {
			f.t.Fatalf("sharing = %+v; want %+v", got, want)
		}
		got.Day, got.FlaggedAt = want.Day, want.FlaggedAt
		if !reflect.DeepEqual(got, want) {
			f.t.Fatalf("sharing = %+v; want %+v", got, want)
		}
		if c := f.key(calm.ID).Sharing; c != nil {
			f.t.Fatalf("the other key was flagged: %+v", c)
		}
		// More of the same day flags nothing again; the next day may.
		f.writeSignals(&keyward.LogBatch{Sharing: rule, At: later.Add(time.Hour), Sightings: []keyward.Sighting{
			sighting(k, day, keyward.SightNetwork, "192.0.2.0/24", later),
			sighting(k, day, keyward.SightUserAgent, "curl/8", later),
			sighting(k, day, keyward.SightUserAgent, "python/3", later),
		}})
		events := f.eventsOf(hook)
		if len(events) != 1 || events[0].Type != keyward.EventSharingSuspected {
			f.t.Fatalf("events = %v; want one key.sharing_suspected", events)
		}
		var data struct {
			Key     keyward.Key     `json:"key"`
			Sharing keyward.Sharing `json:"sharing"`
		}
		if err := json.Unmarshal(events[0].Data, &data); err != nil || data.Key.ID != k.ID || !reflect.DeepEqual(data.Sharing.Networks, want.Networks) {
			f.t.Fatalf("event data = %s (%v); want key %s and its networks", events[0].Data, err, k.ID)
		}
		if events[0].TenantID != tn.ID {
			f.t.Fatalf("event of tenant %q; want %q", events[0].TenantID, tn.ID)
		}
		if got := f.key(k.ID).Sharing; !got.FlaggedAt.Equal(later) {
			f.t.Fatalf("the flag was set again: %+v", got)
		}
		next := day.Add(24 * time.Hour)
		f.writeSignals(&keyward.LogBatch{Sharing: rule, At: next, Sightings: []keyward.Sighting{
			sighting(k, next, keyward.SightNetwork, "192.0.2.0/24", next), sighting(k, next, keyward.SightNetwork, "198.51.100.0/24", next),
		}})
		if got := f.key(k.ID).Sharing; !got.Day.Equal(next) || len(f.eventsOf(hook)) != 2 {
			f.t.Fatalf("the next day: sharing %+v, %d events; want flagged for %s and a second event", got, len(f.eventsOf(hook)), next)
		}
		// Without a rule, sightings are written and judge nothing.
		f.writeSignals(&keyward.LogBatch{At: next, Sightings: []keyward.Sighting{
			sighting(calm, next, keyward.SightNetwork, "192.0.2.0/24", next), sighting(calm, next, keyward.SightNetwork, "198.51.100.0/24", next),
		}})
		if c := f.key(calm.ID).Sharing; c != nil {
			f.t.Fatalf("a batch without a rule flagged a key: %+v", c)
		}
	}},
	{"SpikeEpisodes", func(f *fixture) {
		tn := f.createTenant("acme")
		hook := f.operatorWebhook()
		m := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		spike := func(at time.Time) keyward.LogBatch {
			return keyward.LogBatch{SpikeQuiet: 10 * time.Minute, Spikes: []keyward.FailureSpike{{Subject: keyward.SubjectTenant, TenantID: tn.ID,
				Minute: at, Refusals: 20, Threshold: 20, Codes: map[keyward.Code]int64{keyward.CodeInvalidAPIKey: 20},
				Addresses: []keyward.AddressCount{{Address: "192.0.2.7", Count: 20}}}}}
		}
		for _, at := range []time.Time{m, m.Add(time.Minute), m.Add(8 * time.Minute), m.Add(17 * time.Minute)} {
			b := spike(at)
			f.writeSignals(&b) // each within 10 minutes of the last: one episode
		}
		if n := len(f.eventsOf(hook)); n != 1 {
			f.t.Fatalf("%d events for one episode; want 1", n)
		}
		b := spike(m.Add(28 * time.Minute))
		f.writeSignals(&b) // 11 minutes after the last: a new one
		events := f.eventsOf(hook)
		if len(events) != 2 || events[1].Type != keyward.EventAuthFailureSpike {
			f.t.Fatalf("events = %v; want two auth.failure_spike", events)
		}
		var data keyward.FailureSpike
		if err := json.Unmarshal(events[1].Data, &data); err != nil || data.TenantID != tn.ID || data.Codes[keyward.CodeInvalidAPIKey] != 20 ||
			len(data.Addresses) != 1 || data.Addresses[0].Address != "192.0.2.7" || !data.Minute.Equal(m.Add(28*time.Minute)) {
			f.t.Fatalf("event data = %s (%v)", events[1].Data, err)
		}
	}},
	{"SpikeTwoWriters", func(f *fixture) {
		// Two writers, as two nodes, report the spikes of the same
		// subjects at once: each episode is raised once, and neither
		// writer deadlocks the other.
		hook := f.operatorWebhook()
		m := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for w := range 2 {
			wg.Go(func() {
				for round := range 10 {
					b := keyward.LogBatch{SpikeQuiet: 10 * time.Minute}
					for s := range 3 {
						id := fmt.Sprintf("key_%d_%d", round, (s+w)%3) // the two writers' orders differ
						b.Spikes = append(b.Spikes, keyward.FailureSpike{Subject: keyward.SubjectKey, KeyID: id, Minute: m, Refusals: 20, Threshold: 20})
					}
					errs <- f.s.WriteRequestLogs(f.ctx, &b)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				f.t.Fatalf("WriteRequestLogs: %v", err)
			}
		}
		if n := len(f.eventsOf(hook)); n != 30 {
			f.t.Fatalf("%d events for 30 episodes; want 30", n)
		}
	}},
	{"MeterEvents", func(f *fixture) {
		// A key's credits falling to a tenth of their refill raise
		// credits.low; a key's or a tenant's quota reaching 80% and 100%
		// raises quota.threshold, once each: a refused spend, and a
		// Check, raise nothing.
		tn := f.createTenant("acme")
		hook := f.operatorWebhook()
		k := f.meteredKey(tn.ID, &keyward.Credits{Remaining: 12, Refill: &keyward.Refill{Amount: 100, Interval: keyward.QuotaMonth}}, nil)
		plain := f.meteredKey(tn.ID, nil, nil)
		keyQuota, tenantQuota := &keyward.QuotaSpend{Limit: 5, Period: "2026-03-01"}, &keyward.QuotaSpend{Limit: 10, Period: "2026-03"}
		for i := range 6 {
			sp := f.spend(k, 1, keyQuota, tenantQuota)
			if i == 2 {
				check := sp
				check.Check = true
				for range 3 {
					f.spendOne(check)
				}
			}
			spent, err := f.spendOne(sp)
			if (i < 5) != spent.Allowed || err != nil {
				f.t.Fatalf("spend %d: %+v, %v", i+1, spent, err)
			}
		}
		for i := range 6 {
			if spent, err := f.spendOne(f.spend(plain, 1, nil, tenantQuota)); (i < 5) != spent.Allowed || err != nil {
				f.t.Fatalf("spend %d of the other key: %+v, %v", i+1, spent, err)
			}
		}
		var got []string
		for _, e := range f.eventsOf(hook) {
			if e.Type != keyward.EventKeyCreated {
				got = append(got, e.Type+" "+string(e.Data))
			}
		}
		low := `{"tenant_id":"` + tn.ID + `","key_id":"` + k.ID + `","remaining":10,"low_mark":10,"refill_amount":100}`
		quota := func(subject, key string, percent, used, limit int64, period string) string {
			b, _ := json.Marshal(keyward.QuotaThreshold{Subject: subject, TenantID: tn.ID, KeyID: key, Percent: percent, Used: used, Limit: limit, Period: period})
			return keyward.EventQuotaThreshold + " " + string(b)
		}
		want := []string{keyward.EventCreditsLow + " " + low,
			quota(keyward.SubjectKey, k.ID, 80, 4, 5, "2026-03-01"), quota(keyward.SubjectKey, k.ID, 100, 5, 5, "2026-03-01"),
			quota(keyward.SubjectTenant, "", 80, 8, 10, "2026-03"), quota(keyward.SubjectTenant, "", 100, 10, 10, "2026-03")}
		if !reflect.DeepEqual(got, want) {
			f.t.Fatalf("events:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}},
	{"Prune", func(f *fixture) {
		tn := f.createTenant("acme")
		k := f.createKey(tn.ID, keyward.Live)
		day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		b := keyward.LogBatch{SpikeQuiet: time.Minute,
			Spikes: []keyward.FailureSpike{{Subject: keyward.SubjectTenant, TenantID: tn.ID, Minute: day}}}
		for d := range 3 {
			at := day.Add(time.Duration(d) * 24 * time.Hour)
			b.Sightings = append(b.Sightings, sighting(k, at, keyward.SightNetwork, "192.0.2.0/24", at))
		}
		f.writeSignals(&b)
		n, err := f.s.PruneSignals(f.ctx, day.Add(48*time.Hour), 100)
		if err != nil || n != 3 {
			f.t.Fatalf("PruneSignals = %d, %v; want 2 sightings and 1 episode", n, err)
		}
		if n, err := f.s.PruneSignals(f.ctx, day.Add(48*time.Hour), 100); err != nil || n != 0 {
			f.t.Fatalf("PruneSignals again = %d, %v; want 0", n, err)
		}
	}},
}

// sighting is a sighting of key k.
func sighting(k *keyward.Key, day time.Time, kind, value string, at time.Time) keyward.Sighting {
	return keyward.Sighting{TenantID: k.TenantID, KeyID: k.ID, Day: day, Kind: kind, Value: value, At: at}
}

// writeSignals writes a batch that must be written.
func (f *fixture) writeSignals(b *keyward.LogBatch) {
	f.t.Helper()
	if err := f.s.WriteRequestLogs(f.ctx, b); err != nil {
		f.t.Fatalf("WriteRequestLogs: %v", err)
	}
}

// operatorWebhook stores an endpoint of the operator's that wants every
// event, and returns its id.
func (f *fixture) operatorWebhook() string {
	f.t.Helper()
	at := f.tick()
	w := &keyward.Webhook{ID: fmt.Sprintf("wh_%d", f.next()), URL: "https://hooks.example.com/keyward", Events: []string{keyward.EventAll},
		Enabled: true, Secret: "whsec_c2VjcmV0", CreatedAt: at, UpdatedAt: at}
	if err := f.s.CreateWebhook(f.ctx, w, admin); err != nil {
		f.t.Fatalf("CreateWebhook: %v", err)
	}
	return w.ID
}

// eventsOf returns the events delivered so far to endpoint id, in the
// order they were written: it takes every pending delivery, as a
// dispatcher would (a claim gives one per endpoint), records it
// delivered, and remembers its event.
func (f *fixture) eventsOf(id string) []keyward.Event {
	f.t.Helper()
	if f.delivered == nil {
		f.delivered = map[string][]keyward.Event{}
	}
	now := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	for range 1000 {
		claimed, err := f.s.ClaimDeliveries(f.ctx, now, time.Minute, 1000)
		if err != nil {
			f.t.Fatalf("ClaimDeliveries: %v", err)
		}
		if len(claimed) == 0 {
			break
		}
		slices.SortFunc(claimed, func(a, b *keyward.Claimed) int { return cmp.Compare(a.ID, b.ID) })
		for _, c := range claimed {
			if err := f.s.FinishDelivery(f.ctx, c.ID, c.LeaseUntil, keyward.Attempt{At: now, Status: 200}, true, time.Time{}); err != nil {
				f.t.Fatalf("FinishDelivery: %v", err)
			}
			f.delivered[c.Webhook.ID] = append(f.delivered[c.Webhook.ID], c.Event)
		}
	}
	return f.delivered[id]
}
