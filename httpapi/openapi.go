package httpapi

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/swaggest/jsonschema-go"
	"github.com/swaggest/openapi-go"
	"github.com/swaggest/openapi-go/openapi31"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/manage"
)

// openAPI builds the OpenAPI 3.1 document from the route table and the
// request and answer types, so the document cannot drift from the code.
// Its shapes are named after their Go types without the package (Problem,
// Key, Verification…), for the clients generated from it; two types of one
// name are an error.
func openAPI(rts []route) ([]byte, error) {
	r := openapi31.NewReflector()
	var naming schemaNames
	r.JSONSchemaReflector().DefaultOptions = append(r.JSONSchemaReflector().DefaultOptions,
		jsonschema.InterceptDefName(naming.name))
	spec := r.SpecEns()
	spec.SetTitle("Keyward")
	spec.SetVersion(keyward.Version)
	spec.SetDescription("Issue, verify, rotate and revoke API keys. Errors are RFC 9457 application/problem+json with a `code`.")
	here := "The Keyward server that serves this document."
	spec.WithServers(openapi31.Server{URL: "/", Description: &here})
	spec.SetAPIKeySecurity("apiKey", "X-API-Key", openapi.InHeader, "A Keyward key in the X-API-Key header.")
	spec.SetHTTPBearerTokenSecurity("bearer", "", "A Keyward key as Authorization: Bearer <key>.")
	for _, rt := range rts {
		methods := []string{http.MethodGet}
		method, path, ok := strings.Cut(rt.pattern, " ")
		switch {
		case ok:
			methods[0] = method
		case rt.pattern == "/v1/forward-auth":
			// Forward-auth is served for every method: it is documented
			// for all that OpenAPI names.
			path, methods = rt.pattern, []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
				http.MethodPatch, http.MethodDelete, http.MethodOptions, http.MethodTrace}
		default:
			path = rt.pattern
		}
		for _, method := range methods {
			if err := addOperation(r, rt, method, path); err != nil {
				return nil, fmt.Errorf("%s %s: %w", method, path, err)
			}
		}
	}
	if naming.err != nil {
		return nil, naming.err
	}
	return spec.MarshalJSON()
}

// addOperation adds route rt's operation for method and path to r.
func addOperation(r *openapi31.Reflector, rt route, method, path string) error {
	id := operationID(method, path)
	if id == "" {
		return fmt.Errorf("the route has no operationId: name it in operationID")
	}
	oc, err := r.NewOperationContext(method, path)
	if err != nil {
		return err
	}
	oc.SetID(id)
	oc.SetSummary(rt.summary)
	if rt.req != nil {
		oc.AddReqStructure(rt.req)
	}
	if _, ok := rt.resp.(changeStream); ok {
		oc.AddRespStructure(rt.resp, openapi.WithHTTPStatus(rt.status), openapi.WithContentType("text/event-stream"))
	} else {
		oc.AddRespStructure(rt.resp, openapi.WithHTTPStatus(rt.status))
	}
	// Every route answers 400 to a request it cannot read, a route that
	// takes no key included: it refuses one in its URL.
	statuses := []int{http.StatusBadRequest, http.StatusInternalServerError}
	if needsKey(rt) {
		oc.AddSecurity("apiKey")
		oc.AddSecurity("bearer")
		// A key's requests may be refused 429: its rate limits, a client
		// address that guessed keys, or (GET /v1/changes) too many streams.
		statuses = append(statuses, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusTooManyRequests, http.StatusServiceUnavailable)
	} else {
		// A public operation declares that it needs nothing, rather than
		// leaving clients to guess: security: []. The library leaves an
		// empty list out, so it goes in through the operation's extra
		// fields, which are written beside its own.
		oc.(openapi31.OperationExposer).Operation().WithMapOfAnythingItem("security", []any{})
		if path == "/readyz" {
			statuses = append(statuses, http.StatusServiceUnavailable)
		}
	}
	for _, st := range statuses {
		oc.AddRespStructure(problem{}, openapi.WithHTTPStatus(st), openapi.WithContentType("application/problem+json"))
	}
	return r.AddOperation(oc)
}

// needsKey reports whether route rt needs a key, which its operation
// declares as its security: the same declaration that require enforces.
func needsKey(rt route) bool {
	return rt.need != manage.NoKey
}

