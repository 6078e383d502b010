// Package manage owns the management operations of Keyward: who may do what
// (a root key for every tenant, a tenant's key with keys:manage for its own),
// validation of what they ask with errors that name the field at fault, and
// the issuing, rotation and revocation of keys. The HTTP API and the command
// line both call it, so the two behave the same.
package manage

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// Store is what a Service asks of the storage: the tenants, the keys and
// the audit log. Every keyward.Store is one.
type Store interface {
	keyward.TenantStore
	keyward.KeyStore
	keyward.AuditStore
}

// Config holds what a Service needs.
type Config struct {
	Store  Store
	Format apikey.Format
	// Clock tells the time; nil means time.Now.
	Clock keyward.Clock
	// AfterChange, if set, is called after every change is stored, so that
	// the process's own verifier applies it at once (e.g. Verifier.Refresh).
	AfterChange func(ctx context.Context) error
}

// Service performs management operations on behalf of a Caller.
type Service struct {
	store       Store
	format      apikey.Format
	now         keyward.Clock
	afterChange func(ctx context.Context) error
}

// New returns a Service.
func New(c Config) *Service {
	now := c.Clock
	if now == nil {
		now = time.Now
	}
	return &Service{store: c.Store, format: c.Format, now: now, afterChange: c.AfterChange}
}

// Now is the time on the service's clock: what decides whether a key has
// expired, for the answers that show its status.
func (s *Service) Now() time.Time { return s.now() }

// Caller is who asks for an operation: the key that authenticated a request,
// or the command line.
type Caller struct {
	Actor       keyward.Actor
	TenantID    string
	Permissions []string
	// Environment, ExpiresAt and IPs are those of the caller's key. They
	// bound what a caller that is not root makes and changes (see
	// authorizeKey and checkBounds); empty, they bound nothing.
	Environment keyward.Environment
	ExpiresAt   *time.Time
	IPs         []string
}

// CLI is the caller of every command-line operation: it may do everything.
var CLI = Caller{Actor: keyward.ActorCLI, TenantID: keyward.SystemTenantID, Permissions: []string{keyward.PermAdmin}}

// CallerFromKey returns the caller that a verified key stands for; ip is the
// client address of the request.
func CallerFromKey(k *keyward.Key, ip string) Caller {
	return Caller{
		Actor: keyward.Actor{ID: k.ID, IP: ip}, TenantID: k.TenantID, Permissions: k.Permissions,
		Environment: k.Environment, ExpiresAt: k.ExpiresAt, IPs: k.Restrictions.IPs,
	}
}

// Root reports whether the caller manages every tenant: a key of the system
// tenant with keyward:admin.
func (c Caller) Root() bool {
	return c.TenantID == keyward.SystemTenantID && slices.Contains(c.Permissions, keyward.PermAdmin)
}

// CanManage reports whether the caller may use the management API at all.
func (c Caller) CanManage() bool {
	return c.Root() || slices.Contains(c.Permissions, keyward.PermManageKeys)
}

// errNotFound is the answer for anything outside the caller's reach: the
// same as for an id that does not exist, so ids cannot be probed.
// An id that looks like a key is not repeated: a key pasted where its id
// belongs must not reach an answer or a log.
func errNotFound(what, id string) *keyward.Error {
	if apikey.KeyPrefix(id) != "" {
		return keyward.Errorf(keyward.CodeNotFound, "No %s has that id: it looks like an API key, not an id. Ids start with key_; never put a key in a URL, and replace this one if it may have been logged.", what)
	}
	return keyward.Errorf(keyward.CodeNotFound, "No %s with id %q exists in your account.", what, id)
}

// authorizeKey is the one rule for every action on an existing key:
// change (enable and disable included), rotation and revocation. A caller
// that is not root may act only on a key that is no more than itself: one
// that holds no permission the caller lacks, is a test key if the caller is
// one (a test key never touches live data), expires no later than the
// caller when the caller expires, and may be used only from inside the
// caller's ranges when the caller has some. A weaker key can thus neither
// obtain a stronger one (a successor's plaintext goes to the caller) nor
// disable or revoke what it could not have made. What a change or a
// rotation makes of the key is then held to the same bounds by checkBounds.
func authorizeKey(c Caller, k *keyward.Key) error {
	if c.Root() {
		return nil
	}
	const act = "can change, rotate or revoke it"
	for _, p := range k.Permissions {
		if !slices.Contains(c.Permissions, p) {
			return keyward.Errorf(keyward.CodeInsufficientPermissions,
				"This key holds %q, which your key does not; only a key that holds all its permissions, or a root key, %s.", p, act)
		}
	}
	if !c.allowsEnvironment(k.Environment) {
		return keyward.Errorf(keyward.CodeInsufficientPermissions,
			"This key is a live key and yours is a test key, which never touches live keys; only a live key with %q, or a root key, %s.", keyward.PermManageKeys, act)
	}
	if !c.allowsExpiry(k.ExpiresAt) {
		what := "never expires"
		if k.ExpiresAt != nil {
			what = "expires on " + formatTime(*k.ExpiresAt)
		}
		return keyward.Errorf(keyward.CodeInsufficientPermissions,
			"This key %s, and yours expires on %s; only a key that expires no earlier, or a root key, %s.", what, formatTime(*c.ExpiresAt), act)
	}
	if i, outside := c.outsideIPs(k.Restrictions.IPs); outside {
		what := "every address"
		if i >= 0 {
			what = k.Restrictions.IPs[i]
		}
		return keyward.Errorf(keyward.CodeInsufficientPermissions,
			"This key may be used from %s, and yours only from %s; only a key that may be used from every address it may, or a root key, %s.", what, strings.Join(c.IPs, ", "), act)
	}
	return nil
}

