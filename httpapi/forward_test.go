package httpapi

import (
	"net/url"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/lockedbuffer"
)

// TestForwardAuthFailsClosed: a proxy setting that forward-auth cannot
// read refuses the request (400 invalid_request, logged) with a detail
// that names the setting, instead of checking less than the proxy meant.
func TestForwardAuthFailsClosed(t *testing.T) { fronts(t, testForwardAuthFailsClosed) }

func testForwardAuthFailsClosed(t *testing.T, front harnessOption) {
	var log lockedbuffer.Buffer
	h := newHarness(t, front, withTrustedProxies("127.0.0.1/32"), withLog(&log))
	h.tenant("acme")
	key, _ := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "c", "permissions": []string{"contacts:read"}})
	body := key[len("sk_live_"):]

	cases := []struct {
		name   string
		query  string
		header []string
		detail []string
	}{
		{"misspelled permissions", "?permission=messages:send", nil, []string{`"permission"`, "Did you mean permissions?", "proxy_pass"}},
		{"an unknown parameter", "?permissions=contacts:read&scope=admin", nil, []string{`"scope"`, "permissions and nginx"}},
		{"an unknown parameter that holds a key", "?x=" + key, nil, []string{"API keys in the URL are refused", "the x query parameter"}},
		{"a key as a parameter's name", "?" + key + "=1", nil, []string{"API keys in the URL are refused", "the name of a query parameter"}},
		{"a key as the permissions, beside an original URI", "?permissions=" + key, []string{"X-Forwarded-Uri", "/api/x"}, []string{"API keys in the URL are refused", "the permissions query parameter"}},
		{"permissions twice", "?permissions=contacts:read&permissions=admin", nil, []string{"permissions parameter more than once", "permissions=a,b"}},
		{"permissions empty", "?permissions=", nil, []string{"empty permissions", "permissions=none"}},
		{"none among permissions", "?permissions=none,contacts:read", nil, []string{"none stands alone"}},
		{"permissions blank", "?permissions=%20,%20", nil, []string{"empty permissions"}},
		{"a semicolon", "?permissions=contacts:read;admin", nil, []string{"separate parameters with &"}},
		{"a bad escape", "?permissions=contacts%zz", nil, []string{"cannot be read"}},
		{"an unknown nginx mode", "?nginx=auth", nil, []string{`nginx="auth"`, "nginx=auth_request"}},
		{"nginx twice", "?nginx=error_page&nginx=auth_request", nil, []string{"nginx parameter more than once"}},
		{"two X-Forwarded-Uri", "", []string{"X-Forwarded-Uri", "/api/orders", "X-Forwarded-Uri", "/api/orders"},
			[]string{"sends X-Forwarded-Uri more than once", "proxy_set_header X-Forwarded-Uri $request_uri"}},
		{"two X-Original-URI", "", []string{"X-Original-URI", "/api/a", "X-Original-URI", "/api/b"}, []string{"sends X-Original-URI more than once"}},
		{"both URI headers disagreeing", "", []string{"X-Forwarded-Uri", "/api/orders", "X-Original-URI", "/api/other"},
			[]string{"X-Forwarded-Uri and X-Original-URI with different values"}},
		{"two X-Forwarded-Method", "", []string{"X-Forwarded-Method", "GET", "X-Forwarded-Method", "POST"},
			[]string{"sends X-Forwarded-Method more than once", "$request_method"}},
		{"both method headers disagreeing", "", []string{"X-Forwarded-Method", "GET", "X-Original-Method", "DELETE"},
			[]string{"X-Forwarded-Method and X-Original-Method with different values"}},
		{"an original URI with a bad escape", "", []string{"X-Forwarded-Uri", "/api/%zz?api_key=" + key}, []string{"X-Forwarded-Uri", "cannot be read", "$request_uri"}},
		{"an original URI without its slash", "", []string{"X-Original-URI", "api/x?api_key=" + key}, []string{"X-Original-URI", "must start with /"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := h.call("GET", "/v1/forward-auth"+c.query, "", nil, append([]string{"X-API-Key", key, "X-Forwarded-For", "198.51.100.7"}, c.header...)...)
			detail := problemOf(t, a, 400, keyward.CodeInvalidRequest)
			for _, d := range c.detail {
				if !strings.Contains(detail, d) {
					t.Errorf("detail %q does not say %q", detail, d)
				}
			}
			if strings.Contains(a.raw, body) {
				t.Errorf("the answer repeats the key: %s", a.raw)
			}
			// With nginx's auth_request, every refusal is a bare 401, so
			// that nginx asks again for the answer to pass on.
			if !strings.Contains(c.query, "nginx") {
				sep := "?"
				if c.query != "" {
					sep = "&"
				}
				b := h.call("GET", "/v1/forward-auth"+c.query+sep+"nginx=auth_request", "", nil, append([]string{"X-API-Key", key, "X-Forwarded-For", "198.51.100.7"}, c.header...)...)
				if b.status != 401 || b.header.Get("WWW-Authenticate") != "" || b.raw != "" {
					t.Errorf("nginx=auth_request: %d, WWW-Authenticate %q, body %q", b.status, b.header.Get("WWW-Authenticate"), b.raw)
				}
			}
		})
	}
	if got := log.String(); !strings.Contains(got, "forward-auth: the proxy's settings are wrong") || strings.Contains(got, body) {
		t.Errorf("the log does not name the wrong setting, or holds the key:\n%s", got)
	}

	// The settings as they should be: the permissions are checked, also
	// percent-encoded, and both URI headers may say the same.
	h.must(200, "GET", "/v1/forward-auth?permissions=contacts:read&nginx=auth_request", "", nil, "X-API-Key", key,
		"X-Forwarded-Uri", "/api/orders?page=2", "X-Original-URI", "/api/orders?page=2", "X-Forwarded-Method", "GET")
	problemOf(t, h.call("GET", "/v1/forward-auth?perm%69ssions=admin", "", nil, "X-API-Key", key), 403, keyward.CodeInsufficientPermissions)
	h.must(200, "GET", "/v1/forward-auth?permissions=contacts%3Aread", "", nil, "X-API-Key", key, "X-Forwarded-Uri", "http://example.com/api/x?a=1")
}

