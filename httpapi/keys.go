package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/manage"
)

// keyView is a key as the API shows it: its status as of now (expired
// once its expiry has passed, keyward.Key.StatusAt), and last_used, which
// repeats last_used_at in the name the seeds' list answers use.
type keyView struct {
	*keyward.Key
	Status   keyward.KeyStatus `json:"status" enum:"active,disabled,expired,revoked"`
	LastUsed *time.Time        `json:"last_used"`
}

func viewKey(k *keyward.Key, now time.Time) keyView {
	return keyView{Key: k, Status: k.StatusAt(now), LastUsed: k.LastUsedAt}
}

// viewKeys shows a page of keys; an empty page is [], never null.
func viewKeys(ks []*keyward.Key, now time.Time) []keyView {
	out := make([]keyView, len(ks))
	for i, k := range ks {
		out[i] = viewKey(k, now)
	}
	return out
}

// createdKey is a new key with its plaintext, shown this once.
type createdKey struct {
	keyView
	Key string `json:"key" description:"the plaintext key: store it now, it is never shown again" example:"sk_live_…"`
}

type (
	keyPath struct {
		ID string `path:"id" example:"key_3hF…"`
	}
	createKeyRequest struct{ manage.CreateKeyInput }
	updateKeyRequest struct {
		keyPath
		manage.UpdateKeyInput
	}
	rotateKeyRequest struct {
		keyPath
		manage.RotateKeyInput
	}
	pageRequest struct {
		Limit  int    `query:"limit" description:"at most 200; default 50"`
		Cursor string `query:"cursor" description:"next_cursor of the page before"`
	}
	listKeysRequest struct {
		TenantID    string `query:"tenant_id" description:"tenant id or slug; a tenant's key sees its own keys only"`
		Environment string `query:"environment" enum:"live,test"`
		Status      string `query:"status" enum:"active,disabled,expired,revoked" description:"the status a key shows now: expired keys are listed as expired, not as active or disabled"`
		pageRequest
	}
	keyResponse struct {
		Success bool    `json:"success"`
		Data    keyView `json:"data"`
	}
	createdKeyResponse struct {
		Success bool       `json:"success"`
		Data    createdKey `json:"data"`
		Message string     `json:"message"`
	}
	rotatedKeyResponse struct {
		Success  bool       `json:"success"`
		Data     createdKey `json:"data" description:"the successor key, with its plaintext"`
		Previous keyView    `json:"previous" description:"the old key: rotated_to names the successor, expires_at says when it stops working"`
		Message  string     `json:"message"`
	}
	keyListResponse struct {
		Success    bool      `json:"success"`
		Data       []keyView `json:"data"`
		NextCursor string    `json:"next_cursor" description:"empty on the last page"`
	}
	messageResponse struct {
		Success bool   `json:"success"`
		Message string `json:"message" example:"API key revoked successfully"`
	}
)

// storeNow is the notice that comes with every plaintext key.
const storeNow = "Store this key now: it is shown only once and cannot be recovered."

func (s *server) handleCreateKey(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	var in manage.CreateKeyInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	k, plaintext, err := s.svc.CreateKey(r.Context(), c, in)
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusCreated, createdKeyResponse{Success: true, Data: createdKey{viewKey(k, s.now()), plaintext}, Message: storeNow})
}

func (s *server) handleListKeys(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	q := r.URL.Query()
	p, err := readPage(r)
	if err != nil {
		return err
	}
	keys, next, err := s.svc.Keys(r.Context(), c, manage.KeyListInput{
		TenantID: q.Get("tenant_id"), Environment: q.Get("environment"), Status: q.Get("status"),
	}, p)
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, keyListResponse{Success: true, Data: viewKeys(keys, s.now()), NextCursor: next})
}

func (s *server) handleGetKey(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	k, err := s.svc.Key(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, keyResponse{Success: true, Data: viewKey(k, s.now())})
}

func (s *server) handleUpdateKey(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	var in manage.UpdateKeyInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	k, err := s.svc.UpdateKey(r.Context(), c, r.PathValue("id"), in)
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, keyResponse{Success: true, Data: viewKey(k, s.now())})
}

func (s *server) handleRevokeKey(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	if _, err := s.svc.RevokeKey(r.Context(), c, r.PathValue("id")); err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, messageResponse{Success: true, Message: "API key revoked successfully"})
}

func (s *server) handleRotateKey(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	var in manage.RotateKeyInput
	if err := decodeOptional(w, r, &in); err != nil {
		return err
	}
	next, plaintext, old, err := s.svc.RotateKey(r.Context(), c, r.PathValue("id"), in)
	if err != nil {
		return err
	}
	now := s.now()
	return s.respond(w, http.StatusCreated, rotatedKeyResponse{
		Success: true, Data: createdKey{viewKey(next, now), plaintext}, Previous: viewKey(old, now),
		Message: storeNow + " The old key " + old.ID + " stops working at " + old.ExpiresAt.Format(time.RFC3339) + ".",
	})
}

// readPage reads limit and cursor from the query.
func readPage(r *http.Request) (keyward.Page, error) {
	q := r.URL.Query()
	p := keyward.Page{Cursor: q.Get("cursor")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > keyward.MaxPageLimit {
			return p, keyward.FieldErrorf("limit", "%q is not a number from 1 to %d", l, keyward.MaxPageLimit)
		}
		p.Limit = n
	}
	return p, nil
}
