package verify

import (
	"context"
	"net/http"
	"net/url"

	"github.com/keyward/keyward"
)

// VerifyPresented verifies the key that a request with header h and URL u
// presents (KeyFrom), with what req says of that request (its method,
// target, policy, client address…); the key read is set in req.Key, for a
// later Count. It is the one rule that every HTTP surface follows:
// forward-auth, the API's own routes, the Go middleware and the gateway.
//
// A request without a key, or with an Authorization header meant for
// someone else (malformed_api_key), passes a public route of req.Policy,
// and is refused tls_required by a route with tls: required over plain
// HTTP, before its key is read; a key in the URL is refused
// (invalid_request) even on a public route, since the URL has leaked it.
// A refusal of the presenting rules is a Result with its Code and Detail,
// as a refusal of Verify is.
func (v *Verifier) VerifyPresented(ctx context.Context, h http.Header, u *url.URL, req *Request) Result {
	key, kerr := KeyFrom(h, u, v.format)
	if kerr != nil {
		if req.Policy != nil && (kerr.Code == keyward.CodeMissingAPIKey || kerr.Code == keyward.CodeMalformedAPIKey) {
			res := v.Verify(ctx, Request{Method: req.Method, Target: req.Target, Policy: req.Policy, TLS: req.TLS})
			if res.Public || res.Code == keyward.CodeTLSRequired {
				return res
			}
		}
		return Result{Code: kerr.Code, Detail: kerr.Message}
	}
	req.Key = key
	return v.Verify(ctx, *req)
}
