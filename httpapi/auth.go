package httpapi

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/verify"
)

// authenticate verifies the key the request presents, with the required
// permissions, and returns the verification's result.
func (s *server) authenticate(r *http.Request, perms []string) (verify.Result, netip.Addr, error) {
	ip := s.clientIP(r)
	key, kerr := verify.KeyFromRequest(r)
	if kerr != nil {
		return verify.Result{}, ip, kerr
	}
	res := s.verifier.Verify(r.Context(), verify.Request{Key: key, IP: ip, Permissions: perms})
	if !res.Valid() {
		return res, ip, res.Err()
	}
	return res, ip, nil
}

// managed wraps a management handler: it authenticates the request's key
// and hands the handler the caller it stands for, with the store's work
// bounded by the storage timeout; an error the handler returns is answered
// as problem+json.
func (s *server) managed(h func(http.ResponseWriter, *http.Request, manage.Caller) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, ip, err := s.authenticate(r, nil)
		if err == nil {
			ctx, cancel := context.WithTimeout(r.Context(), s.storageTimeout)
			defer cancel()
			r = r.WithContext(ctx)
			err = h(w, r, manage.CallerFromKey(res.Key, addrString(ip)))
		}
		if err != nil {
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

type whoami struct {
	KeyID       string              `json:"key_id"`
	Name        string              `json:"name"`
	TenantID    string              `json:"tenant_id"`
	TenantSlug  string              `json:"tenant_slug"`
	Environment keyward.Environment `json:"environment"`
	Permissions []string            `json:"permissions"`
	ExpiresAt   *time.Time          `json:"expires_at"`
	RotateBy    *time.Time          `json:"rotate_by"`
}

type whoamiResponse struct {
	Success bool   `json:"success"`
	Data    whoami `json:"data"`
}

// handleWhoami answers any valid key with what it is: the connectivity check
// of the seeds.
func (s *server) handleWhoami(w http.ResponseWriter, r *http.Request) {
	res, _, err := s.authenticate(r, nil)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	k := res.Key
	if err := s.respond(w, http.StatusOK, whoamiResponse{Success: true, Data: whoami{
		KeyID: k.ID, Name: k.Name, TenantID: k.TenantID, TenantSlug: res.Tenant.Slug,
		Environment: k.Environment, Permissions: k.Permissions, ExpiresAt: k.ExpiresAt, RotateBy: k.RotateBy,
	}}); err != nil {
		s.writeError(w, r, err)
	}
}

type verifyRequest struct {
	Key         string   `json:"key" description:"the key to check, as the client sent it"`
	Permissions []string `json:"permissions,omitempty" description:"permissions the request needs; all must be held"`
	IP          string   `json:"ip,omitempty" description:"the client's address, checked against the key's IP restrictions"`
	Method      string   `json:"method,omitempty"`
	Path        string   `json:"path,omitempty"`
	Referrer    string   `json:"referrer,omitempty"`
}

type verifyResponse struct {
	Valid       bool                `json:"valid"`
	Code        keyward.Code        `json:"code,omitempty" description:"the outcome when not valid"`
	Status      int                 `json:"status" description:"the HTTP status to answer the client with"`
	Detail      string              `json:"detail,omitempty"`
	KeyID       string              `json:"key_id,omitempty"`
	TenantID    string              `json:"tenant_id,omitempty"`
	Environment keyward.Environment `json:"environment,omitempty"`
	Permissions []string            `json:"permissions,omitzero" description:"the key's permissions, [] when it has none; absent when the key is refused before they are known"`
	ExpiresAt   *time.Time          `json:"expires_at,omitempty"`
	RateLimit   *struct{}           `json:"ratelimit" description:"rate-limit state; null until rate limits are configured"`
	RequestID   string              `json:"request_id"`
}

// handleVerify checks a key for another service. The caller needs
// keyward:verify, or to be a root key; only keys of the system tenant may
// hold either, so no tenant's key can probe another tenant's keys.
func (s *server) handleVerify(w http.ResponseWriter, r *http.Request) {
	caller, ip, err := s.authenticate(r, nil)
	if err == nil && !caller.Key.HasPermission(keyward.PermVerify) && !manage.CallerFromKey(caller.Key, addrString(ip)).Root() {
		err = keyward.Errorf(keyward.CodeInsufficientPermissions,
			"This key cannot verify other keys: it needs the %q permission, or to be a root key.", keyward.PermVerify)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in verifyRequest
	if err := decode(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	req := verify.Request{Key: in.Key, Permissions: in.Permissions}
	if in.IP != "" {
		if req.IP, err = netip.ParseAddr(in.IP); err != nil {
			s.writeError(w, r, keyward.FieldErrorf("ip", "%q is not an IP address", in.IP))
			return
		}
		req.IP = req.IP.Unmap()
	}
	res := s.verifier.Verify(r.Context(), req)
	out := verifyResponse{Valid: res.Valid(), Code: res.Code, Status: http.StatusOK, Detail: res.Detail, RequestID: requestID(w)}
	if !out.Valid {
		out.Status = res.Code.Status()
	}
	if res.Key != nil && res.Code.Status() != http.StatusUnauthorized {
		out.KeyID, out.TenantID, out.Environment, out.Permissions, out.ExpiresAt =
			res.Key.ID, res.Key.TenantID, res.Key.Environment, res.Key.Permissions, res.Key.ExpiresAt
		if out.Permissions == nil {
			out.Permissions = []string{}
		}
	}
	if err := s.respond(w, http.StatusOK, out); err != nil {
		s.writeError(w, r, err)
	}
}

type forwardAuthRequest struct {
	Permissions string `query:"permissions" description:"comma-separated permissions the protected location needs"`
	APIKey      string `header:"X-API-Key"`
	Auth        string `header:"Authorization" description:"Bearer <key>"`
	Method      string `header:"X-Forwarded-Method" description:"the original request's method (or X-Original-Method)"`
	URI         string `header:"X-Forwarded-Uri" description:"the original request's URI (or X-Original-URI)"`
}

// handleForwardAuth verifies the key of a request that a proxy is about to
// pass on. It answers 200 with the identity headers, or the outcome's status
// and problem body, which the proxy returns to its client. The presenting
// rules apply to the original request: a key in its query string
// (X-Forwarded-Uri or X-Original-URI) is refused as it would be here.
func (s *server) handleForwardAuth(w http.ResponseWriter, r *http.Request) {
	var perms []string
	if r.URL.RawQuery != "" {
		for _, p := range strings.Split(r.URL.Query().Get("permissions"), ",") {
			if p = strings.TrimSpace(p); p != "" {
				perms = append(perms, p)
			}
		}
	}
	res, _, err := s.authenticate(originalRequest(r), perms)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// One backing array for the four values: this path runs on every
	// request a proxy lets through.
	v := &[4]string{res.Key.ID, res.Key.TenantID, string(res.Key.Environment), strings.Join(res.Key.Permissions, ",")}
	h := w.Header()
	h["X-Keyward-Key-Id"] = v[0:1:1]
	h["X-Keyward-Tenant"] = v[1:2:2]
	h["X-Keyward-Environment"] = v[2:3:3]
	h["X-Keyward-Permissions"] = v[3:4:4]
	w.WriteHeader(http.StatusOK)
}

// originalRequest is r with the URL of the request a proxy asks about, when
// the proxy names one with a query string; otherwise r itself.
func originalRequest(r *http.Request) *http.Request {
	uri := r.Header.Get("X-Forwarded-Uri")
	if uri == "" {
		uri = r.Header.Get("X-Original-Uri")
	}
	if !strings.Contains(uri, "?") {
		return r
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return r
	}
	orig := r.Clone(r.Context())
	orig.URL = u
	return orig
}
