package keyward

import (
	"context"
	"time"
)

// Surfaces on which keys are verified: the Surface of a RequestLog.
const (
	SurfaceAPI         = "api"          // the management API and /v1/whoami (serve --addr)
	SurfaceForwardAuth = "forward-auth" // /v1/forward-auth, on --addr or --auth-addr
	SurfaceVerify      = "verify"       // POST /v1/verify, on --addr or --auth-addr: the key in the body
	SurfaceGateway     = "gateway"      // serve --gateway-addr
)

// RequestLog is one verification of a key, on any surface: what was
// asked, by whom, from where, and what was answered. It never holds a key:
// a key is named by its id, and text that may quote one (the path, the
// user agent, the referrer) has every well-formed key in it redacted
// before it is stored. Neither the path nor the referrer holds a query
// string.
type RequestLog struct {
	ID        int64     `json:"id"`
	At        time.Time `json:"at"`
	RequestID string    `json:"request_id"`
	Surface   string    `json:"surface"`
	// KeyID, TenantID, MemberID and Environment are the key's, when it was
	// found (also when it was then refused); empty for a request without
	// a key, one whose key does not exist, and a public route.
	KeyID       string `json:"key_id,omitempty"`
	TenantID    string `json:"tenant_id,omitempty"`
	MemberID    string `json:"member_id,omitempty"`
	Environment string `json:"environment,omitempty"`
	Method      string `json:"method"`
	// Route is the pattern of the route that decided: the API's, or the
	// route policy's (GET /v1/contacts/**); empty when none did.
	Route  string `json:"route,omitempty"`
	Path   string `json:"path"`
	Status int    `json:"status"`
	// Code is the outcome's code, empty when the key was accepted.
	Code      Code   `json:"code,omitempty"`
	ClientIP  string `json:"client_ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	Referrer  string `json:"referrer,omitempty"`
	// LatencyMicros is the time from the request's arrival to its answer
	// (for the gateway, to the upstream's answer's header), in
	// microseconds.
	LatencyMicros int64 `json:"latency_us"`
	// RateLimit is the standing of the key's tightest rate limit after the
	// request, when it has rate limits.
	RateLimit *LoggedRateLimit `json:"rate_limit,omitempty"`
}

// LoggedRateLimit is the standing of a rate limit after a request.
type LoggedRateLimit struct {
	Limit     int64 `json:"limit"`
	Remaining int64 `json:"remaining"`
	// ResetMillis is the time until the limit is full again.
	ResetMillis int64 `json:"reset_ms"`
}

// RequestLogFilter selects request logs. Empty fields match everything;
// From is inclusive and To exclusive.
type RequestLogFilter struct {
	TenantID  string
	KeyID     string
	RequestID string
	Surface   string
	// Code matches the outcome's code; CodeAllowed matches accepted keys.
	Code     Code
	Status   int
	From, To time.Time
	// After, when above zero, selects the entries with an id above it,
	// oldest first (for following the log), instead of newest first.
	After int64
}

// CodeAllowed is the Code a RequestLogFilter names to select the requests
// whose key was accepted (whose RequestLog.Code is empty).
const CodeAllowed Code = "allowed"

// RequestLogStore keeps the request logs. Errors are those of Store.
type RequestLogStore interface {
	// WriteRequestLogs stores a batch in one transaction, without the
	// write lock of the management writes: the entries (their IDs are
	// ignored), the usage counts added to those kept (each count's
	// tenant, key, granularity, start and code there at most once), and
	// the sightings and spikes. In the same transaction it flags each key
	// of the sightings that the sharing rule now judges shared, once a
	// day, and raises the events of the flags and of the spikes that
	// start an episode.
	WriteRequestLogs(ctx context.Context, b *LogBatch) error
	// RequestLogs lists the entries that match f, newest first (with
	// f.After, oldest first).
	RequestLogs(ctx context.Context, f RequestLogFilter, p Page) (logs []*RequestLog, next string, err error)
	// PruneRequestLogs deletes up to limit of the entries written before
	// the given time, and returns how many it deleted.
	PruneRequestLogs(ctx context.Context, before time.Time, limit int) (int64, error)
	// PruneSignals deletes up to limit of the sightings of days, and of
	// the spike episodes last seen, before the given time, and returns
	// how many it deleted.
	PruneSignals(ctx context.Context, before time.Time, limit int) (int64, error)
}
