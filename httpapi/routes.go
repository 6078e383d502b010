package httpapi

import "net/http"

// route is one entry of the HTTP surface: the pattern it is served on, and
// what the OpenAPI document says of it.
type route struct {
	pattern string // "METHOD /path/{param}"
	summary string
	auth    bool // needs a key
	req     any  // request structure: path, query and json-tagged fields; nil for none
	resp    any  // body of the success answer
	status  int  // status of the success answer
	handler http.Handler
}

// routes lists every route of the API, with its middleware. Routes that
// need a key refuse one in the URL as they read the key (see
// verify.KeyFrom); keyless does the same for those that need none.
func (s *server) routes() []route {
	return []route{
		{"POST /v1/api-keys", "Create an API key; its plaintext is in the answer once", true, createKeyRequest{}, createdKeyResponse{}, http.StatusCreated, s.managed(s.handleCreateKey)},
		{"GET /v1/api-keys", "List API keys", true, listKeysRequest{}, keyListResponse{}, http.StatusOK, s.managed(s.handleListKeys)},
		{"GET /v1/api-keys/{id}", "Show one API key", true, keyPath{}, keyResponse{}, http.StatusOK, s.managed(s.handleGetKey)},
		{"PATCH /v1/api-keys/{id}", "Change an API key's name, permissions, expiry, restrictions, metadata or enabled state", true, updateKeyRequest{}, keyResponse{}, http.StatusOK, s.managed(s.handleUpdateKey)},
		{"DELETE /v1/api-keys/{id}", "Revoke an API key at once", true, keyPath{}, messageResponse{}, http.StatusOK, s.managed(s.handleRevokeKey)},
		{"POST /v1/api-keys/{id}/rotate", "Issue a successor key; the old one keeps working for the grace period", true, rotateKeyRequest{}, rotatedKeyResponse{}, http.StatusCreated, s.managed(s.handleRotateKey)},

		{"POST /v1/tenants", "Create a tenant (root key)", true, createTenantRequest{}, tenantResponse{}, http.StatusCreated, s.managed(s.handleCreateTenant)},
		{"GET /v1/tenants", "List tenants", true, pageRequest{}, tenantListResponse{}, http.StatusOK, s.managed(s.handleListTenants)},
		{"GET /v1/tenants/{id}", "Show a tenant by id or slug", true, tenantPath{}, tenantResponse{}, http.StatusOK, s.managed(s.handleGetTenant)},
		{"POST /v1/tenants/{id}/suspend", "Suspend a tenant: its keys stop working (root key)", true, tenantPath{}, tenantResponse{}, http.StatusOK, s.managed(s.handleSuspendTenant)},
		{"POST /v1/tenants/{id}/resume", "Resume a suspended tenant (root key)", true, tenantPath{}, tenantResponse{}, http.StatusOK, s.managed(s.handleResumeTenant)},

		{"GET /v1/audit-log", "List management actions, newest first", true, auditRequest{}, auditListResponse{}, http.StatusOK, s.managed(s.handleAuditLog)},

		{"GET /v1/whoami", "Connectivity check: which key, tenant and permissions the request carries", true, nil, whoamiResponse{}, http.StatusOK, http.HandlerFunc(s.handleWhoami)},
		{"POST /v1/verify", "Verify a key for another service (needs keyward:verify)", true, verifyRequest{}, verifyResponse{}, http.StatusOK, http.HandlerFunc(s.handleVerify)},
		{"/v1/forward-auth", "Forward authentication for nginx auth_request, Traefik ForwardAuth and Envoy ext_authz (any method)", true, forwardAuthRequest{}, nil, http.StatusOK, http.HandlerFunc(s.handleForwardAuth)},

		{"GET /healthz", "Liveness: the process answers", false, nil, statusResponse{}, http.StatusOK, s.keyless(http.HandlerFunc(s.handleHealthz))},
		{"GET /readyz", "Readiness: the storage answers", false, nil, statusResponse{}, http.StatusOK, s.keyless(http.HandlerFunc(s.handleReadyz))},
		{"GET /openapi.json", "This document", false, nil, nil, http.StatusOK, s.keyless(http.HandlerFunc(s.handleOpenAPI))},
	}
}
