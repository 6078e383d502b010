package policy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

func TestEndpoints(t *testing.T) {
	e, err := ParseEndpoints([]string{"GET /v1/contacts/**", "* /v1/reports/*", "POST /v1/sites/{site}/pages"})
	if err != nil {
		t.Fatal(err)
	}
	allowed := []string{
		"GET /v1/contacts", "GET /v1/contacts/", "GET /v1/contacts/c_1/notes", "HEAD /v1/contacts/c_1",
		"GET /v1/reports/daily", "DELETE /v1/reports/daily",
		"POST /v1/sites/s_1/pages",
	}
	refused := []string{
		"POST /v1/contacts", "GET /v1/contactsx", "GET /v1/reports", "GET /v1/reports/", "GET /v1/reports/a/b",
		"GET /v1/sites/s_1/pages", "POST /v1/sites//pages", "GET /", "GET v1/contacts", "GET ",
	}
	for _, r := range allowed {
		m, p, _ := strings.Cut(r, " ")
		if !e.Allow(m, p) {
			t.Errorf("%s refused", r)
		}
	}
	for _, r := range refused {
		m, p, _ := strings.Cut(r, " ")
		if e.Allow(m, p) {
			t.Errorf("%s allowed", r)
		}
	}
	// An encoded path cannot pass by: CleanPath decodes it first, and
	// refuses what it cannot make clean.
	for _, target := range []string{"/v1/%72eports/x", "/v1/reports/%2e%2e/admin", "/v1/reports/x%2F..%2Fadmin"} {
		path, err := CleanPath(target)
		switch {
		case err != nil:
		case !e.Allow("PATCH", path) || path != "/v1/reports/x":
			t.Errorf("%s cleaned to %q: allowed %v", target, path, e.Allow("PATCH", path))
		}
	}
	if !(Endpoints{}).Allow("DELETE", "/anything") {
		t.Error("no entries refuses")
	}
	if got := fmt.Sprint(e.Strings()); got != "[GET /v1/contacts/** * /v1/reports/* POST /v1/sites/{site}/pages]" {
		t.Errorf("Strings() = %s", got)
	}
	if e.Len() != 3 {
		t.Errorf("Len() = %d", e.Len())
	}
}

func TestParseEndpointsErrors(t *testing.T) {
	many := make([]string, MaxEndpoints+1)
	for i := range many {
		many[i] = fmt.Sprintf("GET /r%d", i)
	}
	cases := []struct {
		in  []string
		msg string
	}{
		{[]string{"GET /a", "GET /b", "GET /v1/{id"}, `restrictions.endpoints[2]: "GET /v1/{id": segment 2: "{" without "}"`},
		{[]string{"/v1/contacts"}, `restrictions.endpoints[0]: "/v1/contacts": has no method; write * /v1/contacts to match every method, or a method such as GET /v1/contacts`},
		{[]string{"get /v1"}, `restrictions.endpoints[0]: "get /v1": method "get" must be upper case: GET`},
		{[]string{"GET /" + strings.Repeat("a", MaxEntryLen)}, `restrictions.endpoints[0]: is 517 bytes long; use at most 512`},
		{many, `restrictions.endpoints: has 101 entries; use at most 100`},
	}
	for _, c := range cases {
		_, err := ParseEndpoints(c.in)
		if err == nil {
			t.Errorf("%v: no error", c.in)
			continue
		}
		if keyward.ErrorCode(err) != keyward.CodeInvalidRequest || keyward.ErrorMessage(err) != c.msg {
			t.Errorf("error %s: %s\nwant %s", keyward.ErrorCode(err), keyward.ErrorMessage(err), c.msg)
		}
	}
}

