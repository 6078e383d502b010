package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// TestStorageOutagePostgres stops the PostgreSQL server under a serve node
// and starts it again on the same port. While it is down, the node answers
// for the keys it has cached, answers 503 storage_unavailable with
// Retry-After (never 401) for a key it cannot check, and is not ready; a
// node with a short --cache-ttl answers for a key it cached long before the
// outage for that long after the outage began, then stops. When the
// database is back, the node recovers without a
// restart: it is ready again, enforces a revocation made from the command
// line within 1 s, and writes the last use that it could not write during
// the outage.
func TestStorageOutagePostgres(t *testing.T) {
	d := newPGDeployment(t)
	dsn := d.dsn

	// The keys are made before the nodes start, so that a node has cached
	// only those it verified.
	d.migrate(t)
	ok(t, dsn, "tenants", "create", "acme")
	cachedKey, cachedID := newKey(t, dsn, "--name", "cached")
	revokedKey, revokedID := newKey(t, dsn, "--name", "to-revoke-after-the-outage")
	uncachedKey, _ := newKey(t, dsn, "--name", "never-used-on-the-node")
	shortKey, _ := newKey(t, dsn, "--name", "cached-on-the-short-ttl-node")

	s := d.startNode(t, "S", "--flush-interval", "200ms")
	short := d.startNode(t, "short", "--flush-interval", "200ms", "--cache-ttl", "3s")
	if got := logAttr(short.stderr.String(), "listening", "cache_ttl"); got != "3s" {
		t.Errorf("--cache-ttl 3s: the node logs cache_ttl %q", got)
	}
	for _, k := range []string{cachedKey, revokedKey} {
		if a := s.call(t, "GET", "/v1/whoami", k, nil); a.status != http.StatusOK {
			t.Fatalf("whoami before the outage: %d %s", a.status, a.body)
		}
	}
	// The use before the outage is written, so that the one during the
	// outage can be told apart.
	before := waitLastUsed(t, dsn, cachedID, time.Time{})
	// The short-ttl node cached its key more than its --cache-ttl before
	// the outage: while it reads the change feed, the key stays current.
	if a := short.call(t, "GET", "/v1/whoami", shortKey, nil); a.status != http.StatusOK {
		t.Fatalf("whoami on the short-ttl node before the outage: %d %s", a.status, a.body)
	}
	ttl := 3 * time.Second
	time.Sleep(ttl + 500*time.Millisecond)

	halting := time.Now()
	d.pg.Halt(t)
	halted := time.Now()
	t.Logf("PostgreSQL stopped")

	// The node is not ready as soon as it notices.
	waitStatus(t, s, "/readyz", http.StatusServiceUnavailable, 10*time.Second)

	// Cached keys still answer, and the use is recorded.
	for _, k := range []string{cachedKey, revokedKey} {
		if a := s.call(t, "GET", "/v1/whoami", k, nil); a.status != http.StatusOK {
			t.Fatalf("whoami with a cached key during the outage: %d %s", a.status, a.body)
		}
	}
	usedInOutage := time.Now()

	// A key the node never saw cannot be checked: 503, never 401.
	status, header, body := get(t, s, "/v1/whoami", uncachedKey)
	if status != http.StatusServiceUnavailable || (answer{status, body}).code() != keyward.CodeStorageUnavailable {
		t.Fatalf("whoami with an uncached key during the outage: %d %s, want 503 %s", status, body, keyward.CodeStorageUnavailable)
	}
	if header.Get("Retry-After") == "" {
		t.Errorf("the 503 storage_unavailable has no Retry-After header: %v", header)
	}

	// The short-ttl node answers for its cached key until --cache-ttl has
	// passed since it last read the change feed, just before the outage,
	// then 503, never 401.
	for {
		a := short.call(t, "GET", "/v1/whoami", shortKey, nil)
		if a.status == http.StatusServiceUnavailable && a.code() == keyward.CodeStorageUnavailable {
			// The last read of the feed began at most a poll interval
			// (200 ms) before PostgreSQL began to stop.
			if elapsed := time.Since(halting); elapsed < ttl-500*time.Millisecond {
				t.Errorf("the node with --cache-ttl 3s stopped answering for a cached key %v after the outage began", elapsed)
			}
			t.Logf("--cache-ttl 3s: the cached key answered 503 %v after PostgreSQL was stopped", time.Since(halted))
			break
		}
		if a.status != http.StatusOK {
			t.Fatalf("whoami on the short-ttl node during the outage: %d %s, want 200 then 503", a.status, a.body)
		}
		if elapsed := time.Since(halted); elapsed > ttl+2*time.Second {
			t.Fatalf("the node with --cache-ttl 3s still answers 200 for a cached key %v after PostgreSQL was stopped", elapsed)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The write of the last use fails, and is kept.
	waitLog(t, s, "could not write last-used times", 10*time.Second)

	d.pg.Resume(t)
	resumed := time.Now()
	t.Logf("PostgreSQL started again %v after it stopped", resumed.Sub(halted))

	waitStatus(t, s, "/readyz", http.StatusOK, 10*time.Second)
	t.Logf("the node was ready again %v after PostgreSQL started", time.Since(resumed))
	if a := s.call(t, "GET", "/v1/whoami", uncachedKey, nil); a.status != http.StatusOK {
		t.Fatalf("whoami with the uncached key after the outage: %d %s", a.status, a.body)
	}

	// The use during the outage reaches the database.
	after := waitLastUsed(t, dsn, cachedID, *before)
	t.Logf("the use during the outage was written %v after PostgreSQL started", time.Since(resumed))
	if after.Sub(usedInOutage).Abs() > time.Second {
		t.Errorf("last_used_at is %v, want about %v, the use during the outage", after, usedInOutage)
	}

	// A revocation from the command line is enforced within 1 s.
	ok(t, dsn, "keys", "revoke", revokedID)
	waitRefused(t, time.Now(), revokedKey, http.StatusUnauthorized, keyward.CodeRevokedAPIKey, map[string]*server{"A": s}, "A")
}

// TestServeDurationFlags checks the duration flags that take their default
// from the environment: bad values are usage errors that name the flag or
// the variable and open no database; the flag takes its default from the
// variable and wins over it.
func TestServeDurationFlags(t *testing.T) {
	for _, tc := range []struct {
		flag, env, attr, def string
	}{
		{"--shutdown-timeout", "KEYWARD_SHUTDOWN_TIMEOUT", "shutdown_timeout", "15s"},
		{"--flush-interval", "KEYWARD_FLUSH_INTERVAL", "flush_interval", "1s"},
		{"--cache-ttl", "KEYWARD_CACHE_TTL", "cache_ttl", "5m0s"},
		{"--storage-timeout", "KEYWARD_STORAGE_TIMEOUT", "storage_timeout", "2s"},
		{"--idle-timeout", "KEYWARD_IDLE_TIMEOUT", "idle_timeout", "1m15s"},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			db := dbFile(t)
			for _, v := range []string{"0", "-1s", "long"} {
				fails(t, db, 2, []string{"serve", tc.flag, v}, tc.flag)
				var stdout, stderr bytes.Buffer
				err := run(t.Context(), []string{"--db", db, "serve"}, env(tc.env, v), strings.NewReader(""), &stdout, &stderr)
				if exitCode(err) != 2 || !strings.Contains(errorMessage(err), tc.env) {
					t.Errorf("%s=%s: exit status %d, message %q", tc.env, v, exitCode(err), errorMessage(err))
				}
			}
			if tc.flag == "--cache-ttl" {
				fails(t, db, 2, []string{"serve", tc.flag, "25h"}, "--cache-ttl: must be at most 24h")
			}
			if _, err := os.Stat(db); err == nil {
				t.Error("a usage error opened the database")
			}
			// A bad variable does not matter when the flag is given.
			for _, c := range []struct {
				env  []string
				args []string
				want string
			}{
				{nil, nil, tc.def},
				{[]string{tc.env, "90s"}, nil, "1m30s"},
				{[]string{tc.env, "90s"}, []string{tc.flag, "10m"}, "10m0s"},
				{[]string{tc.env, "long"}, []string{tc.flag, "10m"}, "10m0s"},
			} {
				s := startServerEnv(t, db, env(c.env...), c.args...)
				if got := logAttr(s.stderr.String(), "listening", tc.attr); got != c.want {
					t.Errorf("env %v, args %v: the server logs %s %q, want %s", c.env, c.args, tc.attr, got, c.want)
				}
				if err := s.shutdown(t); err != nil {
					t.Fatal(err)
				}
				http.DefaultClient.CloseIdleConnections()
			}
		})
	}
}

// get makes a GET request to the server with key in X-API-Key, and returns
// the status, the header and the body of the answer. It fails the test if
// there is no answer within 30 s.
func get(t *testing.T, s *server, path, key string) (int, http.Header, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", s.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// waitStatus polls path on the server until it answers status, and fails
// the test if it does not within timeout.
func waitStatus(t *testing.T, s *server, path string, status int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, _, body := get(t, s, path, "")
		if got == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s answers %d %s, not %d, after %v", path, got, body, status, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLog polls the server's logs until they contain text, and fails the
// test if they do not within timeout.
func waitLog(t *testing.T, s *server, text string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(s.stderr.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("the server did not log %q within %v:\n%s", text, timeout, s.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLastUsed polls keys show until the key's last_used_at is after
// since, returns it, and fails the test if that takes more than 10 s.
func waitLastUsed(t *testing.T, db, id string, since time.Time) *time.Time {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		k := showKey(t, db, id)
		if k.LastUsedAt != nil && k.LastUsedAt.After(since) {
			return k.LastUsedAt
		}
		if time.Now().After(deadline) {
			t.Fatalf("the last use of key %s after %v was not written within 10 s: last_used_at is %v", id, since, k.LastUsedAt)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
