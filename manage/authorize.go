package manage

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/verify"
)

// Requirement is what a caller must be to be admitted to an action. The
// HTTP API declares one per route (httpapi's routes.go) and enforces it
// before the route's handler runs; the operations of Service check theirs
// again, so that the command line and the dashboard, which call them
// directly, meet the same rule. Authorize decides.
type Requirement int

const (
	// NoKey admits anyone: the action takes no key.
	NoKey Requirement = iota
	// AnyKey admits any valid key: it may ask what it is, or be checked.
	AnyKey
	// Manager admits a key with keys:manage, or a root key: the
	// management of the caller's own tenant (of every tenant, for root).
	Manager
	// Verifier admits a key with keyward:verify, or a root key: the
	// verification of other keys, for another service. Only keys of the
	// system tenant may hold either, so no tenant's key can probe another
	// tenant's keys.
	Verifier
	// Root admits a root key only: the administration of tenants.
	Root
)

// String names the requirement, as the OpenAPI document and tests do.
func (r Requirement) String() string {
	switch r {
	case NoKey:
		return "no key"
	case AnyKey:
		return "any valid key"
	case Manager:
		return "keys:manage or root"
	case Verifier:
		return "keyward:verify or root"
	case Root:
		return "root key"
	}
	return fmt.Sprintf("Requirement(%d)", int(r))
}

// Authorize decides whether caller c meets requirement r: nil when it does,
// or an insufficient_permissions error that says what c lacks. It is the
// one rule of who may do what, which the HTTP API, the command line (as
// CommandLine, a root caller) and the dashboard all meet; what a caller may do to
// one key is then decided by authorizeKey and checkBounds. An unknown
// requirement admits no one.
func Authorize(c Caller, r Requirement) error {
	switch r {
	case NoKey, AnyKey:
		return nil
	case Manager:
		if c.Root() || slices.Contains(c.Permissions, keyward.PermManageKeys) {
			return nil
		}
		return keyward.Errorf(keyward.CodeInsufficientPermissions,
			"This key cannot manage keys: it needs the %q permission (or be a root key).", keyward.PermManageKeys)
	case Verifier:
		if c.Root() || slices.Contains(c.Permissions, keyward.PermVerify) {
			return nil
		}
		return keyward.Errorf(keyward.CodeInsufficientPermissions,
			"This key cannot verify other keys: it needs the %q permission, or to be a root key.", keyward.PermVerify)
	case Root:
		if c.Root() {
			return nil
		}
		return keyward.Errorf(keyward.CodeInsufficientPermissions,
			"Only a root key (system tenant, %q) can do this.", keyward.PermAdmin)
	}
	return keyward.Internal(fmt.Errorf("authorize: unknown requirement %d", int(r)))
}

// Verify checks a key for caller c, which must be admitted as a Verifier:
// the rule of POST /v1/verify and of keyward verify alike. The error is
// Authorize's refusal; the key's own outcome is in the result.
func Verify(ctx context.Context, c Caller, v *verify.Verifier, req verify.Request) (verify.Result, error) {
	if err := Authorize(c, Verifier); err != nil {
		return verify.Result{}, err
	}
	return v.Verify(ctx, req), nil
}

// Root reports whether the caller manages every tenant: a key of the system
// tenant with keyward:admin.
func (c Caller) Root() bool {
	return c.TenantID == keyward.SystemTenantID && slices.Contains(c.Permissions, keyward.PermAdmin)
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

// inScope reports whether the caller may see tenant id.
func (c Caller) inScope(tenantID string) bool {
	return c.Root() || c.TenantID == tenantID
}
