package httpapi

import (
	"net/http"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/view"
)

type (
	memberPath struct {
		ID string `path:"id" example:"mem_3hF…"`
	}
	createMemberRequest struct{ manage.CreateMemberInput }
	updateMemberRequest struct {
		memberPath
		manage.UpdateMemberInput
	}
	removeMemberRequest struct {
		memberPath
		TransferKeysTo string `query:"transfer_keys_to" description:"the id of an active member of the same tenant to move the member's keys to; absent: the keys are revoked" example:"mem_9Qa…"`
	}
	listMembersRequest struct {
		TenantID string `query:"tenant_id" description:"tenant id or slug; a root key without it lists every tenant's members, and a tenant's key sees its own members only"`
		pageRequest
	}
	memberResponse struct {
		Success bool            `json:"success"`
		Data    *keyward.Member `json:"data"`
	}
	// memberListResponse is view.List of members, named for the OpenAPI
	// document.
	memberListResponse view.List[*keyward.Member]
	// removalResponse is the answer of a member's removal.
	removalResponse = view.Removal
)

func (s *server) handleCreateMember(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	var in manage.CreateMemberInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	m, err := s.svc.CreateMember(r.Context(), c, in)
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusCreated, memberResponse{Success: true, Data: m})
}

func (s *server) handleListMembers(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	p, err := readPage(r)
	if err != nil {
		return err
	}
	ms, next, err := s.svc.Members(r.Context(), c, r.URL.Query().Get("tenant_id"), p)
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, memberListResponse(view.ListOf(ms, next)))
}

func (s *server) handleGetMember(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	m, err := s.svc.Member(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, memberResponse{Success: true, Data: m})
}

func (s *server) handleUpdateMember(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	var in manage.UpdateMemberInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	m, err := s.svc.UpdateMember(r.Context(), c, r.PathValue("id"), in)
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, memberResponse{Success: true, Data: m})
}

// handleRemoveMember removes a member. Where their keys go is a query
// parameter, transfer_keys_to, not a body: clients and proxies may drop
// the body of a DELETE.
func (s *server) handleRemoveMember(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	removal, err := s.svc.RemoveMember(r.Context(), c, r.PathValue("id"), r.URL.Query().Get("transfer_keys_to"))
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, view.RemovalOf(removal))
}

type (
	portalSessionRequest  struct{ manage.PortalSessionInput }
	portalSessionResponse struct {
		Success bool                  `json:"success"`
		Data    *manage.PortalSession `json:"data"`
	}
	invitationResponse struct {
		Success bool         `json:"success"`
		Data    *manage.Link `json:"data"`
	}
)

// handleCreatePortalSession makes a one-time link that signs a customer
// in to the dashboard (docs/dashboard.md, "The customer portal").
func (s *server) handleCreatePortalSession(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	var in manage.PortalSessionInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	ps, err := s.svc.CreatePortalSession(r.Context(), c, in, s.publicURL)
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusCreated, portalSessionResponse{Success: true, Data: ps})
}

// handleInviteMember makes an invitation link with which a member sets
// a password.
func (s *server) handleInviteMember(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	l, err := s.svc.InviteMember(r.Context(), c, r.PathValue("id"), s.publicURL)
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusCreated, invitationResponse{Success: true, Data: l})
}
