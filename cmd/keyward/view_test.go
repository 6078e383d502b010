package main

import (
	"encoding/json"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

// TestOneShape: the command line's --json output and the HTTP API's
// answer are the same JSON, field for field, for the same key, tenant or
// verification: keyward verify --json and POST /v1/verify (but the API's
// request_id), keys show --json and the data of GET /v1/api-keys/{id},
// keys list --json and GET /v1/api-keys, tenants show --json and the data
// of GET /v1/tenants/{id}, tenants list --json and GET /v1/tenants, audit
// --json and GET /v1/audit-log, and so for members, plans and the
// permission catalogue.
func TestOneShape(t *testing.T) {
	db := dbFile(t)
	s := startServer(t, db)
	s.waitHealthy(t)
	root := strings.TrimSuffix(s.stdout.String(), "\n")

	ok(t, db, "tenants", "create", "acme")
	valid, validID := newKey(t, db, "--name", "valid", "--permissions", "reports:read,contacts:write", "--expires", "90d", "--metadata", "owner=billing")
	bare, _ := newKey(t, db, "--name", "bare")
	revoked, revokedID := newKey(t, db, "--name", "revoked")
	ok(t, db, "keys", "revoke", revokedID)
	ipOnly, _ := newKey(t, db, "--name", "ip-only", "--allow-ip", "203.0.113.0/24")
	owner := decodeJSON[keyward.Member](t, ok(t, db, "members", "add", "--tenant", "acme", "--email", "ada@example.com", "--name", "Ada",
		"--role", "owner", "--permissions", "reports:read", "--json").stdout)
	memberKey, _ := newKey(t, db, "--name", "member's", "--member", owner.ID, "--permissions", "reports:read")
	ok(t, db, "plans", "create", "pro", "--capabilities", "m2m_api", "--max-keys", "5")
	ok(t, db, "permissions", "add", "reports:read", "--description", "Read reports")

	// apiJSON is the body of an API answer, or its data, as generic JSON.
	apiJSON := func(method, path string, body any, field string) any {
		t.Helper()
		a := s.call(t, method, path, root, body)
		if a.status != http.StatusOK {
			t.Fatalf("%s %s: %d %s", method, path, a.status, a.body)
		}
		v := decodeJSON[map[string]any](t, string(a.body))
		if field != "" {
			return v[field]
		}
		return v
	}
	same := func(what string, cliOut, apiOut any) {
		t.Helper()
		if !reflect.DeepEqual(cliOut, apiOut) {
			c, _ := json.Marshal(cliOut)
			a, _ := json.Marshal(apiOut)
			t.Errorf("%s differ:\ncommand line: %s\nAPI:          %s", what, c, a)
		}
	}

	t.Run("keys and tenants", func(t *testing.T) {
		same("keys show --json and GET /v1/api-keys/{id}",
			decodeJSON[any](t, ok(t, db, "keys", "show", validID, "--json").stdout),
			apiJSON("GET", "/v1/api-keys/"+validID, nil, "data"))
		same("keys list --json and GET /v1/api-keys",
			decodeJSON[any](t, ok(t, db, "keys", "list", "--tenant", "acme", "--json").stdout),
			apiJSON("GET", "/v1/api-keys?tenant_id=acme", nil, ""))
		same("tenants show --json and GET /v1/tenants/{id}",
			decodeJSON[any](t, ok(t, db, "tenants", "show", "acme", "--json").stdout),
			apiJSON("GET", "/v1/tenants/acme", nil, "data"))
		same("tenants list --json and GET /v1/tenants",
			decodeJSON[any](t, ok(t, db, "tenants", "list", "--json").stdout),
			apiJSON("GET", "/v1/tenants", nil, ""))
		same("audit --json and GET /v1/audit-log",
			decodeJSON[any](t, ok(t, db, "audit", "--tenant", "acme", "--json").stdout),
			apiJSON("GET", "/v1/audit-log?tenant_id=acme", nil, ""))
	})

	t.Run("members, plans and permissions", func(t *testing.T) {
		same("members show --json and GET /v1/members/{id}",
			decodeJSON[any](t, ok(t, db, "members", "show", owner.ID, "--json").stdout),
			apiJSON("GET", "/v1/members/"+owner.ID, nil, "data"))
		same("members list --json and GET /v1/members",
			decodeJSON[any](t, ok(t, db, "members", "list", "--tenant", "acme", "--json").stdout),
			apiJSON("GET", "/v1/members?tenant_id=acme", nil, ""))
		same("plans show --json and GET /v1/plans/{name}",
			decodeJSON[any](t, ok(t, db, "plans", "show", "pro", "--json").stdout),
			apiJSON("GET", "/v1/plans/pro", nil, "data"))
		same("plans list --json and GET /v1/plans",
			decodeJSON[any](t, ok(t, db, "plans", "list", "--json").stdout),
			apiJSON("GET", "/v1/plans", nil, ""))
		same("permissions list --json and GET /v1/permissions",
			decodeJSON[any](t, ok(t, db, "permissions", "list", "--json").stdout),
			apiJSON("GET", "/v1/permissions", nil, ""))
	})

	for _, tc := range []struct {
		name  string
		key   string
		perms []string
		ip    string
		code  keyward.Code
	}{
		{"valid", valid, []string{"reports:read"}, "", ""},
		{"of a member", memberKey, []string{"reports:read"}, "", ""},
		{"without permissions", bare, nil, "", ""},
		{"from an allowed address", ipOnly, nil, "203.0.113.9", ""},
		{"ip not allowed", ipOnly, nil, "198.51.100.1", keyward.CodeIPNotAllowed},
		{"insufficient permissions", valid, []string{"admin"}, "", keyward.CodeInsufficientPermissions},
		{"revoked", revoked, nil, "", keyward.CodeRevokedAPIKey},
		{"malformed", "sk_live_not-a-key", nil, "", keyward.CodeMalformedAPIKey},
	} {
		t.Run("verify "+tc.name, func(t *testing.T) {
			args := []string{"verify", "--json", tc.key}
			for _, p := range tc.perms {
				args = append(args, "--permission", p)
			}
			if tc.ip != "" {
				args = append(args, "--ip", tc.ip)
			}
			cliOut := decodeJSON[map[string]any](t, cli(t, db, args...).stdout)
			apiOut := apiJSON("POST", "/v1/verify", map[string]any{"key": tc.key, "permissions": tc.perms, "ip": tc.ip}, "").(map[string]any)
			if id, _ := apiOut["request_id"].(string); !strings.HasPrefix(id, "req_") {
				t.Errorf("POST /v1/verify: request_id %v", apiOut["request_id"])
			}
			if _, has := cliOut["request_id"]; has {
				t.Errorf("verify --json has a request_id: %v", cliOut)
			}
			delete(apiOut, "request_id")
			same("verify --json and POST /v1/verify", cliOut, apiOut)
			if cliOut["code"] != nilIfEmpty(string(tc.code)) {
				t.Errorf("verify --json: code %v, want %q", cliOut["code"], tc.code)
			}
			// Every field of the answer is there once the key is known to
			// authenticate.
			want := []string{"detail", "code", "environment", "key_id", "name", "permissions", "plan", "ratelimit", "status", "tenant_id", "tenant_slug", "valid", "withheld"}
			switch {
			case tc.code == "":
				want = slices.DeleteFunc(want, func(f string) bool { return f == "detail" || f == "code" })
			case tc.code.Status() == http.StatusUnauthorized:
				want = []string{"code", "detail", "ratelimit", "status", "valid"}
			}
			if tc.key == valid {
				want = append(want, "expires_at")
			}
			if tc.key == memberKey {
				want = append(want, "member")
			}
			if got := slices.Sorted(maps.Keys(cliOut)); !reflect.DeepEqual(got, slices.Sorted(slices.Values(want))) {
				t.Errorf("verify --json has the fields %v, want %v", got, slices.Sorted(slices.Values(want)))
			}
		})
	}
}

// nilIfEmpty is s as a decoded JSON field with omitempty: nil when empty.
func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
