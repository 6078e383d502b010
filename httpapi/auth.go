package httpapi

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/identity"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/verify"
	"github.com/keyward/keyward/view"
)

// authenticate verifies the key of a request to a route of this API, for
// require: the request's own method, target, Referer and Origin are
// checked. The request is not counted yet (verify.CountLater): require
// has it counted by count once the caller is authorized, so that a
// request refused for its role costs nothing. The request as verified is
// written into req, for count.
func (s *server) authenticate(w http.ResponseWriter, r *http.Request, req *verify.Request) (verify.Result, netip.Addr, error) {
	target := r.RequestURI
	if target == "" || target[0] != '/' {
		// An absolute-form or * target: the path the server routed by.
		target = r.URL.RequestURI()
	}
	*req = verify.Request{
		Method: r.Method, Target: target, Referer: r.Header.Get("Referer"), Origin: r.Header.Get("Origin"),
		Counting: verify.CountLater,
	}
	return s.authenticateURL(w, r, r.URL, req)
}

// authenticateURL verifies the key that r presents in its header or in u,
// the URL of the original request (for forward-auth, that of the request a
// proxy asks about), with what req says of that request; the key and the
// client's address are set in req here.
//
// Unless req.Counting says otherwise, the key's rate limits count the
// request, and their RateLimit headers (limit.SetHeaders) are set on w's
// answer, allowed or refused.
func (s *server) authenticateURL(w http.ResponseWriter, r *http.Request, u *url.URL, req *verify.Request) (verify.Result, netip.Addr, error) {
	ip := s.clientIP(r)
	req.IP = ip
	d := decisions.Get().(*limit.Decision)
	defer decisions.Put(d)
	req.RateLimit = d
	res := s.verifier.VerifyPresented(r.Context(), r.Header, u, req)
	req.RateLimit = nil // d goes back to the pool
	return res, ip, rateLimited(w, &res)
}

// count counts a request that authenticate verified (req, res), once the
// caller is authorized, against the key's rate limits, quotas and
// credits, and sets the RateLimit headers on w's answer. It returns the
// refusal, if any.
func (s *server) count(w http.ResponseWriter, r *http.Request, req *verify.Request, res *verify.Result) error {
	d := decisions.Get().(*limit.Decision)
	defer decisions.Put(d)
	req.RateLimit = d
	s.verifier.Count(r.Context(), req, res)
	req.RateLimit = nil
	return rateLimited(w, res)
}

// rateLimited sets the RateLimit headers of res's rate-limit decision, if
// it has one, on w's answer, and returns res's refusal, if any.
func rateLimited(w http.ResponseWriter, res *verify.Result) error {
	if res.RateLimit != nil {
		limit.SetHeaders(w.Header(), res.RateLimit)
		res.RateLimit = nil // its decision goes back to the pool
	}
	if !res.Valid() {
		return res.Err()
	}
	return nil
}

// decisions keeps the rate-limit decisions of requests, which their
// headers are written from.
var decisions = sync.Pool{New: func() any { return new(limit.Decision) }}

