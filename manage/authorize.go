package manage

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/policy"
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
	// Manager admits a key with keys:manage whose member (if it has one)
	// is active, or a root key: the management of the caller's own tenant
	// (of every tenant, for root). What it may do there is then its role's
	// (authorizeKey, authorizeMember).
	Manager
	// Verifier admits a key with keyward:verify, or a root key: the
	// verification of other keys, for another service. Only keys of the
	// system tenant may hold either, so no tenant's key can probe another
	// tenant's keys.
	Verifier
	// Root admits a root key only: the administration of tenants, plans
	// and the permission catalogue.
	Root
	// Monitor admits a key with keyward:metrics, or a root key: the
	// scraping of GET /metrics on the API's listener. Only keys of the
	// system tenant may hold it.
	Monitor
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
	case Monitor:
		return "keyward:metrics or root"
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
		switch {
		case c.Root():
			return nil
		case !slices.Contains(c.Permissions, keyward.PermManageKeys):
			return keyward.Errorf(keyward.CodeInsufficientPermissions,
				"This key cannot manage keys: it needs the %q permission (or be a root key).", keyward.PermManageKeys)
		case c.MemberState == MemberSuspended:
			return keyward.Errorf(keyward.CodeInsufficientPermissions,
				"This key belongs to member %s, who is suspended: a suspended member's keys manage nothing until an admin or owner of the account resumes the member.", c.MemberID)
		case c.MemberState != "":
			return keyward.Errorf(keyward.CodeInsufficientPermissions,
				"This key belonged to member %s, who was removed from the account: it manages nothing. Use a key of a current member.", c.MemberID)
		}
		return nil
	case Verifier:
		if c.Root() || slices.Contains(c.Permissions, keyward.PermVerify) {
			return nil
		}
		return keyward.Errorf(keyward.CodeInsufficientPermissions,
			"This key cannot verify other keys: it needs the %q permission, or to be a root key.", keyward.PermVerify)
	case Monitor:
		if c.Root() || slices.Contains(c.Permissions, keyward.PermMetrics) {
			return nil
		}
		return keyward.Errorf(keyward.CodeInsufficientPermissions,
			"This key cannot read the metrics: it needs the %q permission (a key of the system tenant), or to be a root key.", keyward.PermMetrics)
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
// that is not root acts first by its role: an admin or owner on every key
// of its tenant, a developer on the keys that belong to its own member, a
// viewer on none. It may then act only on a key that is no more than
// itself: one that holds no permission the caller lacks, is a test key if
// the caller is one (a test key never touches live data), expires no later
// than the caller when the caller expires, and may be used only from inside
// the caller's ranges, referrers, endpoints and resources when the caller
// has some. A weaker key can thus neither obtain a stronger one (a
// successor's plaintext goes to the caller) nor disable or revoke what it
// could not have made. What a change or a rotation makes of the key is
// then held to the same bounds by checkBounds.
func authorizeKey(c Caller, k *keyward.Key) error {
	if c.Root() {
		return nil
	}
	switch {
	case c.Role.Rank() >= keyward.RoleAdmin.Rank():
	case c.Role == keyward.RoleDeveloper && c.MemberID != "" && k.MemberID == c.MemberID:
	case c.Role == keyward.RoleDeveloper:
		whose := "to the account as a whole"
		if k.MemberID != "" {
			whose = "to another member (" + k.MemberID + ")"
		}
		return roleRefusal(c, "change, rotate and revoke the keys that belong to you", "this one, which belongs "+whose)
	default:
		return roleRefusal(c, "read keys", "change, rotate or revoke them")
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
			"This key may be used from %s, and yours only from %s; only a key that may be used from every address it may, or a root key, %s.", what, strings.Join(c.Restrictions.IPs, ", "), act)
	}
	if b := c.outsideRestrictions(k.Restrictions); b != nil {
		return keyward.Errorf(keyward.CodeInsufficientPermissions,
			"This key may reach %s, and yours only %s; only a key that may reach all it may, or a root key, %s.", b.what, b.bound, act)
	}
	return nil
}

// roleRefusal is the 403 for a caller whose role does not allow an action:
// it names the role, what the role can do and what it cannot.
func roleRefusal(c Caller, can, cannot string) *keyward.Error {
	return keyward.Errorf(keyward.CodeInsufficientPermissions,
		"Your role in this tenant is %s, which can %s but not %s; ask %s of the account.", roleName(c), can, cannot, whomToAsk(c))
}

// fieldRefusal is refusal e made to name the request field at fault, as
// every error about a field does: "role: your role in this tenant is…".
func fieldRefusal(field string, e *keyward.Error) *keyward.Error {
	msg := e.Message
	if msg != "" {
		msg = strings.ToLower(msg[:1]) + msg[1:]
	}
	return &keyward.Error{Code: e.Code, Field: field, Message: field + ": " + msg}
}

// roleName is the caller's role as refusals name it.
func roleName(c Caller) string {
	switch {
	case c.Role == "":
		return "none"
	case c.MemberID == "" && c.Role == keyward.RoleAdmin:
		return "admin (a key that belongs to no member acts as an admin)"
	}
	return string(c.Role)
}

