package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/view"
)

func TestVerify(t *testing.T) {
	db := newDB(t)
	ok(t, db, "tenants", "create", "acme")
	ok(t, db, "tenants", "create", "sleepy")
	valid, validID := newKey(t, db, "--name", "valid", "--permissions", "reports:read,contacts:write")
	revoked, revokedID := newKey(t, db, "--name", "revoked")
	ok(t, db, "keys", "revoke", revokedID)
	expired, expiredID := newKey(t, db, "--name", "expired")
	ok(t, db, "keys", "rotate", expiredID, "--grace", "0")
	ipOnly, _ := newKey(t, db, "--name", "ip-only", "--allow-ip", "203.0.113.0/24")
	disabled, disabledID := newKey(t, db, "--name", "disabled")
	ok(t, db, "keys", "update", disabledID, "--disable")
	suspended := decodeJSON[createdKey](t, ok(t, db, "keys", "create", "--tenant", "sleepy", "--name", "s", "--json").stdout).Plaintext
	ok(t, db, "tenants", "suspend", "sleepy")
	format, err := apikey.NewFormat(apikey.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	unknown, err := format.Generate(keyward.Live)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		args []string
		code keyward.Code // "" for valid
	}{
		{"valid", []string{valid}, ""},
		{"valid with permissions", []string{valid, "--permission", "reports:read", "--permission", "contacts:write"}, ""},
		{"valid from an allowed address", []string{ipOnly, "--ip", "203.0.113.9"}, ""},
		{"malformed", []string{"sk_live_not-a-key"}, keyward.CodeMalformedAPIKey},
		{"bad checksum", []string{valid[:len(valid)-1] + flip(valid[len(valid)-1])}, keyward.CodeMalformedAPIKey},
		{"quoted", []string{`"` + valid + `"`}, keyward.CodeMalformedAPIKey},
		{"invalid", []string{unknown}, keyward.CodeInvalidAPIKey},
		{"revoked", []string{revoked}, keyward.CodeRevokedAPIKey},
		{"expired", []string{expired}, keyward.CodeExpiredAPIKey},
		{"suspended", []string{suspended}, keyward.CodeAccountSuspended},
		{"disabled", []string{disabled}, keyward.CodeKeyDisabled},
		{"ip not allowed", []string{ipOnly, "--ip", "198.51.100.1"}, keyward.CodeIPNotAllowed},
		{"ip unknown", []string{ipOnly}, keyward.CodeIPNotAllowed},
		{"insufficient permissions", []string{valid, "--permission", "reports:read", "--permission", "admin"}, keyward.CodeInsufficientPermissions},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := cli(t, db, append([]string{"verify"}, tc.args...)...)
			if tc.code == "" {
				if o.err != nil || !strings.HasPrefix(o.stdout, "valid key_") {
					t.Fatalf("err %v, stdout %q", o.err, o.stdout)
				}
			} else {
				if o.code() != 1 || o.message() != "" {
					t.Fatalf("exit status %d, message %q; want 1 and none", o.code(), o.message())
				}
				if want := "refused: " + string(tc.code) + ": "; !strings.HasPrefix(o.stdout, want) || len(o.stdout) < len(want)+10 {
					t.Fatalf("stdout %q, want %q and a detail", o.stdout, want)
				}
			}
			for _, k := range []string{valid, revoked, expired, ipOnly, disabled, suspended, unknown} {
				if strings.Contains(o.stdout+o.stderr, k) {
					t.Error("verify printed a plaintext key")
				}
			}

			j := cli(t, db, append([]string{"verify", "--json"}, tc.args...)...)
			v := decodeJSON[view.Verification](t, j.stdout)
			if v.Valid != (tc.code == "") || v.Code != tc.code || j.code() != o.code() {
				t.Errorf("--json: %+v, exit status %d", v, j.code())
			}
			if tc.code != "" && (v.Status != tc.code.Status() || v.Detail == "") {
				t.Errorf("--json: %+v", v)
			}
		})
	}

	t.Run("valid output", func(t *testing.T) {
		o := ok(t, db, "verify", valid)
		for _, want := range []string{validID, "acme", "env live", "reports:read"} {
			if !strings.Contains(o.stdout, want) {
				t.Errorf("verify printed %q, lacks %q", o.stdout, want)
			}
		}
		v := decodeJSON[view.Verification](t, ok(t, db, "verify", "--json", valid).stdout)
		if v.KeyID != validID || v.Environment != keyward.Live || len(v.Permissions) != 2 || v.Status != 200 {
			t.Errorf("verify --json: %+v", v)
		}
	})

	t.Run("key from stdin", func(t *testing.T) {
		o := cliIn(t, db, valid+"\n", "verify", "-")
		if o.err != nil || !strings.HasPrefix(o.stdout, "valid "+validID) {
			t.Errorf("verify - printed %q, err %v", o.stdout, o.err)
		}
		o = cliIn(t, db, "", "verify", "-")
		if o.code() != 2 {
			t.Errorf("verify - with nothing on stdin: exit status %d, err %v", o.code(), o.err)
		}
	})

	t.Run("records the use", func(t *testing.T) {
		ok(t, db, "verify", ipOnly, "--ip", "203.0.113.77")
		var k keyward.Key
		for _, row := range decodeList[keyward.Key](t, ok(t, db, "keys", "list", "--tenant", "acme", "--json").stdout).Data {
			if row.Name == "ip-only" {
				k = row
			}
		}
		if k.LastUsedAt == nil || k.LastUsedIP != "203.0.113.77" {
			t.Errorf("after a valid check, last used %v from %q", k.LastUsedAt, k.LastUsedIP)
		}
	})
}