// TestForwardAuthNginxModes: nginx=auth_request answers every refusal 401
// without a body or challenge, and nginx=error_page answers the refusal
// itself, or 409 when the request passes after all.
func TestForwardAuthNginxModes(t *testing.T) { fronts(t, testForwardAuthNginxModes) }

func testForwardAuthNginxModes(t *testing.T, front harnessOption) {
	h := newHarness(t, front)
	h.tenant("acme")
	key, id := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "c", "permissions": []string{"contacts:read"}})

	a := h.must(200, "GET", "/v1/forward-auth?nginx=auth_request&permissions=contacts:read", key, nil)
	if a.header.Get("X-Keyward-Key-Id") != id {
		t.Errorf("identity headers %v", a.header)
	}
	for _, c := range []struct {
		name   string
		query  string
		header []string
		status int
		code   keyward.Code
	}{
		{"missing", "", nil, 401, keyward.CodeMissingAPIKey},
		{"malformed", "", []string{"X-API-Key", "sk_live_nonsense"}, 401, keyward.CodeMalformedAPIKey},
		{"permissions", "&permissions=admin", []string{"X-API-Key", key}, 403, keyward.CodeInsufficientPermissions},
		{"key in the URL", "", []string{"X-API-Key", key, "X-Forwarded-Uri", "/api/x?q=" + key}, 400, keyward.CodeInvalidRequest},
	} {
		a := h.call("GET", "/v1/forward-auth?nginx=auth_request"+c.query, "", nil, c.header...)
		if a.status != 401 || a.raw != "" || a.header.Get("WWW-Authenticate") != "" {
			t.Errorf("%s, nginx=auth_request: %d, WWW-Authenticate %q, body %q", c.name, a.status, a.header.Get("WWW-Authenticate"), a.raw)
		}
		b := h.call("GET", "/v1/forward-auth?nginx=error_page"+c.query, "", nil, c.header...)
		problemOf(t, b, c.status, c.code)
	}
	// A location that needs no permission says so: permissions=none.
	noPerm, _ := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "bare"})
	h.must(200, "GET", "/v1/forward-auth?nginx=auth_request&permissions=none", noPerm, nil)
	d := problemOf(t, h.call("GET", "/v1/forward-auth?nginx=error_page&permissions=contacts:read", key, nil), 409, keyward.CodeConflict)
	if !strings.Contains(d, "Send the request again") {
		t.Errorf("detail %q", d)
	}
}