// whomToAsk is who can do what the caller's role cannot.
func whomToAsk(c Caller) string {
	if c.Role == keyward.RoleAdmin {
		return "an owner"
	}
	return "an admin or owner"
}

// authorizeCreateKey is the rule for making a key: a caller that is not
// root needs the role of a developer or more, and only an admin or owner
// makes a key that belongs to another member than its own (memberID,
// given in the request; "" when none was).
func authorizeCreateKey(c Caller, memberID string) error {
	switch {
	case c.Root():
		return nil
	case c.Role.Rank() < keyward.RoleDeveloper.Rank():
		return roleRefusal(c, "read keys", "create them")
	case memberID != "" && memberID != c.MemberID && c.Role.Rank() < keyward.RoleAdmin.Rank():
		e := fieldRefusal("member_id", roleRefusal(c, "make keys for yourself", "for another member"))
		e.Message += " Leave member_id out to make a key of your own."
		return e
	}
	return nil
}

// authorizeActingAs refuses a caller that is not root a key with perms
// that belongs to member m (nil for none) when the key holds keys:manage
// and m's role ranks above the caller's: such a key acts with m's role
// (CallerOf), so making it, rotating it (its successor's plaintext goes to
// the caller), giving it keys:manage or moving it to m would let the
// caller act as more than itself, an admin as an owner. field is the
// request field at fault, "" for none.
func authorizeActingAs(c Caller, m *keyward.Member, perms []string, field string) error {
	if c.Root() || m == nil || m.Role.Rank() <= c.Role.Rank() || !slices.Contains(perms, keyward.PermManageKeys) {
		return nil
	}
	e := roleRefusal(c, "give keys:manage to keys of members up to your own role",
		"to a key of "+m.ID+", who is "+string(m.Role)+" (the key would manage as "+string(m.Role)+")")
	if field != "" {
		e = fieldRefusal(field, e)
	}
	return e
}

// memberAction is what is done to a member, for authorizeMember.
type memberAction int

const (
	memberAdd memberAction = iota
	memberChange
	memberRemove
)

// authorizeWebhooks is the one rule for changing a tenant's webhook
// endpoints (registering, changing, deleting, rotating a secret,
// redelivering): where its events go is the account's to decide, so a
// caller that is not root must be an admin or owner (a key of the tenant
// as a whole counts as an admin), and live: a test key never reaches live
// keys' events. Reading them is a manager's (Manager).
func authorizeWebhooks(c Caller) error {
	if c.Root() {
		return nil
	}
	if c.Role.Rank() < keyward.RoleAdmin.Rank() {
		return roleRefusal(c, "read webhook endpoints and their deliveries", "register, change or delete them")
	}
	if c.Environment == keyward.Test {
		return keyward.Errorf(keyward.CodeInsufficientPermissions,
			"A test key cannot register or change webhook endpoints: they get the events of live keys. Use a live key.")
	}
	return nil
}

// authorizeMember is the one rule for adding, changing and removing a
// member (reading them takes Manager alone): root and owners may do
// everything; an admin (and a key of the tenant without a member) adds,
// changes and removes members who are not owners and makes no one an
// owner; developers and viewers only read. target is the member as it is
// (nil for one being added), and role the role it is given ("" when the
// role does not change). That a tenant keeps an active owner is the
// store's rule (a 409).
func authorizeMember(c Caller, act memberAction, target *keyward.Member, role keyward.Role) error {
	if c.Root() || c.Role == keyward.RoleOwner {
		return nil
	}
	if c.Role.Rank() < keyward.RoleAdmin.Rank() {
		return roleRefusal(c, "read members", "add, change or remove them")
	}
	if target != nil && target.Role == keyward.RoleOwner {
		verb := map[memberAction]string{memberChange: "change", memberRemove: "remove"}[act]
		return roleRefusal(c, "manage members who are not owners", verb+" "+target.ID+", who is an owner")
	}
	if role == keyward.RoleOwner {
		return fieldRefusal("role", roleRefusal(c, "manage members who are not owners", "make anyone an owner"))
	}
	return nil
}

