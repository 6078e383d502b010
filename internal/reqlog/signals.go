package reqlog

import (
	"cmp"
	"context"
	"math"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/keyward/keyward"
)

// The signals the writer reads from the entries it writes (docs/signals.md):
// the clients each key is seen from, for the single-use rule, and the
// minutes in which a tenant's or a key's refusals spike. Both are kept
// by the writer alone (under flushMu), off the request path.

// sightCap is the most distinct values of one kind per key and day that
// one node writes: enough to pass any sensible limit and to show as
// evidence, and a bound on what a client that varies its user agent on
// every request can make a node write.
const sightCap = 2 * keyward.MaxEvidence

// maxSeen bounds the sightings a node remembers having written; past it
// the memory starts again (the store ignores a sighting written twice).
const maxSeen = 1 << 17

// sightKey is one sighting as the writer remembers it: a network by its
// prefix, the others by their text.
type sightKey struct {
	key  string
	day  int64
	kind string
	net  netip.Prefix
	text string
}

// sightCount is what sightCap counts: one key's values of one kind on one
// day.
type sightCount struct {
	key  string
	day  int64
	kind string
}

// sightings collects the clients of the entries written, and remembers
// which were written so that each is written once a day.
type sightings struct {
	day     int64
	seen    map[sightKey]struct{}
	counts  map[sightCount]int
	pending []keyward.Sighting
	// last is the last entry noted: the next, from the same client as
	// often, is passed over without a look at the maps.
	last struct {
		key      *keyward.Key
		day      int64
		net      netip.Prefix
		ua, from string
	}
}

// networkOf is the network of a client address: its /24 in IPv4, its /48
// in IPv6; invalid for none.
func networkOf(ip netip.Addr) netip.Prefix {
	if !ip.IsValid() {
		return netip.Prefix{}
	}
	ip = ip.Unmap()
	bits := 48
	if ip.Is4() {
		bits = 24
	}
	p, _ := ip.Prefix(bits)
	return p
}

// originOf is the origin of a referrer (its scheme and host, in lower
// case), "" for none.
func originOf(r string) string {
	rest := r
	scheme := ""
	if i := strings.Index(r, "://"); i > 0 {
		scheme, rest = r[:i+3], r[i+3:]
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if rest == "" {
		return ""
	}
	return strings.ToLower(scheme + rest)
}

// add notes the clients of a written entry of key k.
func (s *sightings) add(k *keyward.Key, at time.Time, ip netip.Addr, userAgent, referrer string) {
	day := at.UTC().Truncate(24 * time.Hour)
	d := day.Unix()
	if d > s.day || len(s.seen) > maxSeen {
		s.day = max(s.day, d)
		clear(s.seen)
		clear(s.counts)
	}
	if d < s.day-24*3600 {
		return // an entry more than a day late: its day is judged already
	}
	p := networkOf(ip)
	if l := &s.last; k == l.key && d == l.day && p == l.net && userAgent == l.ua && referrer == l.from {
		return
	}
	s.last.key, s.last.day, s.last.net, s.last.ua, s.last.from = k, d, p, userAgent, referrer
	if p.IsValid() {
		s.note(k, day, sightKey{key: k.ID, day: d, kind: keyward.SightNetwork, net: p}, at)
	}
	if userAgent != "" {
		s.note(k, day, sightKey{key: k.ID, day: d, kind: keyward.SightUserAgent, text: userAgent}, at)
	}
	if o := originOf(referrer); o != "" {
		s.note(k, day, sightKey{key: k.ID, day: d, kind: keyward.SightReferrer, text: o}, at)
	}
}

// note adds sighting g unless it was written already, or its key has
// sightCap values of its kind that day.
func (s *sightings) note(k *keyward.Key, day time.Time, g sightKey, at time.Time) {
	if _, ok := s.seen[g]; ok {
		return
	}
	c := sightCount{key: g.key, day: g.day, kind: g.kind}
	if s.counts[c] >= sightCap {
		return
	}
	s.seen[g] = struct{}{}
	s.counts[c]++
	value := g.text
	if g.net.IsValid() {
		value = g.net.String()
	}
	s.pending = append(s.pending, keyward.Sighting{TenantID: k.TenantID, KeyID: k.ID, Day: day, Kind: g.kind, Value: value, At: at.UTC()})
}

// SpikeRule says when refusals spike: a subject (a tenant, or a key) whose
// refusals in one minute reach both Min and Factor times its baseline,
// the refusals per minute it averaged before. Quiet is how long a subject
// must stay below before its next spike starts a new episode.
type SpikeRule struct {
	Min    int64
	Factor float64
	Quiet  time.Duration
}

// DefaultSpikeRule is serve's default: 20 refusals in a minute, and ten
// times the baseline; a new episode after 10 quiet minutes.
var DefaultSpikeRule = SpikeRule{Min: 20, Factor: 10, Quiet: 10 * time.Minute}

// baselineMinutes is the span of a baseline: each minute weighs 1/60 in
// the moving average of refusals per minute.
const baselineMinutes = 60

// maxAddresses is the most addresses a spike tells of.
const maxAddresses = 10

// addressSlots is the most addresses a subject's minute counts; the
// rest go uncounted by address.
const addressSlots = 64

// subject is a tenant's or a key's refusals: the current minute's, and
// the baseline of those before.
type subject struct {
	minute   int64 // Unix seconds of the current minute's start
	count    int64
	baseline float64
	codes    map[keyward.Code]int64
	addrs    map[netip.Addr]int64
	raised   bool // a spike of this minute was reported
}

// spikes watches the refusals of every tenant and key.
type spikes struct {
	rule     SpikeRule
	subjects map[[2]string]*subject // {tenant, key}; key "" for the tenant
	pending  []keyward.FailureSpike
	minute   int64 // the latest minute seen, for dropping idle subjects
	// seed, when set, gives a subject seen for the first time the
	// baseline it had before, so that a node just started does not take
	// a steady rate of refusals for a spike.
	seed func(tenant, key string, minute int64) float64
}

// seedFrom returns a seed of spikes that reads a subject's refusals in
// the hour before minute from the usage counts (every node's, so on
// several nodes a fresh node starts with a higher baseline than its own
// share): their number over 60. The operator's subject (refusals of no
// known key) is not a filter the usage counts have, and starts at 0, as
// does every subject when the store cannot be read.
func seedFrom(store keyward.UsageStore, timeout time.Duration) func(tenant, key string, minute int64) float64 {
	return func(tenant, key string, minute int64) float64 {
		if tenant == "" && key == "" {
			return 0
		}
		hour := time.Unix(minute, 0).UTC().Truncate(time.Hour)
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		counts, err := store.Usage(ctx, keyward.UsageFilter{TenantID: tenant, KeyID: key, Granularity: keyward.Hourly, From: hour.Add(-time.Hour), To: hour})
		if err != nil {
			return 0
		}
		var refused int64
		for _, c := range counts {
			if c.Code != "" && refusal(c.Code.Status()) {
				refused += c.Count
			}
		}
		return float64(refused) / baselineMinutes
	}
}

// refusal reports whether status is one of an authentication or
// authorization refusal, which spikes count: not a rate limit's, nor an
// upstream's failure.
func refusal(status int) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden
}

