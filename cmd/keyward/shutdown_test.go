package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestShutdownFinishesInFlight: a request whose body is still arriving when
// the server is told to stop is finished and answered, its key is stored,
// and the server takes no new connection meanwhile.
func TestShutdownFinishesInFlight(t *testing.T) {
	db := dbFile(t)
	s := startServer(t, db)
	s.waitHealthy(t)
	root := strings.TrimSpace(s.stdout.String())
	ok(t, db, "tenants", "create", "acme")

	body, send := io.Pipe()
	req, err := http.NewRequest("POST", s.url+"/v1/api-keys", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-API-Key", root)
	answered := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("the request in flight failed: %v", err)
			answered <- nil
			return
		}
		answered <- resp
	}()
	// Half of the body is sent; then the server is told to stop.
	if _, err := io.WriteString(send, `{"tenant_id": "acme", `); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the server start reading it
	s.stop()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.stderr.String(), "shutting down") {
		if time.Now().After(deadline) {
			t.Fatalf("the server did not start shutting down:\n%s", s.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// No new connection is taken now.
	if resp, err := http.Get(s.url + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("a new request was served during shutdown: %d", resp.StatusCode)
	}
	// The rest of the body arrives; the request is finished and answered.
	if _, err := io.WriteString(send, `"name": "in-flight"}`); err != nil {
		t.Fatal(err)
	}
	send.Close()
	resp := <-answered
	if resp == nil {
		t.FailNow()
	}
	defer resp.Body.Close()
	var created struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&created); resp.StatusCode != http.StatusCreated || err != nil {
		t.Fatalf("the request in flight: %d, %v", resp.StatusCode, err)
	}
	if err := <-s.done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	s.done <- nil // for the cleanup
	if o := ok(t, db, "keys", "show", created.Data.ID); !strings.Contains(o.stdout, "in-flight") {
		t.Errorf("the key made by the request in flight is not stored:\n%s", o.stdout)
	}
	assertStopped(t, s.stderr.String())
}
