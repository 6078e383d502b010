package keyward

import (
	"context"
	"encoding/json"
	"time"
)

// The events a webhook endpoint may ask for (docs/webhooks.md).
const (
	EventKeyCreated       = "key.created"
	EventKeyUpdated       = "key.updated"
	EventKeyRevoked       = "key.revoked"
	EventKeyRotated       = "key.rotated"
	EventKeyExpiring      = "key.expiring"
	EventKeyRotationDue   = "key.rotation_due"
	EventSharingSuspected = "key.sharing_suspected"
	EventAuthFailureSpike = "auth.failure_spike"
	EventQuotaThreshold   = "quota.threshold"
	EventCreditsLow       = "credits.low"
	EventAll              = "*" // every event, those added later too
)

// EventTypes are the events an endpoint may ask for, EventAll aside.
var EventTypes = []string{
	EventKeyCreated, EventKeyUpdated, EventKeyRevoked, EventKeyRotated, EventKeyExpiring, EventKeyRotationDue,
	EventSharingSuspected, EventAuthFailureSpike, EventQuotaThreshold, EventCreditsLow,
}

// Webhook is an endpoint that events are delivered to: a tenant's, which
// gets its own tenant's events, or the operator's (TenantID empty), which
// gets every tenant's.
type Webhook struct {
	ID          string   `json:"id"`
	TenantID    string   `json:"tenant_id" description:"the tenant whose events it gets; empty for the operator's endpoint, which gets every tenant's"`
	URL         string   `json:"url"`
	Description string   `json:"description"`
	Events      []string `json:"events" description:"the event types it gets, or * for all"`
	Enabled     bool     `json:"enabled"`
	// Secret signs the deliveries (whsec_ and base64); shown once, when
	// the endpoint is made or its secret rotated, and never listed.
	Secret string `json:"-"`
	// PreviousSecret, until PreviousUntil, signs the deliveries too: the
	// overlap of a rotation of the secret.
	PreviousSecret string     `json:"-"`
	PreviousUntil  *time.Time `json:"previous_secret_until" description:"until when deliveries are also signed with the secret before the last rotation; null when none"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
}

// Wants reports whether w gets events of type typ.
func (w *Webhook) Wants(typ string) bool {
	for _, e := range w.Events {
		if e == EventAll || e == typ {
			return true
		}
	}
	return false
}

// WebhookUpdate changes an endpoint: the non-nil fields.
type WebhookUpdate struct {
	URL         *string
	Description *string
	Events      []string // nil: unchanged
	Enabled     *bool
	// Secret, when set, replaces the secret; the old one is kept as
	// PreviousSecret until PreviousUntil.
	Secret        *string
	PreviousUntil time.Time
}

// Event is something that happened that webhooks tell of: written in the
// transaction of the change that causes it (the outbox), then delivered
// to every endpoint that asks for its type and may see its tenant.
type Event struct {
	// ID is the webhook-id of its deliveries (msg_…): the same on every
	// attempt, so that a receiver can drop a duplicate.
	ID       string          `json:"id"`
	Type     string          `json:"type"`
	TenantID string          `json:"tenant_id,omitempty"`
	At       time.Time       `json:"timestamp"`
	Data     json.RawMessage `json:"data"`
}

// Delivery statuses.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed" // every attempt of the schedule failed
)

// Delivery is an event's delivery to one endpoint, with its attempts.
type Delivery struct {
	ID          int64      `json:"id"`
	EventID     string     `json:"event_id"`
	EventType   string     `json:"event_type"`
	WebhookID   string     `json:"webhook_id"`
	Status      string     `json:"status" enum:"pending,delivered,failed"`
	Attempts    int        `json:"attempts"`
	NextAt      *time.Time `json:"next_attempt_at" description:"when the next attempt is due, while pending"`
	LastStatus  int        `json:"last_status" description:"the HTTP status of the last attempt, 0 for none"`
	LastError   string     `json:"last_error"`
	DeliveredAt *time.Time `json:"delivered_at"`
	CreatedAt   time.Time  `json:"created_at"`
	// Log is the attempts, newest first, when the delivery is shown by
	// itself.
	Log []Attempt `json:"log,omitempty"`
}

// Attempt is one try of a delivery.
type Attempt struct {
	At         time.Time `json:"at"`
	Status     int       `json:"status" description:"the HTTP status answered, 0 when none was"`
	Error      string    `json:"error,omitempty"`
	DurationMs int64     `json:"duration_ms"`
}

// Claimed is a delivery taken by a node to attempt, with what it needs.
type Claimed struct {
	Delivery
	Event   Event
	Webhook Webhook
	// LeaseUntil is the claim's lease: FinishDelivery names it.
	LeaseUntil time.Time
}

// DeliveryFilter selects an endpoint's deliveries.
type DeliveryFilter struct {
	WebhookID string
	Status    string
	EventType string
}

// Mark says that a one-time event of a key (key.expiring,
// key.rotation_due) was raised for the key's current date (its expiry or
// rotate_by), so that it is raised once per date.
type Mark struct {
	Kind  string
	KeyID string
	Due   time.Time
}

// WebhookStore keeps webhook endpoints, the events of the outbox and
// their deliveries. Errors are those of Store.
type WebhookStore interface {
	CreateWebhook(ctx context.Context, w *Webhook, by Actor) error
	Webhook(ctx context.Context, id string) (*Webhook, error)
	// Webhooks lists the endpoints of a tenant ("" for the operator's),
	// or of every tenant with all.
	Webhooks(ctx context.Context, tenantID string, all bool, p Page) ([]*Webhook, string, error)
	UpdateWebhook(ctx context.Context, id string, u WebhookUpdate, at time.Time, by Actor) (*Webhook, error)
	DeleteWebhook(ctx context.Context, id string, at time.Time, by Actor) error

	// Emit writes events, each with a delivery to every enabled endpoint
	// that asks for its type and may see its tenant, in one transaction.
	// An event with a mark is written only if its mark was not written
	// before (and the mark with it): it reports how many were written.
	Emit(ctx context.Context, events []Event, marks []*Mark) (int, error)
	// DueKeys returns up to limit active keys that expire between now and
	// before (not in a rotation's grace period), or whose rotate_by is
	// past, and have no mark of that kind for that date yet.
	DueKeys(ctx context.Context, now, before time.Time, limit int) (expiring, rotationDue []*Key, err error)

	// ClaimDeliveries takes up to limit pending deliveries due at now
	// that no other node holds, for lease, and counts an attempt of each.
	ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*Claimed, error)
	// FinishDelivery records an attempt's outcome and releases the
	// delivery, if the claim whose lease is lease still holds it:
	// delivered, pending again at next, or failed when next is zero and
	// it was not delivered.
	FinishDelivery(ctx context.Context, id int64, lease time.Time, a Attempt, delivered bool, next time.Time) error
	Deliveries(ctx context.Context, f DeliveryFilter, p Page) ([]*Delivery, string, error)
	Delivery(ctx context.Context, id int64) (*Delivery, error)
	// Redeliver makes a delivery pending again, due at at, with its
	// attempts counted anew; a conflict while a node attempts it.
	Redeliver(ctx context.Context, id int64, at time.Time, by Actor) error
	// PruneWebhooks deletes up to limit events raised before the given
	// time whose deliveries are all over (delivered or failed), with
	// their deliveries and attempts, and the marks of dates before it;
	// it returns how many events it deleted.
	PruneWebhooks(ctx context.Context, before time.Time, limit int) (int64, error)
}
