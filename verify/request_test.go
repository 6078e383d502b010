package verify_test

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/verify"
)

// testKey stands for a key in presenting tests, which do not parse it: its
// checksum is wrong.
const testKey = "sk_live_3Fj9aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

// realKey is a well-formed key of the default format, with a valid
// checksum; realKeyOther is one of another instance, with prefix acme2
// (apikey's golden keys).
const (
	realKey      = "sk_live_3Fj9aB7kQ2mN8pR4sT6uV1wX5yZ0cD3e3I4UjD"
	realKeyOther = "acme2_test_ZYXWVUTSRQPONMLKJIHGFEDCBA9876542Z0CCK"
)

func TestKeyFromRequest(t *testing.T) {
	tests := []struct {
		name string
		// raw is the request as sent on the wire, parsed by net/http.
		raw     string
		want    string
		code    keyward.Code
		details []string
	}{
		{
			name: "X-API-Key",
			raw:  "GET / HTTP/1.1\r\nHost: x\r\nX-API-Key: " + testKey + "\r\n\r\n",
			want: testKey,
		},
		{
			name: "x-api-key in lower case",
			raw:  "GET / HTTP/1.1\r\nHost: x\r\nx-api-key: " + testKey + "\r\n\r\n",
			want: testKey,
		},
		{
			name: "Bearer",
			raw:  "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + testKey + "\r\n\r\n",
			want: testKey,
		},
		{
			name: "bearer in lower case with several spaces",
			raw:  "GET / HTTP/1.1\r\nHost: x\r\nauthorization: bearer    " + testKey + "\r\n\r\n",
			want: testKey,
		},
		{
			name: "BEARER with a tab",
			raw:  "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: BEARER\t" + testKey + "\r\n\r\n",
			want: testKey,
		},
		{
			name: "surrounding spaces are trimmed by HTTP",
			raw:  "GET / HTTP/1.1\r\nHost: x\r\nX-API-Key:   " + testKey + "  \r\n\r\n",
			want: testKey,
		},
		{
			name: "quotes are left for Verify to report",
			raw:  "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \"" + testKey + "\"\r\n\r\n",
			want: `"` + testKey + `"`,
		},
		{
			name: "the same key in both headers",
			raw:  "GET / HTTP/1.1\r\nHost: x\r\nX-API-Key: " + testKey + "\r\nAuthorization: Bearer " + testKey + "\r\n\r\n",
			want: testKey,
		},
		{
			name:    "different keys in both headers",
			raw:     "GET / HTTP/1.1\r\nHost: x\r\nX-API-Key: " + testKey + "\r\nAuthorization: Bearer sk_live_other\r\n\r\n",
			code:    keyward.CodeInvalidRequest,
			details: []string{"X-API-Key or in Authorization, not both"},
		},
		{
			name:    "two different X-API-Key headers",
			raw:     "GET / HTTP/1.1\r\nHost: x\r\nX-API-Key: " + testKey + "\r\nX-API-Key: sk_live_other\r\n\r\n",
			code:    keyward.CodeInvalidRequest,
			details: []string{"one X-API-Key header"},
		},
		{
			name: "X-API-Key with Basic authentication meant for a proxy",
			raw:  "GET / HTTP/1.1\r\nHost: x\r\nX-API-Key: " + testKey + "\r\nAuthorization: Basic dXNlcjpwYXNz\r\n\r\n",
			want: testKey,
		},
		{
			name:    "Basic",
			raw:     "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Basic dXNlcjpwYXNz\r\n\r\n",
			code:    keyward.CodeMalformedAPIKey,
			details: []string{"Basic scheme", "Authorization: Bearer <key>", "X-API-Key"},
		},
		{
			name:    "Token",
			raw:     "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: token " + testKey + "\r\n\r\n",
			code:    keyward.CodeMalformedAPIKey,
			details: []string{"Token scheme", "Authorization: Bearer <key>", "X-API-Key"},
		},
		{
			name:    "ApiKey",
			raw:     "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: ApiKey " + testKey + "\r\n\r\n",
			code:    keyward.CodeMalformedAPIKey,
			details: []string{"ApiKey scheme", "Authorization: Bearer <key>"},
		},
		{
			name:    "a bare key without a scheme",
			raw:     "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: " + testKey + "\r\n\r\n",
			code:    keyward.CodeMalformedAPIKey,
			details: []string{"Authorization: Bearer <key>", "X-API-Key"},
		},
		{
			name:    "an unknown scheme",
			raw:     "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Secret " + testKey + "\r\n\r\n",
			code:    keyward.CodeMalformedAPIKey,
			details: []string{"Authorization: Bearer <key>", "X-API-Key"},
		},
		{
			name:    "Bearer without a key",
			raw:     "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer   \r\n\r\n",
			code:    keyward.CodeMalformedAPIKey,
			details: []string{"no key"},
		},
		{
			name:    "api_key in the query",
			raw:     "GET /v1/things?api_key=" + testKey + " HTTP/1.1\r\nHost: x\r\n\r\n",
			code:    keyward.CodeInvalidRequest,
			details: []string{"api_key query parameter", "logs", "X-API-Key"},
		},
		{
			name:    "access_token in the query beside a header",
			raw:     "GET /v1/things?a=1&Access_Token=" + testKey + " HTTP/1.1\r\nHost: x\r\nX-API-Key: " + testKey + "\r\n\r\n",
			code:    keyward.CodeInvalidRequest,
			details: []string{"access_token query parameter"},
		},
		{
			name:    "apikey in the query, escaped",
			raw:     "GET /v1/things?api%6Bey=" + testKey + " HTTP/1.1\r\nHost: x\r\n\r\n",
			code:    keyward.CodeInvalidRequest,
			details: []string{"apikey query parameter"},
		},
		{
			name:    "key in the query alone",
			raw:     "GET /v1/things?key=" + testKey + " HTTP/1.1\r\nHost: x\r\n\r\n",
			code:    keyward.CodeInvalidRequest,
			details: []string{"key query parameter"},
		},
		{
			name:    "token in the query alone",
			raw:     "GET /v1/things?token=" + testKey + " HTTP/1.1\r\nHost: x\r\n\r\n",
			code:    keyward.CodeInvalidRequest,
			details: []string{"token query parameter"},
		},
		{
			name: "key in the query is another thing when a header has the key",
			raw:  "GET /v1/objects?key=photos/cat.png HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + testKey + "\r\n\r\n",
			want: testKey,
		},
		{
			name:    "an empty query parameter is no key",
			raw:     "GET /v1/things?api_key= HTTP/1.1\r\nHost: x\r\n\r\n",
			code:    keyward.CodeMissingAPIKey,
			details: []string{"X-API-Key", "Authorization: Bearer <key>"},
		},
		{
			name:    "a key in a parameter of any name",
			raw:     "GET /v1/things?secret=" + realKey + " HTTP/1.1\r\nHost: x\r\nX-API-Key: " + realKey + "\r\n\r\n",
			code:    keyward.CodeInvalidRequest,
			details: []string{"secret query parameter", "URL", "X-API-Key", "Replace the key"},
		},
		{
			name:    "a key in key= beside a header",
			raw:     "GET /v1/objects?key=" + realKey + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + realKey + "\r\n\r\n",
			code:    keyward.CodeInvalidRequest,
			details: []string{"key query parameter"},
		},
		{
			name:    "a key after a semicolon",
			raw:     "GET /v1/things?a=1;s=" + realKey + " HTTP/1.1\r\nHost: x\r\n\r\n",
			code:    keyward.CodeInvalidRequest,
			details: []string{"s query parameter"},
		},
		{
			name:    "api_key after a semicolon, malformed",
			raw:     "GET /v1/things?a=1;api_key=nonsense HTTP/1.1\r\nHost: x\r\nX-API-Key: " + testKey + "\r\n\r\n",
			code:    keyward.CodeInvalidRequest,
			details: []string{"api_key query parameter"},
		},
		{
			name:    "a percent-encoded key under a percent-encoded name",
			raw:     "GET /v1/things?%73ecret=sk%5Flive%5F" + realKey[8:] + " HTTP/1.1\r\nHost: x\r\n\r\n",
			code:    keyward.CodeInvalidRequest,
			details: []string{"secret query parameter"},
		},
		{
			name:    "a key encoded twice",
			raw:     "GET /v1/things?next=%252Fx%253Fk%253Dsk%255Flive%255F" + realKey[8:] + " HTTP/1.1\r\nHost: x\r\n\r\n",
			code:    keyward.CodeInvalidRequest,
			details: []string{"next query parameter"},
		},
		{
			name:    "a key inside a longer value",
			raw:     "GET /v1/things?q=Bearer%20" + realKey + "%22 HTTP/1.1\r\nHost: x\r\n\r\n",
			code:    keyward.CodeInvalidRequest,
			details: []string{"q query parameter"},
		},
		{
			name:    "a key as a parameter's name is not repeated",
			raw:     "GET /v1/things?" + realKey + " HTTP/1.1\r\nHost: x\r\n\r\n",
			code:    keyward.CodeInvalidRequest,
			details: []string{"the name of a query parameter"},
		},
		{
			name:    "a long name is not repeated",
			raw:     "GET /v1/things?" + strings.Repeat("n", 40) + "=" + realKey + " HTTP/1.1\r\nHost: x\r\n\r\n",
			code:    keyward.CodeInvalidRequest,
			details: []string{"a query parameter"},
		},
		{
			name:    "an invalid escape does not hide a key",
			raw:     "GET /v1/things?x=%zz" + realKey + "%zz HTTP/1.1\r\nHost: x\r\n\r\n",
			code:    keyward.CodeInvalidRequest,
			details: []string{"x query parameter"},
		},
		{
			name:    "a key in the path",
			raw:     "GET /v1/api-keys/" + realKey + " HTTP/1.1\r\nHost: x\r\nX-API-Key: " + realKey + "\r\n\r\n",
			code:    keyward.CodeInvalidRequest,
			details: []string{"the URL's path"},
		},
		{
			name:    "a percent-encoded key in the path",
			raw:     "GET /v1/api-keys/sk%5Flive%5F" + realKey[8:] + "/x HTTP/1.1\r\nHost: x\r\n\r\n",
			code:    keyward.CodeInvalidRequest,
			details: []string{"the URL's path"},
		},
		{
			name: "another instance's key in the query is not this instance's",
			raw:  "GET /v1/things?secret=" + realKeyOther + " HTTP/1.1\r\nHost: x\r\nX-API-Key: " + testKey + "\r\n\r\n",
			want: testKey,
		},
		{
			name: "a key-shaped value with a bad checksum is no key",
			raw:  "GET /v1/things?secret=" + testKey + " HTTP/1.1\r\nHost: x\r\nX-API-Key: " + testKey + "\r\n\r\n",
			want: testKey,
		},
		{
			name:    "neither",
			raw:     "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
			code:    keyward.CodeMissingAPIKey,
			details: []string{"X-API-Key", "Authorization: Bearer <key>"},
		},
		{
			name:    "empty headers",
			raw:     "GET / HTTP/1.1\r\nHost: x\r\nX-API-Key: \r\nAuthorization:\r\n\r\n",
			code:    keyward.CodeMissingAPIKey,
			details: []string{"X-API-Key", "Authorization: Bearer <key>"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tt.raw)))
			if err != nil {
				t.Fatalf("ReadRequest: %v", err)
			}
			got, kerr := verify.KeyFromRequest(r, apikey.Format{})
			checkKeyFromRequest(t, got, kerr, tt.want, tt.code, tt.details...)
		})
	}
}

