package httpapi

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/forwardauth"
	"github.com/keyward/keyward/internal/identity"
	"github.com/keyward/keyward/internal/reqlog"
	"github.com/keyward/keyward/internal/verifyapi"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/verify"
	"github.com/keyward/keyward/view"
)

// decisions keeps the rate-limit decisions of requests, which their
// headers are written from.
var decisions = sync.Pool{New: func() any { return new(limit.Decision) }}

// handleForwardAuth verifies the key of a request that a proxy is about to
// pass on, as forwardauth.Checker decides it. It answers 200 with the
// identity headers (none for a public route of the route policy), or the
// outcome's status and problem body, which the proxy returns to its client
// (with nginx, in two steps: see forwardauth.Mode). A refusal of the
// proxy's own settings is logged.
func (s *server) handleForwardAuth(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	a := answers.Get().(*forwardauth.Answer)
	defer func() {
		a.Reset()
		answers.Put(a)
	}()
	h := r.Header
	s.forward.Check(r.Context(), &forwardauth.Request{Method: r.Method, URL: r.URL, Header: h, ClientIP: s.clientIP(r), TLS: s.secure(r)}, a)
	defer s.logForwardAuth(w, r, a, start)
	if a.Result.RateLimit != nil {
		limit.SetHeaders(w.Header(), a.Result.RateLimit)
	}
	a.Result.Notice.SetHeaders(w.Header())
	if a.Misconfigured {
		s.log.WarnContext(r.Context(), "forward-auth: the proxy's settings are wrong", "request_id", requestID(w), "detail", apikey.Redact(a.Refusal.Message))
	}
	switch {
	case a.Refusal == nil && a.Result.Public:
		w.WriteHeader(http.StatusOK)
	case a.Refusal == nil:
		identity.Set(w.Header(), &a.Result)
		w.WriteHeader(http.StatusOK)
	case a.Mode == forwardauth.AuthRequest:
		// No WWW-Authenticate: nginx would copy it into the answer of
		// its error_page location, beside the one that answer has. The
		// second request logs what needs logging.
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusUnauthorized)
	default:
		s.writeError(w, r, a.Refusal)
	}
}

// logForwardAuth adds forward-auth's entry to the request log: the
// original request's, with the status w was answered.
func (s *server) logForwardAuth(w http.ResponseWriter, r *http.Request, a *forwardauth.Answer, start time.Time) {
	if s.logs == nil {
		return
	}
	l := loggeds.Get().(*logged)
	l.entry = reqlog.Entry{At: start, RequestID: requestID(w), Method: r.Method, Path: r.URL.Path, UserAgent: r.UserAgent()}
	status := http.StatusOK
	switch {
	case a.Refusal == nil:
	case a.Mode == forwardauth.AuthRequest:
		status = http.StatusUnauthorized
	default:
		status = a.Refusal.Code.Status()
	}
	a.Logged(&l.entry, status)
	l.entry.Latency = time.Since(start)
	s.logs.Add(&l.entry)
	*l = logged{}
	loggeds.Put(l)
}

// answers keeps forward-auth's answers: one holds a rate-limit decision
// (430 bytes) that would escape to the heap at every request.
var answers = sync.Pool{New: func() any { return new(forwardauth.Answer) }}

// require is the one middleware that enforces what a route requires, need
// (declared in routes): a route that needs no key refuses one in its URL
// (keyless); any other admits the request by verifyapi.Admit (its key, then
// manage.Authorize on the caller it stands for, then counting) and hands the
// handler what it learned (admissionOf). A refusal is answered as
// problem+json before the handler runs. Forward-auth's key is the one of
// the request a proxy asks about, and its refusals follow the proxy's
// mode: its handler reads and checks that key itself (checksOwnKey).
func (s *server) require(need manage.Requirement, h http.Handler) http.Handler {
	if need == manage.NoKey {
		return s.keyless(h)
	}
	if own, ok := h.(checksOwnKey); ok {
		return own
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := r.RequestURI
		if target == "" || target[0] != '/' {
			// An absolute-form or * target: the path the server routed by.
			target = r.URL.RequestURI()
		}
		start := time.Now()
		d := decisions.Get().(*limit.Decision)
		defer decisions.Put(d)
		req := verify.Request{
			Method: r.Method, Target: target, Referer: r.Header.Get("Referer"), Origin: r.Header.Get("Origin"),
			IP: s.clientIP(r), RateLimit: d,
		}
		// Every request that verifies a key has an entry in the request
		// log, with what it was answered, refused or not.
		lw := s.startLog(w, r, start, &req)
		w = lw
		res, c, err := verifyapi.Admit(r.Context(), s.verifier, r.Header, r.URL, &req, verifyapi.AddrString(req.IP), need)
		rl := res.RateLimit
		defer func() { s.finishLog(lw, res.Key, rl) }()
		if res.RateLimit != nil {
			limit.SetHeaders(w.Header(), res.RateLimit)
			res.RateLimit = nil // its decision goes back to the pool
		}
		res.Notice.SetHeaders(w.Header())
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), admissionKey{}, &admission{key: res, caller: c})))
	})
}