// flip returns another base62 character than c.
func flip(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}

// TestVerifyRoutes: keyward verify checks a key against --method, --path,
// --referrer and a --routes file, as forward-auth with serve --routes.
func TestVerifyRoutes(t *testing.T) {
	db := newDB(t)
	ok(t, db, "tenants", "create", "acme")
	reader, _ := newKey(t, db, "--name", "r", "--permissions", "contacts:read")
	routes := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(routes, []byte("default: deny\nroutes:\n  - match: GET /health\n    public: true\n  - match: GET /v1/contacts/**\n    permissions: [contacts:read]\n  - match: POST /v1/contacts\n    permissions: [contacts:write]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	v := decodeJSON[view.Verification](t, ok(t, db, "--json", "verify", reader, "--routes", routes, "--path", "/v1/contacts/1").stdout)
	if !v.Valid || v.Route != "GET /v1/contacts/**" {
		t.Errorf("a permissioned route: %+v", v)
	}
	if o := fails(t, db, 1, []string{"verify", reader, "--routes", routes, "--method", "POST", "--path", "/v1/contacts"}); !strings.Contains(o.stdout, "insufficient_permissions") {
		t.Errorf("a permission the route needs: %q", o.stdout)
	}
	if o := fails(t, db, 1, []string{"verify", reader, "--routes", routes, "--path", "/v1/other"}); !strings.Contains(o.stdout, "endpoint_not_allowed") {
		t.Errorf("default: deny: %q", o.stdout)
	}
	if o := ok(t, db, "verify", reader, "--routes", routes, "--path", "/health"); !strings.Contains(o.stdout, "public route GET /health") {
		t.Errorf("a public route: %q", o.stdout)
	}
	fails(t, db, 2, []string{"verify", reader, "--routes", routes}, "--path")
	fails(t, db, 2, []string{"verify", reader, "--routes", filepath.Join(t.TempDir(), "none.yaml"), "--path", "/x"}, "--routes")
	// A route with tls: required takes the request with --tls alone.
	secure := filepath.Join(t.TempDir(), "secure.yaml")
	if err := os.WriteFile(secure, []byte("routes:\n  - match: GET /v1/contacts/**\n    permissions: [contacts:read]\n    tls: required\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if o := fails(t, db, 1, []string{"verify", reader, "--routes", secure, "--path", "/v1/contacts/1"}); !strings.Contains(o.stdout, "refused: tls_required") {
		t.Errorf("a route with tls: required, without --tls: %q", o.stdout)
	}
	ok(t, db, "verify", reader, "--routes", secure, "--path", "/v1/contacts/1", "--tls")
}
