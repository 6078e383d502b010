package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// Versions of the npm tools that TestOpenAPITools runs, pinned so that a
// new release cannot turn the build red on its own.
const (
	redoclyCLI        = "@redocly/cli@2.77.0"
	openAPITypeScript = "openapi-typescript@7.13.0"
)

// openAPIDoc is the part of the OpenAPI document the tests read.
type openAPIDoc struct {
	Servers []struct {
		URL string `json:"url"`
	} `json:"servers"`
	Paths      map[string]map[string]openAPIOperation `json:"paths"`
	Components struct {
		Schemas         map[string]json.RawMessage `json:"schemas"`
		SecuritySchemes map[string]struct {
			Type   string `json:"type"`
			Scheme string `json:"scheme"`
			Name   string `json:"name"`
			In     string `json:"in"`
		} `json:"securitySchemes"`
	} `json:"components"`
}

type openAPIOperation struct {
	OperationID string                 `json:"operationId"`
	Security    *[]map[string][]string `json:"security"`
}

// TestOpenAPIDocument: the document the server serves names every
// operation (operationId, unique), names its shapes without Go package
// prefixes, says where the API is (servers), and declares per operation
// what it needs: a key in X-API-Key or as a bearer token, or nothing
// (security: []) for the public routes. /v1/forward-auth, served for every
// method, is documented for every method OpenAPI names.
func TestOpenAPIDocument(t *testing.T) {
	h := newHarness(t)
	var doc openAPIDoc
	if err := json.Unmarshal([]byte(h.must(200, "GET", "/openapi.json", "", nil).raw), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Servers) != 1 || doc.Servers[0].URL != "/" {
		t.Errorf("servers: %+v", doc.Servers)
	}
	if s := doc.Components.SecuritySchemes; s["apiKey"].Type != "apiKey" || s["apiKey"].Name != "X-API-Key" || s["apiKey"].In != "header" ||
		s["bearer"].Type != "http" || s["bearer"].Scheme != "bearer" {
		t.Errorf("security schemes: %+v", s)
	}

	ids := map[string]string{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			where := strings.ToUpper(method) + " " + path
			if op.OperationID == "" {
				t.Errorf("%s has no operationId", where)
			} else if other, dup := ids[op.OperationID]; dup {
				t.Errorf("%s and %s are both %s", other, where, op.OperationID)
			}
			ids[op.OperationID] = where
		}
	}
	for _, rt := range (&server{}).routes() {
		method, path, ok := strings.Cut(rt.pattern, " ")
		methods := []string{method}
		if !ok {
			path, methods = rt.pattern, []string{"get", "head", "post", "put", "patch", "delete", "options", "trace"}
		}
		for _, m := range methods {
			op, found := doc.Paths[path][strings.ToLower(m)]
			switch {
			case !found:
				t.Errorf("%s %s is not documented", m, path)
			case op.Security == nil:
				t.Errorf("%s %s declares no security", m, path)
			case needsKey(rt) && fmt.Sprint(*op.Security) != "[map[apiKey:[]] map[bearer:[]]]":
				t.Errorf("%s %s, which needs a key, declares security %v", m, path, *op.Security)
			case !needsKey(rt) && len(*op.Security) != 0:
				t.Errorf("%s %s, public, declares security %v, want []", m, path, *op.Security)
			}
		}
	}
	for _, public := range []string{"/healthz", "/readyz", "/openapi.json"} {
		if op := doc.Paths[public]["get"]; op.Security == nil || len(*op.Security) != 0 {
			t.Errorf("GET %s: security is not []", public)
		}
	}

	if _, ok := doc.Components.Schemas["Problem"]; !ok {
		t.Errorf("no schema is named Problem")
	}
	// The packages whose types the document shows, as the library's
	// default names begin with them (verify's, which would also catch
	// VerifyRequest, shows none).
	for name := range doc.Components.Schemas {
		for _, pkg := range []string{"Httpapi", "Keyward", "View", "Manage", "Apikey"} {
			rest, found := strings.CutPrefix(name, pkg)
			if r, _ := utf8.DecodeRuneInString(rest); found && unicode.IsUpper(r) {
				t.Errorf("the schema %s is named with its package %s", name, pkg)
			}
		}
	}
}