// add counts an entry: refused ones of its key and its tenant (no key:
// the operator's subject, tenant "").
func (s *spikes) add(e *Entry) {
	if s.rule.Min <= 0 || e.Code == "" || !refusal(e.Status) {
		return
	}
	minute := e.At.Unix() - e.At.Unix()%60
	if minute > s.minute {
		s.minute = minute
		s.forget(minute)
	}
	tenant := ""
	if k := e.Key; k != nil {
		tenant = k.TenantID
		s.count([2]string{tenant, k.ID}, minute, e)
	}
	s.count([2]string{tenant, ""}, minute, e)
}

// forget drops the subjects without a refusal for a baseline's span,
// whose baseline has decayed to almost nothing.
func (s *spikes) forget(now int64) {
	for id, sub := range s.subjects {
		if now-sub.minute > 3*baselineMinutes*60 {
			delete(s.subjects, id)
		}
	}
}

// count adds a refusal of entry e to subject id's minute, and reports a
// spike the first time in a minute that it passes the rule.
func (s *spikes) count(id [2]string, minute int64, e *Entry) {
	sub := s.subjects[id]
	if sub == nil {
		sub = &subject{minute: minute, codes: map[keyward.Code]int64{}, addrs: map[netip.Addr]int64{}}
		if s.seed != nil {
			sub.baseline = s.seed(id[0], id[1], minute)
		}
		s.subjects[id] = sub
	}
	if minute < sub.minute {
		return // a late entry of a minute judged already
	}
	if minute > sub.minute {
		// The minutes gone by, the last with its count and the others
		// empty, enter the baseline.
		w := 1.0 / baselineMinutes
		sub.baseline += w * (float64(sub.count) - sub.baseline)
		sub.baseline *= math.Pow(1-w, float64((minute-sub.minute)/60-1))
		sub.minute, sub.count, sub.raised = minute, 0, false
		clear(sub.codes)
		clear(sub.addrs)
	}
	sub.count++
	sub.codes[e.Code]++
	if ip := e.ClientIP; ip.IsValid() {
		ip = ip.Unmap()
		if _, ok := sub.addrs[ip]; ok || len(sub.addrs) < addressSlots {
			sub.addrs[ip]++
		}
	}
	threshold := max(s.rule.Min, int64(math.Ceil(s.rule.Factor*sub.baseline)))
	if sub.raised || sub.count < threshold {
		return
	}
	sub.raised = true
	f := keyward.FailureSpike{Subject: keyward.SubjectTenant, TenantID: id[0], KeyID: id[1], Minute: time.Unix(minute, 0).UTC(),
		Refusals: sub.count, Baseline: math.Round(sub.baseline*100) / 100, Threshold: threshold, Codes: map[keyward.Code]int64{},
		Addresses: []keyward.AddressCount{}}
	if id[1] != "" {
		f.Subject = keyward.SubjectKey
	}
	for c, n := range sub.codes {
		f.Codes[c] = n
	}
	for ip, n := range sub.addrs {
		f.Addresses = append(f.Addresses, keyward.AddressCount{Address: ip.String(), Count: n})
	}
	slices.SortFunc(f.Addresses, func(a, b keyward.AddressCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Address, b.Address))
	})
	if len(f.Addresses) > maxAddresses {
		f.Addresses = f.Addresses[:maxAddresses]
	}
	s.pending = append(s.pending, f)
}