// operationID is the operationId of the operation for method and path, the
// name a generated client gives its function; "" for a route it does not
// know.
func operationID(method, path string) string {
	switch method + " " + path {
	case "POST /v1/api-keys":
		return "createKey"
	case "GET /v1/api-keys":
		return "listKeys"
	case "GET /v1/api-keys/{id}":
		return "getKey"
	case "GET /v1/api-keys/{id}/usage":
		return "getKeyUsage"
	case "GET /v1/tenants/{id}/usage":
		return "getTenantUsage"
	case "PATCH /v1/api-keys/{id}":
		return "updateKey"
	case "DELETE /v1/api-keys/{id}":
		return "revokeKey"
	case "POST /v1/api-keys/{id}/rotate":
		return "rotateKey"
	case "POST /v1/tenants":
		return "createTenant"
	case "GET /v1/tenants":
		return "listTenants"
	case "GET /v1/tenants/{id}":
		return "getTenant"
	case "POST /v1/tenants/{id}/suspend":
		return "suspendTenant"
	case "POST /v1/tenants/{id}/resume":
		return "resumeTenant"
	case "PATCH /v1/tenants/{id}":
		return "updateTenant"
	case "POST /v1/members":
		return "createMember"
	case "GET /v1/members":
		return "listMembers"
	case "GET /v1/members/{id}":
		return "getMember"
	case "PATCH /v1/members/{id}":
		return "updateMember"
	case "POST /v1/members/{id}/invitations":
		return "inviteMember"
	case "POST /v1/portal-sessions":
		return "createPortalSession"
	case "DELETE /v1/members/{id}":
		return "removeMember"
	case "POST /v1/plans":
		return "createPlan"
	case "GET /v1/plans":
		return "listPlans"
	case "GET /v1/plans/{name}":
		return "getPlan"
	case "PATCH /v1/plans/{name}":
		return "updatePlan"
	case "POST /v1/permissions":
		return "addPermission"
	case "GET /v1/permissions":
		return "listPermissions"
	case "DELETE /v1/permissions/{name}":
		return "removePermission"
	case "GET /v1/audit-log":
		return "listAuditEntries"
	case "GET /v1/logs":
		return "listRequestLogs"
	case "GET /v1/usage":
		return "getUsage"
	case "POST /v1/webhooks":
		return "createWebhook"
	case "GET /v1/webhooks":
		return "listWebhooks"
	case "GET /v1/webhooks/{id}":
		return "getWebhook"
	case "PATCH /v1/webhooks/{id}":
		return "updateWebhook"
	case "DELETE /v1/webhooks/{id}":
		return "deleteWebhook"
	case "POST /v1/webhooks/{id}/rotate-secret":
		return "rotateWebhookSecret"
	case "GET /v1/webhooks/{id}/deliveries":
		return "listWebhookDeliveries"
	case "GET /v1/webhooks/{id}/deliveries/{delivery}":
		return "getWebhookDelivery"
	case "POST /v1/webhooks/{id}/deliveries/{delivery}/redeliver":
		return "redeliverWebhook"
	case "GET /v1/whoami":
		return "whoami"
	case "POST /v1/verify":
		return "verifyKey"
	case "GET /v1/changes":
		return "streamChanges"
	case "GET /healthz":
		return "healthz"
	case "GET /readyz":
		return "readyz"
	case "GET /metrics":
		return "getMetrics"
	case "GET /openapi.json":
		return "getOpenAPI"
	}
	if path == "/v1/forward-auth" {
		// One per method: forwardAuthGet, forwardAuthPost…
		return "forwardAuth" + method[:1] + strings.ToLower(method[1:])
	}
	return ""
}

// schemaNames names the document's shapes after their Go types, and
// remembers the first clash.
type schemaNames struct {
	types map[string]reflect.Type
	err   error
}

// name is the name of the shape of type t, whose default name (from the
// library) is def: t's own name, with a capital, without its package.
func (n *schemaNames) name(t reflect.Type, def string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	name := t.Name()
	if name == "" || strings.ContainsAny(name, "[.") {
		// An unnamed or generic type: the library's name, which the tests
		// hold to no package prefix.
		return def
	}
	first, size := utf8.DecodeRuneInString(name)
	name = string(unicode.ToUpper(first)) + name[size:]
	if n.types == nil {
		n.types = map[string]reflect.Type{}
	}
	if other, ok := n.types[name]; ok && other != t && n.err == nil {
		n.err = fmt.Errorf("openapi: %s and %s are both named %s: rename one", other, t, name)
	}
	n.types[name] = t
	return name
}
