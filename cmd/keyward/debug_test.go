package main

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

// TestServeDebugAddr: --debug-addr serves Go's profiles and execution
// traces on a listener of its own, which the API's listener does not, and
// only on a loopback address.
func TestServeDebugAddr(t *testing.T) {
	db := dbFile(t)
	s := startServer(t, db, "--debug-addr", "127.0.0.1:0")
	s.waitHealthy(t)
	addr := logAttr(s.stderr.String(), "debug listener: Go profiles and traces served on /debug/pprof/; keep it off in production", "addr")
	if addr == "" {
		t.Fatalf("no log line names the debug listener's address:\n%s", s.stderr)
	}
	get := func(url string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	if code, body := get("http://" + addr + "/debug/pprof/"); code != http.StatusOK || !bytes.Contains(body, []byte("mutex")) {
		t.Errorf("GET /debug/pprof/ on the debug listener: %d %.200s", code, body)
	}
	// An execution trace, as go tool trace reads it.
	if code, body := get("http://" + addr + "/debug/pprof/trace?seconds=0.2"); code != http.StatusOK || !bytes.HasPrefix(body, []byte("go 1.")) {
		t.Errorf("GET /debug/pprof/trace on the debug listener: %d %.40q", code, body)
	}
	if code, _ := get(s.url + "/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ on the API's listener: %d, want 404", code)
	}
	if err := s.shutdown(t); err != nil {
		t.Fatal(err)
	}
	assertStopped(t, s.stderr.String())
	if resp, err := http.Get("http://" + addr + "/debug/pprof/"); err == nil {
		resp.Body.Close()
		t.Errorf("the debug listener still answers after serve stopped: %d", resp.StatusCode)
	}

	// Without the flag, nothing but the API listens.
	s = startServer(t, db)
	s.waitHealthy(t)
	if addr := logAttr(s.stderr.String(), "debug listener: Go profiles and traces served on /debug/pprof/; keep it off in production", "addr"); addr != "" {
		t.Errorf("without --debug-addr, a debug listener on %s", addr)
	}
}

// TestServeDebugAddrLoopbackOnly: the profiles show the server's memory,
// so --debug-addr refuses an address that is not loopback, or not
// host:port, before anything starts.
func TestServeDebugAddrLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:6060", ":6060", "192.0.2.7:6060", "[::]:6060", "example.com:6060", "127.0.0.1"} {
		o := fails(t, dbFile(t), 2, []string{"serve", "--addr", "127.0.0.1:0", "--debug-addr", addr}, "--debug-addr", "127.0.0.1:6060")
		if o.stdout != "" {
			t.Errorf("--debug-addr %s: printed %q before refusing", addr, o.stdout)
		}
	}
	// Loopback in every spelling is taken.
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0", "localhost:0", "127.0.0.2:0"} {
		if err := checkDebugAddr(addr); err != nil {
			t.Errorf("--debug-addr %s: %v", addr, err)
		}
	}
}