// require is the one middleware that enforces what a route requires, need
// (declared in routes): a route that needs no key refuses one in its URL
// (keyless); any other authenticates the request's key, has manage.Authorize
// decide whether the caller it stands for meets need, and hands the
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
		var req verify.Request
		res, ip, err := s.authenticate(w, r, &req)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		c := manage.CallerOf(res, addrString(ip))
		if err := manage.Authorize(c, need); err != nil {
			s.writeError(w, r, err)
			return
		}
		if err := s.count(w, r, &req, &res); err != nil {
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

// addrString is a client address for the audit log: "" when unknown.
func addrString(ip netip.Addr) string {
	if !ip.IsValid() {
		return ""
	}
	return ip.String()
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

type verifyRequest struct {
	Key         string   `json:"key" description:"the key to check, as the client sent it"`
	Permissions []string `json:"permissions,omitempty" description:"permissions the request needs; all must be held"`
	IP          string   `json:"ip,omitempty" description:"the client's address, checked against the key's IP restrictions"`
	Method      string   `json:"method,omitempty" description:"the original request's method, checked against the key's endpoint restrictions and the route policy"`
	Path        string   `json:"path,omitempty" description:"the original request's path (and query string), as received: checked against the key's endpoint restrictions, and, when the server has a route policy (serve --routes), the policy decides what the request needs, beside permissions"`
	Referrer    string   `json:"referrer,omitempty" description:"the original request's Referer header, checked against the key's referrer restrictions"`
	Origin      string   `json:"origin,omitempty" description:"the original request's Origin header, checked against the key's referrer restrictions when there is no referrer"`
	TLS         bool     `json:"tls,omitempty" description:"true when the original request came over TLS (HTTPS): a route of the policy with tls: required refuses one without it, 403 tls_required"`
}

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
	req := verify.Request{Key: in.Key, Permissions: in.Permissions, Method: in.Method, Target: in.Path, Referer: in.Referrer, Origin: in.Origin, TLS: in.TLS}
	if in.Path != "" && s.policyFile != nil {
		req.Policy = s.policyFile.Policy()
	}
	if in.IP != "" {
		var err error
		if req.IP, err = netip.ParseAddr(in.IP); err != nil {
			s.writeError(w, r, keyward.FieldErrorf("ip", "%q is not an IP address", in.IP))
			return
		}
		req.IP = req.IP.Unmap()
	}
	// From the pool, as for forward-auth: one allocated per request
	// (430 bytes) escaped to the heap. The answer copies what it shows of
	// the decision before d goes back.
	d := decisions.Get().(*limit.Decision)
	defer decisions.Put(d)
	req.RateLimit = d
	res, err := manage.Verify(r.Context(), admissionOf(r).caller, s.verifier, req)
	if err != nil {
		s.writeError(w, r, err)
		return
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

// forwardMode is how forward-auth answers: see the nginx query parameter.
type forwardMode int

const (
	// modePlain answers a refusal with its own status, body and headers.
	modePlain forwardMode = iota
	// modeAuthRequest answers every refusal with a bare 401, the only
	// refusal status besides 403 that nginx's auth_request passes on: any
	// other becomes a 500 and a line in nginx's error log that holds the
	// request line.
	modeAuthRequest
	// modeErrorPage answers as modePlain, for nginx's second request
	// after a refusal; a request that passes now is answered 409, since
	// nginx would send a 200 to its client without passing the request on.
	modeErrorPage
)

// Public details of forward-auth's own settings.
const (
	detailForwardParam = "The proxy asks /v1/forward-auth with %s, which it does not know: " +
		"it takes only permissions and nginx. %sFix the address the proxy sends forward-auth requests to " +
		"(nginx: proxy_pass in the auth_request location; Traefik: forwardAuth.address; " +
		"Caddy: the uri of forward_auth, which passes the request's own query string on unless the uri has one, if only a ?)."
	detailForwardTwice = "The proxy asks /v1/forward-auth with the %s parameter more than once: " +
		"give it once%s, in the address the proxy sends forward-auth requests to (nginx: proxy_pass)."
	detailForwardEmptyPerms = "The proxy asks /v1/forward-auth with an empty permissions parameter: " +
		"name the permissions the location needs (permissions=contacts:read,messages:send), " +
		"or say permissions=none (or leave the parameter out) if it needs none. In nginx, check the variable that sets it."
	detailForwardNoneAmong = "The proxy asks /v1/forward-auth with permissions=none among other permissions: " +
		"none stands alone, for a location that needs no permission; otherwise name only the permissions it needs."
	detailForwardNginx = "The proxy asks /v1/forward-auth with nginx=%s: use nginx=auth_request in the auth_request " +
		"location and nginx=error_page in the location that error_page 401 403 leads to."
	detailForwardQuery = "The proxy asks /v1/forward-auth with a query string that cannot be read: " +
		"separate parameters with & (not ;) and percent-encode only with %XX. Fix the address the proxy " +
		"sends forward-auth requests to (nginx: proxy_pass)."
	detailForwardRepeated = "The proxy sends %s more than once: set it once " +
		"(nginx: one proxy_set_header %s %s in the location that calls /v1/forward-auth; " +
		"Traefik sets it itself), and let no client value through."
	detailForwardDisagree = "The proxy sends %s and %s with different values: send one of them, " +
		"set by the proxy itself (nginx: proxy_set_header %s %s), or give both the same value."
	detailForwardBadURI = "The original request's URI, in %s, cannot be read: it must start with / " +
		"and percent-encode with %%XX. Have the proxy send the URI exactly as received " +
		"(nginx: proxy_set_header %s $request_uri; not $uri, which is decoded)."
	detailForwardPolicyPerms = "The proxy asks /v1/forward-auth with a permissions parameter, and this server has a " +
		"route policy (serve --routes), which decides what each request needs: remove the parameter from the address " +
		"the proxy sends forward-auth requests to (nginx: proxy_pass), and put the permissions in the routes file."
	detailForwardNoURI = "The proxy does not send the original request's URI, which this server's route policy " +
		"(serve --routes) decides by: have the proxy send it as received (nginx: proxy_set_header X-Original-URI " +
		"$request_uri; Traefik sends X-Forwarded-Uri itself)."
	detailForwardNoMethod = "The proxy does not send the original request's method, which this server's route policy " +
		"(serve --routes) decides by: have the proxy send it (nginx: proxy_set_header X-Original-Method " +
		"$request_method, since nginx asks with GET whatever the original method was; Traefik sends X-Forwarded-Method itself)."
	detailForwardPassedNow = "This request was refused a moment ago and passes now: the key changed in between, " +
		"or the proxy asks /v1/forward-auth with other settings from its auth_request location than from its " +
		"error_page location (Keyward's log names the wrong one). Send the request again; if this answer " +
		"repeats, give both locations the same settings."
)

// noPermissions is the value of forward-auth's permissions parameter for a
// location that needs none: said outright, since an empty value is more
// often a proxy's variable that was never set. It cannot be a permission's
// name by mistake: manage refuses it as one.
const noPermissions = "none"

// forwardSettings are the settings a proxy gives forward-auth in its query
// string.
type forwardSettings struct {
	mode  forwardMode
	perms []string
	// permsGiven is true when the query string has a permissions
	// parameter, permissions=none included.
	permsGiven bool
}

// forwardSettingsOf reads the query string q of a forward-auth request. It
// fails closed: an unknown or repeated parameter, an empty permissions, an
// unknown mode or a query that cannot be read is an error that says which
// setting of the proxy is wrong, so that a typo cannot turn a check off.
// The mode is read even then, from the first valid nginx parameter, so
// that nginx gets a status it passes on.
func forwardSettingsOf(q string) (forwardSettings, *keyward.Error) {
	var fs forwardSettings
	var first *keyward.Error
	fail := func(e *keyward.Error) {
		if first == nil {
			first = e
		}
	}
	var seenPerms, seenMode bool
	for q != "" {
		var pair string
		pair, q, _ = strings.Cut(q, "&")
		if pair == "" {
			continue
		}
		if strings.IndexByte(pair, ';') >= 0 {
			fail(&keyward.Error{Code: keyward.CodeInvalidRequest, Message: detailForwardQuery})
			continue
		}
		rawName, rawValue, _ := strings.Cut(pair, "=")
		name, err1 := url.QueryUnescape(rawName)
		value, err2 := url.QueryUnescape(rawValue)
		if err1 != nil || err2 != nil {
			fail(&keyward.Error{Code: keyward.CodeInvalidRequest, Message: detailForwardQuery})
			continue
		}
		switch name {
		case "permissions":
			if seenPerms {
				fail(keyward.Errorf(keyward.CodeInvalidRequest, detailForwardTwice, name, ", with the permissions separated by commas (permissions=a,b)"))
				continue
			}
			seenPerms, fs.permsGiven = true, true
			if value == noPermissions {
				continue
			}
			for _, p := range strings.Split(value, ",") {
				if p = strings.TrimSpace(p); p != "" {
					fs.perms = append(fs.perms, p)
				}
			}
			switch {
			case len(fs.perms) == 0:
				fail(&keyward.Error{Code: keyward.CodeInvalidRequest, Message: detailForwardEmptyPerms})
			case slices.Contains(fs.perms, noPermissions):
				fail(&keyward.Error{Code: keyward.CodeInvalidRequest, Message: detailForwardNoneAmong})
			}
		case "nginx":
			if seenMode {
				fail(keyward.Errorf(keyward.CodeInvalidRequest, detailForwardTwice, name, ""))
				continue
			}
			seenMode = true
			switch value {
			case "auth_request":
				fs.mode = modeAuthRequest
			case "error_page":
				fs.mode = modeErrorPage
			default:
				shown := "an unknown value"
				if plain(value) {
					shown = strconv.Quote(value)
				}
				fail(keyward.Errorf(keyward.CodeInvalidRequest, detailForwardNginx, shown))
			}
		default:
			shown, hint := "an unknown parameter", ""
			if plain(name) {
				shown = "the parameter " + strconv.Quote(name)
			}
			if known := nearestSetting(name); known != "" {
				hint = "Did you mean " + known + "? "
			}
			fail(keyward.Errorf(keyward.CodeInvalidRequest, detailForwardParam, shown, hint))
		}
	}
	return fs, first
}

// plain reports whether a proxy's setting may be repeated in an error: short
// (shorter than any key), and only letters, digits and . _ - :.
func plain(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._-:", c) >= 0) {
			return false
		}
	}
	return true
}

// nearestSetting returns the forward-auth parameter that name is a likely
// misspelling of, or "".
func nearestSetting(name string) string {
	n := strings.ToLower(name)
	for _, known := range [...]string{"permissions", "nginx"} {
		if n == known || len(n) <= 2*len(known) && editDistance(n, known) <= 3 ||
			strings.HasPrefix(n, known[:4]) {
			return known
		}
	}
	switch n {
	case "scope", "scopes", "perm", "perms", "permission", "required_permissions":
		return "permissions"
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// handleForwardAuth verifies the key of a request that a proxy is about to
// pass on. It answers 200 with the identity headers, or the outcome's status
// and problem body, which the proxy returns to its client (with nginx, in
// two steps: see forwardMode). The presenting rules apply to the original
// request: a key anywhere in its URL (X-Forwarded-Uri or X-Original-URI) is
// refused as it would be here. The key's restrictions are checked against
// the original request: its method (X-Forwarded-Method or
// X-Original-Method, else this request's own), its URI as the proxy sends
// it, and its Referer and Origin, which proxies pass on. With a route
// policy (serve --routes), the policy decides what the original request
// needs: a public route answers 200 without a key and without identity
// headers. The proxy's own settings fail closed: one that forward-auth
// cannot read, permissions in the query string beside a policy, or no
// original URI for a policy to decide by, is a 400 invalid_request that
// names it, and is logged.
func (s *server) handleForwardAuth(w http.ResponseWriter, r *http.Request) {
	var fs forwardSettings
	var kerr *keyward.Error
	var pol *policy.Policy
	if s.policyFile != nil {
		pol = s.policyFile.Policy()
	}
	u := r.URL
	if r.URL.RawQuery != "" {
		fs, kerr = forwardSettingsOf(r.URL.RawQuery)
		// Forward-auth's own query string is checked as well as the
		// original request's URL: a key there would be repeated in the
		// answer (as a permission it lacks) and in the proxy's logs.
		if keyErr := verify.CheckURL(r.URL, s.verifier.Format()); keyErr != nil {
			kerr = keyErr
		}
	}
	if kerr == nil && pol != nil && fs.permsGiven {
		kerr = &keyward.Error{Code: keyward.CodeInvalidRequest, Message: detailForwardPolicyPerms}
	}
	var target string
	if kerr == nil {
		u, target, kerr = originalURL(r)
	}
	// Without a policy, the method of the auth request stands for the
	// original's, which proxies that send none copy; a policy decides by
	// the method, and nginx's auth_request asks with GET whatever the
	// original was, so with a policy the proxy must name it.
	var method string
	if kerr == nil {
		method, kerr = originalMethod(r.Header)
	}
	if method == "" && pol == nil {
		method = r.Method
	}
	if kerr == nil && pol != nil && target == "" {
		kerr = &keyward.Error{Code: keyward.CodeInvalidRequest, Message: detailForwardNoURI}
	}
	if kerr == nil && pol != nil && method == "" {
		kerr = &keyward.Error{Code: keyward.CodeInvalidRequest, Message: detailForwardNoMethod}
	}
	if kerr != nil {
		s.log.WarnContext(r.Context(), "forward-auth: the proxy's settings are wrong", "request_id", requestID(w), "detail", apikey.Redact(kerr.Message))
		s.refuseForward(w, r, fs.mode, kerr)
		return
	}
	// The original request's scheme, as the trusted proxy says it, must
	// be https when the server requires TLS; a route's tls: required is
	// the verifier's to check.
	secure := s.secure(r)
	if s.requireTLS && !secure {
		s.refuseForward(w, r, fs.mode, errTLSRequired)
		return
	}
	// nginx's second ask, for its error_page, is about a request refused
	// and counted already: it checks again without counting.
	counting := verify.CountNow
	if fs.mode == modeErrorPage {
		counting = verify.CheckOnly
	}
	res, _, err := s.authenticateURL(w, r, u, &verify.Request{
		Permissions: fs.perms, Method: method, Target: target,
		Referer: r.Header.Get("Referer"), Origin: r.Header.Get("Origin"), Policy: pol, Counting: counting,
		TLS: secure,
	})
	if err != nil {
		s.refuseForward(w, r, fs.mode, err)
		return
	}
	if fs.mode == modeErrorPage {
		s.writeError(w, r, &keyward.Error{Code: keyward.CodeConflict, Message: detailForwardPassedNow})
		return
	}
	if res.Public {
		w.WriteHeader(http.StatusOK)
		return
	}
	identity.Set(w.Header(), &res)
	w.WriteHeader(http.StatusOK)
}

// refuseForward answers a refused forward-auth request: as problem+json
// with the refusal's status, or, for nginx's auth_request, with a bare 401
// that leads nginx to its error_page location, which asks again with
// nginx=error_page and passes that answer on.
// The second request logs what needs logging.
func (s *server) refuseForward(w http.ResponseWriter, r *http.Request, mode forwardMode, err error) {
	if mode != modeAuthRequest {
		s.writeError(w, r, err)
		return
	}
	// No WWW-Authenticate: nginx would copy it into the answer of its
	// error_page location, beside the one that answer has.
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusUnauthorized)
}

// originalURL returns the URL of the request a proxy asks about, from
// X-Forwarded-Uri or X-Original-URI, or r's own URL when the proxy names
// none, and the original request's target: the header's value as sent
// (the path and query of an absolute URI), or "" when there is none. The
// headers fail closed: one sent twice, both with different values, or a
// URI that cannot be read is an error that says which setting of the proxy
// is wrong, and never repeats the URI.
func originalURL(r *http.Request) (*url.URL, string, *keyward.Error) {
	uri, kerr := forwardedValue(r.Header, "X-Forwarded-Uri", "X-Original-Uri", "X-Forwarded-Uri", "X-Original-URI", "$request_uri")
	if kerr != nil || uri == "" {
		return r.URL, "", kerr
	}
	shown := "X-Forwarded-Uri"
	if len(r.Header["X-Forwarded-Uri"]) == 0 {
		shown = "X-Original-URI"
	}
	target := uri
	if uri[0] != '/' {
		rest, ok := strings.CutPrefix(uri, "http://")
		if !ok {
			rest, ok = strings.CutPrefix(uri, "https://")
		}
		if !ok {
			return nil, "", keyward.Errorf(keyward.CodeInvalidRequest, detailForwardBadURI, shown, shown)
		}
		target = "/"
		if i := strings.IndexAny(rest, "/?"); i >= 0 {
			target = rest[i:]
			if target[0] == '?' {
				target = "/" + target
			}
		}
	}
	u, err := parseRequestURI(uri)
	if err != nil {
		return nil, "", keyward.Errorf(keyward.CodeInvalidRequest, detailForwardBadURI, shown, shown)
	}
	return u, target, nil
}

// parseRequestURI is url.ParseRequestURI, without most of its cost for
// the URI that comes with every forward-auth request: a URI that begins
// with one slash, whose path holds only characters that a path never
// escapes, and whose query holds no control character, is split at its
// first '?' as ParseRequestURI splits it; any other is ParseRequestURI's.
// TestParseRequestURI holds the two to the same answers.
func parseRequestURI(uri string) (*url.URL, error) {
	if len(uri) < 1 || uri[0] != '/' || len(uri) > 1 && uri[1] == '/' {
		return url.ParseRequestURI(uri)
	}
	path, query, hasQuery := strings.Cut(uri, "?")
	if hasQuery && query == "" {
		return url.ParseRequestURI(uri) // ForceQuery
	}
	for i := 0; i < len(path); i++ {
		if !pathByte[path[i]] {
			return url.ParseRequestURI(uri)
		}
	}
	for i := 0; i < len(query); i++ {
		if c := query[i]; c < ' ' || c == 0x7f {
			return url.ParseRequestURI(uri)
		}
	}
	return &url.URL{Path: path, RawQuery: query}, nil
}

// pathByte holds the bytes that url.URL.EscapedPath leaves as they are:
// letters, digits, "-._~" and "$&+,;=:@/" (Go escapes the other
// sub-delimiters, "!'()*", in a path).
var pathByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~$&+,;=:@/" {
		t[c] = true
	}
	return t
}()

