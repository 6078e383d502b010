package keyward

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Environment is live or test. A test key never touches live data.
type Environment string

// Environments.
const (
	Live Environment = "live"
	Test Environment = "test"
)

// Valid reports whether e is live or test.
func (e Environment) Valid() bool { return e == Live || e == Test }

// KeyStatus is the state of a key. A store keeps active, disabled or
// revoked (Key.Status); expired is never stored but decided from ExpiresAt
// and the clock, and Key.StatusAt says which of the four a key shows.
type KeyStatus string

// Key statuses.
const (
	KeyActive   KeyStatus = "active"
	KeyDisabled KeyStatus = "disabled"
	KeyRevoked  KeyStatus = "revoked"
	// KeyExpired is the status a key shows, and a list filters by, once its
	// ExpiresAt has passed (the end of a rotation's grace period included).
	// It is never stored.
	KeyExpired KeyStatus = "expired"
)

// Permissions of Keyward's own API.
const (
	// PermAdmin, held by root keys of the system tenant, manages every tenant.
	PermAdmin = "keyward:admin"
	// PermVerify lets a service call POST /v1/verify.
	PermVerify = "keyward:verify"
	// PermMetrics lets a monitoring system scrape GET /metrics on the
	// API's listener.
	PermMetrics = "keyward:metrics"
	// PermManageKeys lets a tenant's key manage that tenant's keys.
	PermManageKeys = "keys:manage"
)

// BuiltIn reports whether p is one of Keyward's own permissions
// (keys:manage, keyward:*): never in the catalogue, and never bounded by a
// member or a plan, since roles decide what a key may manage.
func BuiltIn(p string) bool {
	return p == PermManageKeys || strings.HasPrefix(p, "keyward:")
}

// MaxPermissionLen is the longest permission name, in characters.
const MaxPermissionLen = 64

// permissionName is the syntax of a permission name.
var permissionName = regexp.MustCompile(`^[a-z][a-z0-9_-]*(:[a-z0-9_*-]+)*$`)

// ValidPermission reports whether name is a well-formed permission name:
// at most MaxPermissionLen characters of lowercase words joined by colons,
// such as contacts:write, messages:send or admin. Keys, members, plans and
// the route policy all name permissions by this one rule.
func ValidPermission(name string) bool {
	return len(name) <= MaxPermissionLen && permissionName.MatchString(name)
}

// Restrictions limit where a key may be used from and what it may reach
// (docs/access.md). Every one that is set must pass.
type Restrictions struct {
	// IPs are the CIDRs a request may come from; empty allows every address.
	IPs []string `json:"ips"`
	// Referrers are URL patterns that the request's Referer, else its
	// Origin, must match (docs/policy.md); empty allows any.
	Referrers []string `json:"referrers"`
	// Endpoints are METHOD /path/pattern entries that the original request
	// must match (docs/policy.md); empty allows any.
	Endpoints []string `json:"endpoints"`
	// Resources are the allowed values of named path parameters, such as
	// {"site": ["site_1"]}, checked where the route policy marks a
	// parameter as a resource; a parameter not named allows every value.
	Resources map[string][]string `json:"resources"`
}