// TestKeyAnywhereInURL: a well-formed key of this instance anywhere in a
// URL is refused on every route that takes a key, and in forward-auth's
// original URI, and the answer never repeats it.
func TestKeyAnywhereInURL(t *testing.T) { fronts(t, testKeyAnywhereInURL) }

func testKeyAnywhereInURL(t *testing.T, front harnessOption) {
	h := newHarness(t, front)
	h.tenant("acme")
	key, id := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "c", "permissions": []string{"keys:manage"}})
	body := key[len("sk_live_"):]
	encoded := strings.NewReplacer("_", "%5F", "s", "%73").Replace(key)

	queries := map[string]string{
		"any name":             "?secret=" + key,
		"semicolon":            "?a=1;s=" + key,
		"percent-encoded":      "?%73ecret=" + encoded,
		"encoded twice":        "?next=" + url.QueryEscape("/x?k="+encoded),
		"inside a longer text": "?q=Bearer%20" + key + "%22",
		"as a name":            "?" + key,
		"encoded four times":   "?x=" + deepEscape(key, 4),
	}
	// Forward-auth's own query string holds only its settings: a key there
	// is refused as an unknown setting (TestForwardAuthFailsClosed).
	// The routes that take no key refuse one in the URL too, as does a
	// path that has no route.
	routes := []struct{ method, path string }{
		{"GET", "/v1/whoami"}, {"POST", "/v1/verify"},
		{"GET", "/v1/api-keys"}, {"GET", "/v1/api-keys/" + id}, {"GET", "/v1/tenants"}, {"GET", "/v1/audit-log"},
		{"GET", "/healthz"}, {"GET", "/readyz"}, {"GET", "/openapi.json"}, {"GET", "/no/such/route"},
	}
	for name, q := range queries {
		for _, rt := range routes {
			a := h.call(rt.method, rt.path+q, key, nil)
			d := problemOf(t, a, 400, keyward.CodeInvalidRequest)
			if !strings.Contains(d, "URL") || strings.Contains(a.raw, body) {
				t.Errorf("%s, %s %s: %s", name, rt.method, rt.path, a.raw)
			}
		}
		a := h.call("GET", "/v1/forward-auth", key, nil, "X-Forwarded-Uri", "/api/orders"+q)
		if d := problemOf(t, a, 400, keyward.CodeInvalidRequest); !strings.Contains(d, "URL") || strings.Contains(a.raw, body) {
			t.Errorf("%s, forward-auth: %s", name, a.raw)
		}
	}
	for _, path := range []string{"/api/" + key + "/orders", "/api/" + encoded, "/api/orders/" + key} {
		a := h.call("GET", "/v1/forward-auth", key, nil, "X-Forwarded-Uri", path)
		if d := problemOf(t, a, 400, keyward.CodeInvalidRequest); !strings.Contains(d, "path") || strings.Contains(a.raw, body) {
			t.Errorf("forward-auth, key in the path %q: %s", path, a.raw)
		}
	}
	for _, path := range []string{"/v1/api-keys/" + key, "/healthz/" + key, "/" + key} {
		a := h.call("GET", path, key, nil)
		if d := problemOf(t, a, 400, keyward.CodeInvalidRequest); !strings.Contains(d, "path") || strings.Contains(a.raw, body) {
			t.Errorf("a key in the path %s…: %s", path[:10], a.raw)
		}
	}

	// A key-shaped value that is not one (a bad checksum, another
	// instance's prefix) is no reason to refuse.
	h.must(200, "GET", "/v1/whoami?secret="+flip(key), key, nil)
	h.must(200, "GET", "/v1/forward-auth", key, nil, "X-Forwarded-Uri", "/api/orders?s=kw_live_"+body)
}

