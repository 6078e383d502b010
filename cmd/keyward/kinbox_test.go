package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// TestKinboxPromiseTwoProcesses is Kinbox's promise, "the token inherits
// all permissions from the operator who generated it", on two serve
// processes sharing one PostgreSQL database: a member makes a key with
// contacts:write; an admin removes contacts:write from the member through
// process A; within 1 s, process B (and A itself) refuse the key for
// contacts:write with insufficient_permissions saying why, while its
// contacts:read still works. Removing the member revokes the key on both.
func TestKinboxPromiseTwoProcesses(t *testing.T) {
	d := newPGDeployment(t)
	a := startProcess(t, d.dsn)
	a.waitHealthy(t)
	root := strings.TrimSpace(a.stdout.String())
	b := startProcess(t, d.dsn)
	b.waitHealthy(t)
	nodes := map[string]*server{"A": a.server, "B": b.server}

	acme := createTenant(t, a.server, root, "acme")
	member := func(email, role string, perms ...string) string {
		t.Helper()
		ans := a.call(t, "POST", "/v1/members", root, map[string]any{"tenant_id": acme, "email": email, "name": email, "role": role, "permissions": perms})
		var m struct {
			Data struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		if err := json.Unmarshal(ans.body, &m); ans.status != http.StatusCreated || err != nil || m.Data.ID == "" {
			t.Fatalf("POST /v1/members %s: %d %s", email, ans.status, ans.body)
		}
		return m.Data.ID
	}
	member("owner@example.com", "owner")
	admin := member("admin@example.com", "admin")
	agent := member("agent@example.com", "developer", "contacts:read", "contacts:write")
	keyFor := func(by, memberID string, perms ...string) string {
		t.Helper()
		body := map[string]any{"name": "key of " + memberID, "permissions": perms}
		if by == root {
			body["tenant_id"], body["member_id"] = acme, memberID
		}
		m, ok := madeKeyOf(a.call(t, "POST", "/v1/api-keys", by, body))
		if !ok {
			t.Fatalf("POST /v1/api-keys for %s: refused", memberID)
		}
		return m.key
	}
	adminKey := keyFor(root, admin, keyward.PermManageKeys)
	// The agent makes their own key, with a key of theirs that manages.
	agentManager := keyFor(root, agent, keyward.PermManageKeys, "contacts:read", "contacts:write")
	key := keyFor(agentManager, "", "contacts:read", "contacts:write")

	// Both processes verify and cache the key.
	for _, name := range []string{"A", "B"} {
		for _, perm := range []string{"contacts:write", "contacts:read"} {
			if v := verifyOn(t, nodes[name], root, key, perm); v.Valid != true {
				t.Fatalf("node %s, %s before the change: %+v", name, perm, v)
			}
		}
	}

	ans := a.call(t, "PATCH", "/v1/members/"+agent, adminKey, map[string]any{"permissions": []string{"contacts:read"}})
	if ans.status != http.StatusOK {
		t.Fatalf("PATCH /v1/members/%s by an admin: %d %s", agent, ans.status, ans.body)
	}
	changed := time.Now()
	for _, name := range []string{"B", "A"} {
		for {
			v := verifyOn(t, nodes[name], root, key, "contacts:write")
			if v.Code == string(keyward.CodeInsufficientPermissions) {
				t.Logf("node %s refused contacts:write %v after the change", name, time.Since(changed))
				if v.Status != http.StatusForbidden || !strings.Contains(v.Detail, "the member who made it no longer does") ||
					len(v.Withheld) != 1 || v.Withheld[0].Permission != "contacts:write" || v.Withheld[0].By != "member" {
					t.Errorf("node %s: %+v, want 403 saying the member no longer holds contacts:write", name, v)
				}
				break
			}
			if time.Since(changed) > time.Second {
				t.Fatalf("1 s after the member lost contacts:write, node %s answers %+v", name, v)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if v := verifyOn(t, nodes[name], root, key, "contacts:read"); v.Valid != true {
			t.Errorf("node %s: contacts:read after the change: %+v", name, v)
		}
	}

	if ans := a.call(t, "DELETE", "/v1/members/"+agent, adminKey, nil); ans.status != http.StatusOK {
		t.Fatalf("DELETE /v1/members/%s: %d %s", agent, ans.status, ans.body)
	}
	waitRefused(t, time.Now(), key, http.StatusUnauthorized, keyward.CodeRevokedAPIKey, nodes, "B", "A")
}

// verification is what POST /v1/verify answers, in part.
type verification struct {
	Valid    bool   `json:"valid"`
	Code     string `json:"code"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Withheld []struct {
		Permission string `json:"permission"`
		By         string `json:"by"`
	} `json:"withheld"`
}

// verifyOn asks node s, with the verifying key by, whether key may use
// permission.
func verifyOn(t *testing.T, s *server, by, key, permission string) verification {
	t.Helper()
	ans := s.call(t, "POST", "/v1/verify", by, map[string]any{"key": key, "permissions": []string{permission}})
	var v verification
	if err := json.Unmarshal(ans.body, &v); ans.status != http.StatusOK || err != nil {
		t.Fatalf("POST /v1/verify: %d %s", ans.status, ans.body)
	}
	return v
}
