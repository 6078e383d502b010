package httpapi

import (
	"net/http"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/view"
)

type (
	webhookPath struct {
		ID string `path:"id" example:"whk_3hF…"`
	}
	deliveryPath struct {
		webhookPath
		Delivery string `path:"delivery" example:"42"`
	}
	createWebhookRequest struct{ manage.WebhookInput }
	updateWebhookRequest struct {
		webhookPath
		manage.WebhookUpdateInput
	}
	rotateSecretRequest struct {
		webhookPath
		Overlap *string `json:"overlap,omitempty" description:"how long the old secret also signs deliveries: a duration from 0 to 7d; default 24h" example:"24h"`
	}
	listWebhooksRequest struct {
		TenantID string `query:"tenant_id" description:"tenant id or slug; a tenant's key sees its own tenant's endpoints only, a root key every one"`
		pageRequest
	}
	listDeliveriesRequest struct {
		webhookPath
		Status    string `query:"status" enum:"pending,delivered,failed"`
		EventType string `query:"event_type" description:"only the deliveries of this event type"`
		pageRequest
	}
	// webhookResponse is one endpoint; with its secret once, when it was
	// made or its secret rotated.
	webhookResponse struct {
		Success bool             `json:"success"`
		Data    *keyward.Webhook `json:"data"`
		Secret  string           `json:"secret,omitempty" description:"the signing secret (whsec_…), shown once: store it now" example:"whsec_…"`
		Message string           `json:"message,omitempty"`
	}
	webhookListResponse  view.List[*keyward.Webhook]
	deliveryListResponse view.List[*keyward.Delivery]
	deliveryResponse     struct {
		Success bool              `json:"success"`
		Data    *keyward.Delivery `json:"data"`
	}
)

// secretNotice comes with every secret shown.
const secretNotice = "Store the secret now: it is shown only once. Verify each delivery's webhook-signature with it (Standard Webhooks)."

func (s *server) handleCreateWebhook(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	var in manage.WebhookInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	wh, secret, err := s.svc.CreateWebhook(r.Context(), c, in)
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusCreated, webhookResponse{Success: true, Data: wh, Secret: secret, Message: secretNotice})
}

func (s *server) handleListWebhooks(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	p, err := readPage(r)
	if err != nil {
		return err
	}
	list, next, err := s.svc.Webhooks(r.Context(), c, r.URL.Query().Get("tenant_id"), p)
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, webhookListResponse(view.ListOf(list, next)))
}

func (s *server) handleGetWebhook(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	wh, err := s.svc.Webhook(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, webhookResponse{Success: true, Data: wh})
}

func (s *server) handleUpdateWebhook(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	var in manage.WebhookUpdateInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	wh, err := s.svc.UpdateWebhook(r.Context(), c, r.PathValue("id"), in)
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, webhookResponse{Success: true, Data: wh})
}

func (s *server) handleDeleteWebhook(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	if err := s.svc.DeleteWebhook(r.Context(), c, r.PathValue("id")); err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, view.Message{Success: true, Message: "Webhook deleted, with its deliveries."})
}

func (s *server) handleRotateWebhookSecret(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	var in struct {
		Overlap *string `json:"overlap"`
	}
	if err := decodeOptional(w, r, &in); err != nil {
		return err
	}
	wh, secret, err := s.svc.RotateWebhookSecret(r.Context(), c, r.PathValue("id"), in.Overlap)
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, webhookResponse{Success: true, Data: wh, Secret: secret, Message: secretNotice})
}

func (s *server) handleListDeliveries(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	p, err := readPage(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	list, next, err := s.svc.WebhookDeliveries(r.Context(), c, r.PathValue("id"), manage.DeliveryListInput{Status: q.Get("status"), EventType: q.Get("event_type")}, p)
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, deliveryListResponse(view.ListOf(list, next)))
}

func (s *server) handleGetDelivery(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	d, err := s.svc.WebhookDelivery(r.Context(), c, r.PathValue("id"), r.PathValue("delivery"))
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, deliveryResponse{Success: true, Data: d})
}

func (s *server) handleRedeliver(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	d, err := s.svc.Redeliver(r.Context(), c, r.PathValue("id"), r.PathValue("delivery"))
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusAccepted, deliveryResponse{Success: true, Data: d})
}
