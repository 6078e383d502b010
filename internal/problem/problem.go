// Package problem writes Keyward's refusals and errors as RFC 9457
// application/problem+json, with the headers that go with them: the
// RFC 6750 challenge of a 401 or of a 403 for permissions, and Retry-After.
// The HTTP API and the Go middleware both answer through it, so that a
// refusal reads the same whichever of them gives it.
package problem

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/verify"
)

// Problem is an RFC 9457 problem+json body with Keyward's members.
type Problem struct {
	Type      string       `json:"type" example:"https://keys.example.com/problems/invalid_api_key" description:"the page that explains the outcome and what to do: the instance's public URL, then /problems/ and the code"`
	Title     string       `json:"title" example:"Invalid API key"`
	Status    int          `json:"status" example:"401"`
	Detail    string       `json:"detail" example:"No key matches the one sent; check that it was copied in full, or create a new one."`
	Code      keyward.Code `json:"code" example:"invalid_api_key"`
	Field     string       `json:"field,omitempty" example:"name"`
	RequestID string       `json:"request_id" example:"req_4Xk9…"`
	Success   bool         `json:"success"`
}

// Realm is the protection space named in WWW-Authenticate.
const Realm = "keyward"

// TypeURI is the problem type of code c: the page that explains it,
// base + "/problems/" + c, where base is the instance's public URL
// (serve --public-url, else the address of its API listener); the URN
// urn:keyward:error:<code> when base is "" (the Go middleware without a
// server to point to).
func TypeURI(base string, c keyward.Code) string {
	if base == "" {
		return "urn:keyward:error:" + string(c)
	}
	return base + "/problems/" + string(c)
}

// Write answers with e as problem+json, in the answer whose X-Request-Id is
// requestID, its type under base (TypeURI): the status from the code's table, the public message as
// detail, the authentication challenge of RFC 6750 where one applies (none
// for a missing key), and Retry-After when e says how long to wait (in
// whole seconds, rounded up; 1 for storage_unavailable). Every key in the
// detail and the field is shown as start…last4 (apikey.Redact), the last
// safeguard behind the messages' own care. It returns the status written.
func Write(w http.ResponseWriter, e *keyward.Error, requestID, base string) int {
	status := e.Code.Status()
	h := w.Header()
	switch {
	case e.Code == keyward.CodeMissingAPIKey:
		h.Set("WWW-Authenticate", `Bearer realm="`+Realm+`"`)
	case status == http.StatusUnauthorized:
		h.Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s", error="invalid_token", error_description="%s"`, Realm, headerSafe(e.Code.Title())))
	case e.Code == keyward.CodeInsufficientPermissions:
		h.Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s", error="insufficient_scope"`, Realm))
	case e.Code == keyward.CodeStorageUnavailable:
		h.Set("Retry-After", "1")
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(verify.RetrySeconds(e.RetryAfter), 10))
	}
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	buf := bufs.Get().(*bytes.Buffer)
	defer bufs.Put(buf)
	buf.Reset()
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	// The problem is encoded before the status is written. It holds only
	// strings and numbers, which always encode; were it to fail, the body
	// would still be a problem, without its detail.
	if err := enc.Encode(Problem{
		Type: TypeURI(base, e.Code), Title: e.Code.Title(), Status: status,
		Detail: apikey.Redact(e.Message), Code: e.Code, Field: apikey.Redact(e.Field), RequestID: requestID,
	}); err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"type":"urn:keyward:error:internal_error","title":"Internal error","status":500,"code":"internal_error","success":false}` + "\n"))
		return http.StatusInternalServerError
	}
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
	return status
}

// bufs holds the buffers problems are encoded in. A problem is small, so
// every buffer goes back.
var bufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// headerSafe drops characters that may not stand in a quoted header value.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 || r > 0x7e {
			return -1
		}
		return r
	}, s)
}
