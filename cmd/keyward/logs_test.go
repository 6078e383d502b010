package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestRequestLogSIGTERM: the request-log entries still waiting in memory
// when serve gets SIGTERM are written before it exits: with a write
// interval of an hour, every refused call made is found afterwards by
// keyward logs, by its X-Request-Id.
func TestRequestLogSIGTERM(t *testing.T) {
	db := "sqlite:" + dbFile(t)
	p := startProcess(t, db, "--log-interval", "1h")
	var ids []string
	for range 50 {
		req, _ := http.NewRequest("GET", p.url+"/v1/whoami", nil)
		req.Header.Set("X-API-Key", "sk_live_"+strings.Repeat("A", 37))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
		ids = append(ids, resp.Header.Get("X-Request-Id"))
	}
	p.terminate(t)
	assertStopped(t, p.stderr.String())

	var stdout bytes.Buffer
	cmd := commandOn(t, db, "logs", "--json", "--limit", "200")
	cmd.Stdout = &stdout
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	var list struct {
		Data []struct {
			RequestID string `json:"request_id"`
			Code      string `json:"code"`
			Status    int    `json:"status"`
			Path      string `json:"path"`
		} `json:"data"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &list); err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	found := map[string]bool{}
	for _, e := range list.Data {
		if e.Code == "malformed_api_key" || e.Code == "invalid_api_key" {
			found[e.RequestID] = e.Status == 401 && e.Path == "/v1/whoami"
		}
	}
	for _, id := range ids {
		if !found[id] {
			t.Fatalf("request %s not in the log after SIGTERM; the log has %d entries", id, len(list.Data))
		}
	}

	// One entry, by its request id, as a table.
	stdout.Reset()
	cmd = commandOn(t, db, "logs", "--request-id", ids[7])
	cmd.Stdout = &stdout
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(stdout.String()), "\n"); len(lines) != 2 || !strings.Contains(lines[1], ids[7]) || !strings.Contains(lines[1], "/v1/whoami") {
		t.Fatalf("keyward logs --request-id:\n%s", stdout.String())
	}
}
