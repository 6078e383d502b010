package policy

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuffer collects what a File logs, for a test to read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLog() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, nil)), b
}

func writeFile(t *testing.T, name, data string) {
	t.Helper()
	// Write and rename, as editors and configuration tools do, so a
	// reader never sees half a file.
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
}

const (
	goodA = "default: deny\nroutes:\n  - match: GET /a\n"
	goodB = "default: authenticated\nroutes:\n  - match: GET /b\n  - match: GET /b/{id}\n"
	bad   = "default: deny\nroutes:\n  - match: GET /a\n    environments: [prod]\n"
)

func routeNames(p *Policy) string {
	var names []string
	for _, r := range p.Routes() {
		names = append(names, r.String())
	}
	return strings.Join(names, ",") + " " + string(p.Default())
}

func TestFileReload(t *testing.T) {
	name := filepath.Join(t.TempDir(), "routes.yaml")
	writeFile(t, name, goodA)
	log, logs := newLog()
	f, err := Open(name, log)
	if err != nil {
		t.Fatal(err)
	}
	if got := routeNames(f.Policy()); got != "GET /a deny" {
		t.Fatalf("policy %s", got)
	}
	first := f.Policy()

	writeFile(t, name, bad)
	err = f.Reload()
	want := name + `:3: route "GET /a": environment "prod" is not one; use live or test`
	if err == nil || err.Error() != want {
		t.Fatalf("Reload of a bad file: %v, want %s", err, want)
	}
	if f.Policy() != first {
		t.Fatal("a bad file replaced the policy")
	}
	if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "the previous policy stays") || !strings.Contains(l, `environment \"prod\" is not one`) {
		t.Errorf("log does not say what is wrong:\n%s", l)
	}

	writeFile(t, name, goodB)
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := routeNames(f.Policy()); got != "GET /b,GET /b/{id} authenticated" {
		t.Fatalf("policy %s", got)
	}
	if l := logs.String(); !strings.Contains(l, "routes file reloaded") || !strings.Contains(l, "routes=2 default=authenticated") {
		t.Errorf("log does not say the file was reloaded:\n%s", l)
	}

	if err := os.Remove(name); err != nil {
		t.Fatal(err)
	}
	if err := f.Reload(); err == nil || !os.IsNotExist(err) {
		t.Errorf("Reload of a missing file: %v", err)
	}
	if got := routeNames(f.Policy()); got != "GET /b,GET /b/{id} authenticated" {
		t.Errorf("a missing file changed the policy to %s", got)
	}
}

func TestOpenFails(t *testing.T) {
	dir := t.TempDir()
	log, _ := newLog()
	if _, err := Open(filepath.Join(dir, "missing.yaml"), log); !os.IsNotExist(err) {
		t.Errorf("Open of a missing file: %v", err)
	}
	name := filepath.Join(dir, "routes.yaml")
	writeFile(t, name, bad)
	if _, err := Open(name, log); err == nil || !strings.HasPrefix(err.Error(), name+":3: ") {
		t.Errorf("Open of a bad file: %v", err)
	}
	big := filepath.Join(dir, "big.yaml")
	writeFile(t, big, "# "+strings.Repeat("x", MaxFileSize)+"\n")
	if _, err := Open(big, log); err == nil || !strings.Contains(err.Error(), "is larger than 1048576 bytes (1 MiB)") {
		t.Errorf("Open of a big file: %v", err)
	}
}

// waitFor polls cond until it holds; the deadline is generous, since the
// machine may be busy, and only a broken watcher reaches it.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFileWatch(t *testing.T) {
	name := filepath.Join(t.TempDir(), "routes.yaml")
	writeFile(t, name, goodA)
	log, logs := newLog()
	f, err := Open(name, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		f.Watch(ctx, 10*time.Millisecond)
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })

	writeFile(t, name, goodB)
	waitFor(t, "the new policy", func() bool { return routeNames(f.Policy()) == "GET /b,GET /b/{id} authenticated" })

	writeFile(t, name, bad)
	waitFor(t, "the bad file in the log", func() bool { return strings.Contains(logs.String(), `environment \"prod\" is not one`) })
	if got := routeNames(f.Policy()); got != "GET /b,GET /b/{id} authenticated" {
		t.Errorf("a bad file changed the policy to %s", got)
	}

	if err := os.Remove(name); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the missing file in the log", func() bool { return strings.Contains(logs.String(), "routes file cannot be read") })

	// The same good contents as before the bad file are loaded again:
	// what was tried last was the bad file.
	writeFile(t, name, goodB+"# changed\n")
	writeFile(t, name, goodA)
	waitFor(t, "the third policy", func() bool { return routeNames(f.Policy()) == "GET /a deny" })

	// A bad file is logged once, not at every check.
	writeFile(t, name, bad)
	waitFor(t, "the bad file in the log again", func() bool {
		return strings.Count(logs.String(), `environment \"prod\" is not one`) == 2
	})
	before := f.Policy()
	writeFile(t, name, goodA) // A good file again, to know a check ran after the bad one.
	waitFor(t, "the fourth policy", func() bool { return f.Policy() != before })
	if n := strings.Count(logs.String(), `environment \"prod\" is not one`); n != 2 {
		t.Errorf("the bad file is logged %d times, want 2:\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), "routes file cannot be read"); n != 1 {
		t.Errorf("the missing file is logged %d times, want 1", n)
	}
}
