package keyward

import (
	"time"
)

// LogBatch is what the request log's writer writes in one transaction:
// its entries, the usage counts they add, and the signals it read from
// them (docs/signals.md), which may raise events in the same transaction.
type LogBatch struct {
	Logs  []RequestLog
	Usage []UsageCount
	// Sightings are the clients a key was seen from that the writer had
	// not written yet; Sharing judges them.
	Sightings []Sighting
	Sharing   SharingRule
	// Spikes are the minutes in which a tenant's or a key's refusals
	// passed the spike threshold; SpikeQuiet is how long a subject must
	// stay below it before a spike starts a new episode.
	Spikes     []FailureSpike
	SpikeQuiet time.Duration
	// At is the time of the write, when a key is flagged.
	At time.Time
}

// The kinds of a Sighting.
const (
	SightNetwork   = "network"    // the client's network: its IPv4 /24 or IPv6 /48
	SightUserAgent = "user_agent" // the User-Agent header
	SightReferrer  = "referrer"   // the origin of the Referer header
)

// SightingKinds are the kinds of a Sighting, in the order evidence shows
// them.
var SightingKinds = []string{SightNetwork, SightUserAgent, SightReferrer}

// Sighting says that a key was used from one client network, user agent
// or referrer on one day (UTC): the signals of the single-use rule.
type Sighting struct {
	TenantID, KeyID string
	Day             time.Time // midnight, UTC
	Kind            string
	Value           string
	At              time.Time // when the writer first saw it
}

// SharingRule says when a key is suspected of being shared: when it is
// seen from more distinct client networks, user agents or referrers in a
// day than the limit of that kind. A limit of 0 does not judge its kind.
type SharingRule struct {
	Networks, UserAgents, Referrers int
}

// Limit is the rule's limit for a kind of Sighting; 0 when not judged.
func (r SharingRule) Limit(kind string) int {
	switch kind {
	case SightNetwork:
		return r.Networks
	case SightUserAgent:
		return r.UserAgents
	case SightReferrer:
		return r.Referrers
	}
	return 0
}

// On reports whether the rule judges any kind.
func (r SharingRule) On() bool { return r.Networks > 0 || r.UserAgents > 0 || r.Referrers > 0 }

// MaxEvidence is the most values of each kind that Sharing shows.
const MaxEvidence = 20

// Sharing is why a key is suspected of being shared: the day it was seen
// from too many clients, which kinds passed their limit, and what was
// seen (the first MaxEvidence of each kind).
type Sharing struct {
	Day        time.Time `json:"day"`
	FlaggedAt  time.Time `json:"flagged_at"`
	Reasons    []string  `json:"reasons" description:"the kinds seen more often than their limit: network, user_agent, referrer"`
	Networks   []string  `json:"networks" description:"client networks (IPv4 /24, IPv6 /48) the key was used from that day"`
	UserAgents []string  `json:"user_agents"`
	Referrers  []string  `json:"referrers" description:"origins of the Referer header"`
}

// FailureSpike is a minute in which the refusals of a tenant's keys, or
// of one key, passed the spike threshold of their own baseline: the data
// of an auth.failure_spike event when it starts an episode. A refused
// key that does not exist belongs to no tenant: its spike is the
// operator's (TenantID empty).
type FailureSpike struct {
	Subject  string    `json:"subject" enum:"tenant,key"`
	TenantID string    `json:"tenant_id"`
	KeyID    string    `json:"key_id,omitempty"`
	Minute   time.Time `json:"minute" description:"the start of the minute that passed the threshold"`
	// Refusals are those of the minute so far, as one node counted them.
	Refusals  int64          `json:"refusals"`
	Baseline  float64        `json:"baseline" description:"the refusals per minute the subject averaged before (over about an hour, on the node that saw the spike)"`
	Threshold int64          `json:"threshold"`
	Codes     map[Code]int64 `json:"codes"`
	Addresses []AddressCount `json:"addresses" description:"the client addresses of the refusals, most first"`
}

// The subjects of a FailureSpike and of a QuotaThreshold: a tenant (all
// its keys), or one key.
const (
	SubjectTenant = "tenant"
	SubjectKey    = "key"
)

// EpisodeOf names the subject whose episodes a spike counts in.
func (f *FailureSpike) EpisodeOf() string {
	if f.Subject == SubjectKey {
		return "k:" + f.KeyID
	}
	return "t:" + f.TenantID
}

// AddressCount is how many refusals came from one address.
type AddressCount struct {
	Address string `json:"address"`
	Count   int64  `json:"count"`
}

// QuotaThresholds are the shares of a quota, in percent, whose reaching
// raises quota.threshold, once each per period.
var QuotaThresholds = []int64{80, 100}

// QuotaThreshold is the data of a quota.threshold event: a tenant's or a
// key's quota reached a share of its limit in its current period.
type QuotaThreshold struct {
	Subject  string `json:"subject" enum:"tenant,key"`
	TenantID string `json:"tenant_id"`
	KeyID    string `json:"key_id,omitempty"`
	Percent  int64  `json:"percent" description:"the share of the limit reached: 80 or 100"`
	Used     int64  `json:"used"`
	Limit    int64  `json:"limit"`
	Period   string `json:"period" description:"the quota's current period, in the tenant's time zone: 2026-11-29 or 2026-11"`
}

// CreditsLow is the data of a credits.low event: a key's credits fell to
// its low mark, a tenth of its refill amount, or to 0 for credits that are
// not refilled.
type CreditsLow struct {
	TenantID  string `json:"tenant_id"`
	KeyID     string `json:"key_id"`
	Remaining int64  `json:"remaining"`
	LowMark   int64  `json:"low_mark"`
	Refill    *int64 `json:"refill_amount" description:"the amount the credits are refilled to each period; null when they are not"`
}

// LowMark is the credits at or below which credits.low is raised: a
// tenth of the refill amount (rounded up), 0 without a refill.
func LowMark(refill *int64) int64 {
	if refill == nil {
		return 0
	}
	return (*refill + 9) / 10
}

// Reached returns the threshold of QuotaThresholds that a count reaches
// exactly, for a quota of limit; 0 for none. A share that rounds to the
// count of a higher one is left to the higher one.
func Reached(used, limit int64) int64 {
	for i, p := range QuotaThresholds {
		at := (limit*p + 99) / 100
		if used != at {
			continue
		}
		if i+1 < len(QuotaThresholds) && (limit*QuotaThresholds[i+1]+99)/100 == at {
			continue
		}
		return p
	}
	return 0
}