// checksOwnKey is the handler of a route that reads and checks its key
// itself, which require serves as it is: forward-auth.
type checksOwnKey http.HandlerFunc

// ServeHTTP calls h.
func (h checksOwnKey) ServeHTTP(w http.ResponseWriter, r *http.Request) { h(w, r) }

// admission is what require learned of a request it let through: the
// verification of the key the request presents, and the caller that key
// stands for.
type admission struct {
	key    verify.Result
	caller manage.Caller
}

// admissionKey is the context key of the request's admission.
type admissionKey struct{}

// admissionOf returns what require learned of the request r, for the
// handler of a route that needs a key; nil for any other, which has none.
func admissionOf(r *http.Request) *admission {
	a, _ := r.Context().Value(admissionKey{}).(*admission)
	return a
}

// managed wraps a management handler: it hands the handler the caller that
// require admitted, with the store's work bounded by the storage timeout;
// an error the handler returns is answered as problem+json.
func (s *server) managed(h func(http.ResponseWriter, *http.Request, manage.Caller) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.storageTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		if err := h(w, r, admissionOf(r).caller); err != nil {
			s.writeError(w, r, err)
		}
	})
}

type whoamiResponse struct {
	Success bool        `json:"success"`
	Data    view.Whoami `json:"data"`
}

// handleWhoami answers any valid key with what it is and what it may do
// now: the connectivity check of the seeds.
func (s *server) handleWhoami(w http.ResponseWriter, r *http.Request) {
	if err := s.respond(w, http.StatusOK, whoamiResponse{Success: true, Data: view.WhoamiOf(admissionOf(r).key)}); err != nil {
		s.writeError(w, r, err)
	}
}

type verifyRequest = verifyapi.Body

// verifyResponse is the answer of POST /v1/verify, which keyward verify
// --json prints too.
type verifyResponse = view.Verification

// handleVerify checks a key for another service, through manage.Verify,
// as keyward verify does: the caller must be admitted as a
// manage.Verifier (keyward:verify, or a root key). The key's restrictions
// are checked against the method, path, referrer and origin the body
// gives, and with a path, the server's route policy decides, if it has
// one.
func (s *server) handleVerify(w http.ResponseWriter, r *http.Request) {
	var in verifyRequest
	if err := decode(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	// From the pool, as for forward-auth: one allocated per request
	// (430 bytes) escaped to the heap. The answer copies what it shows of
	// the decision before d goes back.
	d := decisions.Get().(*limit.Decision)
	defer decisions.Put(d)
	req := verify.Request{RateLimit: d}
	res, err := verifyapi.Verify(r.Context(), admissionOf(r).caller, s.verifier, s.policyFile, &in, &req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if l, ok := w.(*logged); ok {
		l.verified(res, &req)
	}
	if err := s.respond(w, http.StatusOK, view.VerificationOf(res, requestID(w))); err != nil {
		s.writeError(w, r, err)
	}
}

type forwardAuthRequest struct {
	Permissions string `query:"permissions" description:"comma-separated permissions the protected location needs; at most once, and not empty: none (or no parameter) when the location needs none"`
	Nginx       string `query:"nginx" enum:"auth_request,error_page" description:"for nginx, which passes on only 401 and 403 from auth_request: auth_request answers every refusal with 401 and no body; error_page, for the location that error_page 401 leads to, answers the refusal with its own status, body and headers"`
	APIKey      string `header:"X-API-Key"`
	Auth        string `header:"Authorization" description:"Bearer <key>"`
	Method      string `header:"X-Forwarded-Method" description:"the original request's method (or X-Original-Method); once"`
	URI         string `header:"X-Forwarded-Uri" description:"the original request's URI as received, such as nginx's $request_uri (or X-Original-URI); once"`
}

// forwardAuthIdentity documents the identity headers of forward-auth's 200
// (writeIdentity sets them), which the proxy passes on to the upstream.
// A public route of the route policy answers 200 without any.
type forwardAuthIdentity struct {
	KeyID       string `header:"X-Keyward-Key-Id" description:"the key's id (key_…)"`
	KeyName     string `header:"X-Keyward-Key-Name" description:"the key's name, visible text in UTF-8 (no control characters)"`
	Tenant      string `header:"X-Keyward-Tenant" description:"the id of the key's tenant (ten_…)"`
	TenantSlug  string `header:"X-Keyward-Tenant-Slug" description:"the slug of the key's tenant"`
	MemberID    string `header:"X-Keyward-Member-Id" description:"the member the key belongs to (mem_…); absent for a key of the tenant as a whole"`
	Plan        string `header:"X-Keyward-Plan" description:"the plan of the key's tenant"`
	Environment string `header:"X-Keyward-Environment" enum:"live,test" description:"the key's environment"`
	Permissions string `header:"X-Keyward-Permissions" description:"the key's effective permissions, comma-separated: those it holds and may use now; empty when none"`
}
