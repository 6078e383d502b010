package httpapi

import (
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/verify"
)

// TestFailedAttempts: a client address that sent too many unknown keys is
// answered 429 too_many_failed_attempts, with Retry-After and a detail
// that says when to retry, on forward-auth (nginx's error_page included),
// /v1/whoami and /v1/verify (200, with the status and retry_after in its
// body); the limiter counts the refusals of every surface together.
// Meanwhile another address is served, and so is a key cached as valid
// from the blocked address; the block ends on time. The client addresses
// come from X-Forwarded-For, sent by a trusted proxy.
func TestFailedAttempts(t *testing.T) { fronts(t, testFailedAttempts) }

func testFailedAttempts(t *testing.T, front harnessOption) {
	const (
		limit = 3
		block = 90 * time.Second
	)
	h := newHarness(t, front, withTrustedProxies("127.0.0.1/32"), withVerifyOptions(verify.Options{
		FailedAttempts: limit, FailedAttemptWindow: time.Minute, FailedAttemptBlock: block,
	}))
	format, err := apikey.NewFormat(apikey.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	guess := func() string {
		t.Helper()
		key, err := format.Generate(keyward.Live)
		if err != nil {
			t.Fatal(err)
		}
		return key
	}
	const a, b = "198.51.100.7", "203.0.113.9"
	forward := func(key, from string, query ...string) answer {
		t.Helper()
		return h.call("GET", "/v1/forward-auth"+strings.Join(query, ""), "", nil, "X-API-Key", key, "X-Forwarded-For", from)
	}
	verifyFor := func(key, ip string) answer {
		t.Helper()
		body := map[string]any{"key": key}
		if ip != "" {
			body["ip"] = ip
		}
		return h.must(200, "POST", "/v1/verify", h.root, body)
	}
	wantBlocked := func(what string, ans answer, retry string) {
		t.Helper()
		detail := problemOf(t, ans, 429, keyward.CodeTooManyFailedAttempts)
		if got := ans.header.Get("Retry-After"); got != retry {
			t.Errorf("%s: Retry-After %q, want %q", what, got, retry)
		}
		if !strings.Contains(detail, "Retry in "+retry+" seconds") {
			t.Errorf("%s: detail %q does not say when to retry", what, detail)
		}
		if ans.header.Get("WWW-Authenticate") != "" || ans.header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: headers %v", what, ans.header)
		}
	}

	tenant := h.tenant("acme")
	working, _ := h.key(h.root, map[string]any{"tenant_id": tenant, "name": "working"})
	h.must(200, "GET", "/v1/forward-auth", working, nil, "X-Forwarded-For", a)

	// One refusal on each surface from a: they add up to the limit.
	problemOf(t, forward(guess(), a), 401, keyward.CodeInvalidAPIKey)
	problemOf(t, h.call("GET", "/v1/whoami", guess(), nil, "X-Forwarded-For", a), 401, keyward.CodeInvalidAPIKey)
	if v := verifyFor(guess(), a); v.str("code") != string(keyward.CodeInvalidAPIKey) {
		t.Fatalf("/v1/verify: %s", v.raw)
	}

	wantBlocked("forward-auth", forward(guess(), a), "90")
	wantBlocked("whoami", h.call("GET", "/v1/whoami", guess(), nil, "X-Forwarded-For", a), "90")
	// nginx's auth_request gets its bare 401, and the error_page location
	// the 429 to pass on.
	if ans := forward(guess(), a, "?nginx=auth_request"); ans.status != 401 || ans.raw != "" {
		t.Errorf("nginx=auth_request: %d %s, want a bare 401", ans.status, ans.raw)
	}
	wantBlocked("forward-auth nginx=error_page", forward(guess(), a, "?nginx=error_page"), "90")
	v := verifyFor(guess(), a)
	if v.body["valid"] != false || v.str("code") != string(keyward.CodeTooManyFailedAttempts) ||
		v.body["status"] != float64(429) || v.body["retry_after"] != float64(90) || !strings.Contains(v.str("detail"), "Retry in 90 seconds") {
		t.Errorf("/v1/verify of a blocked address: %s", v.raw)
	}

	// The key cached as valid passes from a; b is served.
	h.must(200, "GET", "/v1/forward-auth", working, nil, "X-Forwarded-For", a)
	h.must(200, "GET", "/v1/whoami", working, nil, "X-Forwarded-For", a)
	h.must(200, "GET", "/v1/forward-auth", working, nil, "X-Forwarded-For", b)
	problemOf(t, forward(guess(), b), 401, keyward.CodeInvalidAPIKey)
	if v := verifyFor(guess(), b); v.str("code") != string(keyward.CodeInvalidAPIKey) || v.body["retry_after"] != nil {
		t.Errorf("/v1/verify for another address: %s", v.raw)
	}

	// Without ip, /v1/verify counts nothing: its caller is a trusted
	// service that stands for all its clients.
	for range 3 * limit {
		if v := verifyFor(guess(), ""); v.str("code") != string(keyward.CodeInvalidAPIKey) {
			t.Fatalf("/v1/verify without ip: %s", v.raw)
		}
	}

	// The time left is counted down, rounded up to whole seconds.
	h.clock.Advance(block - 1500*time.Millisecond)
	wantBlocked("forward-auth, 1.5 s before the end", forward(guess(), a), "2")
	h.clock.Advance(1500 * time.Millisecond)
	problemOf(t, forward(guess(), a), 401, keyward.CodeInvalidAPIKey)
}