// TestKeyFromRequestUnparsed covers headers set in code, which net/http
// does not trim: the key comes back as set, so that Verify reports the
// whitespace.
func TestKeyFromRequestUnparsed(t *testing.T) {
	tests := []struct {
		name   string
		header http.Header
		want   string
		code   keyward.Code
	}{
		{
			name:   "trailing newline after the key",
			header: http.Header{"X-Api-Key": {testKey + "\n"}},
			want:   testKey + "\n",
		},
		{
			name:   "spaces between Bearer and the key, a space after",
			header: http.Header{"Authorization": {"Bearer  " + testKey + " "}},
			want:   testKey + " ",
		},
		{
			name:   "blank X-API-Key beside Bearer",
			header: http.Header{"X-Api-Key": {"  "}, "Authorization": {"Bearer " + testKey}},
			want:   testKey,
		},
		{
			name:   "two Authorization headers with different keys",
			header: http.Header{"Authorization": {"Bearer " + testKey, "Bearer sk_live_other"}},
			code:   keyward.CodeInvalidRequest,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header = tt.header
			got, kerr := verify.KeyFromRequest(r, apikey.Format{})
			checkKeyFromRequest(t, got, kerr, tt.want, tt.code)
		})
	}
}

// checkKeyFromRequest fails the test unless KeyFromRequest returned want,
// or an error with the code whose message contains details and no key.
func checkKeyFromRequest(t *testing.T, got string, err *keyward.Error, want string, code keyward.Code, details ...string) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("error %v, want key %q", err, want)
		}
		if got != want {
			t.Errorf("key %q, want %q", got, want)
		}
		return
	}
	if err == nil {
		t.Fatalf("key %q, want error %q", got, code)
	}
	t.Logf("%s (%d): %s", err.Code, err.Code.Status(), err.Message)
	if err.Code != code {
		t.Errorf("code %q, want %q", err.Code, code)
	}
	if got != "" {
		t.Errorf("key %q returned with an error", got)
	}
	if strings.Contains(err.Message, testKey) || strings.Contains(err.Message, "dXNlcjpwYXNz") ||
		strings.Contains(err.Message, realKey[8:]) {
		t.Errorf("message %q contains the credentials", err.Message)
	}
	for _, d := range details {
		if !strings.Contains(err.Message, d) {
			t.Errorf("message %q, want it to contain %q", err.Message, d)
		}
	}
}

