package identity

import (
	"net/http"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/verify"
)

func TestStrip(t *testing.T) {
	h := http.Header{
		"X-Keyward-Tenant": {"forged"}, "x-keyward-plan": {"forged"}, "X_Keyward_Key_Id": {"forged"},
		"X-KEYWARD-MEMBER-ID": {"forged"}, "X-Keyward": {"kept"}, "X-Keywards-Other": {"kept"}, "Accept": {"kept"},
	}
	Strip(h)
	if len(h) != 3 || h["X-Keyward"] == nil || h["X-Keywards-Other"] == nil || h["Accept"] == nil {
		t.Errorf("after Strip: %v", h)
	}
}

func TestSet(t *testing.T) {
	res := verify.Result{
		Key:    &keyward.Key{ID: "key_1", Name: "Zoë's key", TenantID: "ten_1", Environment: keyward.Live},
		Access: &verify.Access{Tenant: &keyward.Tenant{Slug: "acme"}, Plan: &keyward.Plan{Name: "pro"}, PermissionList: "a:b,c:d"},
	}
	h := http.Header{}
	Set(h, &res)
	want := map[string]string{"X-Keyward-Key-Id": "key_1", "X-Keyward-Key-Name": "Zoë's key", "X-Keyward-Tenant": "ten_1",
		"X-Keyward-Tenant-Slug": "acme", "X-Keyward-Plan": "pro", "X-Keyward-Environment": "live", "X-Keyward-Permissions": "a:b,c:d"}
	if len(h) != len(want) {
		t.Errorf("headers %v, want %v (no member)", h, want)
	}
	for name, v := range want {
		if got := h.Values(name); len(got) != 1 || got[0] != v {
			t.Errorf("%s: %q, want %q", name, got, v)
		}
	}
	res.Key.MemberID = "mem_1"
	Set(h, &res)
	if h.Get("X-Keyward-Member-Id") != "mem_1" {
		t.Errorf("a member's key: %v", h)
	}
}
