package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/lockedbuffer"
)

// TestMain lets the test binary stand in for keyward: run with
// KEYWARD_TEST_MAIN=1, it runs main with its arguments, so that tests can
// check exit statuses, messages and signals of the real process.
func TestMain(m *testing.M) {
	if os.Getenv("KEYWARD_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// command returns the test binary set up to run as keyward with args on
// the SQLite database file db.
func command(t *testing.T, db string, args ...string) *exec.Cmd {
	t.Helper()
	return commandOn(t, "sqlite:"+db, args...)
}

// commandOn returns the test binary set up to run as keyward with args on
// the database URL db.
func commandOn(t *testing.T, db string, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	// No KEYWARD_ variable of the test's environment leaks in.
	for _, v := range os.Environ() {
		if !strings.HasPrefix(v, "KEYWARD_") {
			cmd.Env = append(cmd.Env, v)
		}
	}
	cmd.Env = append(cmd.Env, "KEYWARD_TEST_MAIN=1", "KEYWARD_DB="+db)
	// The process dies with the test binary, even one killed by -timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// process is a run of keyward serve as a process of its own, which a test
// can signal or kill.
type process struct {
	*server
	cmd *exec.Cmd
	// exited receives what Wait returned, once.
	exited chan error
}

// startProcess runs keyward serve on the database URL db, on a free port of
// 127.0.0.1, with args added, and waits until it logs the address it
// listens on. The process is killed at the end of the test if it still
// runs.
func startProcess(t *testing.T, db string, args ...string) *process {
	t.Helper()
	cmd := commandOn(t, db, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	p := &process{server: &server{stdout: &lockedbuffer.Buffer{}, stderr: &lockedbuffer.Buffer{}}, cmd: cmd, exited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
	})
	// Under the race detector on a busy machine, a start can take seconds.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if addr := listeningAddr(p.stderr.String()); addr != "" {
			p.url = "http://" + addr
			return p
		}
		select {
		case err := <-p.exited:
			p.exited <- err
			t.Fatalf("serve exited with %v before it listened\nstderr: %s", err, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not listen within 30s\nstderr: %s", p.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestProcess(t *testing.T) {
	db := newDB(t)
	for _, tc := range []struct {
		name       string
		args       []string
		status     int
		stdout     string
		stderr     string
		noPrefixed bool
	}{
		{"success", []string{"tenants", "create", "acme"}, 0, "acme", "Created tenant acme", true},
		{"error", []string{"tenants", "show", "nobody"}, 1, "", "keyward: No tenant with id \"nobody\"", false},
		{"field error", []string{"keys", "create", "--tenant", "acme", "--name", "x", "--env", "prod"}, 1, "", "keyward: --env: \"prod\"", false},
		{"refused key", []string{"verify", "sk_live_nope"}, 1, "refused: malformed_api_key: ", "", true},
		{"usage error", []string{"frobnicate"}, 2, "", "keyward: unknown command \"frobnicate\"", false},
		{"bad flag", []string{"tenants", "list", "--frob"}, 2, "", "keyward: unknown flag: --frob", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cmd := command(t, db, tc.args...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			status := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				status = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if status != tc.status || !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("exit status %d, stdout %q, stderr %q; want %d, %q, %q", status, stdout.String(), stderr.String(), tc.status, tc.stdout, tc.stderr)
			}
			if tc.noPrefixed && strings.Contains(stderr.String(), "keyward: ") {
				t.Errorf("stderr %q has an error message", stderr.String())
			}
		})
	}
}

// terminate sends serve SIGTERM and fails the test unless it exits
// without an error within 20s.
func (p *process) terminate(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		p.exited <- err
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM\nstderr: %s", err, p.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not exit within 20s of SIGTERM")
	}
}

func TestProcessServeSIGTERM(t *testing.T) {
	p := startProcess(t, "sqlite:"+dbFile(t))
	p.terminate(t)
	stderr := p.stderr.String()
	if !strings.Contains(stderr, "shutting down") {
		t.Errorf("no shutdown in the logs:\n%s", stderr)
	}
	assertStopped(t, stderr)
	root := strings.TrimSpace(p.stdout.String())
	if !strings.HasPrefix(root, "sk_live_") || strings.Contains(stderr, root) {
		t.Errorf("stdout %q should be the root key alone, and stderr should not contain it", p.stdout.String())
	}
}
