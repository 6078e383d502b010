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

// command returns the test binary set up to run as keyward with args on db.
func command(t *testing.T, db string, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), "KEYWARD_TEST_MAIN=1", "KEYWARD_DB=sqlite:"+db, "KEYWARD_KEY_PREFIX=", "KEYWARD_ADDR=", "KEYWARD_FLUSH_INTERVAL=")
	return cmd
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

func TestProcessServeSIGTERM(t *testing.T) {
	db := dbFile(t)
	cmd := command(t, db, "serve", "--addr", "127.0.0.1:0")
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(30 * time.Second)
	for listeningAddr(stderr.String()) == "" {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not listen within 30s\nstderr: %s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM\nstderr: %s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not exit within 20s of SIGTERM")
	}
	if !strings.Contains(stderr.String(), "shutting down") {
		t.Errorf("no shutdown in the logs:\n%s", stderr.String())
	}
	assertStopped(t, stderr.String())
	root := strings.TrimSpace(stdout.String())
	if !strings.HasPrefix(root, "sk_live_") || strings.Contains(stderr.String(), root) {
		t.Errorf("stdout %q should be the root key alone, and stderr should not contain it", stdout.String())
	}
}
