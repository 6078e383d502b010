package httpapi

import (
	"net/http"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/view"
)

type (
	planPath struct {
		Name string `path:"name" example:"pro"`
	}
	createPlanRequest struct{ manage.CreatePlanInput }
	updatePlanRequest struct {
		planPath
		manage.UpdatePlanInput
	}
	planResponse struct {
		Success bool          `json:"success"`
		Data    *keyward.Plan `json:"data"`
	}
	// planListResponse is view.List of plans, named for the OpenAPI
	// document; the list is whole, with no next page.
	planListResponse view.List[*keyward.Plan]

	permissionPath struct {
		Name string `path:"name" example:"contacts:write"`
	}
	createPermissionRequest struct{ manage.CreatePermissionInput }
	permissionResponse      struct {
		Success bool                `json:"success"`
		Data    *keyward.Permission `json:"data"`
	}
	// permissionListResponse is view.List of the catalogue's entries,
	// named for the OpenAPI document; the list is whole, with no next
	// page.
	permissionListResponse view.List[*keyward.Permission]
)

func (s *server) handleCreatePlan(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	var in manage.CreatePlanInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	p, err := s.svc.CreatePlan(r.Context(), c, in)
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusCreated, planResponse{Success: true, Data: p})
}

func (s *server) handleListPlans(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	ps, err := s.svc.Plans(r.Context(), c)
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, planListResponse(view.ListOf(ps, "")))
}

func (s *server) handleGetPlan(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	p, err := s.svc.Plan(r.Context(), c, r.PathValue("name"))
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, planResponse{Success: true, Data: p})
}

func (s *server) handleUpdatePlan(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	var in manage.UpdatePlanInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	p, err := s.svc.UpdatePlan(r.Context(), c, r.PathValue("name"), in)
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, planResponse{Success: true, Data: p})
}

func (s *server) handleAddPermission(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	var in manage.CreatePermissionInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	p, err := s.svc.AddPermission(r.Context(), c, in)
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusCreated, permissionResponse{Success: true, Data: p})
}

func (s *server) handleListPermissions(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	ps, err := s.svc.Permissions(r.Context(), c)
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, permissionListResponse(view.ListOf(ps, "")))
}

func (s *server) handleRemovePermission(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	name := r.PathValue("name")
	if err := s.svc.RemovePermission(r.Context(), c, name); err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, view.Message{Success: true, Message: view.PermissionRemoved(name)})
}
