package verify

import (
	"iter"
	"net/http"
	"net/url"
	"strings"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
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
	detailURLKey = "API keys in the URL are refused: URLs leak into server logs, proxies and browser history. " +
		"Remove the key from %s and send it in the X-API-Key header or as " +
		"\"Authorization: Bearer <key>\". Replace the key, since it may have been logged."
)

// CheckURL refuses (invalid_request) a URL that holds a well-formed key of
// f anywhere, as KeyFrom does, for the routes that take no key: a key
// there leaks into logs just the same. It returns nil for any other URL.
func CheckURL(u *url.URL, f apikey.Format) *keyward.Error {
	if where, ok := keyInURL(u, f); ok {
		return keyward.Errorf(keyward.CodeInvalidRequest, detailURLKey, where)
	}
	return nil
}

// KeyFromRequest returns the key an HTTP request presents, following the
// presenting rules of docs/outcomes.md; f is the instance's key format. It is
// KeyFrom with the request's header and URL.
func KeyFromRequest(r *http.Request, f apikey.Format) (string, *keyward.Error) {
	return KeyFrom(r.Header, r.URL, f)
}

// KeyFrom returns the key that a request with header h and URL u presents,
// following the presenting rules of docs/outcomes.md; f is the instance's
// key format.
//
//   - A well-formed key of f (valid checksum) anywhere in the URL is refused
//     with invalid_request, whatever carries it: a query parameter of any
//     name, its name, the path. Pairs separated by & or ;, and
//     percent-encoding (even repeated) do not hide it. The error names the
//     parameter, never its value.
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
//     invalid_request whatever their value, since keys in URLs leak into
//     logs; key and token too, but only when no header presents a key,
//     because many APIs use those names for other things.
//   - No key at all: missing_api_key.
//
// An empty header counts as absent. A request without a query string costs
// one scan of its path, and no allocation unless the path holds a %XX
// escape once decoded.
func KeyFrom(h http.Header, u *url.URL, f apikey.Format) (string, *keyward.Error) {
	if err := CheckURL(u, f); err != nil {
		return "", err
	}
	if name, ok := queryKeyParam(u, false); ok {
		return "", keyward.Errorf(keyward.CodeInvalidRequest, detailQueryKey, name)
	}

	xkey, err := singleValue(h, "X-Api-Key", "X-API-Key")
	if err != nil {
		return "", err
	}
	auth, err := singleValue(h, "Authorization", "Authorization")
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

	if name, ok := queryKeyParam(u, true); ok {
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

// queryKeyParam returns the name of a query parameter of u that seems to
// carry a key: api_key, apikey or access_token, and with loose also key or
// token. Pairs are separated by & or ;. Names are compared in any case; a
// parameter with an empty value is ignored.
func queryKeyParam(u *url.URL, loose bool) (string, bool) {
	if u == nil {
		return "", false
	}
	for name, value := range queryPairs(u.RawQuery) {
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

// queryPairs yields the name and value of each pair of the query string q,
// as written (not unescaped); pairs are separated by & or ;.
func queryPairs(q string) iter.Seq2[string, string] {
	return func(yield func(name, value string) bool) {
		for q != "" {
			pair := q
			if i := strings.IndexAny(q, "&;"); i >= 0 {
				pair, q = q[:i], q[i+1:]
			} else {
				q = ""
			}
			name, value, _ := strings.Cut(pair, "=")
			if !yield(name, value) {
				return
			}
		}
	}
}

// keyInURL reports whether u holds a well-formed key of f anywhere, and
// says where for an error message: the path (or another part before the
// query string), or the query parameter that holds it, named only when its
// name is short and plain.
func keyInURL(u *url.URL, f apikey.Format) (where string, found bool) {
	if u == nil {
		return "", false
	}
	if containsKey(u.Path, f) || containsKey(u.RawPath, f) || containsKey(u.Opaque, f) ||
		containsKey(u.Host, f) || u.User != nil && containsKey(u.User.String(), f) {
		return "the URL's path", true
	}
	if u.RawQuery == "" || !containsKey(u.RawQuery, f) {
		return "", false
	}
	for name, value := range queryPairs(u.RawQuery) {
		if containsKey(name, f) {
			return "the name of a query parameter", true
		}
		if containsKey(value, f) {
			if n, ok := plainName(name); ok {
				return "the " + n + " query parameter", true
			}
			return "a query parameter", true
		}
	}
	return "the query string", true
}

// maxURLDecodings is how many times containsKey decodes percent-escapes at
// most, for keys that were encoded more than once. Each decoding shortens
// the text, so it ends by itself; the bound keeps a URL of nested escapes
// (%252525…) from costing a decoding per escape.
const maxURLDecodings = 16

// containsKey reports whether s, or s with its percent-escapes decoded up
// to maxURLDecodings times, contains a well-formed key of f. Escapes that
// are not valid are left as they are, so that one cannot hide a key. It
// allocates only when s has a valid escape.
func containsKey(s string, f apikey.Format) bool {
	for range maxURLDecodings {
		if f.Contains(s) {
			return true
		}
		d, changed := unescapeLenient(s)
		if !changed {
			return false
		}
		s = d
	}
	return f.Contains(s)
}

// unescapeLenient decodes every valid %XX escape of s and leaves the rest,
// invalid escapes included, as it is; changed reports whether any escape
// was decoded.
func unescapeLenient(s string) (string, bool) {
	i := strings.IndexByte(s, '%')
	for i >= 0 && !escapeAt(s, i) {
		j := strings.IndexByte(s[i+1:], '%')
		if j < 0 {
			return s, false
		}
		i += 1 + j
	}
	if i < 0 {
		return s, false
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		if escapeAt(s, i) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
		} else {
			b.WriteByte(s[i])
		}
	}
	return b.String(), true
}

// escapeAt reports whether a valid %XX escape starts at s[i].
func escapeAt(s string, i int) bool {
	return s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2])
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// maxShownName is the longest parameter name an error repeats: shorter
// than any key.
const maxShownName = 32

// plainName returns the name of a query parameter, decoded, if it may be
// repeated in an error: at most maxShownName letters, digits and . _ - [ ].
func plainName(raw string) (string, bool) {
	name := raw
	if strings.ContainsAny(raw, "%+") {
		n, err := url.QueryUnescape(raw)
		if err != nil {
			return "", false
		}
		name = n
	}
	if name == "" || len(name) > maxShownName {
		return "", false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._-[]", c) >= 0) {
			return "", false
		}
	}
	return name, true
}
