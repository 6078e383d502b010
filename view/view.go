// Package view owns the shapes in which Keyward shows its answers, which
// the HTTP API and the command line's --json output both print: one type
// per answer, and one text per notice, so that the two cannot drift apart,
// and the OpenAPI document, made from these types, describes both.
//
// It is a package of its own, not part of the root package, because a view
// is how a domain value is shown rather than the value itself, and because
// the verification's view is made from a verify.Result, which the root
// package cannot import.
package view

import (
	"fmt"
	"net/http"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/verify"
)

// StoreNow is the notice that comes with every plaintext key, in the API's
// answer and on the command line's stderr.
const StoreNow = "Store it now: it is shown only once and cannot be recovered; Keyward keeps only its hash."

// KeyRevoked is the message of a revocation.
const KeyRevoked = "API key revoked successfully"

// Key is a key as Keyward shows it: its status as of now (expired once its
// expiry has passed, keyward.Key.StatusAt), and last_used, which repeats
// last_used_at in the name the seeds' list answers use.
type Key struct {
	*keyward.Key
	Status      keyward.KeyStatus `json:"status" enum:"active,disabled,expired,revoked"`
	LastUsed    *time.Time        `json:"last_used"`
	RotationDue bool              `json:"rotation_due" description:"true once rotate_by has passed while the key still works: replace it"`
	// SharingSuspected is true when the key has Sharing evidence.
	SharingSuspected bool `json:"sharing_suspected" description:"true once the key was seen from more client networks, user agents or referrers in a day than allowed; sharing holds the evidence"`
}

// KeyOf shows k as of now.
func KeyOf(k *keyward.Key, now time.Time) Key {
	return Key{Key: k, Status: k.StatusAt(now), LastUsed: k.LastUsedAt, RotationDue: k.RotationDue(now), SharingSuspected: k.Sharing != nil}
}

// KeysOf shows a page of keys as of now; an empty page is [], never null.
func KeysOf(ks []*keyward.Key, now time.Time) []Key {
	out := make([]Key, len(ks))
	for i, k := range ks {
		out[i] = KeyOf(k, now)
	}
	return out
}

// CreatedKey is a new key with its plaintext, shown this once.
type CreatedKey struct {
	Key
	Plaintext string `json:"key" description:"the plaintext key: store it now, it is never shown again" example:"sk_live_…"`
}

// List is one page of a list: success, the page's items (an empty list,
// never null) and the cursor of the next page.
type List[T any] struct {
	Success    bool   `json:"success"`
	Data       []T    `json:"data"`
	NextCursor string `json:"next_cursor" description:"empty on the last page"`
}

// ListOf is the page data, followed by the page whose cursor is next.
func ListOf[T any](data []T, next string) List[T] {
	if data == nil {
		data = []T{}
	}
	return List[T]{Success: true, Data: data, NextCursor: next}
}

// Message is an answer that is only a message, such as a revocation's.
type Message struct {
	Success bool   `json:"success"`
	Message string `json:"message" example:"API key revoked successfully"`
}

// Verification is the outcome of checking a key for someone else: the
// answer of POST /v1/verify and of keyward verify --json. The key's
// identity (key_id to expires_at) is shown once the key authenticated,
// that is with status 200 or 403, never with 401: a refused key that does
// not authenticate says nothing of whose it is.
type Verification struct {
	Valid       bool                `json:"valid"`
	Code        keyward.Code        `json:"code,omitempty" description:"the outcome when not valid"`
	Status      int                 `json:"status" description:"the HTTP status to answer the client with"`
	Detail      string              `json:"detail,omitempty"`
	KeyID       string              `json:"key_id,omitempty"`
	Name        string              `json:"name,omitempty"`
	TenantID    string              `json:"tenant_id,omitempty"`
	TenantSlug  string              `json:"tenant_slug,omitempty" description:"the slug of the key's tenant; absent when the key is refused before its tenant is known"`
	Environment keyward.Environment `json:"environment,omitempty"`
	Permissions []string            `json:"permissions,omitzero" description:"the key's effective permissions: those it holds and may use now, [] when none; absent when the key is refused before they are known"`
	Withheld    []verify.Withheld   `json:"withheld,omitzero" description:"the permissions the key holds but may not use now, and what withholds each (its member, or its tenant's plan); [] when none, absent with permissions"`
	Member      *KeyMember          `json:"member,omitempty" description:"the member the key belongs to; absent for a key of the tenant as a whole"`
	Plan        string              `json:"plan,omitempty" description:"the plan of the key's tenant"`
	ExpiresAt   *time.Time          `json:"expires_at,omitempty"`
	RotationDue bool                `json:"rotation_due,omitempty" description:"true once the key's rotate_by has passed: replace it"`
	Sunset      *time.Time          `json:"sunset,omitempty" description:"when the key stops working, while it is in a rotation's grace period or close to its expiry (answer it with the Sunset header)"`
	Deprecation *time.Time          `json:"deprecation,omitempty" description:"with sunset: when the key was deprecated, by its rotation or by the start of the notice before its expiry (answer it with the Deprecation header, @ and Unix seconds)"`
	Route       string              `json:"route,omitempty" description:"the route of the server's route policy that decided: its pattern, or default: deny or default: authenticated; absent without a policy or a path"`
	RateLimit   *RateLimitState     `json:"ratelimit" description:"the key's rate limits after this request, as the RateLimit headers give them; null when the key has none or was refused before they were checked"`
	RetryAfter  int64               `json:"retry_after,omitempty" description:"with too_many_failed_attempts, rate_limited and quota_exceeded (when the quota resets or the credits are refilled): how many seconds the client must wait before it tries again (answer it with Retry-After)"`
	RequestID   string              `json:"request_id,omitempty" description:"the X-Request-Id of the answer; absent from the command line's"`
	Metered     bool                `json:"metered,omitempty" description:"true when the key's requests are counted (rate limits, a quota or credits): the answer depends on the requests before it, so a caller that caches answers must ask about each request of this key"`
}

