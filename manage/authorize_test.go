package manage

import (
	"context"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/verify"
)

// TestAuthorize is the table of who meets which requirement: a root key
// and the command line everything; keys:manage and keyward:verify their
// own; a key of the system tenant without keyward:admin is not root; an
// unknown requirement no one.
func TestAuthorize(t *testing.T) {
	var (
		plain    = Caller{TenantID: "ten_acme", Permissions: []string{"contacts:read"}}
		manager  = Caller{TenantID: "ten_acme", Permissions: []string{keyward.PermManageKeys}}
		verifier = Caller{TenantID: keyward.SystemTenantID, Permissions: []string{keyward.PermVerify}}
		// A tenant's key that names keyward:admin is no root key.
		pretender = Caller{TenantID: "ten_acme", Permissions: []string{keyward.PermAdmin, keyward.PermManageKeys}}
		root      = Caller{TenantID: keyward.SystemTenantID, Permissions: []string{keyward.PermAdmin}}
	)
	refusals := map[Requirement]string{
		Manager:  `This key cannot manage keys: it needs the "keys:manage" permission (or be a root key).`,
		Verifier: `This key cannot verify other keys: it needs the "keyward:verify" permission, or to be a root key.`,
		Root:     `Only a root key (system tenant, "keyward:admin") can do this.`,
	}
	for _, tc := range []struct {
		name   string
		c      Caller
		admits []Requirement
	}{
		{"no permissions", Caller{}, []Requirement{NoKey, AnyKey}},
		{"plain", plain, []Requirement{NoKey, AnyKey}},
		{"manager", manager, []Requirement{NoKey, AnyKey, Manager}},
		{"verifier", verifier, []Requirement{NoKey, AnyKey, Verifier}},
		{"pretender", pretender, []Requirement{NoKey, AnyKey, Manager}},
		{"root", root, []Requirement{NoKey, AnyKey, Manager, Verifier, Root}},
		{"command line", CommandLine(), []Requirement{NoKey, AnyKey, Manager, Verifier, Root}},
	} {
		for _, r := range []Requirement{NoKey, AnyKey, Manager, Verifier, Root} {
			err := Authorize(tc.c, r)
			var msg string
			if e, ok := err.(*keyward.Error); ok {
				msg = e.Message
			}
			admitted := false
			for _, a := range tc.admits {
				admitted = admitted || a == r
			}
			switch {
			case admitted && err != nil:
				t.Errorf("%s, %s: refused: %v", tc.name, r, err)
			case !admitted && (keyward.ErrorCode(err) != keyward.CodeInsufficientPermissions || msg != refusals[r]):
				t.Errorf("%s, %s: %v; want insufficient_permissions: %s", tc.name, r, err, refusals[r])
			}
		}
	}
	if err := Authorize(root, Requirement(99)); keyward.ErrorCode(err) != keyward.CodeInternal {
		t.Errorf("an unknown requirement: %v; want an internal error", err)
	}
}

// TestVerifyRule: Verify, which POST /v1/verify and keyward verify both
// call, admits the command line and a key with keyward:verify, and refuses
// any other caller with Authorize's refusal before it looks at the key.
func TestVerifyRule(t *testing.T) {
	ctx := context.Background()
	svc, store := newService(t, time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	rootKey, err := svc.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := apikey.NewFormat("sk")
	v := verify.New(store, verify.Options{Format: f})
	t.Cleanup(func() { _ = v.Close(ctx) })
	req := verify.Request{Key: rootKey}
	for name, c := range map[string]Caller{
		"command line": CommandLine(),
		"verifier":     {TenantID: keyward.SystemTenantID, Permissions: []string{keyward.PermVerify}},
	} {
		if res, err := Verify(ctx, c, v, req); err != nil || !res.Valid() {
			t.Errorf("%s: %+v, %v; want the key valid", name, res, err)
		}
	}
	manager := Caller{TenantID: "ten_acme", Permissions: []string{keyward.PermManageKeys}}
	res, err := Verify(ctx, manager, v, req)
	if want := Authorize(manager, Verifier); err == nil || err.Error() != want.Error() || res.Key != nil || res.Code != "" {
		t.Errorf("a manager: %+v, %v; want no result and %v", res, err, want)
	}
}
