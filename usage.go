package keyward

import (
	"context"
	"time"
)

// Granularity is the span of a usage bucket: an hour or a day, in UTC.
type Granularity string

// The granularities of usage counts.
const (
	Hourly Granularity = "hour"
	Daily  Granularity = "day"
)

// Span is the length of a bucket of g; 0 for a granularity that is not one.
func (g Granularity) Span() time.Duration {
	switch g {
	case Hourly:
		return time.Hour
	case Daily:
		return 24 * time.Hour
	}
	return 0
}

// UsageCount is the count of the requests of one key (or of none: KeyID and
// TenantID empty) with one outcome in one hour or day. It is counted
// from every verification the request logs see, on every surface,
// exactly: also the requests whose log entry was dropped.
type UsageCount struct {
	TenantID    string
	KeyID       string
	Granularity Granularity
	// Start is the bucket's start, in UTC: a whole hour, or midnight.
	Start time.Time
	// Code is the outcome's code, empty for the requests whose key was
	// accepted.
	Code  Code
	Count int64
}

// UsageFilter selects usage counts: of a tenant's keys, or of one key, in
// buckets of one granularity from From (inclusive) to To (exclusive).
// Empty TenantID and KeyID select every count, those of no key included.
type UsageFilter struct {
	TenantID    string
	KeyID       string
	Granularity Granularity
	From, To    time.Time
}

// UsageStore keeps the usage counts. Errors are those of Store.
type UsageStore interface {
	// Usage returns the counts that match f, summed over the keys by
	// bucket and code, in the order of their start.
	Usage(ctx context.Context, f UsageFilter) ([]UsageCount, error)
	// PruneUsage deletes up to limit of the counts whose bucket started
	// before the given time, and returns how many it deleted.
	PruneUsage(ctx context.Context, before time.Time, limit int) (int64, error)
}

// UsageReport is the usage of a key, a tenant's keys, or every key, from
// From to To in buckets of one granularity: every bucket of the range, in
// order, those without requests too, ready for a chart.
type UsageReport struct {
	TenantID    string        `json:"tenant_id,omitempty"`
	KeyID       string        `json:"key_id,omitempty"`
	Granularity Granularity   `json:"granularity" enum:"hour,day"`
	From        time.Time     `json:"from"`
	To          time.Time     `json:"to"`
	Total       UsageTotals   `json:"total"`
	Buckets     []UsageBucket `json:"buckets"`
}

// UsageTotals are the requests of a span: accepted and refused, and the
// refused ones by code.
type UsageTotals struct {
	Requests int64          `json:"requests"`
	Allowed  int64          `json:"allowed"`
	Refused  int64          `json:"refused"`
	Codes    map[Code]int64 `json:"codes" description:"the refused requests by outcome code"`
}

// UsageBucket is the requests of one hour or day.
type UsageBucket struct {
	Start time.Time `json:"start"`
	UsageTotals
}

// add counts n requests of code.
func (t *UsageTotals) add(code Code, n int64) {
	t.Requests += n
	if code == "" {
		t.Allowed += n
		return
	}
	t.Refused += n
	t.Codes[code] += n
}

// NewUsageReport makes the report of f, whose From and To are bucket
// boundaries, from the counts the store gave for it.
func NewUsageReport(f UsageFilter, counts []UsageCount) *UsageReport {
	r := &UsageReport{TenantID: f.TenantID, KeyID: f.KeyID, Granularity: f.Granularity, From: f.From, To: f.To,
		Total: UsageTotals{Codes: map[Code]int64{}}, Buckets: []UsageBucket{}}
	span := f.Granularity.Span()
	for at := f.From; at.Before(f.To); at = at.Add(span) {
		r.Buckets = append(r.Buckets, UsageBucket{Start: at, UsageTotals: UsageTotals{Codes: map[Code]int64{}}})
	}
	for _, c := range counts {
		i := int(c.Start.Sub(f.From) / span)
		if c.Start.Before(f.From) || i >= len(r.Buckets) {
			continue
		}
		r.Buckets[i].add(c.Code, c.Count)
		r.Total.add(c.Code, c.Count)
	}
	return r
}
