package verify

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/keyward/keyward"
)

// Public details of the presenting rules.
const (
	detailBothHeaders = "Send the key in X-API-Key or in Authorization, not both: " +
		"this request has a different key in each."
	detailManyHeaders = "Send the key in one %s header: this request has several with different values."
	detailNoScheme    = "The Authorization header must be \"Bearer <key>\". " +
		"Send the key as \"Authorization: Bearer <key>\", or in the X-API-Key header."
	detailOtherScheme = "The Authorization header uses the %s scheme, but only Bearer is accepted. " +
		"Send the key as \"Authorization: Bearer <key>\", or in the X-API-Key header."
	detailNoBearerKey = "The Authorization header has the Bearer scheme but no key. " +
		"Send the key as \"Authorization: Bearer <key>\", or in the X-API-Key header."
	detailQueryKey = "API keys in the URL are refused: URLs leak into server logs, proxies and browser history. " +
		"Remove the %s query parameter and send the key in the X-API-Key header or as " +
		"\"Authorization: Bearer <key>\". Consider replacing the key, since it may have been logged."
)

// KeyFromRequest returns the key an HTTP request presents, following the
// presenting rules of SPEC §4:
//
//   - The key is sent in X-API-Key (the header name in any case) or as
//     "Authorization: Bearer <key>" (the scheme in any case, then one or more
//     spaces). The key is returned as sent, so that Verify reports quotes or
//     whitespace around it.
//   - Both headers with different keys: invalid_request. The same key in both
//     is accepted. When X-API-Key is present, an Authorization header with a
//     scheme other than Bearer is left alone: it is meant for someone else,
//     such as a proxy's Basic authentication.
//   - Authorization alone with another scheme (Basic, Token, ApiKey…) or no
//     scheme at all: malformed_api_key, naming the scheme only if it is a
//     known one, so that a key sent without a scheme is never echoed.
//   - The query parameters api_key, apikey and access_token are refused with
//     invalid_request, since keys in URLs leak into logs; key and token too,
//     but only when no header presents a key, because many APIs use those
//     names for other things.
//   - No key at all: missing_api_key.
//
// An empty header counts as absent.
func KeyFromRequest(r *http.Request) (string, *keyward.Error) {
	if name, ok := queryKeyParam(r, false); ok {
		return "", keyward.Errorf(keyward.CodeInvalidRequest, detailQueryKey, name)
	}

	xkey, err := singleValue(r.Header, "X-Api-Key", "X-API-Key")
	if err != nil {
		return "", err
	}
	auth, err := singleValue(r.Header, "Authorization", "Authorization")
	if err != nil {
		return "", err
	}

	switch {
	case xkey != "" && auth != "":
		bkey, isBearer, berr := bearerKey(auth)
		if !isBearer {
			return xkey, nil
		}
		if berr != nil {
			return "", berr
		}
		if bkey != xkey {
			return "", &keyward.Error{Code: keyward.CodeInvalidRequest, Message: detailBothHeaders}
		}
		return xkey, nil
	case xkey != "":
		return xkey, nil
	case auth != "":
		bkey, _, berr := bearerKey(auth)
		if berr != nil {
			return "", berr
		}
		return bkey, nil
	}

	if name, ok := queryKeyParam(r, true); ok {
		return "", keyward.Errorf(keyward.CodeInvalidRequest, detailQueryKey, name)
	}
	return "", &keyward.Error{Code: keyward.CodeMissingAPIKey, Message: detailMissing}
}

// singleValue returns the value of header canonical as sent, or "" when it
// is absent or blank. Several non-empty values are accepted only if they are equal;
// shown names the header in the error.
func singleValue(h http.Header, canonical, shown string) (string, *keyward.Error) {
	var v string
	for _, s := range h[canonical] {
		switch {
		case strings.Trim(s, " \t") == "":
		case v == "":
			v = s
		case s != v:
			return "", keyward.Errorf(keyward.CodeInvalidRequest, detailManyHeaders, shown)
		}
	}
	return v, nil
}

// bearerKey reads an Authorization value. isBearer reports whether it uses
// the Bearer scheme; the key is what follows the scheme and the spaces after
// it. Any other value is an error that never repeats the value, which may be
// a key sent without a scheme.
func bearerKey(auth string) (key string, isBearer bool, err *keyward.Error) {
	scheme, rest, _ := strings.Cut(auth, " ")
	if i := strings.IndexByte(scheme, '\t'); i >= 0 {
		scheme, rest = auth[:i], auth[i+1:]
	}
	if !strings.EqualFold(scheme, "Bearer") {
		if known, ok := knownScheme(scheme); ok {
			return "", false, keyward.Errorf(keyward.CodeMalformedAPIKey, detailOtherScheme, known)
		}
		return "", false, &keyward.Error{Code: keyward.CodeMalformedAPIKey, Message: detailNoScheme}
	}
	key = strings.TrimLeft(rest, " \t")
	if key == "" {
		return "", true, &keyward.Error{Code: keyward.CodeMalformedAPIKey, Message: detailNoBearerKey}
	}
	return key, true, nil
}

// knownScheme returns the usual spelling of an authentication scheme other
// than Bearer that clients are known to send, if s is one.
func knownScheme(s string) (string, bool) {
	for _, k := range [...]string{
		"Basic", "Digest", "Token", "ApiKey", "Api-Key", "Key", "Negotiate", "NTLM",
		"HOBA", "Mutual", "DPoP", "OAuth", "AWS4-HMAC-SHA256", "SharedAccessSignature",
	} {
		if strings.EqualFold(s, k) {
			return k, true
		}
	}
	return "", false
}

// queryKeyParam returns the name of a query parameter that seems to carry a
// key: api_key, apikey or access_token, and with loose also key or token.
// Names are compared in any case; a parameter with an empty value is
// ignored.
func queryKeyParam(r *http.Request, loose bool) (string, bool) {
	if r.URL == nil {
		return "", false
	}
	q := r.URL.RawQuery
	for q != "" {
		var pair string
		pair, q, _ = strings.Cut(q, "&")
		name, value, _ := strings.Cut(pair, "=")
		if value == "" {
			continue
		}
		if strings.ContainsAny(name, "%+") {
			n, err := url.QueryUnescape(name)
			if err != nil {
				continue
			}
			name = n
		}
		switch strings.ToLower(name) {
		case "api_key", "apikey", "access_token":
			return strings.ToLower(name), true
		case "key", "token":
			if loose {
				return strings.ToLower(name), true
			}
		}
	}
	return "", false
}
