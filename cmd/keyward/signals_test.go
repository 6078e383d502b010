package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

// TestSignalsDelivered: a key used from two client networks on one day,
// with --sharing-networks 1, is flagged sharing_suspected with the
// networks as evidence, and key.sharing_suspected is delivered, signed;
// five refusals of a malformed key in a minute, with --failure-spike 5,
// deliver one auth.failure_spike to the operator's endpoint, with the
// code and the address.
func TestSignalsDelivered(t *testing.T) {
	r := newHookReceiver(t)
	db := "sqlite:" + dbFile(t)
	k := startProcess(t, db, "--webhook-allow-private", "--trusted-proxies", "127.0.0.1/32",
		"--sharing-networks", "1", "--failure-spike", "5", "--log-interval", "50ms")
	k.waitHealthy(t)
	root := strings.TrimSpace(k.stdout.String())
	r.register(t, k.server, root, keyward.EventSharingSuspected, keyward.EventAuthFailureSpike)
	acme := createTenant(t, k.server, root, "acme")
	key, id := createKey(t, k.server, root, acme, "single-use")

	whoami := func(key, from string) int {
		req, _ := http.NewRequest("GET", k.url+"/v1/whoami", nil)
		req.Header.Set("X-API-Key", key)
		req.Header.Set("X-Forwarded-For", from)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, from := range []string{"203.0.113.7", "203.0.113.8", "198.51.100.9"} {
		if st := whoami(key, from); st != http.StatusOK {
			t.Fatalf("whoami from %s: %d", from, st)
		}
	}
	waitFor(t, "key.sharing_suspected delivered", func() bool { return len(r.dataOf(keyward.EventSharingSuspected)) == 1 })
	var sharing struct {
		Key     struct{ ID string }
		Sharing keyward.Sharing
	}
	if err := json.Unmarshal(r.dataOf(keyward.EventSharingSuspected)[0], &sharing); err != nil {
		t.Fatal(err)
	}
	wantNets := []string{"203.0.113.0/24", "198.51.100.0/24"}
	if sharing.Key.ID != id || !slices.Equal(sharing.Sharing.Networks, wantNets) || !slices.Equal(sharing.Sharing.Reasons, []string{keyward.SightNetwork}) {
		t.Fatalf("key.sharing_suspected data: %+v; want key %s, networks %v", sharing, id, wantNets)
	}
	a := k.call(t, "GET", "/v1/api-keys/"+id, root, nil)
	var shown struct {
		Data struct {
			SharingSuspected bool `json:"sharing_suspected"`
			Sharing          *keyward.Sharing
		}
	}
	err := json.Unmarshal(a.body, &shown)
	if got := shown.Data; err != nil || !got.SharingSuspected || got.Sharing == nil || !slices.Equal(got.Sharing.Networks, wantNets) {
		t.Fatalf("GET the key: %d %s; want sharing_suspected with the networks", a.status, a.body)
	}
	if o := ok(t, db, "keys", "show", id).stdout; !strings.Contains(o, "suspected on") || !strings.Contains(o, "198.51.100.0/24") {
		t.Fatalf("keys show does not show the suspicion:\n%s", o)
	}
	// Only the operator clears it, and only Keyward sets it.
	mgr, made := madeKeyOf(k.call(t, "POST", "/v1/api-keys", root, map[string]any{"tenant_id": acme, "name": "mgr", "permissions": []string{"keys:manage"}}))
	if !made {
		t.Fatal("could not make a manager key")
	}
	for _, tc := range []struct {
		key    string
		value  bool
		status int
	}{{mgr.key, false, http.StatusForbidden}, {root, true, http.StatusBadRequest}, {root, false, http.StatusOK}} {
		a := k.call(t, "PATCH", "/v1/api-keys/"+id, tc.key, map[string]any{"sharing_suspected": tc.value})
		if a.status != tc.status {
			t.Fatalf("PATCH sharing_suspected %v: %d %s; want %d", tc.value, a.status, a.body, tc.status)
		}
	}
	if o := ok(t, db, "keys", "show", id).stdout; strings.Contains(o, "suspected on") {
		t.Fatalf("the suspicion was not cleared:\n%s", o)
	}

	unknown := "sk_live_" + strings.Repeat("Z", 32)
	// Ten, so that one minute holds five even if a minute ends among
	// them; the next minute is the same episode.
	for range 10 {
		if st := whoami(unknown, "192.0.2.66"); st != http.StatusUnauthorized {
			t.Fatalf("an unknown key: %d", st)
		}
	}
	waitFor(t, "auth.failure_spike delivered", func() bool { return len(r.dataOf(keyward.EventAuthFailureSpike)) == 1 })
	var spike keyward.FailureSpike
	if err := json.Unmarshal(r.dataOf(keyward.EventAuthFailureSpike)[0], &spike); err != nil {
		t.Fatal(err)
	}
	if spike.Subject != keyward.SubjectTenant || spike.TenantID != "" || spike.Refusals != 5 || spike.Codes[keyward.CodeMalformedAPIKey] != 5 ||
		len(spike.Addresses) != 1 || spike.Addresses[0] != (keyward.AddressCount{Address: "192.0.2.66", Count: 5}) {
		t.Fatalf("auth.failure_spike data: %+v", spike)
	}
	if _, _, _, bad := r.counts(""); bad != 0 {
		t.Fatalf("%d deliveries refused for their signature", bad)
	}
}
