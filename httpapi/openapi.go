package httpapi

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/swaggest/openapi-go"
	"github.com/swaggest/openapi-go/openapi31"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/manage"
)

// openAPI builds the OpenAPI 3.1 document from the route table and the
// request and answer types, so the document cannot drift from the code.
func openAPI(rts []route) ([]byte, error) {
	r := openapi31.NewReflector()
	spec := r.SpecEns()
	spec.SetTitle("Keyward")
	spec.SetVersion(keyward.Version)
	spec.SetDescription("Issue, verify, rotate and revoke API keys. Errors are RFC 9457 application/problem+json with a `code`.")
	spec.SetAPIKeySecurity("apiKey", "X-API-Key", openapi.InHeader, "A Keyward key in the X-API-Key header.")
	spec.SetHTTPBearerTokenSecurity("bearer", "", "A Keyward key as Authorization: Bearer <key>.")
	for _, rt := range rts {
		method, path, ok := strings.Cut(rt.pattern, " ")
		if !ok {
			method, path = http.MethodGet, rt.pattern
		}
		oc, err := r.NewOperationContext(method, path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rt.pattern, err)
		}
		oc.SetSummary(rt.summary)
		if rt.req != nil {
			oc.AddReqStructure(rt.req)
		}
		if rt.resp != nil {
			oc.AddRespStructure(rt.resp, openapi.WithHTTPStatus(rt.status))
		} else {
			oc.AddRespStructure(nil, openapi.WithHTTPStatus(rt.status))
		}
		statuses := []int{http.StatusInternalServerError}
		if rt.need != manage.NoKey {
			oc.AddSecurity("apiKey")
			oc.AddSecurity("bearer")
			statuses = append(statuses, http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusServiceUnavailable)
		}
		for _, st := range statuses {
			oc.AddRespStructure(problem{}, openapi.WithHTTPStatus(st), openapi.WithContentType("application/problem+json"))
		}
		if err := r.AddOperation(oc); err != nil {
			return nil, fmt.Errorf("%s: %w", rt.pattern, err)
		}
	}
	return spec.MarshalJSON()
}