// FuzzKeyInURL checks that KeyFrom never panics on any path and query
// string, never repeats a key in its error, and refuses a well-formed key
// put anywhere in the query string or the path, raw or percent-encoded,
// whatever surrounds it.
func FuzzKeyInURL(f *testing.F) {
	for _, s := range [][2]string{
		{"/v1/things", ""}, {"/v1/things", "a=1&b=2"}, {"/", "a=1;b"}, {"/%zz", "%zz=%"},
		{"/v1/x", "api_key=x"}, {"/", "x=%"}, {"/", "=" + realKey}, {"/" + realKey[:20], realKey[20:]},
	} {
		f.Add(s[0], s[1], uint8(0))
	}
	f.Fuzz(func(t *testing.T, path, query string, at uint8) {
		check := func(u *url.URL, mustRefuse bool) {
			t.Helper()
			key, err := verify.KeyFrom(http.Header{"X-Api-Key": {testKey}}, u, apikey.Format{})
			if err != nil && strings.Contains(err.Message, realKey[8:]) {
				t.Fatalf("%q: the error repeats the key: %s", u, err.Message)
			}
			if mustRefuse && (err == nil || err.Code != keyward.CodeInvalidRequest) {
				t.Fatalf("path %q, query %q: key %q, error %v; want invalid_request", u.Path, u.RawQuery, key, err)
			}
		}
		check(&url.URL{Path: path, RawQuery: query}, false)
		encoded := strings.NewReplacer("_", "%5F", "s", "%73").Replace(realKey)
		for _, k := range []string{realKey, encoded, url.QueryEscape(encoded)} {
			i := int(at) % (len(query) + 1)
			check(&url.URL{Path: path, RawQuery: query[:i] + "&" + k + "&" + query[i:]}, true)
			check(&url.URL{Path: path, RawQuery: query[:i] + ";n=" + k + ";" + query[i:]}, true)
			j := int(at) % (len(path) + 1)
			check(&url.URL{Path: path[:j] + "/" + realKey + "/" + path[j:], RawQuery: query}, true)
		}
	})
}
