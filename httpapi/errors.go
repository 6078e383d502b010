package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/verify"
)

// problem is an RFC 9457 problem+json body with Keyward's members.
type problem struct {
	Type      string       `json:"type" example:"urn:keyward:error:invalid_api_key"`
	Title     string       `json:"title" example:"Invalid API key"`
	Status    int          `json:"status" example:"401"`
	Detail    string       `json:"detail" example:"No key matches the one sent; check that it was copied in full, or create a new one."`
	Code      keyward.Code `json:"code" example:"invalid_api_key"`
	Field     string       `json:"field,omitempty" example:"name"`
	RequestID string       `json:"request_id" example:"req_4Xk9…"`
	Success   bool         `json:"success"`
}

// realm is the protection space named in WWW-Authenticate.
const realm = "keyward"

// writeError answers with err as problem+json: the status from the code's
// table, the public message as detail, the authentication challenge of
// RFC 6750 where one applies, and Retry-After when the error says how long
// to wait (in whole seconds, rounded up). Internal causes go to the log, never to the
// caller; the log never receives a key. A message that quotes what the
// caller sent (a permission, a field's name) may hold a key sent in the
// wrong place: every key in the detail, the field and the log line is
// shown as start…last4 (apikey.Redact), the last safeguard behind the
// messages' own care.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *keyward.Error
	if !errors.As(err, &e) {
		e = keyward.Internal(err)
	}
	status := e.Code.Status()
	if status >= 500 {
		s.log.ErrorContext(r.Context(), "request failed", "request_id", requestID(w), "method", r.Method, "route", r.Pattern, "code", e.Code, "err", apikey.Redact(err.Error()))
	}
	h := w.Header()
	switch {
	case e.Code == keyward.CodeMissingAPIKey:
		h.Set("WWW-Authenticate", `Bearer realm="`+realm+`"`)
	case status == http.StatusUnauthorized:
		h.Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s", error="invalid_token", error_description="%s"`, realm, headerSafe(e.Code.Title())))
	case e.Code == keyward.CodeInsufficientPermissions:
		h.Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s", error="insufficient_scope"`, realm))
	case e.Code == keyward.CodeStorageUnavailable:
		h.Set("Retry-After", "1")
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(verify.RetrySeconds(e.RetryAfter), 10))
	}
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	// The problem is encoded before the status is written. It holds only
	// strings and numbers, which always encode; were it to fail, the body
	// would still be a problem, without its detail.
	buf, encErr := s.encode(problem{
		Type: "urn:keyward:error:" + string(e.Code), Title: e.Code.Title(), Status: status,
		Detail: apikey.Redact(e.Message), Code: e.Code, Field: apikey.Redact(e.Field), RequestID: requestID(w),
	})
	if encErr != nil {
		s.log.ErrorContext(r.Context(), "encode a problem", "request_id", requestID(w), "err", encErr)
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"type":"urn:keyward:error:internal_error","title":"Internal error","status":500,"code":"internal_error","success":false}` + "\n"))
		return
	}
	defer s.release(buf)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// headerSafe drops characters that may not stand in a quoted header value.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 || r > 0x7e {
			return -1
		}
		return r
	}, s)
}
