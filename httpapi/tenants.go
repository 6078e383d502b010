package httpapi

import (
	"net/http"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/view"
)

type (
	tenantPath struct {
		ID string `path:"id" description:"tenant id or slug" example:"acme"`
	}
	createTenantRequest struct{ manage.CreateTenantInput }
	updateTenantRequest struct {
		tenantPath
		manage.UpdateTenantInput
	}
	tenantResponse struct {
		Success bool            `json:"success"`
		Data    *keyward.Tenant `json:"data"`
	}
	tenantUsageResponse struct {
		Success bool                `json:"success"`
		Data    *manage.TenantUsage `json:"data"`
	}
	// tenantListResponse is view.List of tenants, named for the OpenAPI
	// document.
	tenantListResponse view.List[*keyward.Tenant]
	auditRequest       struct {
		TenantID string `query:"tenant_id" description:"tenant id or slug; a tenant's key sees its own entries only"`
		Target   string `query:"target" description:"id of a key, member or tenant, or name of a plan or permission"`
		pageRequest
	}
	// auditListResponse is view.List of audit entries, named for the
	// OpenAPI document.
	auditListResponse view.List[*keyward.AuditEntry]
)

func (s *server) handleCreateTenant(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	var in manage.CreateTenantInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	t, err := s.svc.CreateTenant(r.Context(), c, in)
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusCreated, tenantResponse{Success: true, Data: t})
}

func (s *server) handleListTenants(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	p, err := readPage(r)
	if err != nil {
		return err
	}
	ts, next, err := s.svc.Tenants(r.Context(), c, p)
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, tenantListResponse(view.ListOf(ts, next)))
}

func (s *server) handleGetTenant(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	t, err := s.svc.Tenant(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, tenantResponse{Success: true, Data: t})
}

func (s *server) handleTenantUsage(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	u, err := s.svc.TenantUsage(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, tenantUsageResponse{Success: true, Data: u})
}

func (s *server) handleUpdateTenant(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	var in manage.UpdateTenantInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	t, err := s.svc.UpdateTenant(r.Context(), c, r.PathValue("id"), in)
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, tenantResponse{Success: true, Data: t})
}

func (s *server) handleSuspendTenant(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	t, err := s.svc.SuspendTenant(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, tenantResponse{Success: true, Data: t})
}

func (s *server) handleResumeTenant(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	t, err := s.svc.ResumeTenant(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, tenantResponse{Success: true, Data: t})
}

func (s *server) handleAuditLog(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	p, err := readPage(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	es, next, err := s.svc.AuditLog(r.Context(), c, keyward.AuditFilter{TenantID: q.Get("tenant_id"), Target: q.Get("target")}, p)
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, auditListResponse(view.ListOf(es, next)))
}
