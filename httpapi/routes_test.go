package httpapi

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/manage"
)

// TestRouteRequirements calls every route of routes() with keys that fall
// short of the requirement the route declares, and expects manage's
// refusal for that requirement before the handler runs (a body that is not
// even JSON changes nothing), and with the keys that meet it, which get
// past. What routes.go declares is thus what is enforced.
func TestRouteRequirements(t *testing.T) {
	h := newHarness(t)
	h.tenant("acme")
	plain, _ := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "plain", "permissions": []string{"contacts:read"}})
	manager, _ := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "manager", "permissions": []string{"keys:manage", "contacts:read"}})
	verifier, _ := h.key(h.root, map[string]any{"tenant_id": keyward.SystemTenantID, "name": "verifier", "permissions": []string{"keyward:verify"}})
	monitor, _ := h.key(h.root, map[string]any{"tenant_id": keyward.SystemTenantID, "name": "monitor", "permissions": []string{keyward.PermMetrics}})
	keys := map[string]string{"plain": plain, "manager": manager, "verifier": verifier, "monitor": monitor, "root": h.root}
	// The keys that meet each requirement; the others fall short of it.
	meet := map[manage.Requirement][]string{
		manage.AnyKey:   {"plain", "manager", "verifier", "monitor", "root"},
		manage.Manager:  {"manager", "root"},
		manage.Verifier: {"verifier", "root"},
		manage.Monitor:  {"monitor", "root"},
		manage.Root:     {"root"},
	}
	for _, rt := range (&server{}).routes() {
		method, path := methodPath(rt)
		path = strings.NewReplacer("{id}", "doesnotexist", "{name}", "doesnotexist", "{delivery}", "1").Replace(path)
		t.Run(rt.pattern, func(t *testing.T) {
			if rt.need == manage.NoKey {
				h.must(200, method, path, "", nil)
				return
			}
			meets, known := meet[rt.need]
			if !known {
				t.Fatalf("the route requires %s, which this test does not know", rt.need)
			}
			problemOf(t, h.call(method, path, "", "{not json"), 401, keyward.CodeMissingAPIKey)
			var refusal string
			if err := manage.Authorize(manage.Caller{}, rt.need); err != nil {
				refusal = err.(*keyward.Error).Message
			}
			for name, key := range keys {
				a := h.call(method, path, key, "{not json")
				detail, _ := a.body["detail"].(string)
				if slices.Contains(meets, name) {
					if a.status == 403 && detail == refusal {
						t.Errorf("the %s key, which meets %s, is refused: %s", name, rt.need, a.raw)
					}
					continue
				}
				if problemOf(t, a, 403, keyward.CodeInsufficientPermissions) != refusal {
					t.Errorf("the %s key, short of %s: detail %q, want %q", name, rt.need, detail, refusal)
				}
			}
		})
	}
}

// TestOpenAPISecurity: the OpenAPI document asks for a key on the routes
// that require one, and on no other (an operation's own security, or the
// document's when it has none).
func TestOpenAPISecurity(t *testing.T) {
	h := newHarness(t)
	type security = *[]map[string][]string
	var doc struct {
		Security security `json:"security"`
		Paths    map[string]map[string]struct {
			Security security `json:"security"`
		} `json:"paths"`
	}
	if err := json.Unmarshal([]byte(h.must(200, "GET", "/openapi.json", "", nil).raw), &doc); err != nil {
		t.Fatal(err)
	}
	for _, rt := range (&server{}).routes() {
		method, path := methodPath(rt)
		op, found := doc.Paths[path][strings.ToLower(method)]
		if !found {
			t.Errorf("%s: not in the document", rt.pattern)
			continue
		}
		sec := op.Security
		if sec == nil {
			sec = doc.Security
		}
		if secured := sec != nil && len(*sec) > 0; secured != (rt.need != manage.NoKey) {
			t.Errorf("%s requires %s; the document asks for a key: %v", rt.pattern, rt.need, secured)
		}
	}
}

// methodPath splits a route's pattern into its method (GET for a pattern
// without one, which serves every method) and its path.
func methodPath(rt route) (method, path string) {
	method, path, ok := strings.Cut(rt.pattern, " ")
	if !ok {
		return http.MethodGet, rt.pattern
	}
	return method, path
}
