package dashboard

import "testing"

// TestSafeNext: after sign-in, only a path of this site is followed.
func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                        "/keys",
		"/keys/key_1":             "/keys/key_1",
		"/keys?status=active":     "/keys?status=active",
		"https://evil.example/":   "/keys",
		"//evil.example/":         "/keys",
		"/\\evil.example/":        "/keys",
		"/\t/evil.example/":       "/keys",
		"/\n/evil.example/":       "/keys",
		"javascript:alert(1)":     "/keys",
		"keys":                    "/keys",
		"/%2F%2Fevil.example/":    "/%2F%2Fevil.example/",
		"http:/evil.example/":     "/keys",
		"/ok/\u2028/evil.example": "/ok/\u2028/evil.example",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q; want %q", in, got, want)
		}
	}
}