// checkBounds refuses a key that a caller that is not root makes, or makes
// of a key by changing it, when the key would be more than the caller's
// own: live from a test key, expiring later (or never) than a key that
// expires, usable from an address outside a restricted key's ranges. Its
// permissions are held to the caller's by checkPermissions. The error names
// the field at fault and says what to give instead.
func checkBounds(c Caller, k *keyward.Key) error {
	if c.Root() {
		return nil
	}
	if !c.allowsEnvironment(k.Environment) {
		return &keyward.Error{Code: keyward.CodeInsufficientPermissions, Field: "environment",
			Message: `environment: your key is a test key, and a test key can only make test keys: set "environment": "test", or use a live key`}
	}
	if !c.allowsExpiry(k.ExpiresAt) {
		when := formatTime(*c.ExpiresAt)
		msg := fmt.Sprintf("expires: your key expires on %s, so a key it makes or changes must expire too", when)
		if k.ExpiresAt != nil {
			msg = fmt.Sprintf("expires: %s is after the expiry of your key, %s, and a key cannot outlive the key that makes or changes it", formatTime(*k.ExpiresAt), when)
		}
		return &keyward.Error{Code: keyward.CodeInsufficientPermissions, Field: "expires",
			Message: msg + ": give an expiry no later than " + when}
	}
	if i, outside := c.outsideIPs(k.Restrictions.IPs); outside {
		ranges := strings.Join(c.IPs, ", ")
		field := "restrictions.ips"
		msg := fmt.Sprintf("%s: your key may only be used from %s, so a key it makes or changes cannot be usable from every address", field, ranges)
		if i >= 0 {
			field = fmt.Sprintf("restrictions.ips[%d]", i)
			msg = fmt.Sprintf("%s: %s is not inside the ranges your key may be used from (%s)", field, k.Restrictions.IPs[i], ranges)
		}
		return &keyward.Error{Code: keyward.CodeInsufficientPermissions, Field: field,
			Message: msg + ": give ranges inside " + ranges}
	}
	return nil
}

// allowsEnvironment reports whether a key of environment e is within the
// caller's reach: a test caller reaches test keys only.
func (c Caller) allowsEnvironment(e keyward.Environment) bool {
	return c.Environment != keyward.Test || e == keyward.Test
}

// allowsExpiry reports whether a key that expires at t (nil: never) is
// within the caller's reach: when the caller expires, a key that expires no
// later.
func (c Caller) allowsExpiry(t *time.Time) bool {
	return c.ExpiresAt == nil || (t != nil && !t.After(*c.ExpiresAt))
}

// outsideIPs reports whether a key allowed from the ranges ips may be used
// from an address the caller may not, and if so which: i is the index of
// the first range that no range of the caller holds, or -1 when ips is
// empty (every address) and the caller is restricted. A range lies inside
// another when the other contains its address and is no narrower. A range
// of the caller that cannot be read holds nothing, as for the verifier.
func (c Caller) outsideIPs(ips []string) (i int, outside bool) {
	if len(c.IPs) == 0 {
		return 0, false
	}
	if len(ips) == 0 {
		return -1, true
	}
	var bounds []netip.Prefix
	for _, s := range c.IPs {
		if p, err := keyward.ParseCIDR(s); err == nil {
			bounds = append(bounds, p)
		}
	}
	for i, s := range ips {
		p, err := keyward.ParseCIDR(s)
		if err != nil || !slices.ContainsFunc(bounds, func(b netip.Prefix) bool {
			return b.Bits() <= p.Bits() && b.Contains(p.Addr())
		}) {
			return i, true
		}
	}
	return 0, false
}

// formatTime writes a time in answers: RFC 3339, in UTC.
func formatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}

// authorize refuses a caller that may not manage at all.
func authorize(c Caller) error {
	if !c.CanManage() {
		return keyward.Errorf(keyward.CodeInsufficientPermissions,
			"This key cannot manage keys: it needs the %q permission (or be a root key).", keyward.PermManageKeys)
	}
	return nil
}

// authorizeRoot refuses a caller that is not a root key.
func authorizeRoot(c Caller) error {
	if !c.Root() {
		return keyward.Errorf(keyward.CodeInsufficientPermissions,
			"Only a root key (system tenant, %q) can do this.", keyward.PermAdmin)
	}
	return nil
}

// inScope reports whether the caller may see tenant id.
func (c Caller) inScope(tenantID string) bool {
	return c.Root() || c.TenantID == tenantID
}

func (s *Service) changed(ctx context.Context) {
	if s.afterChange != nil {
		// A failure here only delays the local view: the poller applies
		// the change on its next tick.
		_ = s.afterChange(ctx)
	}
}
