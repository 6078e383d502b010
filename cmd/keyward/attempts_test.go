package main

import (
	"bytes"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// TestServeFailedAttemptFlags checks --failed-attempts and its window and
// block: bad values are usage errors that name the flag or the variable,
// and open no database; the server logs the settings it runs with; a
// client that sends --failed-attempts unknown keys gets 429
// too_many_failed_attempts with a Retry-After of the block at most; 0
// turns the limiter off.
func TestServeFailedAttemptFlags(t *testing.T) {
	db := dbFile(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--failed-attempts", "-1"}, "--failed-attempts: must be 0 (no limit) or more"},
		{[]string{"serve", "--failed-attempts", "many"}, "--failed-attempts"},
		{[]string{"serve", "--failed-attempts-window", "0"}, "--failed-attempts-window: must be more than 0"},
		{[]string{"serve", "--failed-attempts-block", "-1m"}, "--failed-attempts-block: must be more than 0"},
		{[]string{"serve", "--failed-attempts-block", "soon"}, "--failed-attempts-block"},
	} {
		fails(t, db, 2, c.args, c.want)
	}
	for name, v := range map[string]string{"KEYWARD_FAILED_ATTEMPTS": "many", "KEYWARD_FAILED_ATTEMPTS_WINDOW": "0", "KEYWARD_FAILED_ATTEMPTS_BLOCK": "soon"} {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), []string{"--db", db, "serve"}, env(name, v), strings.NewReader(""), &stdout, &stderr)
		if exitCode(err) != 2 || !strings.Contains(errorMessage(err), name) {
			t.Errorf("%s=%s: exit status %d, message %q", name, v, exitCode(err), errorMessage(err))
		}
	}
	if _, err := os.Stat(db); err == nil {
		t.Error("a usage error opened the database")
	}

	format, err := apikey.NewFormat(apikey.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	whoami := func(s *server) *http.Response {
		t.Helper()
		key, err := format.Generate(keyward.Live)
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequestWithContext(t.Context(), "GET", s.url+"/v1/whoami", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-API-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	s := startServerEnv(t, db, env("KEYWARD_FAILED_ATTEMPTS_BLOCK", "1h"), "--failed-attempts", "3", "--failed-attempts-block", "2m")
	for attr, want := range map[string]string{"failed_attempts_window": "1m0s", "failed_attempts_block": "2m0s"} {
		if got := logAttr(s.stderr.String(), "listening", attr); got != want {
			t.Errorf("the server logs %s %q, want %q", attr, got, want)
		}
	}
	if got := logInt(s.stderr.String(), "listening", "failed_attempts"); got != 3 {
		t.Errorf("the server logs failed_attempts %d, want 3", got)
	}
	for i := range 3 {
		if resp := whoami(s); resp.StatusCode != 401 {
			t.Fatalf("guess %d: status %d, want 401", i+1, resp.StatusCode)
		}
	}
	resp := whoami(s)
	retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != 429 || err != nil || retry < 1 || retry > 120 {
		t.Errorf("after 3 guesses: status %d, Retry-After %q; want 429 and at most 120", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if !strings.Contains(s.stderr.String(), "too many keys that were refused") {
		t.Errorf("the block is not logged:\n%s", s.stderr.String())
	}
	if err := s.shutdown(t); err != nil {
		t.Fatal(err)
	}

	s = startServerEnv(t, db, env("KEYWARD_FAILED_ATTEMPTS", "0"))
	for i := range 20 {
		if resp := whoami(s); resp.StatusCode != 401 {
			t.Fatalf("limiter off, guess %d: status %d, want 401", i+1, resp.StatusCode)
		}
	}
	if err := s.shutdown(t); err != nil {
		t.Fatal(err)
	}
	http.DefaultClient.CloseIdleConnections()
}
