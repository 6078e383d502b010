package manage

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keyward/keyward"
)

// Limits on what a key may carry.
const (
	MaxNameLen        = 100
	MaxPermissions    = 100
	MaxPermissionLen  = 64
	MaxMetadata       = 32
	MaxMetadataKeyLen = 64
	// MaxMetadataValLen counts the bytes of a tag's value in UTF-8.
	MaxMetadataValLen = 256
	MaxIPs            = 100
	DefaultGrace      = 24 * time.Hour
	MaxGrace          = 30 * 24 * time.Hour
)

var (
	permissionPattern  = regexp.MustCompile(`^[a-z][a-z0-9_-]*(:[a-z0-9_*-]+)*$`)
	metadataKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	durationPattern    = regexp.MustCompile(`^([0-9]+)([smhdw])$`)
)

// ParseDuration reads a duration such as 90d, 2w, 1h, 30m, 2s or any Go
// duration (1h30m). It refuses negative durations.
func ParseDuration(s string) (time.Duration, error) {
	if m := durationPattern.FindStringSubmatch(s); m != nil {
		n, err := strconv.ParseInt(m[1], 10, 64)
		unit := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour}[m[2]]
		if err != nil || n > int64(100*365*24*time.Hour/unit) {
			return 0, fmt.Errorf("%q is too long", s)
		}
		return time.Duration(n) * unit, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return d, nil
}

// parseWhen reads a future time given as a date (2027-01-01, midnight UTC),
// an RFC 3339 time, or a duration from now (90d). "" means no time.
func parseWhen(field, s string, now time.Time) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	var t time.Time
	if d, err := ParseDuration(s); err == nil {
		if d == 0 {
			return nil, keyward.FieldErrorf(field, "%q is zero; give a future date (2027-01-01) or a duration such as 90d", s)
		}
		t = now.Add(d)
	} else if t, err = time.Parse(time.DateOnly, s); err == nil {
	} else if t, err = time.Parse(time.RFC3339Nano, s); err == nil {
	} else {
		return nil, keyward.FieldErrorf(field, "%q is not a date or a duration; use a date such as 2027-01-01, a time such as 2027-01-01T12:00:00Z, or a duration such as 90d, 12h or 30m", s)
	}
	t = t.UTC().Truncate(time.Microsecond)
	if !t.After(now) {
		return nil, keyward.FieldErrorf(field, "%s is in the past; give a future date or a duration such as 90d", t.Format(time.RFC3339))
	}
	return &t, nil
}

func checkName(name string) (string, error) {
	n := strings.TrimSpace(name)
	if n == "" {
		return "", keyward.FieldErrorf("name", "is required: a name that says what the key is for, such as \"prod-order-bot\"")
	}
	if err := checkText("name", "", n); err != nil {
		return "", err
	}
	if l := utf8.RuneCountInString(n); l > MaxNameLen {
		return "", keyward.FieldErrorf("name", "is %d characters long; use at most %d", l, MaxNameLen)
	}
	return n, nil
}

func checkEnvironment(env string) (keyward.Environment, error) {
	if env == "" {
		return keyward.Live, nil
	}
	e := keyward.Environment(env)
	if !e.Valid() {
		return "", keyward.FieldErrorf("environment", "%q is not an environment; use \"live\" or \"test\"", env)
	}
	return e, nil
}

// checkPermissions validates the permissions a caller asks for a key in
// tenant tenantID: well-formed, not repeated, held by the caller itself
// unless it is root, and keyward:* only for the system tenant.
func checkPermissions(c Caller, tenantID string, perms []string) ([]string, error) {
	if len(perms) > MaxPermissions {
		return nil, keyward.FieldErrorf("permissions", "has %d entries; a key may hold at most %d", len(perms), MaxPermissions)
	}
	out := make([]string, 0, len(perms))
	for i, p := range perms {
		field := fmt.Sprintf("permissions[%d]", i)
		switch {
		case utf8.RuneCountInString(p) > MaxPermissionLen:
			return nil, keyward.FieldErrorf(field, "is %d characters long; use at most %d", utf8.RuneCountInString(p), MaxPermissionLen)
		case !permissionPattern.MatchString(p):
			return nil, keyward.FieldErrorf(field, "%q is not a permission: use lowercase names made of words joined by colons, such as contacts:write, messages:send or admin", p)
		case strings.HasPrefix(p, "keyward:") && tenantID != keyward.SystemTenantID:
			return nil, keyward.FieldErrorf(field, "%q is one of Keyward's own permissions; only keys of the system tenant may hold it", p)
		case !c.Root() && !slices.Contains(c.Permissions, p):
			return nil, &keyward.Error{Code: keyward.CodeInsufficientPermissions, Field: field,
				Message: fmt.Sprintf("%s: you cannot grant %q: a key can only be given permissions that the key creating it holds", field, p)}
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

func checkMetadata(md map[string]string) (map[string]string, error) {
	if len(md) > MaxMetadata {
		return nil, keyward.FieldErrorf("metadata", "has %d entries; use at most %d", len(md), MaxMetadata)
	}
	out := make(map[string]string, len(md))
	for k, v := range md {
		if err := checkText("metadata", "tag name", k); err != nil {
			return nil, err
		}
		if len(k) > MaxMetadataKeyLen || !metadataKeyPattern.MatchString(k) {
			return nil, keyward.FieldErrorf("metadata", "tag name %q is not valid: use 1 to %d letters, digits, dots, dashes and underscores", k, MaxMetadataKeyLen)
		}
		field := "metadata." + k
		if err := checkText(field, "", v); err != nil {
			return nil, err
		}
		if len(v) > MaxMetadataValLen {
			return nil, keyward.FieldErrorf(field, "is %d bytes long in UTF-8 (%d characters); use at most %d bytes", len(v), utf8.RuneCountInString(v), MaxMetadataValLen)
		}
		out[k] = v
	}
	return out, nil
}

// checkRestrictions validates the allowed CIDRs; a bare address stands for
// itself (/32 or /128).
func checkRestrictions(r *keyward.Restrictions) (keyward.Restrictions, error) {
	out := keyward.Restrictions{IPs: []string{}}
	if r == nil {
		return out, nil
	}
	if len(r.IPs) > MaxIPs {
		return out, keyward.FieldErrorf("restrictions.ips", "has %d entries; use at most %d", len(r.IPs), MaxIPs)
	}
	for i, s := range r.IPs {
		p, err := keyward.ParseCIDR(s)
		if err != nil {
			return out, keyward.FieldErrorf(fmt.Sprintf("restrictions.ips[%d]", i), "%q is not an IP address or CIDR; use a form such as 203.0.113.0/24, 203.0.113.7 or 2001:db8::/32", s)
		}
		out.IPs = append(out.IPs, p.String())
	}
	return out, nil
}

func checkPage(p keyward.Page) error {
	if p.Limit < 0 || p.Limit > keyward.MaxPageLimit {
		return keyward.FieldErrorf("limit", "%d is out of range; use 1 to %d", p.Limit, keyward.MaxPageLimit)
	}
	return nil
}