func TestEndpointsWithin(t *testing.T) {
	outer, err := ParseEndpoints([]string{"GET /v1/contacts/**", "* /v1/reports/*"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		inner []string
		i     int
		ok    bool
	}{
		{[]string{"GET /v1/contacts/**"}, 0, true},
		{[]string{"GET /v1/contacts/{id}", "HEAD /v1/contacts", "POST /v1/reports/daily", "GET /v1/reports/*"}, 0, true},
		{[]string{"GET /v1/contacts/{id}", "POST /v1/contacts"}, 1, false},
		{[]string{"* /v1/contacts/**"}, 0, false},
		{[]string{"GET /v1/**"}, 0, false},
		{[]string{"GET /v1/reports/**"}, 0, false},
		{nil, -1, false},
	}
	for _, c := range cases {
		inner, err := ParseEndpoints(c.inner)
		if err != nil {
			t.Fatal(err)
		}
		if i, ok := inner.Within(outer); i != c.i || ok != c.ok {
			t.Errorf("%v within %v = %d, %v; want %d, %v", c.inner, outer.Strings(), i, ok, c.i, c.ok)
		}
	}
	if _, ok := outer.Within(Endpoints{}); !ok {
		t.Error("not within no restriction")
	}
}

func TestReferrers(t *testing.T) {
	r, err := ParseReferrers([]string{
		"https://app.example.com",
		"https://*.example.org/*",
		"http://localhost:3000/app/*",
		"https://docs.example.net/guide",
		"http://[::1]:8080",
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		referer, origin string
		ok              bool
	}{
		// Origins and pages of https://app.example.com.
		{"https://app.example.com/", "", true},
		{"https://app.example.com", "", true},
		{"https://app.example.com/any/page?q=1#f", "", true},
		{"", "https://app.example.com", true},
		{"HTTPS://APP.Example.COM/x", "", true},
		{"https://app.example.com:443/x", "", true},
		{"https://app.example.com:8443/x", "", false},
		{"http://app.example.com/x", "", false},
		{"https://app.example.com.evil.com/x", "", false},
		{"https://evil.com/https://app.example.com", "", false},
		{"https://app.example.com@evil.com/", "", false},
		{"https://user@app.example.com/", "", false},
		{"https://evilapp.example.com/", "", false},
		{"https://app.example.com./", "", false},
		{"https://app.example.com%2eevil.com/", "", false},
		{"https://app.example.com\\@evil.com/", "", false},
		{"https://app.example.com /", "", false},
		{"//app.example.com/", "", false},
		{"app.example.com", "", false},
		{"", "null", false},
		{"", "", false},
		// A present Referer decides: no fall back to Origin.
		{"https://evil.com/", "https://app.example.com", false},
		{"not a url", "https://app.example.com", false},
		// Wildcard hosts: one or more labels, not the domain itself.
		{"https://a.example.org/x", "", true},
		{"https://a.b.example.org/x", "", true},
		{"", "https://a.example.org", true},
		{"https://example.org/x", "", false},
		{"https://.example.org/x", "", false},
		{"https://a..example.org/x", "", false},
		{"https://aexample.org/x", "", false},
		{"https://a.example.org.evil.com/", "", false},
		// Paths: a prefix, and an exact one.
		{"http://localhost:3000/app/", "", true},
		{"http://localhost:3000/app/contacts?x", "", true},
		{"http://localhost:3000/app", "", false},
		{"http://localhost:3000/apple", "", false},
		{"http://localhost:3000/app/../admin", "", false},
		{"http://localhost:3000/app/%2e%2e/admin", "", false},
		{"http://localhost:3000/", "", false},
		{"", "http://localhost:3000", false},
		{"http://localhost/app/x", "", false},
		{"https://docs.example.net/guide", "", true},
		{"https://docs.example.net/guide?page=2", "", true},
		{"https://docs.example.net/guide/", "", false},
		{"https://docs.example.net/Guide", "", false},
		// IPv6.
		{"http://[::1]:8080/x", "", true},
		{"http://[::1]/x", "", false},
		{"http://[::2]:8080/x", "", false},
	}
	for _, c := range cases {
		if got := r.Allow(c.referer, c.origin); got != c.ok {
			t.Errorf("Allow(%q, %q) = %v, want %v", c.referer, c.origin, got, c.ok)
		}
	}
	if !(Referrers{}).Allow("", "") {
		t.Error("no entries refuses")
	}
	ports, err := ParseReferrers([]string{"https://a.example:443", "http://b.example:80/", "https://c.example:8443/*"})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"https://a.example/", "http://b.example:80/x", "https://c.example:8443/x"} {
		if !ports.Allow(u, "") {
			t.Errorf("%s refused", u)
		}
	}
}

func TestParseReferrersErrors(t *testing.T) {
	many := make([]string, MaxReferrers+1)
	for i := range many {
		many[i] = fmt.Sprintf("https://s%d.example.com", i)
	}
	cases := []struct {
		in  []string
		msg string
	}{
		{[]string{"https://ok.example", "app.example.com"}, `restrictions.referrers[1]: "app.example.com" has no scheme; write it as an origin such as https://app.example.com`},
		{[]string{"1http://x"}, `restrictions.referrers[0]: "1http://x" has a scheme "1http" that is not one; use https:// or http://`},
		{[]string{"https://"}, `restrictions.referrers[0]: "https://" has no host`},
		{[]string{"https://*"}, `restrictions.referrers[0]: "https://*" matches every site; to allow every site, leave referrers empty`},
		{[]string{"https://*.example.com/*"}, ""},
		{[]string{"https://app.*.com"}, `restrictions.referrers[0]: "https://app.*.com" has a * in "app.*.com"; a * may only start the host (*.example.com) or end the path (/app/*)`},
		{[]string{"https://*.*.com"}, `restrictions.referrers[0]: "https://*.*.com" has a host "*.*.com" that is not a host name; write *. and a domain, such as *.example.com`},
		{[]string{"https://user@app.example.com"}, `restrictions.referrers[0]: "https://user@app.example.com" has user information (@); write the host alone`},
		{[]string{"https://app.example.com:0"}, `restrictions.referrers[0]: "https://app.example.com:0" has a port "0" that is not one; use a number from 1 to 65535`},
		{[]string{"https://app.example.com:99999"}, `restrictions.referrers[0]: "https://app.example.com:99999" has a port "99999" that is not one; use a number from 1 to 65535`},
		{[]string{"https://app.example.com:"}, `restrictions.referrers[0]: "https://app.example.com:" has a : without a port`},
		{[]string{"https://app.example.com/?x=1"}, `restrictions.referrers[0]: "https://app.example.com/?x=1" has a query or fragment; a pattern is an origin and an optional path, such as https://app.example.com/*`},
		{[]string{"https://app.example.com/a*/b"}, `restrictions.referrers[0]: "https://app.example.com/a*/b" has a * inside the path; a * may only end it, such as /app/*`},
		{[]string{"https://app.example.com/a/../b"}, `restrictions.referrers[0]: "https://app.example.com/a/../b" has a . or .. segment in its path, which no browser sends`},
		{[]string{"https://app_example$.com"}, `restrictions.referrers[0]: "https://app_example$.com" has a host "app_example$.com" that is not a host name`},
		{[]string{"https://app.example.com."}, `restrictions.referrers[0]: "https://app.example.com." has a host "app.example.com." that is not a host name`},
		{[]string{"https://[::1"}, `restrictions.referrers[0]: "https://[::1" has "[" without "]" in its host`},
		{[]string{"https://[example]"}, `restrictions.referrers[0]: "https://[example]" has a host "[example]" that is not an IPv6 address`},
		{[]string{"https://bücher.example"}, `restrictions.referrers[0]: "https://bücher.example" contains a character outside ASCII; write an international host name in its xn-- form`},
		{[]string{" https://app.example.com"}, `restrictions.referrers[0]: " https://app.example.com" contains a space or a control character`},
		{[]string{"https://" + strings.Repeat("a", MaxEntryLen)}, `restrictions.referrers[0]: is 520 bytes long; use at most 512`},
		{many, `restrictions.referrers: has 101 entries; use at most 100`},
	}
	for _, c := range cases {
		_, err := ParseReferrers(c.in)
		if c.msg == "" {
			if err != nil {
				t.Errorf("%v: %v", c.in, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%v: no error", c.in)
			continue
		}
		if keyward.ErrorCode(err) != keyward.CodeInvalidRequest || keyward.ErrorMessage(err) != c.msg {
			t.Errorf("error %s: %s\nwant %s", keyward.ErrorCode(err), keyward.ErrorMessage(err), c.msg)
		}
	}
}

func TestReferrersWithin(t *testing.T) {
	outer, err := ParseReferrers([]string{"https://*.example.com/app/*", "https://exact.example.org", "http://localhost:3000/docs"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		inner []string
		i     int
		ok    bool
	}{
		{[]string{"https://a.example.com/app/x", "https://*.b.example.com/app/x/*", "https://*.example.com/app/*"}, 0, true},
		{[]string{"https://exact.example.org/any/*", "https://EXACT.example.org:443", "http://localhost:3000/docs"}, 0, true},
		{[]string{"https://a.example.com/app/x", "https://a.example.com/other"}, 1, false},
		{[]string{"https://example.com/app/x"}, 0, false},
		{[]string{"https://*.example.com/*"}, 0, false},
		{[]string{"http://a.example.com/app/x"}, 0, false},
		{[]string{"https://a.example.com:8443/app/x"}, 0, false},
		{[]string{"https://x.exact.example.org"}, 0, false},
		{[]string{"http://localhost:3000/docs/*"}, 0, false},
		{[]string{"http://localhost:3000"}, 0, false},
		{nil, -1, false},
	}
	for _, c := range cases {
		inner, err := ParseReferrers(c.inner)
		if err != nil {
			t.Fatal(err)
		}
		if i, ok := inner.Within(outer); i != c.i || ok != c.ok {
			t.Errorf("%v within = %d, %v; want %d, %v", c.inner, i, ok, c.i, c.ok)
		}
	}
}