// TestOpenAPITools runs, on the document the server serves, Redocly's
// recommended lint, which must find no error and no warning, and
// openapi-typescript, which must generate types with an operation per
// operationId. They come from npm (npx): the test runs with
// KEYWARD_TEST_OPENAPI_TOOLS=1, as ./scripts/test runs it, and fails, never
// skips, when npx is missing then.
func TestOpenAPITools(t *testing.T) {
	if os.Getenv("KEYWARD_TEST_OPENAPI_TOOLS") == "" {
		t.Skip("set KEYWARD_TEST_OPENAPI_TOOLS=1 to run Redocly's lint and openapi-typescript from npm (./scripts/test does)")
	}
	npx, err := exec.LookPath("npx")
	if err != nil {
		t.Fatalf("KEYWARD_TEST_OPENAPI_TOOLS is set but npx is not installed (apt-get install nodejs npm): %v", err)
	}
	h := newHarness(t)
	dir := t.TempDir()
	doc := filepath.Join(dir, "openapi.json")
	if err := os.WriteFile(doc, []byte(h.must(200, "GET", "/openapi.json", "", nil).raw), 0o600); err != nil {
		t.Fatal(err)
	}
	config, err := filepath.Abs(filepath.Join("testdata", "redocly.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	// npxRun runs an npm tool and returns its standard output.
	npxRun := func(args ...string) []byte {
		t.Helper()
		cmd := exec.CommandContext(ctx, npx, append([]string{"--yes"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true", "NO_COLOR=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("npx %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
		}
		return out
	}

	var lint struct {
		Totals struct {
			Errors, Warnings int
		} `json:"totals"`
		Problems []struct {
			RuleID   string `json:"ruleId"`
			Severity string `json:"severity"`
			Message  string `json:"message"`
			Location []struct {
				Pointer string `json:"pointer"`
			} `json:"location"`
		} `json:"problems"`
	}
	if err := json.Unmarshal(npxRun(redoclyCLI, "lint", "--extends", "recommended", "--config", config, "--format", "json", doc), &lint); err != nil {
		t.Fatalf("redocly lint --format json: %v", err)
	}
	for _, p := range lint.Problems {
		t.Errorf("redocly lint: %s %s at %v: %s", p.Severity, p.RuleID, p.Location, p.Message)
	}
	if lint.Totals.Errors+lint.Totals.Warnings != 0 {
		t.Errorf("redocly lint: %d errors and %d warnings", lint.Totals.Errors, lint.Totals.Warnings)
	}

	types := filepath.Join(dir, "keyward.d.ts")
	npxRun(openAPITypeScript, doc, "-o", types)
	ts, err := os.ReadFile(types)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`operations["createKey"]`, `operations["verifyKey"]`, `operations["forwardAuthPost"]`, "Verification: {", "Problem: {"} {
		if !strings.Contains(string(ts), want) {
			t.Errorf("openapi-typescript's types lack %s", want)
		}
	}
}

// TestOpenAPIRefuses: a route without an operationId, or two shapes of one
// name, are an error, not a document that clients cannot tell apart.
func TestOpenAPIRefuses(t *testing.T) {
	if _, err := openAPI([]route{{pattern: "GET /v1/nothing", status: 200}}); err == nil || !strings.Contains(err.Error(), "operationId") {
		t.Errorf("a route without an operationId: %v", err)
	}
	type Key struct {
		Other string `json:"other"`
	}
	type otherKeyResponse struct {
		Data Key `json:"data"`
	}
	_, err := openAPI([]route{
		{pattern: "GET /v1/api-keys/{id}", req: keyPath{}, resp: keyResponse{}, status: 200},
		{pattern: "GET /v1/whoami", resp: otherKeyResponse{}, status: 200},
	})
	if err == nil || !strings.Contains(err.Error(), "both named Key") {
		t.Errorf("two shapes named Key: %v", err)
	}
}

// TestOpenAPIForwardAuthHeaders: the document names every identity header
// of forward-auth's 200, for every method.
func TestOpenAPIForwardAuthHeaders(t *testing.T) {
	h := newHarness(t)
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]struct {
				Headers map[string]any `json:"headers"`
			} `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal([]byte(h.must(200, "GET", "/openapi.json", "", nil).raw), &doc); err != nil {
		t.Fatal(err)
	}
	ops := doc.Paths["/v1/forward-auth"]
	if len(ops) == 0 {
		t.Fatal("no /v1/forward-auth")
	}
	for method, op := range ops {
		got := op.Responses["200"].Headers
		for _, name := range []string{"X-Keyward-Key-Id", "X-Keyward-Key-Name", "X-Keyward-Tenant", "X-Keyward-Tenant-Slug",
			"X-Keyward-Member-Id", "X-Keyward-Plan", "X-Keyward-Environment", "X-Keyward-Permissions"} {
			if _, ok := got[name]; !ok {
				t.Errorf("%s /v1/forward-auth: the 200 does not name %s: %v", method, name, got)
			}
		}
	}
}