// checkBounds refuses a key that a caller that is not root makes, or makes
// of a key by changing it, when the key would be more than the caller's
// own: live from a test key, expiring later (or never) than a key that
// expires, usable from an address outside a restricted key's ranges, or
// reaching referrers, endpoints or resources that the caller may not. Its
// permissions are held to the caller's by checkPermissions. The error
// names the field at fault and says what to give instead.
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
		ranges := strings.Join(c.Restrictions.IPs, ", ")
		field := "restrictions.ips"
		msg := fmt.Sprintf("%s: your key may only be used from %s, so a key it makes or changes cannot be usable from every address", field, ranges)
		if i >= 0 {
			field = fmt.Sprintf("restrictions.ips[%d]", i)
			msg = fmt.Sprintf("%s: %s is not inside the ranges your key may be used from (%s)", field, k.Restrictions.IPs[i], ranges)
		}
		return &keyward.Error{Code: keyward.CodeInsufficientPermissions, Field: field,
			Message: msg + ": give ranges inside " + ranges}
	}
	if b := c.outsideRestrictions(k.Restrictions); b != nil {
		return &keyward.Error{Code: keyward.CodeInsufficientPermissions, Field: b.field,
			Message: fmt.Sprintf("%s: your key may only reach %s, so a key it makes or changes cannot reach %s: give only entries your key has", b.field, b.bound, b.what)}
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
	if len(c.Restrictions.IPs) == 0 {
		return 0, false
	}
	if len(ips) == 0 {
		return -1, true
	}
	var bounds []netip.Prefix
	for _, s := range c.Restrictions.IPs {
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

// overreach is a restriction of a key that reaches further than the
// caller's (outsideRestrictions): the request field at fault, what the key
// reaches and what the caller's own reaches, as refusals name them.
type overreach struct {
	field, what, bound string
}

// outsideRestrictions reports whether a key with restrictions r may reach
// a referrer, an endpoint or a resource that the caller may not, and if so
// which; nil when it may not. Where the caller has referrers or endpoints,
// each of the key's must lie within one of them (package policy's Within:
// https://app.example.com/reports/* lies within https://app.example.com,
// GET /v1/contacts/{id} within * /v1/contacts/**), and the key must have
// some; for each path parameter whose resources the caller restricts, the
// key's values must be some of the caller's. A pattern of the caller's
// that no longer parses bounds everything: it allows nothing.
func (c Caller) outsideRestrictions(r keyward.Restrictions) *overreach {
	lists := []struct {
		field, plural string
		bound, list   []string
		within        func(list, bound []string) (int, bool)
	}{
		{"restrictions.referrers", "every referrer", c.Restrictions.Referrers, r.Referrers,
			func(list, bound []string) (int, bool) { return within(policy.ParseReferrers, list, bound) }},
		{"restrictions.endpoints", "every endpoint", c.Restrictions.Endpoints, r.Endpoints,
			func(list, bound []string) (int, bool) { return within(policy.ParseEndpoints, list, bound) }},
	}
	for _, l := range lists {
		if len(l.bound) == 0 {
			continue
		}
		bound := strings.Join(l.bound, ", ")
		if i, ok := l.within(l.list, l.bound); !ok {
			if i < 0 {
				return &overreach{l.field, l.plural, bound}
			}
			return &overreach{fmt.Sprintf("%s[%d]", l.field, i), l.list[i], bound}
		}
	}
	for _, param := range slices.Sorted(maps.Keys(c.Restrictions.Resources)) {
		bound := c.Restrictions.Resources[param]
		shown := param + " " + strings.Join(bound, ", ")
		values, restricted := r.Resources[param]
		if !restricted {
			return &overreach{"restrictions.resources", "every " + param, shown}
		}
		for i, v := range values {
			if !slices.Contains(bound, v) {
				return &overreach{fmt.Sprintf("restrictions.resources.%s[%d]", param, i), param + " " + v, shown}
			}
		}
	}
	return nil
}

// inScope reports whether the caller may see tenant id.
func (c Caller) inScope(tenantID string) bool {
	return c.Root() || c.TenantID == tenantID
}

// within is policy's Referrers.Within or Endpoints.Within, as parse reads
// them, for stored lists: i is the first entry of list outside bound, or -1
// when list is empty and bound is not. A list that does not parse is
// outside, at its first entry.
func within[T interface{ Within(T) (int, bool) }](parse func([]string) (T, error), list, bound []string) (int, bool) {
	outer, err := parse(bound)
	if err != nil {
		return min(0, len(list)-1), false
	}
	inner, err := parse(list)
	if err != nil {
		return min(0, len(list)-1), false
	}
	return inner.Within(outer)
}

// MayCreateKeys reports whether caller c may make keys: the rule of
// CreateKey (Authorize and authorizeCreateKey), for a surface that offers
// the action only to those who may.
func MayCreateKeys(c Caller) bool {
	return Authorize(c, Manager) == nil && authorizeCreateKey(c, "") == nil
}

// MayChangeKey reports whether caller c may change, rotate and revoke key
// k: the rule of UpdateKey, RotateKey and RevokeKey (authorizeKey).
func MayChangeKey(c Caller, k *keyward.Key) bool {
	return Authorize(c, Manager) == nil && authorizeKey(c, k) == nil
}

// MayAddMembers reports whether caller c may add members to its tenant:
// the rule of CreateMember (authorizeMember).
func MayAddMembers(c Caller) bool {
	return Authorize(c, Manager) == nil && authorizeMember(c, memberAdd, nil, "") == nil
}

// MayChangeMember reports whether caller c may change, invite, sign out
// and remove member m: the rule of UpdateMember and RemoveMember
// (authorizeMember).
func MayChangeMember(c Caller, m *keyward.Member) bool {
	return Authorize(c, Manager) == nil && authorizeMember(c, memberChange, m, "") == nil
}

// MayChangeWebhooks reports whether caller c may register, change and
// delete webhook endpoints: the rule of CreateWebhook and the rest
// (authorizeWebhooks).
func MayChangeWebhooks(c Caller) bool {
	return Authorize(c, Manager) == nil && authorizeWebhooks(c) == nil
}
