package verify_test

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/verify"
)

// testKey stands for a key in presenting tests, which do not parse it.
const testKey = "sk_live_3Fj9aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

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
			got, kerr := verify.KeyFromRequest(r)
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
			got, kerr := verify.KeyFromRequest(r)
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
	if strings.Contains(err.Message, testKey) || strings.Contains(err.Message, "dXNlcjpwYXNz") {
		t.Errorf("message %q contains the credentials", err.Message)
	}
	for _, d := range details {
		if !strings.Contains(err.Message, d) {
			t.Errorf("message %q, want it to contain %q", err.Message, d)
		}
	}
}
