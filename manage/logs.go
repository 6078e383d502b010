package manage

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/keyward/keyward"
)

// LogListInput selects request-log entries, as the API's query and the
// command line's flags give it; empty fields match everything.
type LogListInput struct {
	TenantID  string
	KeyID     string
	RequestID string
	Surface   string
	// Code is an outcome's code, or "allowed" for the requests whose key
	// was accepted.
	Code   string
	Status int
	// From and To bound the time, From inclusive and To exclusive: each
	// a date (2026-11-29, midnight UTC), an RFC 3339 time, or a duration
	// back from now (1h, 7d).
	From, To string
	// After, when above zero, lists the entries with an id above it,
	// oldest first: what follows a log.
	After int64
}

// surfaces are the surfaces an entry may be of.
var surfaces = []string{keyward.SurfaceAPI, keyward.SurfaceForwardAuth, keyward.SurfaceVerify, keyward.SurfaceGateway}

// RequestLogs lists the request-log entries of the caller's reach,
// newest first (or after in.After, oldest first): a tenant's manager sees
// the entries of its tenant's keys; a root key those of every tenant, and
// the entries of no tenant (a key that was not found, or none), unless it
// names a tenant. A key outside the caller's reach is answered as one that
// does not exist.
func (s *Service) RequestLogs(ctx context.Context, c Caller, in LogListInput, p keyward.Page) ([]*keyward.RequestLog, string, error) {
	if err := Authorize(c, Manager); err != nil {
		return nil, "", err
	}
	f := keyward.RequestLogFilter{KeyID: in.KeyID, RequestID: in.RequestID, Status: in.Status, After: in.After}
	if in.TenantID != "" || !c.Root() {
		t, err := s.tenantFor(ctx, c, in.TenantID)
		if err != nil {
			return nil, "", err
		}
		f.TenantID = t.ID
	}
	if in.KeyID != "" && !c.Root() {
		if _, err := s.Key(ctx, c, in.KeyID); err != nil {
			return nil, "", err
		}
	}
	if in.Surface != "" {
		if !slices.Contains(surfaces, in.Surface) {
			return nil, "", keyward.FieldErrorf("surface", "%q is not a surface; use one of %s", in.Surface, strings.Join(surfaces, ", "))
		}
		f.Surface = in.Surface
	}
	if in.Code != "" {
		code := keyward.Code(in.Code)
		if code != keyward.CodeAllowed && !code.Known() {
			return nil, "", keyward.FieldErrorf("code", "%q is not an outcome's code; use one such as invalid_api_key, or allowed for the requests whose key was accepted", in.Code)
		}
		f.Code = code
	}
	if in.Status != 0 && (in.Status < 100 || in.Status > 599) {
		return nil, "", keyward.FieldErrorf("status", "%d is not an HTTP status; use one from 100 to 599", in.Status)
	}
	if in.After < 0 {
		return nil, "", keyward.FieldErrorf("after", "%d is below 0; give the id of the last entry seen", in.After)
	}
	now := s.now()
	var err error
	if f.From, err = parseSince("from", in.From, now); err != nil {
		return nil, "", err
	}
	if f.To, err = parseSince("to", in.To, now); err != nil {
		return nil, "", err
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return nil, "", keyward.FieldErrorf("to", "%s is not after from (%s); give a time range that is not empty", f.To.Format(time.RFC3339), f.From.Format(time.RFC3339))
	}
	if err := checkPage(p); err != nil {
		return nil, "", err
	}
	return s.store.RequestLogs(ctx, f, p)
}

// parseSince reads a past or present time given as a date (2026-11-29,
// midnight UTC), an RFC 3339 time, or a duration back from now (1h, 7d);
// "" is the zero time.
func parseSince(field, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, keyward.FieldErrorf(field, "%q is not a time; give a date (2026-11-29), an RFC 3339 time (2026-11-29T10:00:00Z) or a duration back from now (1h, 7d)", s)
}

// UsageInput selects the usage to report, as the API's query and the
// command line's flags give it.
type UsageInput struct {
	TenantID string
	KeyID    string
	// Granularity is hour (the default) or day.
	Granularity string
	// From and To bound the time, in the forms of LogListInput's, From
	// rounded down and To up to a whole bucket. To is now by default,
	// From a day before To by the hour and 30 days by the day.
	From, To string
}

// maxUsageBuckets is the most buckets one usage report holds: 41 days by
// the hour, more than the year the counts are kept by the day.
const maxUsageBuckets = 1000

// Usage reports the requests of a key, of a tenant's keys, or (for a
// root key naming neither) of every key and of none, in buckets of an
// hour or a day, under the rule of RequestLogs: a key or tenant outside
// the caller's reach is answered as one that does not exist.
func (s *Service) Usage(ctx context.Context, c Caller, in UsageInput) (*keyward.UsageReport, error) {
	if err := Authorize(c, Manager); err != nil {
		return nil, err
	}
	f := keyward.UsageFilter{Granularity: keyward.Granularity(in.Granularity)}
	if in.Granularity == "" {
		f.Granularity = keyward.Hourly
	}
	span := f.Granularity.Span()
	if span == 0 {
		return nil, keyward.FieldErrorf("granularity", "%q is not a granularity; use hour or day", in.Granularity)
	}
	if in.KeyID != "" {
		k, err := s.Key(ctx, c, in.KeyID)
		if err != nil {
			return nil, err
		}
		f.KeyID, f.TenantID = k.ID, k.TenantID
	}
	if in.TenantID != "" || !c.Root() {
		t, err := s.tenantFor(ctx, c, in.TenantID)
		if err != nil {
			return nil, err
		}
		if f.KeyID != "" && f.TenantID != t.ID {
			return nil, errNotFound("API key", in.KeyID)
		}
		f.TenantID = t.ID
	}
	now := s.now()
	var err error
	if f.To, err = parseSince("to", in.To, now); err != nil {
		return nil, err
	}
	if f.To.IsZero() {
		f.To = now
	}
	if up := f.To.UTC().Truncate(span); up.Before(f.To) {
		f.To = up.Add(span)
	} else {
		f.To = up
	}
	if f.From, err = parseSince("from", in.From, now); err != nil {
		return nil, err
	}
	switch {
	case !f.From.IsZero():
		f.From = f.From.UTC().Truncate(span)
	case f.Granularity == keyward.Hourly:
		f.From = f.To.Add(-24 * time.Hour)
	default:
		f.From = f.To.Add(-30 * 24 * time.Hour)
	}
	if !f.From.Before(f.To) {
		return nil, keyward.FieldErrorf("to", "%s is not after from (%s); give a time range that is not empty", f.To.Format(time.RFC3339), f.From.Format(time.RFC3339))
	}
	if n := f.To.Sub(f.From) / span; n > maxUsageBuckets {
		return nil, keyward.FieldErrorf("from", "the range holds %d %ss, more than %d; give a shorter range, or granularity=day", n, f.Granularity, maxUsageBuckets)
	}
	counts, err := s.store.Usage(ctx, f)
	if err != nil {
		return nil, err
	}
	return keyward.NewUsageReport(f, counts), nil
}
