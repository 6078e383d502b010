package manage

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/webhook"
)

// WebhookInput is a new webhook endpoint, as the API's body and the
// command line's flags give it.
type WebhookInput struct {
	// TenantID is the tenant whose events it gets (id or slug); empty
	// with a root key for the operator's endpoint, which gets every
	// tenant's; a tenant's key may name only its own (the default).
	TenantID    string   `json:"tenant_id,omitempty" description:"the tenant whose events it gets (id or slug); a tenant's key: its own; a root key without one: every tenant's"`
	URL         string   `json:"url" description:"where events are POSTed: https (or http), a public address unless the operator allows private ones" example:"https://api.example.com/keyward-events"`
	Description string   `json:"description,omitempty"`
	Events      []string `json:"events" description:"the event types to get, or [\"*\"] for all" example:"[\"key.revoked\",\"key.rotation_due\"]"`
}

// WebhookUpdateInput changes an endpoint: the fields given.
type WebhookUpdateInput struct {
	URL         *string  `json:"url,omitempty"`
	Description *string  `json:"description,omitempty"`
	Events      []string `json:"events,omitempty"`
	Enabled     *bool    `json:"enabled,omitempty" description:"false stops deliveries (those due fail until it is enabled again)"`
}

// maxDescription is the longest description of an endpoint, in bytes.
const maxDescription = 500

// checkDescription refuses a description longer than maxDescription.
func checkDescription(d string) error {
	if len(d) > maxDescription {
		return keyward.FieldErrorf("description", "is %d bytes long; the most is %d", len(d), maxDescription)
	}
	return nil
}

