package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward"
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

// TestUsageTwoNodesSIGTERM: 10,000 requests across two nodes on one
// PostgreSQL database, each with a small request-log buffer (entries are
// dropped) and a write interval of an hour, then SIGTERM to both: the
// usage counts of keyward usage are exact, by key, by code, by the hour
// and by the day.
func TestUsageTwoNodesSIGTERM(t *testing.T) {
	d := newPGDeployment(t)
	root := d.migrate(t)
	args := []string{"--log-interval", "1h", "--log-buffer", "4", "--failed-attempts", "0"}
	nodes := []*process{d.startProcessNode(t, "A", args...), d.startProcessNode(t, "B", args...)}
	acme := createTenant(t, nodes[0].server, root, "acme")
	good, goodID := createKey(t, nodes[0].server, root, acme, "good")
	// A key of another network: refused on every node from the start.
	a := nodes[1].call(t, "POST", "/v1/api-keys", root, map[string]any{"tenant_id": acme, "name": "elsewhere", "restrictions": map[string]any{"ips": []string{"192.0.2.0/24"}}})
	m, made := madeKeyOf(a)
	if !made {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	refused, refusedID := m.key, m.id
	from := time.Now().UTC()

	// 10,000 requests: every third with the refused key, from 8 clients
	// spread over the two nodes.
	const total, clients = 10000, 8
	var sent [2]atomic.Int64 // good, refused: those answered as expected
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer client.CloseIdleConnections()
			for i := c; i < total; i += clients {
				key, want, n := good, http.StatusOK, &sent[0]
				if i%3 == 0 {
					key, want, n = refused, http.StatusForbidden, &sent[1]
				}
				req, _ := http.NewRequest("GET", nodes[i%2].url+"/v1/whoami", nil)
				req.Header.Set("X-API-Key", key)
				resp, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != want {
					errs <- fmt.Errorf("request %d: status %d, want %d", i, resp.StatusCode, want)
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, p := range nodes {
		p.terminate(t)
	}
	wantGood, wantRefused := int64(total-(total+2)/3), int64((total+2)/3)
	if sent[0].Load() != wantGood || sent[1].Load() != wantRefused {
		t.Fatalf("answered %d good, %d refused; want %d and %d", sent[0].Load(), sent[1].Load(), wantGood, wantRefused)
	}
	if !strings.Contains(nodes[0].stderr.String()+nodes[1].stderr.String(), "entries dropped") {
		t.Error("no node dropped a log entry: the test's buffer is too large to show that usage counts them all the same")
	}

	for _, g := range []string{"hour", "day"} {
		for _, k := range []struct {
			id      string
			allowed int64
			code    keyward.Code
			refused int64
		}{{goodID, wantGood, "", 0}, {refusedID, 0, keyward.CodeIPNotAllowed, wantRefused}} {
			var u keyward.UsageReport
			out := ok(t, d.dsn, "usage", "--json", "--key", k.id, "--granularity", g, "--from", from.Add(-time.Hour).Format(time.RFC3339))
			if err := json.Unmarshal([]byte(out.stdout), &u); err != nil {
				t.Fatalf("%v\n%s", err, out.stdout)
			}
			if u.Total.Allowed != k.allowed || u.Total.Refused != k.refused || (k.code != "" && u.Total.Codes[k.code] != k.refused) {
				t.Errorf("by the %s, key %s: total %+v; want %d allowed, %d refused as %s", g, k.id, u.Total, k.allowed, k.refused, k.code)
			}
			var sum int64
			for _, b := range u.Buckets {
				sum += b.Requests
			}
			if sum != k.allowed+k.refused {
				t.Errorf("by the %s, key %s: buckets add up to %d, want %d", g, k.id, sum, k.allowed+k.refused)
			}
		}
	}
}
