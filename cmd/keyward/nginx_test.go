package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// readmeNginx returns the nginx snippet of the README, so that the test
// runs what users copy.
func readmeNginx(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "```nginx\n")
	snippet, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README.md has no ```nginx block")
	}
	return snippet
}

// startNginx runs a real nginx in the foreground with the README's snippet
// in a server on a free loopback port, keyward and upstream put in place of
// the snippet's addresses, and returns its base URL.
func startNginx(t *testing.T, keyward, upstream string) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		t.Fatal("nginx is not installed; scripts/test installs it (apt-get install nginx)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	snippet := strings.NewReplacer("http://127.0.0.1:9000", upstream, "http://127.0.0.1:8080", keyward).Replace(readmeNginx(t))
	conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events {}
http {
    access_log off;
    client_body_temp_path %[1]s; proxy_temp_path %[1]s; fastcgi_temp_path %[1]s; uwsgi_temp_path %[1]s; scgi_temp_path %[1]s;
    server {
        listen %[2]s;
%[3]s
    }
}
`, dir, addr, snippet)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", path, "-e", filepath.Join(dir, "error.log"))
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return "http://" + addr
		}
		if time.Now().After(deadline) {
			logs, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx did not listen on %s within 10s: %s\n%s", addr, out.String(), logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNginxForwardAuth puts a real nginx, configured with the README's
// snippet, in front of an upstream, with Keyward's /v1/forward-auth deciding
// every request.
func TestNginxForwardAuth(t *testing.T) {
	db := dbFile(t)
	kw := startServer(t, db, "--trusted-proxies", "127.0.0.1")
	kw.waitHealthy(t)

	var mu sync.Mutex
	var seen http.Header
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = r.Header.Clone()
		mu.Unlock()
		io.WriteString(w, "upstream ok")
	}))
	t.Cleanup(upstream.Close)
	proxy := startNginx(t, kw.url, upstream.URL)

	ok(t, db, "tenants", "create", "acme")
	key := strings.TrimSpace(ok(t, db, "keys", "create", "--tenant", "acme", "--name", "n", "--env", "test", "--permissions", "contacts:read,messages:send").stdout)
	noPerm := strings.TrimSpace(ok(t, db, "keys", "create", "--tenant", "acme", "--name", "p", "--permissions", "messages:send").stdout)
	office := strings.TrimSpace(ok(t, db, "keys", "create", "--tenant", "acme", "--name", "o", "--permissions", "contacts:read", "--allow-ip", "10.0.0.0/8").stdout)

	get := func(header ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", proxy+"/api/orders", nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	for _, hdr := range [][]string{{"X-API-Key", key}, {"Authorization", "Bearer " + key}} {
		resp, body := get(hdr...)
		if resp.StatusCode != 200 || body != "upstream ok" {
			t.Fatalf("%s: %d %q", hdr[0], resp.StatusCode, body)
		}
		mu.Lock()
		h := seen
		mu.Unlock()
		if h.Get("X-Keyward-Environment") != "test" || h.Get("X-Keyward-Permissions") != "contacts:read,messages:send" ||
			!strings.HasPrefix(h.Get("X-Keyward-Key-Id"), "key_") || !strings.HasPrefix(h.Get("X-Keyward-Tenant"), "ten_") {
			t.Errorf("%s: the upstream got identity headers %v", hdr[0], h)
		}
		if h.Get("X-Api-Key") != "" || h.Get("Authorization") != "" {
			t.Errorf("%s: the key reached the upstream", hdr[0])
		}
	}

	refusals := []struct {
		name      string
		header    []string
		status    int
		challenge string
	}{
		{"missing", nil, 401, `Bearer realm="keyward"`},
		{"malformed", []string{"X-API-Key", "sk_live_nonsense"}, 401, `error="invalid_token"`},
		{"insufficient permissions", []string{"X-API-Key", noPerm}, 403, ""},
		// The client's own X-Forwarded-For is replaced by nginx's.
		{"ip not allowed", []string{"X-API-Key", office, "X-Forwarded-For", "10.1.2.3"}, 403, ""},
	}
	for _, c := range refusals {
		resp, body := get(c.header...)
		if resp.StatusCode != c.status || !strings.Contains(resp.Header.Get("WWW-Authenticate"), c.challenge) {
			t.Errorf("%s: %d, WWW-Authenticate %q", c.name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		if !strings.HasPrefix(resp.Header.Get("X-Request-Id"), "req_") {
			t.Errorf("%s: no X-Request-Id from Keyward: %v", c.name, resp.Header)
		}
		if strings.Contains(body, "upstream ok") {
			t.Errorf("%s: the request reached the upstream", c.name)
		}
	}

	// Revoked from the command line, the key is refused through nginx
	// within a second.
	keys := decodeList[map[string]any](t, ok(t, db, "keys", "list", "--tenant", "acme", "--env", "test", "--json").stdout)
	ok(t, db, "keys", "revoke", keys.Data[0]["id"].(string))
	deadline := time.Now().Add(time.Second)
	for {
		resp, _ := get("X-API-Key", key)
		if resp.StatusCode == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the revoked key still passes nginx after 1s: %d", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