// checkEvents refuses an empty list of events and a type that is not one.
func checkEvents(events []string) ([]string, error) {
	if len(events) == 0 {
		return nil, keyward.FieldErrorf("events", "is empty; give the event types to get, such as [\"key.revoked\"], or [\"*\"] for all")
	}
	out := []string{}
	for _, e := range events {
		if e != keyward.EventAll && !slices.Contains(keyward.EventTypes, e) {
			return nil, keyward.FieldErrorf("events", "%q is not an event type; use * or some of %s", e, strings.Join(keyward.EventTypes, ", "))
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// webhookTenant is the tenant an endpoint of the caller's is for: "" (every
// tenant) for a root key that names none.
func (s *Service) webhookTenant(ctx context.Context, c Caller, idOrSlug string) (string, error) {
	if idOrSlug == "" && c.Root() {
		return "", nil
	}
	t, err := s.tenantFor(ctx, c, idOrSlug)
	if err != nil {
		return "", err
	}
	return t.ID, nil
}

// CreateWebhook registers an endpoint and returns it with its signing
// secret, shown this once.
func (s *Service) CreateWebhook(ctx context.Context, c Caller, in WebhookInput) (*keyward.Webhook, string, error) {
	if err := Authorize(c, Manager); err != nil {
		return nil, "", err
	}
	if err := authorizeWebhooks(c); err != nil {
		return nil, "", err
	}
	tenant, err := s.webhookTenant(ctx, c, in.TenantID)
	if err != nil {
		return nil, "", err
	}
	events, err := checkEvents(in.Events)
	if err != nil {
		return nil, "", err
	}
	if err := checkDescription(in.Description); err != nil {
		return nil, "", err
	}
	if err := webhook.CheckURL(ctx, in.URL, s.allowPrivate); err != nil {
		return nil, "", err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	w := &keyward.Webhook{ID: apikey.NewID("whk"), TenantID: tenant, URL: in.URL, Description: in.Description, Events: events,
		Enabled: true, Secret: webhook.NewSecret(), CreatedAt: now, UpdatedAt: now}
	if err := s.store.CreateWebhook(ctx, w, c.Actor); err != nil {
		return nil, "", err
	}
	return w, w.Secret, nil
}

// Webhook returns an endpoint of the caller's reach: a tenant's key sees
// its own tenant's, a root key every one.
func (s *Service) Webhook(ctx context.Context, c Caller, id string) (*keyward.Webhook, error) {
	if err := Authorize(c, Manager); err != nil {
		return nil, err
	}
	w, err := s.store.Webhook(ctx, id)
	if keyward.ErrorCode(err) == keyward.CodeNotFound || (err == nil && !c.Root() && w.TenantID != c.TenantID) {
		return nil, errNotFound("webhook", id)
	}
	return w, err
}

// Webhooks lists the endpoints of the caller's reach: a tenant's key its
// own tenant's; a root key every endpoint, or one tenant's when it names
// it.
func (s *Service) Webhooks(ctx context.Context, c Caller, tenantID string, p keyward.Page) ([]*keyward.Webhook, string, error) {
	if err := Authorize(c, Manager); err != nil {
		return nil, "", err
	}
	if err := checkPage(p); err != nil {
		return nil, "", err
	}
	if c.Root() && tenantID == "" {
		return s.store.Webhooks(ctx, "", true, p)
	}
	t, err := s.tenantFor(ctx, c, tenantID)
	if err != nil {
		return nil, "", err
	}
	return s.store.Webhooks(ctx, t.ID, false, p)
}

// changeableWebhook returns an endpoint of the caller's reach that it may
// change (authorizeWebhooks).
func (s *Service) changeableWebhook(ctx context.Context, c Caller, id string) (*keyward.Webhook, error) {
	w, err := s.Webhook(ctx, c, id)
	if err != nil {
		return nil, err
	}
	return w, authorizeWebhooks(c)
}

// UpdateWebhook changes an endpoint of the caller's reach.
func (s *Service) UpdateWebhook(ctx context.Context, c Caller, id string, in WebhookUpdateInput) (*keyward.Webhook, error) {
	if _, err := s.changeableWebhook(ctx, c, id); err != nil {
		return nil, err
	}
	u := keyward.WebhookUpdate{URL: in.URL, Description: in.Description, Enabled: in.Enabled}
	if in.URL != nil {
		if err := webhook.CheckURL(ctx, *in.URL, s.allowPrivate); err != nil {
			return nil, err
		}
	}
	if in.Description != nil {
		if err := checkDescription(*in.Description); err != nil {
			return nil, err
		}
	}
	if in.Events != nil {
		events, err := checkEvents(in.Events)
		if err != nil {
			return nil, err
		}
		u.Events = events
	}
	if u.URL == nil && u.Description == nil && u.Events == nil && u.Enabled == nil {
		return nil, keyward.Errorf(keyward.CodeInvalidRequest, "Nothing to change: give at least one of url, description, events or enabled.")
	}
	return s.store.UpdateWebhook(ctx, id, u, s.now().UTC().Truncate(time.Microsecond), c.Actor)
}

// DeleteWebhook deletes an endpoint of the caller's reach, and its
// deliveries.
func (s *Service) DeleteWebhook(ctx context.Context, c Caller, id string) error {
	if _, err := s.changeableWebhook(ctx, c, id); err != nil {
		return err
	}
	return s.store.DeleteWebhook(ctx, id, s.now().UTC().Truncate(time.Microsecond), c.Actor)
}

// DefaultSecretOverlap is how long the secret before a rotation still
// signs deliveries, beside the new one.
const DefaultSecretOverlap = 24 * time.Hour

// RotateWebhookSecret gives an endpoint of the caller's reach a new
// secret, shown this once; the old one also signs deliveries for the
// overlap (default 24h, at most 7 days, "0" for none), so that the
// receiver can switch without losing one.
func (s *Service) RotateWebhookSecret(ctx context.Context, c Caller, id string, overlap *string) (*keyward.Webhook, string, error) {
	if _, err := s.changeableWebhook(ctx, c, id); err != nil {
		return nil, "", err
	}
	d := DefaultSecretOverlap
	if overlap != nil {
		var err error
		if d, err = ParseDuration(*overlap); err != nil || d < 0 || d > 7*24*time.Hour {
			return nil, "", keyward.FieldErrorf("overlap", "%q is not a duration from 0 to 7d, such as 24h", *overlap)
		}
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	secret := webhook.NewSecret()
	w, err := s.store.UpdateWebhook(ctx, id, keyward.WebhookUpdate{Secret: &secret, PreviousUntil: now.Add(d)}, now, c.Actor)
	if err != nil {
		return nil, "", err
	}
	return w, secret, nil
}

// DeliveryListInput selects an endpoint's deliveries.
type DeliveryListInput struct {
	Status    string
	EventType string
}

// WebhookDeliveries lists the deliveries of an endpoint of the caller's
// reach, newest first: its delivery log.
func (s *Service) WebhookDeliveries(ctx context.Context, c Caller, id string, in DeliveryListInput, p keyward.Page) ([]*keyward.Delivery, string, error) {
	if _, err := s.Webhook(ctx, c, id); err != nil {
		return nil, "", err
	}
	if in.Status != "" && !slices.Contains([]string{keyward.DeliveryPending, keyward.DeliveryDelivered, keyward.DeliveryFailed}, in.Status) {
		return nil, "", keyward.FieldErrorf("status", "%q is not a delivery's status; use pending, delivered or failed", in.Status)
	}
	if err := checkPage(p); err != nil {
		return nil, "", err
	}
	return s.store.Deliveries(ctx, keyward.DeliveryFilter{WebhookID: id, Status: in.Status, EventType: in.EventType}, p)
}

// WebhookDelivery returns one delivery of an endpoint of the caller's
// reach, with its attempts.
func (s *Service) WebhookDelivery(ctx context.Context, c Caller, id, deliveryID string) (*keyward.Delivery, error) {
	if _, err := s.Webhook(ctx, c, id); err != nil {
		return nil, err
	}
	n, err := strconv.ParseInt(deliveryID, 10, 64)
	if err != nil || n <= 0 {
		return nil, errNotFound("delivery", deliveryID)
	}
	d, err := s.store.Delivery(ctx, n)
	if keyward.ErrorCode(err) == keyward.CodeNotFound || (err == nil && d.WebhookID != id) {
		return nil, errNotFound("delivery", deliveryID)
	}
	return d, err
}

// Redeliver attempts a delivery of an endpoint of the caller's reach
// again, at once, whatever its status, with a new schedule of retries.
func (s *Service) Redeliver(ctx context.Context, c Caller, id, deliveryID string) (*keyward.Delivery, error) {
	d, err := s.WebhookDelivery(ctx, c, id, deliveryID)
	if err != nil {
		return nil, err
	}
	if err := authorizeWebhooks(c); err != nil {
		return nil, err
	}
	if err := s.store.Redeliver(ctx, d.ID, s.now().UTC().Truncate(time.Microsecond), c.Actor); err != nil {
		return nil, err
	}
	if s.delivered != nil {
		s.delivered()
	}
	return s.store.Delivery(ctx, d.ID)
}
