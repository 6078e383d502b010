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
	"net/http"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
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
	Status   keyward.KeyStatus `json:"status" enum:"active,disabled,expired,revoked"`
	LastUsed *time.Time        `json:"last_used"`
}

// KeyOf shows k as of now.
func KeyOf(k *keyward.Key, now time.Time) Key {
	return Key{Key: k, Status: k.StatusAt(now), LastUsed: k.LastUsedAt}
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
	Environment keyward.Environment `json:"environment,omitempty"`
	Permissions []string            `json:"permissions,omitzero" description:"the key's permissions, [] when it has none; absent when the key is refused before they are known"`
	ExpiresAt   *time.Time          `json:"expires_at,omitempty"`
	RateLimit   *struct{}           `json:"ratelimit" description:"rate-limit state; null until rate limits are configured"`
	RequestID   string              `json:"request_id,omitempty" description:"the X-Request-Id of the answer; absent from the command line's"`
}

// VerificationOf is the answer for res, in the answer whose X-Request-Id
// is requestID ("" on the command line).
func VerificationOf(res verify.Result, requestID string) Verification {
	out := Verification{Valid: res.Valid(), Code: res.Code, Status: http.StatusOK, Detail: apikey.Redact(res.Detail), RequestID: requestID}
	if !out.Valid {
		out.Status = res.Code.Status()
	}
	if k := res.Key; k != nil && out.Status != http.StatusUnauthorized {
		out.KeyID, out.Name, out.TenantID, out.Environment, out.Permissions, out.ExpiresAt =
			k.ID, k.Name, k.TenantID, k.Environment, k.Permissions, k.ExpiresAt
		if out.Permissions == nil {
			out.Permissions = []string{}
		}
	}
	return out
}
