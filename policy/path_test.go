package policy

import (
	"testing"

	"github.com/keyward/keyward"
)

func TestCleanPath(t *testing.T) {
	good := []struct{ in, out string }{
		{"/", "/"},
		{"/v1/contacts", "/v1/contacts"},
		{"/v1/contacts/", "/v1/contacts/"},
		{"/v1/contacts?limit=10", "/v1/contacts"},
		{"/v1/contacts?next=/../admin", "/v1/contacts"},
		{"/v1/contacts#frag", "/v1/contacts"},
		{"/v1/contacts?", "/v1/contacts"},
		{"/v1/%63ontacts", "/v1/contacts"},
		{"/v1/%63%4Fntacts", "/v1/cOntacts"},
		{"/v1/a%20b", "/v1/a b"},
		{"/v1/a%3Fb?c", "/v1/a?b"},
		{"/v1/a%25b", "/v1/a%b"},
		{"/v1/.well-known/x", "/v1/.well-known/x"},
		{"/v1/...", "/v1/..."},
		{"/v1/a+b", "/v1/a+b"},
		{"/v1/é", "/v1/é"},
		{"/v1/%C3%A9", "/v1/é"},
	}
	for _, c := range good {
		got, err := CleanPath(c.in)
		if err != nil {
			t.Errorf("CleanPath(%q): %v", c.in, err)
			continue
		}
		if got != c.out {
			t.Errorf("CleanPath(%q) = %q, want %q", c.in, got, c.out)
		}
	}

	bad := []struct{ in, msg string }{
		{"", "The request path is not an absolute path: it must start with /; send a clean absolute path."},
		{"?a=1", "The request path is not an absolute path: it must start with /; send a clean absolute path."},
		{"v1/contacts", "The request path is not an absolute path: it must start with /; send a clean absolute path."},
		{"http://evil.example/v1/contacts", "The request path is not an absolute path: it must start with /; send a clean absolute path."},
		{"*", "The request path is not an absolute path: it must start with /; send a clean absolute path."},
		{"//v1/contacts", "The request path has an empty segment (//) at segment 1; send a clean absolute path."},
		{"/v1//contacts", "The request path has an empty segment (//) at segment 2; send a clean absolute path."},
		{"/v1/./contacts", `The request path has a "." segment at segment 2; send a clean absolute path.`},
		{"/v1/admin/../contacts", `The request path has a ".." segment at segment 3; send a clean absolute path.`},
		{"/v1/contacts/..", `The request path has a ".." segment at segment 3; send a clean absolute path.`},
		{"/v1/%2e%2e/admin", `The request path has a ".." segment at segment 2; send a clean absolute path.`},
		{"/v1/%2E/admin", `The request path has a "." segment at segment 2; send a clean absolute path.`},
		{"/v1/.%2e/admin", `The request path has a ".." segment at segment 2; send a clean absolute path.`},
		{"/v1/contacts%2F..%2Fadmin", "The request path has an encoded slash (%2F); send a clean absolute path."},
		{"/v1/a%2fb", "The request path has an encoded slash (%2f); send a clean absolute path."},
		{"/v1/a%00", "The request path has an encoded control character (%00); send a clean absolute path."},
		{"/v1/a%0a", "The request path has an encoded control character (%0a); send a clean absolute path."},
		{"/v1/a%5Cb", "The request path has an encoded backslash (%5C); send a clean absolute path."},
		{"/v1\\admin", `The request path contains a backslash (\); send a clean absolute path.`},
		{"/v1/a\x00", "The request path contains a control character; send a clean absolute path."},
		{"/v1/a%zz", `The request path has a bad percent escape "%zz": write % as %25, and escapes as % and two hex digits; send a clean absolute path.`},
		{"/v1/a%4", `The request path has a bad percent escape "%4": write % as %25, and escapes as % and two hex digits; send a clean absolute path.`},
		{"/v1/a%", `The request path has a bad percent escape "%": write % as %25, and escapes as % and two hex digits; send a clean absolute path.`},
	}
	for _, c := range bad {
		got, err := CleanPath(c.in)
		if err == nil {
			t.Errorf("CleanPath(%q) = %q, want an error", c.in, got)
			continue
		}
		if keyward.ErrorCode(err) != keyward.CodeInvalidRequest {
			t.Errorf("CleanPath(%q): code %s, want invalid_request", c.in, keyward.ErrorCode(err))
		}
		if m := keyward.ErrorMessage(err); m != c.msg {
			t.Errorf("CleanPath(%q):\n got %s\nwant %s", c.in, m, c.msg)
		}
	}
}

// TestCleanPathAllocations checks that a path without an escape costs no
// allocation.
func TestCleanPathAllocations(t *testing.T) {
	n := testing.AllocsPerRun(100, func() {
		if _, err := CleanPath("/v1/tenants/ten_1/sites/site_1/contacts?limit=10"); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("CleanPath allocates %v times, want 0", n)
	}
}