// originalMethod returns the original request's method, from the headers
// that name it under the rules of originalURL, or "" when there are none.
func originalMethod(h http.Header) (string, *keyward.Error) {
	return forwardedValue(h, "X-Forwarded-Method", "X-Original-Method", "X-Forwarded-Method", "X-Original-Method", "$request_method")
}

// forwardedValue returns the value that a proxy sends in header a or b
// (canonical names; shownA and shownB as documented), or "" when it sends
// neither. Either header sent twice, or both with different values, is an
// error; nginxValue is the nginx variable that sets them, for its detail.
// Empty values count as absent.
func forwardedValue(h http.Header, a, b, shownA, shownB, nginxValue string) (string, *keyward.Error) {
	va, vb := h[a], h[b]
	if len(va) == 0 && len(vb) == 0 {
		return "", nil
	}
	if len(va) > 1 {
		return "", keyward.Errorf(keyward.CodeInvalidRequest, detailForwardRepeated, shownA, shownA, nginxValue)
	}
	if len(vb) > 1 {
		return "", keyward.Errorf(keyward.CodeInvalidRequest, detailForwardRepeated, shownB, shownB, nginxValue)
	}
	var x, y string
	if len(va) == 1 {
		x = va[0]
	}
	if len(vb) == 1 {
		y = vb[0]
	}
	switch {
	case x == "":
		return y, nil
	case y == "" || x == y:
		return x, nil
	}
	return "", keyward.Errorf(keyward.CodeInvalidRequest, detailForwardDisagree, shownA, shownB, shownA, nginxValue)
}
