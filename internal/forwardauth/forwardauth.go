// Package forwardauth is forward-auth's decision, apart from any HTTP
// stack: the proxy's settings (the query string of its auth request), the
// original request it asks about (X-Forwarded-Uri or X-Original-URI,
// X-Forwarded-Method or X-Original-Method), --require-tls, and the
// verification of the key that request presents, with the route policy.
// The HTTP API (httpapi, on net/http) and the auth listener (gateway, on
// fasthttp) both answer by it, so that forward-auth answers the same on
// either; each fills a Request from its own request, calls Check and
// writes the Answer.
package forwardauth

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/reqlog"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/verify"
)

// Checker decides forward-auth requests. It is safe for concurrent use.
type Checker struct {
	// Verifier verifies the keys.
	Verifier *verify.Verifier
	// Routes is the route policy (serve --routes); nil for none, when the
	// proxy's permissions parameter says what a location needs.
	Routes *policy.File
	// RequireTLS refuses an original request that did not come over TLS
	// (serve --require-tls) with TLSRequired.
	RequireTLS bool
	// TLSRequired is the refusal of RequireTLS, the front's own words.
	TLSRequired *keyward.Error
}

// Request is what Check reads of a proxy's auth request.
type Request struct {
	// Method is the auth request's own method, and URL its own URL,
	// whose query string holds the proxy's settings.
	Method string
	URL    *url.URL
	// Header is the auth request's header, in canonical form: Check
	// reads X-Api-Key, Authorization, Referer, Origin, X-Forwarded-Uri,
	// X-Original-Uri, X-Forwarded-Method and X-Original-Method. A front
	// on another HTTP stack may give those alone.
	Header http.Header
	// ClientIP is the original client's address, as the trusted proxies
	// say it (forwarded.Proxies.ClientIP), and TLS whether the original
	// request came over TLS (forwarded.Proxies.Secure).
	ClientIP netip.Addr
	TLS      bool
}

// Answer is what Check decided of an auth request. A front may reuse one
// for another request once it is done with it: Check resets it.
type Answer struct {
	// Mode is how to answer, from the proxy's settings.
	Mode Mode
	// Refusal is the refusal, nil when the request passes. With
	// AuthRequest, a refusal is answered with a bare 401 (and
	// Cache-Control: no-store) that leads nginx to its error_page
	// location; otherwise as problem+json with its status.
	Refusal *keyward.Error
	// Misconfigured is true when Refusal is about the proxy's own
	// settings, which the front logs at WARN: the operator must fix
	// them.
	Misconfigured bool
	// Result is the verification: for a request that passes, the key
	// (Result.Key, Result.Access: the identity headers, identity.Set) or
	// a public route (Result.Public), answered 200 with no identity
	// headers. Result.RateLimit, when not nil, is the decision of the
	// key's rate limits, whose headers (limit.SetHeaders) go on the
	// answer, whether it passes or not.
	Result verify.Result

	req  verify.Request
	rate limit.Decision
	url  url.URL // the original request's, when parseRequestURI splits it
}

// Reset drops what a holds of a request (views of its bytes, with a
// front on fasthttp), before a goes back to a pool.
func (a *Answer) Reset() { *a = Answer{} }

// Logged fills e with what a decided, for the request log: the original
// request's method, target, address and referrer, the key and the
// outcome, with status, the status the front answered.
func (a *Answer) Logged(e *reqlog.Entry, status int) {
	e.Verified(keyward.SurfaceForwardAuth, &a.Result, &a.req)
	e.Status = status
	if a.Refusal != nil {
		e.Code = a.Refusal.Code
	}
}

