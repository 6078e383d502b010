// Package identity writes the identity headers of a verified key
// (X-Keyward-Key-Id, -Key-Name, -Tenant, -Tenant-Slug, -Member-Id, -Plan,
// -Environment, -Permissions; docs/access.md): forward-auth answers them
// to the proxy, which passes them on, and the gateway adds them to the
// request it proxies. It also removes such headers that a client sent,
// which must never reach an upstream as if Keyward had set them.
package identity

import (
	"net/http"

	"github.com/keyward/keyward/verify"
)

// Prefix starts the name of every identity header.
const Prefix = "X-Keyward-"

// Set sets on h the identity headers of the key that res accepted. The
// values are the stored ones: ids, a slug, a plan's name and permissions
// are plain ASCII; a key's name is visible text, which cannot hold a line
// break or any other control character (manage refuses them), and is sent
// as its UTF-8 bytes. net/http would turn a line break into a space in any
// case, so no value can start another header. X-Keyward-Member-Id is set
// only for a key of a member.
func Set(h http.Header, res *verify.Result) {
	k, a := res.Key, res.Access
	// One backing array for the values: this path runs on every request
	// let through. The permissions were joined with the Access.
	v := &[8]string{k.ID, k.Name, k.TenantID, a.Tenant.Slug, a.Plan.Name, string(k.Environment), a.PermissionList, k.MemberID}
	h["X-Keyward-Key-Id"] = v[0:1:1]
	h["X-Keyward-Key-Name"] = v[1:2:2]
	h["X-Keyward-Tenant"] = v[2:3:3]
	h["X-Keyward-Tenant-Slug"] = v[3:4:4]
	h["X-Keyward-Plan"] = v[4:5:5]
	h["X-Keyward-Environment"] = v[5:6:6]
	h["X-Keyward-Permissions"] = v[6:7:7]
	if k.MemberID != "" {
		h["X-Keyward-Member-Id"] = v[7:8:8]
	}
}

// Strip removes from h every header whose name starts with X-Keyward-, in
// any case, and with underscores for dashes (which some servers read as
// dashes): a client's own, which would otherwise pass for Keyward's.
func Strip(h http.Header) {
	for name := range h {
		if Is(name) {
			delete(h, name)
		}
	}
}

// Is reports whether a header name starts with X-Keyward- in any case, a
// dash or an underscore at either separator: an identity header, or a
// client's imitation of one.
func Is(name string) bool {
	const p = "x-keyward-"
	if len(name) < len(p) {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c == '_' {
			c = '-'
		}
		if c != p[i] {
			return false
		}
	}
	return true
}
