package httpapi

import (
	"net/http"

	"github.com/keyward/keyward/apikey"
	problemjson "github.com/keyward/keyward/internal/problem"
	"github.com/keyward/keyward/internal/verifyapi"
)

// problem is the body of every error answer (see package problem).
type problem = problemjson.Problem

// writeError answers with err as problem+json (problemjson.Write), after
// logging it when it is the server's failure. Internal causes go to the
// log, never to the caller; the log never receives a key: every key in the
// line is shown as start…last4 (apikey.Redact).
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := verifyapi.AsError(err)
	noteCode(w, e.Code)
	if e.Code.Status() >= 500 {
		s.log.ErrorContext(r.Context(), "request failed", "request_id", requestID(w), "method", r.Method, "route", r.Pattern, "code", e.Code, "err", apikey.Redact(err.Error()))
	}
	problemjson.Write(w, e, requestID(w), s.problemBase)
}
