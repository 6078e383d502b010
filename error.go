package keyward

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"
)

// Code names an outcome or an error. It is the `code` member of every
// problem+json body and decides the HTTP status through one table.
type Code string

// Outcomes of a verification, in the order they are checked
// (docs/outcomes.md).
const (
	CodeMissingAPIKey           Code = "missing_api_key"
	CodeMalformedAPIKey         Code = "malformed_api_key"
	CodeInvalidAPIKey           Code = "invalid_api_key"
	CodeRevokedAPIKey           Code = "revoked_api_key"
	CodeExpiredAPIKey           Code = "expired_api_key"
	CodeAccountSuspended        Code = "account_suspended"
	CodeKeyDisabled             Code = "key_disabled"
	CodeEnvironmentMismatch     Code = "environment_mismatch"
	CodeIPNotAllowed            Code = "ip_not_allowed"
	CodeReferrerNotAllowed      Code = "referrer_not_allowed"
	CodeEndpointNotAllowed      Code = "endpoint_not_allowed"
	CodePlanNotEntitled         Code = "plan_not_entitled"
	CodeInsufficientPermissions Code = "insufficient_permissions"
	CodeRateLimited             Code = "rate_limited"
	CodeQuotaExceeded           Code = "quota_exceeded"
	CodeTooManyFailedAttempts   Code = "too_many_failed_attempts"
	CodeTLSRequired             Code = "tls_required"
)

// Errors of the management API and the storage.
const (
	CodeInvalidRequest     Code = "invalid_request"
	CodeNotFound           Code = "not_found"
	CodeConflict           Code = "conflict"
	CodeStorageUnavailable Code = "storage_unavailable"
	CodeInternal           Code = "internal_error"
	// CodeSignInFailed: the dashboard's sign-in was given an email and
	// password that match no member (or an invitation or portal link that
	// is used up or expired).
	CodeSignInFailed Code = "sign_in_failed"
)

// Errors of the gateway (serve --gateway-addr), about the upstream it
// proxies a verified request to.
const (
	// CodeUpstreamUnavailable: the upstream could not be reached, or
	// failed before its answer began (connection refused, reset, a TLS
	// or DNS failure).
	CodeUpstreamUnavailable Code = "upstream_unavailable"
	// CodeUpstreamTimeout: the upstream did not begin its answer within
	// the gateway's upstream timeout.
	CodeUpstreamTimeout Code = "upstream_timeout"
)

type codeInfo struct {
	status int
	title  string
}

var codes = map[Code]codeInfo{
	CodeMissingAPIKey:           {http.StatusUnauthorized, "Missing API key"},
	CodeMalformedAPIKey:         {http.StatusUnauthorized, "Malformed API key"},
	CodeInvalidAPIKey:           {http.StatusUnauthorized, "Invalid API key"},
	CodeRevokedAPIKey:           {http.StatusUnauthorized, "Revoked API key"},
	CodeExpiredAPIKey:           {http.StatusUnauthorized, "Expired API key"},
	CodeAccountSuspended:        {http.StatusForbidden, "Account suspended"},
	CodeSignInFailed:            {http.StatusUnauthorized, "Sign-in failed"},
	CodeKeyDisabled:             {http.StatusForbidden, "Key disabled"},
	CodeEnvironmentMismatch:     {http.StatusForbidden, "Environment mismatch"},
	CodeIPNotAllowed:            {http.StatusForbidden, "IP address not allowed"},
	CodeReferrerNotAllowed:      {http.StatusForbidden, "Referrer not allowed"},
	CodeEndpointNotAllowed:      {http.StatusForbidden, "Endpoint not allowed"},
	CodePlanNotEntitled:         {http.StatusForbidden, "Plan not entitled"},
	CodeInsufficientPermissions: {http.StatusForbidden, "Insufficient permissions"},
	CodeRateLimited:             {http.StatusTooManyRequests, "Rate limited"},
	CodeQuotaExceeded:           {http.StatusTooManyRequests, "Quota exceeded"},
	CodeTooManyFailedAttempts:   {http.StatusTooManyRequests, "Too many failed attempts"},
	CodeTLSRequired:             {http.StatusForbidden, "TLS required"},
	CodeInvalidRequest:          {http.StatusBadRequest, "Invalid request"},
	CodeNotFound:                {http.StatusNotFound, "Not found"},
	CodeConflict:                {http.StatusConflict, "Conflict"},
	CodeStorageUnavailable:      {http.StatusServiceUnavailable, "Storage unavailable"},
	CodeInternal:                {http.StatusInternalServerError, "Internal error"},
	CodeUpstreamUnavailable:     {http.StatusBadGateway, "Upstream unavailable"},
	CodeUpstreamTimeout:         {http.StatusGatewayTimeout, "Upstream timeout"},
}

// Status is the HTTP status that answers the code; 500 for an unknown code.
func (c Code) Status() int {
	if i, ok := codes[c]; ok {
		return i.status
	}
	return http.StatusInternalServerError
}

// Known reports whether c is one of Keyward's codes.
func (c Code) Known() bool {
	_, ok := codes[c]
	return ok
}

// Codes returns every one of Keyward's codes, sorted.
func Codes() []Code {
	return slices.Sorted(maps.Keys(codes))
}

// Title is the short, fixed summary of the code (problem+json `title`).
func (c Code) Title() string {
	if i, ok := codes[c]; ok {
		return i.title
	}
	return "Internal error"
}

// Error is Keyward's one error type: a code, a public message that tells the
// caller what to do, the request field at fault if any, how long to wait
// before trying again if it says, and an internal cause for the log. The
// message never contains a key.
type Error struct {
	Code    Code
	Message string
	Field   string
	// RetryAfter is how long the caller should wait before it tries
	// again (the answer's Retry-After); 0 when the error does not say.
	RetryAfter time.Duration
	Err        error
}

// Error returns the public message, and the cause after it for the log.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a formatted public message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldErrorf returns a CodeInvalidRequest *Error that names the field at
// fault; the message starts with the field's name.
func FieldErrorf(field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalidRequest, Field: field, Message: field + ": " + fmt.Sprintf(format, args...)}
}

// Internal wraps an unexpected cause; the caller sees a generic message.
func Internal(err error) *Error {
	return &Error{Code: CodeInternal, Message: "An internal error occurred; try again, and report it if it persists.", Err: err}
}

// ErrorCode returns the code of err: the Code of an *Error in its chain,
// CodeInternal for any other error, and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the public message of err: the Message of an *Error
// in its chain, or a generic message for any other error.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "An internal error occurred; try again, and report it if it persists."
}