// VerificationOf is the answer for res, in the answer whose X-Request-Id
// is requestID ("" on the command line).
func VerificationOf(res verify.Result, requestID string) Verification {
	out := Verification{Valid: res.Valid(), Code: res.Code, Status: http.StatusOK, Detail: apikey.Redact(res.Detail), RequestID: requestID,
		RetryAfter: verify.RetrySeconds(res.RetryAfter)}
	if !out.Valid {
		out.Status = res.Code.Status()
	}
	if res.Route != nil {
		out.Route = res.Route.String()
	}
	if res.RateLimit != nil {
		out.RateLimit = RateLimitOf(res.RateLimit)
	}
	if k := res.Key; k != nil && out.Status != http.StatusUnauthorized {
		out.KeyID, out.Name, out.TenantID, out.Environment, out.Permissions, out.ExpiresAt =
			k.ID, k.Name, k.TenantID, k.Environment, k.Permissions, k.ExpiresAt
		out.RotationDue = res.RotationDue
		if !res.Sunset.IsZero() {
			// Copies, made only for a key with a notice: a pointer
			// into res would move every res to the heap.
			sunset, deprecation := res.Sunset, res.Deprecation
			out.Sunset, out.Deprecation = &sunset, &deprecation
		}
		if a := res.Access; a != nil {
			out.Permissions, out.Withheld, out.Member, out.Plan = a.Permissions, withheldOf(a), KeyMemberOf(k, a), a.Plan.Name
			out.TenantSlug, out.Metered = a.Tenant.Slug, a.Metered()
		}
		if out.Permissions == nil {
			out.Permissions = []string{}
		}
	}
	return out
}

// RateLimitState is the standing of a key's rate limits after a request: the
// tightest one, as X-RateLimit-Limit, -Remaining and -Reset give it, and
// each one, as RateLimit-Policy and RateLimit do.
type RateLimitState struct {
	Limit     int64               `json:"limit" description:"the tightest limit's quota: the requests it allows at once"`
	Remaining int64               `json:"remaining" description:"the requests the tightest limit allows now"`
	Reset     int64               `json:"reset" description:"seconds until the tightest limit is full again"`
	Policy    string              `json:"policy" description:"the RateLimit-Policy header's value" example:"\"burst\";q=10;w=1, \"tenant-hourly\";q=5000;w=3600"`
	Header    string              `json:"header" description:"the RateLimit header's value" example:"\"burst\";r=9;t=1, \"tenant-hourly\";r=4999;t=1"`
	Limits    []RateLimitStanding `json:"limits" description:"each limit, in the order of the headers: the key's own, then its tenant's (tenant-…)"`
}

// RateLimitStanding is one rate limit after a request.
type RateLimitStanding struct {
	Name      string `json:"name"`
	Quota     int64  `json:"quota" description:"the requests it allows at once"`
	Window    int64  `json:"window" description:"seconds it takes to refill from empty"`
	Remaining int64  `json:"remaining"`
	Reset     int64  `json:"reset" description:"seconds until it is full again"`
}

// RateLimitOf shows a rate-limit decision.
func RateLimitOf(d *limit.Decision) *RateLimitState {
	t := d.States[d.Tightest]
	out := &RateLimitState{Limit: t.Limit, Remaining: t.Remaining, Reset: limit.Seconds(t.Reset),
		Policy: string(limit.AppendPolicy(nil, d)), Header: string(limit.AppendRateLimit(nil, d)),
		Limits: make([]RateLimitStanding, d.N)}
	for i, st := range d.States[:d.N] {
		out.Limits[i] = RateLimitStanding{Name: st.Name, Quota: st.Limit, Window: limit.Seconds(st.Window), Remaining: st.Remaining, Reset: limit.Seconds(st.Reset)}
	}
	return out
}

