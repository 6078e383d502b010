package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/lockedbuffer"
)

// server is a run of keyward serve in the background of a test.
type server struct {
	url    string
	stdout *lockedbuffer.Buffer
	stderr *lockedbuffer.Buffer
	stop   context.CancelFunc
	done   chan error
}

// startServer runs keyward serve on db, on a free port of 127.0.0.1, with
// args added, and waits until it logs the address it listens on. The server
// is stopped at the end of the test if the test has not stopped it.
func startServer(t *testing.T, db string, args ...string) *server {
	t.Helper()
	return startServerEnv(t, db, env(), args...)
}

// startServerEnv is startServer with the environment getenv.
func startServerEnv(t *testing.T, db string, getenv func(string) string, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{stdout: &lockedbuffer.Buffer{}, stderr: &lockedbuffer.Buffer{}, stop: cancel, done: make(chan error, 1)}
	all := append([]string{"serve", "--addr", "127.0.0.1:0", "--db", db}, args...)
	go func() {
		s.done <- run(ctx, all, getenv, strings.NewReader(""), s.stdout, s.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			t.Error("the server did not stop")
		}
	})

	// Under the race detector on a busy machine, a start can take seconds.
	deadline := time.Now().Add(30 * time.Second)
	for s.url == "" {
		select {
		case err := <-s.done:
			t.Fatalf("serve returned before it listened: %v\nstderr: %s", err, s.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not log that it listens within 30s\nstderr: %s", s.stderr)
		}
		if addr := listeningAddr(s.stderr.String()); addr != "" {
			s.url = "http://" + addr
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return s
}

// listeningAddr finds the address in the "listening" line of JSON logs.
func listeningAddr(logs string) string {
	return logAttr(logs, "listening", "addr")
}

// logAttr returns the string attribute attr of the first line of JSON logs
// whose message is msg, or "".
func logAttr(logs, msg, attr string) string {
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == msg {
			v, _ := line[attr].(string)
			return v
		}
	}
	return ""
}

// assertStopped fails the test unless the last line of JSON logs is a clean
// "stopped": at level INFO, with no error.
func assertStopped(t *testing.T, logs string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(logs), "\n")
	var last map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatalf("the last line of the logs is not JSON: %v\n%s", err, logs)
	}
	if last["msg"] != "stopped" || last["level"] != "INFO" || last["err"] != nil || last["flush_err"] != nil {
		t.Errorf("the last line of the logs is %v, want a clean \"stopped\":\n%s", last, logs)
	}
}

// shutdown stops the server as SIGTERM would and returns what run returned.
func (s *server) shutdown(t *testing.T) error {
	t.Helper()
	s.stop()
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("the server did not stop within 20s")
		return nil
	}
}

// answer is an HTTP response, read whole.
type answer struct {
	status int
	body   []byte
}

// code is the problem code of an error answer.
func (a answer) code() keyward.Code {
	var p struct {
		Code keyward.Code `json:"code"`
	}
	json.Unmarshal(a.body, &p)
	return p.Code
}

