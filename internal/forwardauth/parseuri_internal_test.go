package forwardauth

import (
	"math/rand/v2"
	"net/url"
	"reflect"
	"testing"
)

// TestParseRequestURI holds parseRequestURI to url.ParseRequestURI's
// answers: on URIs made to reach each of its branches, and on random ones
// of the characters that matter.
func TestParseRequestURI(t *testing.T) {
	uris := []string{
		"/", "/v1/contacts/1", "/v1/contacts/1?a=b&c=d", "/v1/contacts?", "/a?b?c", "/a#frag", "/a%2Fb", "/a%zz",
		"/a b", "/a\x7fb", "/a?b\x01", "/a?b c", "//host/path", "///x", "", "x", "*", "http://h/p?q", "/ü", "/a?ü",
		"/a;b=c,d:e@f!$&'()*+", "/a{b}", "/a\\b", "/a|b", "/a^b", "/a`b", "/a\"b", "/a<b>",
	}
	const alphabet = "/?#%az09-._~!$&'()*+,;=:@ \"<>{}|\\^`\x00\x1f\x7f\xc3\xbc"
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := []byte{'/'}
		for range r.IntN(12) {
			b = append(b, alphabet[r.IntN(len(alphabet))])
		}
		uris = append(uris, string(b))
	}
	for _, uri := range uris {
		want, wantErr := url.ParseRequestURI(uri)
		got, err := parseRequestURI(uri, new(url.URL))
		if (err != nil) != (wantErr != nil) || !reflect.DeepEqual(got, want) {
			t.Fatalf("parseRequestURI(%q) = %#v, %v; url.ParseRequestURI: %#v, %v", uri, got, err, want, wantErr)
		}
	}
}