// Key is an API key as stored: everything but the plaintext, of which only
// the SHA-256 is kept.
type Key struct {
	ID           string            `json:"id"`
	TenantID     string            `json:"tenant_id"`
	Environment  Environment       `json:"environment"`
	Name         string            `json:"name"`
	Head         string            `json:"prefix" description:"the key's head, <prefix>_<env>_, such as sk_live_"` // JSON: prefix, as the API has always named it
	Start        string            `json:"start"`                                                                  // the head and the first 4 characters of the body
	Last4        string            `json:"last4"`
	Hash         [32]byte          `json:"-"`
	Permissions  []string          `json:"permissions"`
	Metadata     map[string]string `json:"metadata"`
	ExpiresAt    *time.Time        `json:"expires_at"`
	RotateBy     *time.Time        `json:"rotate_by"`
	Restrictions Restrictions      `json:"restrictions"`
	Status       KeyStatus         `json:"status"`
	CreatedAt    time.Time         `json:"created_at"`
	CreatedBy    string            `json:"created_by"` // the id of the key that made it, or "cli"
	// MemberID is the member the key belongs to, whose current permissions
	// bound it; "" for a key of the tenant as a whole.
	MemberID string `json:"member_id"`
	// RateLimits and Quota limit this key; nil: its plan's
	// (Plan.KeyRateLimits, Plan.KeyQuota). An empty, non-nil RateLimits
	// is no rate limit at all.
	RateLimits []RateLimit `json:"rate_limits"`
	Quota      *Quota      `json:"quota"`
	// Credits are the uses the key has left, as last read; nil: no limit.
	Credits    *Credits   `json:"credits"`
	UpdatedAt  time.Time  `json:"updated_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	LastUsedIP string     `json:"last_used_ip"`
	// RotatedFrom is the key this one replaced, "" for none: followed back,
	// it traces a chain of rotations.
	RotatedFrom string `json:"rotated_from" description:"the id of the key this one replaced; empty for a key made new"`
	// RotatedTo is the key that replaces this one, "" while it is not
	// rotated. While the key is in its grace period it names the newest key
	// of its chain (a rotation of the successor points it on, in the same
	// transaction), whose credits and per-key rate limits it spends from;
	// once it has expired or been revoked it is left as it was, as history:
	// the newest key of the chain when the key stopped working.
	RotatedTo string `json:"rotated_to" description:"the id of the key that replaces this one; empty when it was not rotated. While this key is in its grace period, the newest key of its chain, whose credits and per-key rate limits it spends from; once this key has expired or been revoked, the newest key of its chain at that time"`
	// Sharing, when set, is why the key is suspected of being shared
	// (docs/signals.md): set by the request log's writer, shown in the
	// key's answers as the store has it.
	Sharing *Sharing `json:"sharing" description:"why the key is suspected of being used by more than one client: the day and what was seen; null when it is not"`
}

// RotationDue reports whether the key's rotate_by has passed at time now
// while it still works (neither revoked nor expired).
func (k *Key) RotationDue(now time.Time) bool {
	return k.RotateBy != nil && !now.Before(*k.RotateBy) && k.StatusAt(now) != KeyRevoked && !k.Expired(now)
}

// Expired reports whether the key has expired at time now.
func (k *Key) Expired(now time.Time) bool {
	return k.ExpiresAt != nil && !now.Before(*k.ExpiresAt)
}

// StatusAt is the status the key shows at time now, in the order
// verification checks them (revoked, then expired, then disabled): a
// revoked key is revoked whatever its expiry, a key past its expiry is
// expired whether it was disabled or not, and otherwise the stored status
// stands. Every answer and every list filter uses it, so that what a key
// shows and what it is listed as agree.
func (k *Key) StatusAt(now time.Time) KeyStatus {
	switch {
	case k.Status == KeyRevoked:
		return KeyRevoked
	case k.Expired(now):
		return KeyExpired
	}
	return k.Status
}

// HasPermission reports whether the key holds permission p.
func (k *Key) HasPermission(p string) bool {
	return slices.Contains(k.Permissions, p)
}

// KeyFilter selects keys in a list. Empty fields match everything.
type KeyFilter struct {
	TenantID    string
	MemberID    string
	Environment Environment
	// Status matches the status a key shows at Now (Key.StatusAt): active
	// and disabled match keys of that stored status that have not expired,
	// expired matches keys past their expiry that are not revoked, revoked
	// matches every revoked key.
	Status KeyStatus
	// Now is the time that decides expiry for Status. Left zero, no key
	// has expired yet, and the stored status alone decides.
	Now time.Time
}

// KeyUpdate changes a key; nil fields are left as they are. ExpiresAt and
// RotateBy set to a pointer to the zero time clear the value.
type KeyUpdate struct {
	Name         *string
	Permissions  *[]string
	Metadata     *map[string]string
	ExpiresAt    *time.Time
	RotateBy     *time.Time
	Restrictions *Restrictions
	Status       *KeyStatus // KeyActive or KeyDisabled
	// RateLimits set to a pointer to a nil slice, or Quota to a pointer to
	// the zero Quota, gives the key its plan's again.
	RateLimits *[]RateLimit
	Quota      *Quota
	// Credits sets the key's credits, remaining uses included: an
	// absolute value, which uses under way count down from. NoCredits
	// takes its credits away: no limit.
	Credits   *Credits
	NoCredits bool
	// ClearSharing takes away the key's Sharing evidence.
	ClearSharing bool
}

// CheckLimits refuses, with a CodeInvalidRequest *Error naming the field
// at fault, limits or credits out of bounds.
func (k *Key) CheckLimits() error {
	if err := CheckRateLimits("rate_limits", k.RateLimits); err != nil {
		return err
	}
	if err := CheckQuota("quota", k.Quota); err != nil {
		return err
	}
	return CheckCredits("credits", k.Credits)
}

// CheckLimits refuses, with a CodeInvalidRequest *Error naming the field
// at fault, limits or credits out of bounds, and both Credits and
// NoCredits.
func (u KeyUpdate) CheckLimits() error {
	if err := checkOverride(u.RateLimits, u.Quota); err != nil {
		return err
	}
	if u.Credits != nil && u.NoCredits {
		return FieldErrorf("credits", "is both set and taken away; give credits, or null for no limit")
	}
	return CheckCredits("credits", u.Credits)
}

// Usage is one use of a key, recorded in batches.
type Usage struct {
	KeyID string
	At    time.Time
	IP    string
}

// ParseCIDR reads an allowed address range: a CIDR (203.0.113.0/24,
// 2001:db8::/32) or a bare address, which stands for itself (/32 or /128).
// An IPv4-mapped IPv6 range is read as the IPv4 range it maps; an address
// with a zone is refused. The result is masked (10.1.2.3/8 is 10.0.0.0/8).
func ParseCIDR(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, aerr := netip.ParseAddr(s)
		if aerr != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("%q mixes IPv4-mapped and IPv6 addresses", s)
		}
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}