// call makes an HTTP request to the server with key in X-API-Key, and
// fails the test if it gets no answer.
func (s *server) call(t *testing.T, method, path, key string, body any) answer {
	t.Helper()
	a, err := s.try(t.Context(), method, path, key, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return a
}

// try makes an HTTP request to the server with key in X-API-Key, and
// returns the error of a request that got no answer.
func (s *server) try(ctx context.Context, method, path, key string, body any) (answer, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{}, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, r)
	if err != nil {
		return answer{}, err
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	return answer{resp.StatusCode, b}, nil
}

// waitHealthy polls /healthz until it answers 200.
func (s *server) waitHealthy(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(s.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz did not answer 200 within 10s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// assertNoKeys fails the test if any of keys appears in text or in the
// database files of db (the file, its write-ahead log and shared memory).
func assertNoKeys(t *testing.T, db, text string, keys ...string) {
	t.Helper()
	places := map[string][]byte{"the server's stderr": []byte(text)}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(db + suffix)
		if err == nil {
			places[db+suffix] = b
		}
	}
	if len(places) == 1 {
		t.Fatalf("no database file at %s", db)
	}
	for where, b := range places {
		for _, k := range keys {
			if bytes.Contains(b, []byte(k)) {
				t.Errorf("%s contains the plaintext of key %s…", where, k[:12])
			}
		}
	}
}

func TestServe(t *testing.T) {
	db := dbFile(t)
	// Last-use times are written by the shutdown only: a test that passes
	// through the periodic write proves nothing about it.
	s := startServer(t, db, "--flush-interval", "1h")
	s.waitHealthy(t)
	if got := logAttr(s.stderr.String(), "listening", "flush_interval"); got != "1h0m0s" {
		t.Errorf("the server logs flush_interval %q, want 1h0m0s", got)
	}

	// The first start prints the root key once, alone on stdout, and a
	// notice on stderr.
	root := strings.TrimSuffix(s.stdout.String(), "\n")
	format, err := apikey.NewFormat(apikey.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if _, perr := format.Parse(root); perr != nil {
		t.Fatalf("stdout is not one key: %q (%v)", s.stdout, perr)
	}
	if !strings.Contains(s.stderr.String(), "will not be shown again") {
		t.Errorf("no notice about the root key on stderr:\n%s", s.stderr)
	}
	if a := s.call(t, "GET", "/v1/whoami", root, nil); a.status != http.StatusOK || !bytes.Contains(a.body, []byte(keyward.PermAdmin)) {
		t.Fatalf("whoami with the root key: %d %s", a.status, a.body)
	}

	// The command line and the HTTP API work on the same database.
	ok(t, db, "tenants", "create", "acme")
	key1, id1 := newKey(t, db, "--name", "to-revoke")
	key2, id2 := newKey(t, db, "--name", "in-use")
	key4, id4 := newKey(t, db, "--name", "used-once")
	a := s.call(t, "POST", "/v1/api-keys", root, map[string]any{"tenant_id": "acme", "name": "from-http"})
	var created struct {
		Data struct {
			ID  string `json:"id"`
			Key string `json:"key"`
		} `json:"data"`
	}
	if err := json.Unmarshal(a.body, &created); a.status != http.StatusCreated || err != nil || created.Data.Key == "" {
		t.Fatalf("POST /v1/api-keys: %d %s", a.status, a.body)
	}
	key3 := created.Data.Key
	if o := ok(t, db, "keys", "show", created.Data.ID); !strings.Contains(o.stdout, "from-http") {
		t.Errorf("the command line does not see the key made over HTTP:\n%s", o.stdout)
	}
	for _, k := range []string{key1, key2, key3} {
		if a := s.call(t, "GET", "/v1/whoami", k, nil); a.status != http.StatusOK {
			t.Fatalf("whoami: %d %s", a.status, a.body)
		}
	}

	// A key revoked from the command line is refused by the running
	// server within 1 s.
	ok(t, db, "keys", "revoke", id1)
	revoked := time.Now()
	for {
		a := s.call(t, "GET", "/v1/whoami", key1, nil)
		if a.status == http.StatusUnauthorized && a.code() == keyward.CodeRevokedAPIKey {
			t.Logf("the server refused the revoked key after %v", time.Since(revoked))
			break
		}
		if time.Since(revoked) > time.Second {
			t.Fatalf("1 s after revoking, the server still answers %d %s", a.status, a.body)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The uses are not written while the server runs: with the default
	// interval of 1s they would be by now.
	used := time.Now()
	if a := s.call(t, "GET", "/v1/whoami", key4, nil); a.status != http.StatusOK {
		t.Fatalf("whoami: %d %s", a.status, a.body)
	}
	time.Sleep(1500 * time.Millisecond)
	for _, id := range []string{id2, id4} {
		if k := showKey(t, db, id); k.LastUsedAt != nil {
			t.Fatalf("key %s was used at %v, written before shutdown with --flush-interval 1h", id, k.LastUsedAt)
		}
	}
	assertNoKeys(t, db, s.stderr.String(), root, key1, key2, key3, key4)

	// The uses are written by the shutdown, and the last log line says
	// it went well.
	if err := s.shutdown(t); err != nil {
		t.Fatalf("serve returned %v after SIGTERM\nstderr: %s", err, s.stderr)
	}
	http.DefaultClient.CloseIdleConnections()
	for _, id := range []string{id2, id4} {
		if k := showKey(t, db, id); k.LastUsedAt == nil {
			t.Errorf("the use of key %s before shutdown was not written by the shutdown", id)
		}
	}
	// The key used once shows the time of that use, to the precision of
	// the verifier's clock.
	if k := showKey(t, db, id4); k.LastUsedAt != nil && k.LastUsedAt.Sub(used).Abs() > time.Second {
		t.Errorf("last_used_at of the key used once is %v, want about %v", k.LastUsedAt, used)
	}
	assertNoKeys(t, db, s.stderr.String(), root, key1, key2, key3, key4)
	for _, msg := range []string{`"msg":"listening"`, `"msg":"shutting down`} {
		if !strings.Contains(s.stderr.String(), msg) {
			t.Errorf("the logs lack %s:\n%s", msg, s.stderr)
		}
	}
	assertStopped(t, s.stderr.String())

	// A later start prints no root key, and the old one still works. The
	// command line can make another root key, as the notice says.
	s2 := startServer(t, db)
	s2.waitHealthy(t)
	if a := s2.call(t, "GET", "/v1/whoami", root, nil); a.status != http.StatusOK {
		t.Errorf("whoami with the root key after a restart: %d %s", a.status, a.body)
	}
	root2 := strings.TrimSpace(ok(t, db, "keys", "create", "--tenant", "system", "--name", "root", "--permissions", keyward.PermAdmin).stdout)
	if a := s2.call(t, "GET", "/v1/tenants", root2, nil); a.status != http.StatusOK || !bytes.Contains(a.body, []byte(`"acme"`)) {
		t.Errorf("GET /v1/tenants with a root key made by the command line: %d %s", a.status, a.body)
	}
	if err := s2.shutdown(t); err != nil {
		t.Fatalf("serve returned %v", err)
	}
	http.DefaultClient.CloseIdleConnections()
	if out := s2.stdout.String(); out != "" {
		t.Errorf("the second start printed on stdout: %q", out)
	}
	if strings.Contains(s2.stderr.String(), "root key") {
		t.Errorf("the second start talks of a root key:\n%s", s2.stderr)
	}
	if got := logAttr(s2.stderr.String(), "listening", "flush_interval"); got != "1s" {
		t.Errorf("the server logs flush_interval %q, want the default 1s", got)
	}
	assertStopped(t, s2.stderr.String())
	assertNoKeys(t, db, s2.stderr.String(), root, root2, key1, key2, key3, key4)
}

func TestServeFlushInterval(t *testing.T) {
	db := newDB(t)
	ok(t, db, "tenants", "create", "acme")
	key, id := newKey(t, db, "--name", "bot")

	// The flag takes its default from KEYWARD_FLUSH_INTERVAL, and wins
	// over it.
	s := startServerEnv(t, db, env("KEYWARD_FLUSH_INTERVAL", "20ms"))
	if got := logAttr(s.stderr.String(), "listening", "flush_interval"); got != "20ms" {
		t.Errorf("KEYWARD_FLUSH_INTERVAL=20ms: the server logs flush_interval %q", got)
	}
	// A use is written while the server runs, within a few intervals.
	if a := s.call(t, "GET", "/v1/whoami", key, nil); a.status != http.StatusOK {
		t.Fatalf("whoami: %d %s", a.status, a.body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for showKey(t, db, id).LastUsedAt == nil {
		if time.Now().After(deadline) {
			t.Fatal("the use was not written within 10s with a flush interval of 20ms")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.shutdown(t); err != nil {
		t.Fatal(err)
	}
	http.DefaultClient.CloseIdleConnections()
	assertStopped(t, s.stderr.String())

	s = startServerEnv(t, db, env("KEYWARD_FLUSH_INTERVAL", "20ms"), "--flush-interval", "2m")
	if got := logAttr(s.stderr.String(), "listening", "flush_interval"); got != "2m0s" {
		t.Errorf("--flush-interval 2m: the server logs flush_interval %q", got)
	}
	if err := s.shutdown(t); err != nil {
		t.Fatal(err)
	}
}

func TestServeAddressInUse(t *testing.T) {
	db := dbFile(t)
	s := startServer(t, db)
	addr := strings.TrimPrefix(s.url, "http://")
	o := fails(t, dbFile(t), 1, []string{"serve", "--addr", addr}, "--addr", addr)
	if o.stdout == "" {
		t.Error("a first start on a new database printed no root key before failing to listen")
	}
	// The last log line says the server stopped, and why.
	lines := strings.Split(strings.TrimSpace(o.stderr), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, `"level":"ERROR","msg":"stopped"`) || !strings.Contains(last, addr) {
		t.Errorf("the last log line is %s", last)
	}
}

// TestServeLogsAbsoluteDB: serve names the database it uses by its absolute
// path, however --db named it, so that the command line can be pointed at
// the same file from any directory.
func TestServeLogsAbsoluteDB(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	s := startServer(t, "sqlite:keyward.db")
	s.waitHealthy(t)
	want, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := logAttr(s.stderr.String(), "listening", "db")
	if real, err := filepath.EvalSymlinks(got); err != nil || real != filepath.Join(want, "keyward.db") || !filepath.IsAbs(got) {
		t.Errorf("listening names db %q; want the absolute path %s", got, filepath.Join(want, "keyward.db"))
	}
}

// TestServeDurationGrammar checks that the duration flags of serve, and
// the variables they take their defaults from, read durations as the API's
// bodies do (manage.ParseDuration): days and weeks as well as Go
// durations, with its errors for a negative or too long one.
func TestServeDurationGrammar(t *testing.T) {
	flags := []struct{ flag, env, attr string }{
		{"--shutdown-timeout", "KEYWARD_SHUTDOWN_TIMEOUT", "shutdown_timeout"},
		{"--flush-interval", "KEYWARD_FLUSH_INTERVAL", "flush_interval"},
		{"--cache-ttl", "KEYWARD_CACHE_TTL", "cache_ttl"},
		{"--storage-timeout", "KEYWARD_STORAGE_TIMEOUT", "storage_timeout"},
		{"--idle-timeout", "KEYWARD_IDLE_TIMEOUT", "idle_timeout"},
		{"--failed-attempts-window", "KEYWARD_FAILED_ATTEMPTS_WINDOW", "failed_attempts_window"},
		{"--failed-attempts-block", "KEYWARD_FAILED_ATTEMPTS_BLOCK", "failed_attempts_block"},
	}
	db := dbFile(t)
	for _, f := range flags {
		t.Run(f.flag, func(t *testing.T) {
			for v, want := range map[string]string{
				"-1h":    `"-1h" is negative`,
				"-2w":    `"-2w" is negative`,
				"36501d": `"36501d" is longer than the maximum of 36500d (100 years)`,
				"5y":     `"5y" is not a duration`,
			} {
				fails(t, db, 2, []string{"serve", f.flag, v}, f.flag, want)
				var stdout, stderr bytes.Buffer
				err := run(t.Context(), []string{"--db", db, "serve"}, env(f.env, v), strings.NewReader(""), &stdout, &stderr)
				if msg := errorMessage(err); exitCode(err) != 2 || !strings.Contains(msg, f.env) || !strings.Contains(msg, want) {
					t.Errorf("%s=%s: exit status %d, message %q; want 2 and %q", f.env, v, exitCode(err), msg, want)
				}
			}
			// A week is read, and the cache's bound still applies to it.
			if f.flag == "--cache-ttl" {
				fails(t, db, 2, []string{"serve", f.flag, "2w"}, "--cache-ttl: must be at most 24h")
			}
		})
	}
	if _, err := os.Stat(db); err == nil {
		t.Error("a usage error opened the database")
	}
	// Every flag takes a day, and every variable a day or a week (the
	// cache's at most 24h).
	var args, vars []string
	for _, f := range flags {
		args = append(args, f.flag, "1d")
		week := "2w"
		if f.env == "KEYWARD_CACHE_TTL" {
			week = "1d"
		}
		vars = append(vars, f.env, week)
	}
	for _, c := range []struct {
		name       string
		vars, args []string
		want       func(env string) string
	}{
		{"flags", nil, args, func(string) string { return "24h0m0s" }},
		{"variables", vars, nil, func(env string) string {
			if env == "KEYWARD_CACHE_TTL" {
				return "24h0m0s"
			}
			return "336h0m0s"
		}},
	} {
		s := startServerEnv(t, db, env(c.vars...), c.args...)
		for _, f := range flags {
			if got := logAttr(s.stderr.String(), "listening", f.attr); got != c.want(f.env) {
				t.Errorf("%s: the server logs %s %q, want %s", c.name, f.attr, got, c.want(f.env))
			}
		}
		if err := s.shutdown(t); err != nil {
			t.Fatal(err)
		}
		http.DefaultClient.CloseIdleConnections()
	}
}
