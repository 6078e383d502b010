package httpapi

import (
	"net/http"

	"github.com/keyward/keyward/manage"
)

// route is one entry of the HTTP surface: the pattern it is served on, what
// it requires of the request, and what the OpenAPI document says of it.
type route struct {
	pattern string // "METHOD /path/{param}"
	summary string
	// need is what the request's key must be admitted as (manage.Authorize):
	// require enforces it before the handler runs, and the OpenAPI document
	// publishes it as the route's security.
	need    manage.Requirement
	req     any // request structure: path, query and json-tagged fields; nil for none
	resp    any // body of the success answer
	status  int // status of the success answer
	handler http.Handler
}

// routes lists every route of the API, with what each requires and its
// middleware; NewServer puts require in front of every handler. Routes that
// need a key refuse one in the URL as they read the key (see
// verify.KeyFrom); keyless does the same for those that need none.
// Suspending and resuming a tenant admit a manager, whom manage then
// answers 404 for another tenant's id and refuses its own: only a root key
// may (manage.Service.SuspendTenant).
func (s *server) routes() []route {
	return []route{
		{"POST /v1/api-keys", "Create an API key; its plaintext is in the answer once", manage.Manager, createKeyRequest{}, createdKeyResponse{}, http.StatusCreated, s.managed(s.handleCreateKey)},
		{"GET /v1/api-keys", "List API keys", manage.Manager, listKeysRequest{}, keyListResponse{}, http.StatusOK, s.managed(s.handleListKeys)},
		{"GET /v1/api-keys/{id}", "Show one API key", manage.Manager, keyPath{}, keyResponse{}, http.StatusOK, s.managed(s.handleGetKey)},
		{"GET /v1/api-keys/{id}/usage", "Show what limits an API key now: its rate limits, its quota and how much of it this period used, its tenant's, and its credits", manage.Manager, keyPath{}, keyUsageResponse{}, http.StatusOK, s.managed(s.handleKeyUsage)},
		{"PATCH /v1/api-keys/{id}", "Change an API key's name, permissions, expiry, restrictions, metadata or enabled state, or (root key) its limits and credits, or clear its suspicion of sharing", manage.Manager, updateKeyRequest{}, keyResponse{}, http.StatusOK, s.managed(s.handleUpdateKey)},
		{"DELETE /v1/api-keys/{id}", "Revoke an API key at once", manage.Manager, keyPath{}, messageResponse{}, http.StatusOK, s.managed(s.handleRevokeKey)},
		{"POST /v1/api-keys/{id}/rotate", "Issue a successor key; the old one keeps working for the grace period", manage.Manager, rotateKeyRequest{}, rotatedKeyResponse{}, http.StatusCreated, s.managed(s.handleRotateKey)},

		{"POST /v1/tenants", "Create a tenant (root key)", manage.Root, createTenantRequest{}, tenantResponse{}, http.StatusCreated, s.managed(s.handleCreateTenant)},
		{"GET /v1/tenants", "List tenants", manage.Manager, pageRequest{}, tenantListResponse{}, http.StatusOK, s.managed(s.handleListTenants)},
		{"GET /v1/tenants/{id}", "Show a tenant by id or slug", manage.Manager, tenantPath{}, tenantResponse{}, http.StatusOK, s.managed(s.handleGetTenant)},
		{"GET /v1/tenants/{id}/usage", "Show what limits all of a tenant's keys together now: rate limits, and the quota and how much of it this period used", manage.Manager, tenantPath{}, tenantUsageResponse{}, http.StatusOK, s.managed(s.handleTenantUsage)},
		{"PATCH /v1/tenants/{id}", "Move a tenant to another plan, or set its limits and time zone (root key)", manage.Root, updateTenantRequest{}, tenantResponse{}, http.StatusOK, s.managed(s.handleUpdateTenant)},
		{"POST /v1/tenants/{id}/suspend", "Suspend a tenant: its keys stop working (root key)", manage.Manager, tenantPath{}, tenantResponse{}, http.StatusOK, s.managed(s.handleSuspendTenant)},
		{"POST /v1/tenants/{id}/resume", "Resume a suspended tenant (root key)", manage.Manager, tenantPath{}, tenantResponse{}, http.StatusOK, s.managed(s.handleResumeTenant)},

		{"POST /v1/members", "Add a member to a tenant (admin or owner)", manage.Manager, createMemberRequest{}, memberResponse{}, http.StatusCreated, s.managed(s.handleCreateMember)},
		{"GET /v1/members", "List a tenant's members, oldest first", manage.Manager, listMembersRequest{}, memberListResponse{}, http.StatusOK, s.managed(s.handleListMembers)},
		{"GET /v1/members/{id}", "Show a member", manage.Manager, memberPath{}, memberResponse{}, http.StatusOK, s.managed(s.handleGetMember)},
		{"PATCH /v1/members/{id}", "Change a member's email, name, role, permissions, external id or status (admin or owner)", manage.Manager, updateMemberRequest{}, memberResponse{}, http.StatusOK, s.managed(s.handleUpdateMember)},
		{"POST /v1/members/{id}/invitations", "Make a one-time link (valid 7 days) with which a member sets the password they sign in to the dashboard with; shown once (admin or owner)", manage.Manager, memberPath{}, invitationResponse{}, http.StatusCreated, s.managed(s.handleInviteMember)},
		{"POST /v1/portal-sessions", "Sign one of your customers in to the dashboard: a one-time link, valid 5 minutes, for the member with your external id (created on first use if you say how), to redirect them to", manage.Manager, portalSessionRequest{}, portalSessionResponse{}, http.StatusCreated, s.managed(s.handleCreatePortalSession)},
		{"DELETE /v1/members/{id}", "Remove a member, and revoke their keys or move them to another member (admin or owner)", manage.Manager, removeMemberRequest{}, removalResponse{}, http.StatusOK, s.managed(s.handleRemoveMember)},

		{"POST /v1/plans", "Create a plan (root key)", manage.Root, createPlanRequest{}, planResponse{}, http.StatusCreated, s.managed(s.handleCreatePlan)},
		{"GET /v1/plans", "List the plans, by name (root key)", manage.Root, nil, planListResponse{}, http.StatusOK, s.managed(s.handleListPlans)},
		{"GET /v1/plans/{name}", "Show a plan (root key)", manage.Root, planPath{}, planResponse{}, http.StatusOK, s.managed(s.handleGetPlan)},
		{"PATCH /v1/plans/{name}", "Change a plan's capabilities, permissions, API access or key limit (root key)", manage.Root, updatePlanRequest{}, planResponse{}, http.StatusOK, s.managed(s.handleUpdatePlan)},

		{"POST /v1/permissions", "Add a permission to the catalogue (root key)", manage.Root, createPermissionRequest{}, permissionResponse{}, http.StatusCreated, s.managed(s.handleAddPermission)},
		{"GET /v1/permissions", "List the permission catalogue, by name (root key)", manage.Root, nil, permissionListResponse{}, http.StatusOK, s.managed(s.handleListPermissions)},
		{"DELETE /v1/permissions/{name}", "Remove a permission from the catalogue; one in use is a 409 that says where (root key)", manage.Root, permissionPath{}, messageResponse{}, http.StatusOK, s.managed(s.handleRemovePermission)},

		{"GET /v1/audit-log", "List management actions, newest first", manage.Manager, auditRequest{}, auditListResponse{}, http.StatusOK, s.managed(s.handleAuditLog)},
		{"GET /v1/logs", "List the request log: every verification of a key on every surface, newest first; find a request by its X-Request-Id", manage.Manager, logsRequest{}, logListResponse{}, http.StatusOK, s.managed(s.handleLogs)},
		{"GET /v1/usage", "Count the requests of a key or a tenant per hour or per day, accepted and refused by code, every bucket of the range for a chart", manage.Manager, usageRequest{}, usageResponse{}, http.StatusOK, s.managed(s.handleUsage)},

		{"POST /v1/webhooks", "Register a webhook endpoint: a tenant's for its own events, or (root key, no tenant) the operator's for every tenant's; its signing secret is shown once", manage.Manager, createWebhookRequest{}, webhookResponse{}, http.StatusCreated, s.managed(s.handleCreateWebhook)},
		{"GET /v1/webhooks", "List webhook endpoints", manage.Manager, listWebhooksRequest{}, webhookListResponse{}, http.StatusOK, s.managed(s.handleListWebhooks)},
		{"GET /v1/webhooks/{id}", "Show a webhook endpoint", manage.Manager, webhookPath{}, webhookResponse{}, http.StatusOK, s.managed(s.handleGetWebhook)},
		{"PATCH /v1/webhooks/{id}", "Change a webhook endpoint's URL, description, events, or turn it off", manage.Manager, updateWebhookRequest{}, webhookResponse{}, http.StatusOK, s.managed(s.handleUpdateWebhook)},
		{"DELETE /v1/webhooks/{id}", "Delete a webhook endpoint and its deliveries", manage.Manager, webhookPath{}, messageResponse{}, http.StatusOK, s.managed(s.handleDeleteWebhook)},
		{"POST /v1/webhooks/{id}/rotate-secret", "Give a webhook endpoint a new signing secret, shown once; the old one also signs for the overlap", manage.Manager, rotateSecretRequest{}, webhookResponse{}, http.StatusOK, s.managed(s.handleRotateWebhookSecret)},
		{"GET /v1/webhooks/{id}/deliveries", "The delivery log of a webhook endpoint, newest first", manage.Manager, listDeliveriesRequest{}, deliveryListResponse{}, http.StatusOK, s.managed(s.handleListDeliveries)},
		{"GET /v1/webhooks/{id}/deliveries/{delivery}", "One delivery, with its attempts", manage.Manager, deliveryPath{}, deliveryResponse{}, http.StatusOK, s.managed(s.handleGetDelivery)},
		{"POST /v1/webhooks/{id}/deliveries/{delivery}/redeliver", "Deliver again, at once, with a new schedule of retries", manage.Manager, deliveryPath{}, deliveryResponse{}, http.StatusAccepted, s.managed(s.handleRedeliver)},

		{"GET /v1/whoami", "Connectivity check: which key, tenant, member and plan the request carries, and what it may use now", manage.AnyKey, nil, whoamiResponse{}, http.StatusOK, http.HandlerFunc(s.handleWhoami)},
		{"POST /v1/verify", "Verify a key for another service (needs keyward:verify)", manage.Verifier, verifyRequest{}, verifyResponse{}, http.StatusOK, http.HandlerFunc(s.handleVerify)},
		{"GET /v1/changes", "Stream the change feed to remote verifiers as server-sent events: which keys, tenants, members and plans changed, never what they hold (needs keyward:verify)", manage.Verifier, changesRequest{}, changeStream{}, http.StatusOK, http.HandlerFunc(s.handleChanges)},
		{forwardAuthPath, "Forward authentication for nginx auth_request, Traefik ForwardAuth and Envoy ext_authz (any method)", manage.AnyKey, forwardAuthRequest{}, forwardAuthIdentity{}, http.StatusOK, checksOwnKey(s.handleForwardAuth)},

		{"GET /healthz", "Liveness: the process answers", manage.NoKey, nil, statusResponse{}, http.StatusOK, http.HandlerFunc(s.handleHealthz)},
		{"GET /readyz", "Readiness: the storage answers", manage.NoKey, nil, statusResponse{}, http.StatusOK, http.HandlerFunc(s.handleReadyz)},
		{"GET /openapi.json", "This document", manage.NoKey, nil, nil, http.StatusOK, http.HandlerFunc(s.handleOpenAPI)},
		{"GET /metrics", "Prometheus metrics, in the text format (needs keyward:metrics; serve --metrics-addr serves them without a key on a listener of their own)", manage.Monitor, nil, nil, http.StatusOK, http.HandlerFunc(s.handleMetrics)},
	}
}