// KeyMember is the member a key belongs to, as a verification and
// /v1/whoami show it.
type KeyMember struct {
	ID     string       `json:"id"`
	Role   keyward.Role `json:"role,omitempty" enum:"owner,admin,developer,viewer" description:"the member's role; absent once the member was removed"`
	Status string       `json:"status" enum:"active,suspended,removed" description:"suspended or removed: the key may use none of its permissions"`
}

// KeyMemberOf is the member that key k, whose access is a, belongs to, or
// nil when it belongs to none.
func KeyMemberOf(k *keyward.Key, a *verify.Access) *KeyMember {
	switch {
	case k.MemberID == "":
		return nil
	case a.Member == nil:
		return &KeyMember{ID: k.MemberID, Status: "removed"}
	}
	return &KeyMember{ID: a.Member.ID, Role: a.Member.Role, Status: string(a.Member.Status)}
}

// withheldOf is what a withholds, [] when nothing.
func withheldOf(a *verify.Access) []verify.Withheld {
	if a.Withheld == nil {
		return []verify.Withheld{}
	}
	return a.Withheld
}

// Whoami is the answer of GET /v1/whoami: the key that asks, and what it
// may do now.
type Whoami struct {
	KeyID       string              `json:"key_id"`
	Name        string              `json:"name"`
	TenantID    string              `json:"tenant_id"`
	TenantSlug  string              `json:"tenant_slug"`
	Environment keyward.Environment `json:"environment"`
	Member      *KeyMember          `json:"member" description:"the member the key belongs to; null for a key of the tenant as a whole"`
	Plan        string              `json:"plan" description:"the plan of the key's tenant"`
	Permissions []string            `json:"permissions" description:"the key's effective permissions: those it holds and may use now"`
	Withheld    []verify.Withheld   `json:"withheld" description:"the permissions the key holds but may not use now, and what withholds each: its member (who no longer holds it, is suspended or was removed) or its tenant's plan"`
	ExpiresAt   *time.Time          `json:"expires_at"`
	RotateBy    *time.Time          `json:"rotate_by"`
	RotationDue bool                `json:"rotation_due" description:"true once rotate_by has passed: replace the key"`
	Sunset      *time.Time          `json:"sunset" description:"when the key stops working, while it is in a rotation's grace period or close to its expiry; null otherwise"`
}

// WhoamiOf is the answer for res, the verification of a valid key.
func WhoamiOf(res verify.Result) Whoami {
	k, a := res.Key, res.Access
	w := Whoami{
		KeyID: k.ID, Name: k.Name, TenantID: k.TenantID, TenantSlug: a.Tenant.Slug, Environment: k.Environment,
		Member: KeyMemberOf(k, a), Plan: a.Plan.Name, Permissions: a.Permissions, Withheld: withheldOf(a),
		ExpiresAt: k.ExpiresAt, RotateBy: k.RotateBy, RotationDue: res.RotationDue,
	}
	if !res.Sunset.IsZero() {
		sunset := res.Sunset
		w.Sunset = &sunset
	}
	if w.Permissions == nil {
		w.Permissions = []string{}
	}
	return w
}

// MemberRemoved is the message of a member's removal, which says what
// became of their keys.
func MemberRemoved(r *keyward.MemberRemoval) string {
	switch {
	case r.TransferredTo != "":
		return fmt.Sprintf("Member %s removed; %s moved to member %s.", r.Member.ID, plural(r.Moved, "key"), r.TransferredTo)
	case r.Revoked > 0:
		return fmt.Sprintf("Member %s removed; %s revoked.", r.Member.ID, plural(r.Revoked, "key"))
	}
	return fmt.Sprintf("Member %s removed; they had no unrevoked key.", r.Member.ID)
}

// Removal is the answer of a member's removal: the member as it was, how
// many of their keys were revoked or moved, and a message that says so.
type Removal struct {
	Success bool `json:"success"`
	keyward.MemberRemoval
	Message string `json:"message" example:"Member mem_… removed; 2 keys revoked."`
}

// RemovalOf is the answer for r.
func RemovalOf(r *keyward.MemberRemoval) Removal {
	return Removal{Success: true, MemberRemoval: *r, Message: MemberRemoved(r)}
}

// PermissionRemoved is the message of a permission's removal from the
// catalogue.
func PermissionRemoved(name string) string {
	return fmt.Sprintf("Permission %s removed from the catalogue.", name)
}

// plural is n things, such as "1 key" or "2 keys".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
