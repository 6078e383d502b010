package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/view"
)

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
		MemberID    string `query:"member_id" description:"only the keys that belong to this member"`
		Environment string `query:"environment" enum:"live,test"`
		Status      string `query:"status" enum:"active,disabled,expired,revoked" description:"the status a key shows now: expired keys are listed as expired, not as active or disabled"`
		pageRequest
	}
	keyResponse struct {
		Success bool     `json:"success"`
		Data    view.Key `json:"data"`
	}
	keyUsageResponse struct {
		Success bool             `json:"success"`
		Data    *manage.KeyUsage `json:"data"`
	}
	createdKeyResponse struct {
		Success bool            `json:"success"`
		Data    view.CreatedKey `json:"data"`
		Message string          `json:"message"`
	}
	rotatedKeyResponse struct {
		Success  bool            `json:"success"`
		Data     view.CreatedKey `json:"data" description:"the successor key, with its plaintext"`
		Previous view.Key        `json:"previous" description:"the old key: rotated_to names the successor, expires_at says when it stops working"`
		Message  string          `json:"message"`
	}
	// messageResponse is the answer of a revocation.
	messageResponse = view.Message
	// keyListResponse is view.List of keys, named for the OpenAPI
	// document.
	keyListResponse view.List[view.Key]
)

func (s *server) handleCreateKey(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	var in manage.CreateKeyInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	k, plaintext, err := s.svc.CreateKey(r.Context(), c, in)
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusCreated, createdKeyResponse{Success: true, Data: view.CreatedKey{Key: view.KeyOf(k, s.now()), Plaintext: plaintext}, Message: view.StoreNow})
}

func (s *server) handleListKeys(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	q := r.URL.Query()
	p, err := readPage(r)
	if err != nil {
		return err
	}
	keys, next, err := s.svc.Keys(r.Context(), c, manage.KeyListInput{
		TenantID: q.Get("tenant_id"), MemberID: q.Get("member_id"), Environment: q.Get("environment"), Status: q.Get("status"),
	}, p)
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, keyListResponse(view.ListOf(view.KeysOf(keys, s.now()), next)))
}

func (s *server) handleGetKey(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	k, err := s.svc.Key(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, keyResponse{Success: true, Data: view.KeyOf(k, s.now())})
}

func (s *server) handleKeyUsage(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	u, err := s.svc.KeyUsage(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, keyUsageResponse{Success: true, Data: u})
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
	return s.respond(w, http.StatusOK, keyResponse{Success: true, Data: view.KeyOf(k, s.now())})
}

func (s *server) handleRevokeKey(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	if _, err := s.svc.RevokeKey(r.Context(), c, r.PathValue("id")); err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, view.Message{Success: true, Message: view.KeyRevoked})
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
		Success: true, Data: view.CreatedKey{Key: view.KeyOf(next, now), Plaintext: plaintext}, Previous: view.KeyOf(old, now),
		Message: view.StoreNow + " The old key " + old.ID + " stops working at " + old.ExpiresAt.Format(time.RFC3339) + ".",
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