// Check decides in into a. The proxy's settings fail closed: one that
// forward-auth cannot read, permissions in the query string beside a
// policy, or no original URI or method for a policy to decide by, is a
// 400 invalid_request that names it (Misconfigured). The presenting rules
// apply to the original request: a key anywhere in its URL, or in the
// auth request's own query string, is refused. The key's restrictions are
// checked against the original request: its method (else, without a
// policy, the auth request's own), its URI as the proxy sends it, and its
// Referer and Origin, which proxies pass on. With a route policy, the
// policy decides what the original request needs. nginx's second ask,
// for its error_page (ErrorPage), checks without counting, and a request
// that passes then is refused 409 (see ErrorPage).
func (c *Checker) Check(ctx context.Context, in *Request, a *Answer) {
	a.Mode, a.Refusal, a.Misconfigured, a.Result = Plain, nil, false, verify.Result{}
	var fs settings
	var kerr *keyward.Error
	var pol *policy.Policy
	if c.Routes != nil {
		pol = c.Routes.Policy()
	}
	u := in.URL
	if in.URL.RawQuery != "" {
		fs, kerr = settingsOf(in.URL.RawQuery)
		// Forward-auth's own query string is checked as well as the
		// original request's URL: a key there would be repeated in the
		// answer (as a permission it lacks) and in the proxy's logs.
		if keyErr := verify.CheckURL(in.URL, c.Verifier.Format()); keyErr != nil {
			kerr = keyErr
		}
	}
	a.Mode = fs.mode
	if kerr == nil && pol != nil && fs.permsGiven {
		kerr = &keyward.Error{Code: keyward.CodeInvalidRequest, Message: detailForwardPolicyPerms}
	}
	var target string
	if kerr == nil {
		u, target, kerr = originalURL(in.Header, in.URL, &a.url)
	}
	// Without a policy, the method of the auth request stands for the
	// original's, which proxies that send none copy; a policy decides by
	// the method, and nginx's auth_request asks with GET whatever the
	// original was, so with a policy the proxy must name it.
	var method string
	if kerr == nil {
		method, kerr = originalMethod(in.Header)
	}
	if method == "" && pol == nil {
		method = in.Method
	}
	if kerr == nil && pol != nil && target == "" {
		kerr = &keyward.Error{Code: keyward.CodeInvalidRequest, Message: detailForwardNoURI}
	}
	if kerr == nil && pol != nil && method == "" {
		kerr = &keyward.Error{Code: keyward.CodeInvalidRequest, Message: detailForwardNoMethod}
	}
	if kerr != nil {
		a.Refusal, a.Misconfigured = kerr, true
		return
	}
	// The original request's scheme, as the trusted proxy says it, must
	// be https when the server requires TLS; a route's tls: required is
	// the verifier's to check.
	if c.RequireTLS && !in.TLS {
		a.Refusal = c.TLSRequired
		return
	}
	counting := verify.CountNow
	if fs.mode == ErrorPage {
		counting = verify.CheckOnly
	}
	a.req = verify.Request{
		Permissions: fs.perms, Method: method, Target: target, IP: in.ClientIP, TLS: in.TLS,
		Referer: headerValue(in.Header, "Referer"), Origin: headerValue(in.Header, "Origin"), Policy: pol, Counting: counting,
		RateLimit: &a.rate,
	}
	a.Result = c.Verifier.VerifyPresented(ctx, in.Header, u, &a.req)
	switch {
	case !a.Result.Valid():
		a.Refusal = a.Result.Err()
	case fs.mode == ErrorPage:
		a.Refusal = &keyward.Error{Code: keyward.CodeConflict, Message: detailForwardPassedNow}
	}
}

// headerValue is h's first value under the canonical name, read without
// Header.Get's canonicalization.
func headerValue(h http.Header, name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Mode is how forward-auth answers, from the nginx parameter of the
// proxy's settings.
type Mode int

const (
	// Plain answers a refusal with its own status, body and headers.
	Plain Mode = iota
	// AuthRequest answers every refusal with a bare 401, the only
	// refusal status besides 403 that nginx's auth_request passes on: any
	// other becomes a 500 and a line in nginx's error log that holds the
	// request line.
	AuthRequest
	// ErrorPage answers as Plain, for nginx's second request
	// after a refusal; a request that passes now is answered 409, since
	// nginx would send a 200 to its client without passing the request on.
	ErrorPage
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

// settings are the settings a proxy gives forward-auth in its query
// string.
type settings struct {
	mode  Mode
	perms []string
	// permsGiven is true when the query string has a permissions
	// parameter, permissions=none included.
	permsGiven bool
}

// settingsOf reads the query string q of a forward-auth request. It
// fails closed: an unknown or repeated parameter, an empty permissions, an
// unknown mode or a query that cannot be read is an error that says which
// setting of the proxy is wrong, so that a typo cannot turn a check off.
// The mode is read even then, from the first valid nginx parameter, so
// that nginx gets a status it passes on.
func settingsOf(q string) (settings, *keyward.Error) {
	var fs settings
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
				fs.mode = AuthRequest
			case "error_page":
				fs.mode = ErrorPage
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

// originalURL returns the URL of the request a proxy asks about, from
// X-Forwarded-Uri or X-Original-URI in h, or own, the auth request's own
// URL, when the proxy names none, and the original request's target: the header's value as sent
// (the path and query of an absolute URI), or "" when there is none. The
// headers fail closed: one sent twice, both with different values, or a
// URI that cannot be read is an error that says which setting of the proxy
// is wrong, and never repeats the URI. The URL is dst, unless the URI
// needs url.ParseRequestURI (see parseRequestURI).
func originalURL(h http.Header, own, dst *url.URL) (*url.URL, string, *keyward.Error) {
	uri, kerr := forwardedValue(h, "X-Forwarded-Uri", "X-Original-Uri", "X-Forwarded-Uri", "X-Original-URI", "$request_uri")
	if kerr != nil || uri == "" {
		return own, "", kerr
	}
	shown := "X-Forwarded-Uri"
	if len(h["X-Forwarded-Uri"]) == 0 {
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
	u, err := parseRequestURI(uri, dst)
	if err != nil {
		return nil, "", keyward.Errorf(keyward.CodeInvalidRequest, detailForwardBadURI, shown, shown)
	}
	return u, target, nil
}

// parseRequestURI is url.ParseRequestURI, without most of its cost for
// the URI that comes with every forward-auth request: a URI that begins
// with one slash, whose path holds only characters that a path never
// escapes, and whose query holds no control character, is split at its
// first '?' into dst, as ParseRequestURI splits it; any other is
// ParseRequestURI's.
// TestParseRequestURI holds the two to the same answers.
func parseRequestURI(uri string, dst *url.URL) (*url.URL, error) {
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
	*dst = url.URL{Path: path, RawQuery: query}
	return dst, nil
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
