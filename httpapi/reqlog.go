package httpapi

import (
	"net/http"
	"sync"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/reqlog"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/verify"
)

// logged is the writer of a request that verifies a key: it notes the
// status and the problem's code of the answer, for the request's entry in
// the request log (internal/reqlog), which require adds once the handler
// is done.
type logged struct {
	http.ResponseWriter
	status int
	code   keyward.Code
	entry  reqlog.Entry
	// rl is a copy of /v1/verify's decision, whose own goes back to its
	// pool before the entry is added.
	rl limit.Decision
}

// loggeds keeps the writers of requests being served.
var loggeds = sync.Pool{New: func() any { return new(logged) }}

// WriteHeader notes the first final status.
func (l *logged) WriteHeader(code int) {
	if l.status == 0 && code >= 200 {
		l.status = code
	}
	l.ResponseWriter.WriteHeader(code)
}

// Write notes 200 when no status was written.
func (l *logged) Write(b []byte) (int, error) {
	if l.status == 0 {
		l.status = http.StatusOK
	}
	return l.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the server's writer (the
// change stream's Flush).
func (l *logged) Unwrap() http.ResponseWriter { return l.ResponseWriter }

// noteCode notes the code of the problem answered on w, when w is a
// logged writer.
func noteCode(w http.ResponseWriter, code keyward.Code) {
	if l, ok := w.(*logged); ok {
		l.code = code
	}
}

// startLog returns the logged writer of a request that require admits,
// with the entry's request-side fields filled.
func (s *server) startLog(w http.ResponseWriter, r *http.Request, start time.Time, req *verify.Request) *logged {
	l := loggeds.Get().(*logged)
	*l = logged{ResponseWriter: w}
	l.entry = reqlog.Entry{
		At: start, RequestID: requestID(w), Surface: keyward.SurfaceAPI, Method: r.Method, Route: r.Pattern, Path: req.Target,
		ClientIP: req.IP, UserAgent: r.UserAgent(), Referrer: req.Referer,
	}
	return l
}

// finishLog adds the request's entry, from what the handler answered, and
// returns l to the pool. key is the verified key, nil when none was found;
// d the rate-limit decision, nil for none.
func (s *server) finishLog(l *logged, key *keyward.Key, d *limit.Decision) {
	e := &l.entry
	if e.Key == nil && e.Surface == keyward.SurfaceAPI {
		e.Key = key
	}
	if e.Status == 0 {
		e.Status = l.status
		if e.Status == 0 {
			e.Status = http.StatusOK
		}
		e.Code = l.code
	}
	if e.RateLimit == nil && d != nil && d.N > 0 {
		e.RateLimit = d
	}
	e.Latency = time.Since(e.At)
	s.logs.Add(e)
	*l = logged{}
	loggeds.Put(l)
}

// verified makes the request's entry that of the key that POST /v1/verify
// checked (the caller's key, which require admitted, is not the one a
// tenant looks for): the key, its outcome and its status, and the method,
// path, address and referrer the body gave.
func (l *logged) verified(res verify.Result, req *verify.Request) {
	if res.RateLimit != nil {
		l.rl = *res.RateLimit
		res.RateLimit = &l.rl
	}
	l.entry.Verified(keyward.SurfaceVerify, &res, req)
}
