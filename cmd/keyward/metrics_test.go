package main

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/metricstest"
)

// TestMetrics: GET /metrics on --addr needs a key with keyward:metrics (or
// root); on --metrics-addr it needs none; the figures parse with
// Prometheus's own parser and count what was done. --access-log writes a
// JSON line per verification on stdout, without a key or a query string.
func TestMetrics(t *testing.T) {
	db := "sqlite:" + dbFile(t)
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := free.Addr().String()
	free.Close()
	s := startServer(t, db, "--metrics-addr", metricsAddr, "--access-log")
	s.waitHealthy(t)
	root := strings.SplitN(s.stdout.String(), "\n", 2)[0]
	acme := createTenant(t, s, root, "acme")
	key, _ := createKey(t, s, root, acme, "app")
	revoked, revokedID := createKey(t, s, root, acme, "old")
	if a := s.call(t, "DELETE", "/v1/api-keys/"+revokedID, root, nil); a.status != 200 {
		t.Fatalf("revoke: %d", a.status)
	}
	monitor := s.call(t, "POST", "/v1/api-keys", root, map[string]any{"tenant_id": "system", "name": "prometheus", "permissions": []string{keyward.PermMetrics}})
	m, made := madeKeyOf(monitor)
	if !made {
		t.Fatalf("the monitoring key: %d %s", monitor.status, monitor.body)
	}
	for range 3 {
		if a := s.call(t, "GET", "/v1/whoami?token=secret", revoked, nil); a.status != 401 {
			t.Fatalf("whoami with a revoked key: %d", a.status)
		}
	}
	for range 2 {
		req, _ := http.NewRequest("GET", s.url+"/v1/forward-auth", nil)
		req.Header.Set("X-API-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("forward-auth: %v %v", resp, err)
		}
		resp.Body.Close()
	}

	// On --addr: a key, of the system tenant, with keyward:metrics.
	for _, c := range []struct {
		key    string
		status int
	}{{"", 401}, {key, 403}, {m.key, 200}, {root, 200}} {
		if a := s.call(t, "GET", "/metrics", c.key, nil); a.status != c.status {
			t.Errorf("GET /metrics on --addr with %q: %d, want %d", c.key, a.status, c.status)
		}
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics on --metrics-addr: %d", resp.StatusCode)
	}
	f := metricstest.Parse(t, resp.Body)
	for _, c := range []struct {
		value  float64
		name   string
		labels []string
	}{
		{3, "keyward_verifications_total", []string{"surface", "api", "outcome", "revoked_api_key"}},
		{2, "keyward_verifications_total", []string{"surface", "forward-auth", "outcome", "allowed"}},
		{2, "keyward_verification_duration_seconds", []string{"surface", "forward-auth"}},
		{0, "keyward_request_log_dropped_total", nil},
	} {
		if v, ok := f.Value(c.name, c.labels...); !ok || v != c.value {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, v, ok, c.value)
		}
	}
	for _, name := range []string{"keyward_cache_hits_total", "keyward_cache_misses_total", "keyward_cache_keys", "keyward_change_feed_lag_seconds",
		"keyward_store_duration_seconds", "keyward_request_log_written_total", "go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := f.Value(name); !ok {
			t.Errorf("no %s", name)
		}
	}

	// The access log: a line per verification, the root key's own calls
	// too; never a key or a query string.
	lines := strings.Split(strings.TrimSpace(s.stdout.String()), "\n")[1:] // the first is the root key
	revokedLines := 0
	for _, line := range lines {
		var l struct {
			Msg, Surface, Path, Code string
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil || l.Msg != "request" || l.Surface == "" {
			t.Fatalf("access log line %q: %v", line, err)
		}
		if l.Code == "revoked_api_key" && l.Path == "/v1/whoami" {
			revokedLines++
		}
		for _, secret := range []string{root, key, revoked, m.key, "token=secret"} {
			if strings.Contains(line, secret) {
				t.Errorf("the access log holds %q: %s", secret, line)
			}
		}
	}
	if revokedLines != 3 {
		t.Errorf("%d access log lines of the revoked key's calls, want 3", revokedLines)
	}
}