// deepEscape percent-encodes s n times over.
func deepEscape(s string, n int) string {
	s = strings.NewReplacer("_", "%5F").Replace(s)
	for range n - 1 {
		s = strings.ReplaceAll(s, "%", "%25")
	}
	return s
}

// TestKeyNeverRepeated: a key sent where a value belongs (a permission to
// check, a field's name, an address) is never repeated whole in the
// answer: every message goes out with keys shown as start…last4.
func TestKeyNeverRepeated(t *testing.T) { fronts(t, testKeyNeverRepeated) }

func testKeyNeverRepeated(t *testing.T, front harnessOption) {
	h := newHarness(t, front)
	h.tenant("acme")
	key, _ := h.key(h.root, map[string]any{"tenant_id": "acme", "name": "c", "permissions": []string{"contacts:read"}})
	body := key[len("sk_live_"):]
	verifier, _ := h.key(h.root, map[string]any{"tenant_id": "system", "name": "v", "permissions": []string{"keyward:verify"}})
	start, last4 := apikey.Display(key)
	for name, a := range map[string]answer{
		"a permission to verify": h.call("POST", "/v1/verify", verifier, map[string]any{"key": key, "permissions": []string{key}}),
		"an address to verify":   h.call("POST", "/v1/verify", verifier, map[string]any{"key": key, "ip": key}),
		"a field's name":         h.call("POST", "/v1/api-keys", h.root, map[string]any{"tenant_id": "acme", "name": "n", key: 1}),
		"a permission to grant":  h.call("POST", "/v1/api-keys", h.root, map[string]any{"tenant_id": "acme", "name": "n", "permissions": []string{key}}),
	} {
		if strings.Contains(a.raw, body) {
			t.Errorf("%s: the answer repeats the key: %s", name, a.raw)
		}
		if !strings.Contains(a.raw, start+"…"+last4) {
			t.Errorf("%s: the answer does not show the key as start…last4: %s", name, a.raw)
		}
	}
	// A key is never stored in a name or metadata, where it would be shown
	// in lists and logs.
	for field, v := range map[string]any{
		"name": "ci " + key, "metadata": map[string]string{key: "x"}, "metadata.owner": map[string]string{"owner": "see " + key},
	} {
		in := map[string]any{"tenant_id": "acme", "name": "n"}
		base, _, _ := strings.Cut(field, ".")
		in[base] = v
		a := h.call("POST", "/v1/api-keys", h.root, in)
		if d := problemOf(t, a, 400, keyward.CodeInvalidRequest); !strings.Contains(d, "holds an API key") || strings.Contains(a.raw, body) {
			t.Errorf("a key in %s: %s", field, a.raw)
		}
	}
}

// BenchmarkForwardAuthHandlerNginx is BenchmarkForwardAuthHandler for the
// request that the README's nginx snippet sends: its settings in the query
// string, the original URI (with a query string) and method in headers.
func BenchmarkForwardAuthHandlerNginx(b *testing.B) {
	benchForwardAuth(b, "/v1/forward-auth?permissions=contacts:read&nginx=auth_request", []string{
		"X-Forwarded-Uri", "/api/orders/ord_4Xk9?page=2&sort=created_at",
		"X-Forwarded-Method", "GET",
	}, nil)
}
