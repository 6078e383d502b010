package manage

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/policy"
)

// Limits on what a key may carry.
const (
	MaxNameLen        = 100
	MaxPermissions    = 100
	MaxPermissionLen  = keyward.MaxPermissionLen
	MaxMetadata       = 32
	MaxMetadataKeyLen = 64
	// MaxMetadataValLen counts the bytes of a tag's value in UTF-8.
	MaxMetadataValLen = 256
	MaxIPs            = 100
	// MaxPatterns is the most referrers, and the most endpoints, a key may
	// be restricted to; MaxPatternLen the longest of either, in bytes.
	MaxPatterns   = 100
	MaxPatternLen = 512
	// MaxResourceParams is the most path parameters a key's resources
	// may name, MaxResourceValues the most values of each, and
	// MaxResourceValueLen the longest value, in bytes.
	MaxResourceParams   = 32
	MaxResourceValues   = 100
	MaxResourceValueLen = 256
	DefaultGrace        = 24 * time.Hour
	MaxGrace            = 30 * 24 * time.Hour
)

var (
	resourceParamPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
	metadataKeyPattern   = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	durationPattern      = regexp.MustCompile(`^([0-9]+)([smhdw])$`)
)

// MaxDuration is the longest duration ParseDuration accepts, and how far
// ahead parseWhen accepts a date: 36500 days, 100 years. A time further
// ahead is a typo, not a plan ("never" says no expiry), and keeping every
// stored time within a century of now keeps it far inside what every
// surface can write: JSON and RFC 3339 end with year 9999, and a date such
// as 9999-12-31T23:30:00-23:59 is already year 10000 in UTC.
const MaxDuration = 36500 * 24 * time.Hour

// maxDurationText is MaxDuration as errors name it.
const maxDurationText = "36500d (100 years)"

// goDurationPattern is the syntax of a Go duration without its sign, such
// as 1h30m, 1.5h or 0: what time.ParseDuration reads.
var goDurationPattern = regexp.MustCompile(`^0$|^(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$`)

// DurationError is ParseDuration's error: the text it was given and,
// when that is a duration, what is wrong with it.
type DurationError struct {
	Input    string
	Negative bool // a duration below zero, such as -1h
	TooLong  bool // a duration longer than MaxDuration
}

// Error says what is wrong with the input.
func (e *DurationError) Error() string {
	switch {
	case e.Negative:
		return fmt.Sprintf("%q is negative", e.Input)
	case e.TooLong:
		return fmt.Sprintf("%q is longer than the maximum of %s", e.Input, maxDurationText)
	}
	return fmt.Sprintf("%q is not a duration", e.Input)
}

// ParseDuration reads a duration such as 90d, 2w, 1h, 30m, 2s or any Go
// duration (1h30m). It refuses negative durations ("-1h" is negative) and
// durations longer than MaxDuration with a *DurationError that says which.
func ParseDuration(s string) (time.Duration, error) {
	rest, negative := strings.CutPrefix(s, "-")
	if !negative {
		rest = strings.TrimPrefix(rest, "+")
	}
	d, tooLong, ok := parseLength(rest)
	switch {
	case !ok:
		return 0, &DurationError{Input: s}
	case negative && (d > 0 || tooLong):
		return 0, &DurationError{Input: s, Negative: true}
	case tooLong:
		return 0, &DurationError{Input: s, TooLong: true}
	}
	return d, nil
}

// parseLength reads an unsigned duration: ok is false when s is not one,
// and tooLong is true when it is one longer than MaxDuration.
func parseLength(s string) (d time.Duration, tooLong, ok bool) {
	if m := durationPattern.FindStringSubmatch(s); m != nil {
		unit := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour}[m[2]]
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || n > int64(MaxDuration/unit) {
			return 0, true, true
		}
		return time.Duration(n) * unit, false, true
	}
	if !goDurationPattern.MatchString(s) {
		return 0, false, false
	}
	d, err := time.ParseDuration(s)
	if err != nil || d > MaxDuration {
		// The syntax is a duration's: only its size can fail it.
		return 0, true, true
	}
	return d, false, true
}

// parseWhen reads a future time given as a date (2027-01-01, midnight UTC),
// an RFC 3339 time, or a duration from now (90d), at most MaxDuration
// ahead. "" and "never" are not times: the callers decide what they mean.
func parseWhen(field, s string, now time.Time) (*time.Time, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		t, err = time.Parse(time.RFC3339Nano, s)
		// RFC 3339 offsets run from -23:59 to +23:59; Go reads +24:00
		// and beyond as well.
		if _, offset := t.Zone(); err == nil && (offset >= 24*3600 || offset <= -24*3600) {
			return nil, keyward.FieldErrorf(field, "%q has a UTC offset of 24 hours or more; give an offset from -23:59 to +23:59, or a time in UTC (Z)", s)
		}
	}
	if err != nil {
		d, derr := ParseDuration(s)
		var de *DurationError
		switch {
		case derr == nil && d == 0:
			return nil, keyward.FieldErrorf(field, "%q is zero; give a future date (2027-01-01) or a duration such as 90d", s)
		case derr == nil:
			t = now.Add(d)
		case errors.As(derr, &de) && (de.Negative || de.TooLong):
			return nil, keyward.FieldErrorf(field, "%v; give a future date (2027-01-01) or a duration such as 90d", derr)
		default:
			return nil, keyward.FieldErrorf(field, "%q is not a date or a duration; use a date such as 2027-01-01, a time such as 2027-01-01T12:00:00Z, or a duration such as 90d, 12h or 30m", s)
		}
	}
	t = t.UTC().Truncate(time.Microsecond)
	if !t.After(now) {
		return nil, keyward.FieldErrorf(field, "%s is in the past; give a future date or a duration such as 90d", t.Format(time.RFC3339))
	}
	if latest := now.Add(MaxDuration); t.After(latest) {
		return nil, keyward.FieldErrorf(field, "%q is more than %s ahead; give a time no later than %s, or \"never\" for none",
			s, maxDurationText, latest.Format(time.RFC3339))
	}
	return &t, nil
}

// checkName validates a key's name.
func checkName(name string) (string, error) {
	return checkLabel("name", name, `a name that says what the key is for, such as "prod-order-bot"`)
}

// checkLabel validates a name shown in lists, a key's or a member's:
// visible text of 1 to MaxNameLen characters, trimmed. example says what
// to give when it is empty.
func checkLabel(field, name, example string) (string, error) {
	n := strings.TrimSpace(name)
	if n == "" {
		return "", keyward.FieldErrorf(field, "is required: %s", example)
	}
	if err := checkText(field, "", n); err != nil {
		return "", err
	}
	if l := utf8.RuneCountInString(n); l > MaxNameLen {
		return "", keyward.FieldErrorf(field, "is %d characters long; use at most %d", l, MaxNameLen)
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
	out, err := checkPermissionNames("permissions", perms, "a key")
	if err != nil {
		return nil, err
	}
	for i, p := range perms {
		field := fmt.Sprintf("permissions[%d]", i)
		switch {
		case strings.HasPrefix(p, "keyward:") && tenantID != keyward.SystemTenantID:
			return nil, keyward.FieldErrorf(field, "%q is one of Keyward's own permissions; only keys of the system tenant may hold it", p)
		case !c.Root() && !slices.Contains(c.Permissions, p):
			return nil, &keyward.Error{Code: keyward.CodeInsufficientPermissions, Field: field,
				Message: fmt.Sprintf("%s: you cannot grant %q: a key can only be given permissions that the key creating it holds", field, p)}
		}
	}
	return out, nil
}

// checkPermissionNames validates a list of permissions of field, held by
// holder ("a key", "a member", "a plan"): at most MaxPermissions, each
// well-formed, and returns them without repeats.
func checkPermissionNames(field string, perms []string, holder string) ([]string, error) {
	if len(perms) > MaxPermissions {
		return nil, keyward.FieldErrorf(field, "has %d entries; %s may hold at most %d", len(perms), holder, MaxPermissions)
	}
	out := make([]string, 0, len(perms))
	for i, p := range perms {
		if err := checkPermissionName(fmt.Sprintf("%s[%d]", field, i), p); err != nil {
			return nil, err
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// checkPermissionName validates the name of one permission.
func checkPermissionName(field, p string) error {
	switch {
	case utf8.RuneCountInString(p) > MaxPermissionLen:
		return keyward.FieldErrorf(field, "is %d characters long; use at most %d", utf8.RuneCountInString(p), MaxPermissionLen)
	case !keyward.ValidPermission(p):
		return keyward.FieldErrorf(field, "%q is not a permission: use lowercase names made of words joined by colons, such as contacts:write, messages:send or admin", p)
	case p == "none":
		return keyward.FieldErrorf(field, "\"none\" cannot be a permission: forward-auth reads permissions=none as a location that needs none; choose another name")
	}
	return nil
}

// checkOwnPermissionsAbsent refuses Keyward's own permissions in the
// permissions of a member or a plan (holder): those bound what keys may do
// with the operator's API, and roles, not members or plans, bound what a
// key may do with Keyward's.
func checkOwnPermissionsAbsent(field string, perms []string, holder string) error {
	for i, p := range perms {
		if keyward.BuiltIn(p) {
			return keyward.FieldErrorf(fmt.Sprintf("%s[%d]", field, i),
				"%q is one of Keyward's own permissions, which %s does not hold: what a key may manage is decided by its member's role", p, holder)
		}
	}
	return nil
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

// checkRestrictions validates a key's restrictions: the allowed CIDRs (a
// bare address stands for itself, /32 or /128), the referrer and endpoint
// patterns and the allowed resources, each within its limits and given
// once. Whether they lie inside the caller's own is checkBounds's rule.
//
// The syntax of each referrer and endpoint pattern is checkPattern's.
func checkRestrictions(r *keyward.Restrictions) (keyward.Restrictions, error) {
	out := keyward.Restrictions{IPs: []string{}, Referrers: []string{}, Endpoints: []string{}, Resources: map[string][]string{}}
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
		// A range given twice (in any notation) is kept once, as a
		// permission is: it allows nothing more, and a change that only
		// repeats one changes nothing.
		if !slices.Contains(out.IPs, p.String()) {
			out.IPs = append(out.IPs, p.String())
		}
	}
	var err error
	if out.Referrers, err = checkPatterns("restrictions.referrers", referrerPattern, r.Referrers); err != nil {
		return out, err
	}
	if out.Endpoints, err = checkPatterns("restrictions.endpoints", endpointPattern, r.Endpoints); err != nil {
		return out, err
	}
	if out.Resources, err = checkResources(r.Resources); err != nil {
		return out, err
	}
	return out, nil
}

// patternKind is what a restriction's pattern is: a referrer or an
// endpoint.
type patternKind int

const (
	referrerPattern patternKind = iota
	endpointPattern
)

// checkPatterns validates the referrer or endpoint patterns of field: at
// most MaxPatterns, each visible text (checkPattern) in the grammar of
// docs/policy.md (package policy, whose error names the entry at fault),
// and returns them as package policy writes them, without repeats.
func checkPatterns(field string, kind patternKind, patterns []string) ([]string, error) {
	out := []string{}
	if len(patterns) > MaxPatterns {
		return out, keyward.FieldErrorf(field, "has %d entries; use at most %d", len(patterns), MaxPatterns)
	}
	trimmed := make([]string, len(patterns))
	for i, p := range patterns {
		trimmed[i] = strings.TrimSpace(p)
		if err := checkPattern(fmt.Sprintf("%s[%d]", field, i), trimmed[i]); err != nil {
			return out, err
		}
	}
	canonical, err := parsePatterns(kind, trimmed)
	if err != nil {
		return out, err
	}
	for _, p := range canonical {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// parsePatterns reads referrer or endpoint patterns with package policy
// and returns them as it writes them.
func parsePatterns(kind patternKind, patterns []string) ([]string, error) {
	if kind == referrerPattern {
		r, err := policy.ParseReferrers(patterns)
		return r.Strings(), err
	}
	e, err := policy.ParseEndpoints(patterns)
	return e.Strings(), err
}

// checkPattern checks that one referrer or endpoint pattern is not empty,
// is visible text and is at most MaxPatternLen bytes; its grammar is
// package policy's.
func checkPattern(field string, p string) error {
	if p == "" {
		return keyward.FieldErrorf(field, "is empty; give a pattern or leave the entry out")
	}
	if err := checkText(field, "", p); err != nil {
		return err
	}
	if len(p) > MaxPatternLen {
		return keyward.FieldErrorf(field, "is %d bytes long; use at most %d", len(p), MaxPatternLen)
	}
	return nil
}

// checkResources validates a key's allowed resources: at most
// MaxResourceParams path parameters, each named as a route policy names
// one, with 1 to MaxResourceValues values of visible text; a value given
// twice is kept once.
func checkResources(res map[string][]string) (map[string][]string, error) {
	out := map[string][]string{}
	if len(res) > MaxResourceParams {
		return out, keyward.FieldErrorf("restrictions.resources", "names %d path parameters; use at most %d", len(res), MaxResourceParams)
	}
	for _, param := range slices.Sorted(maps.Keys(res)) {
		field := "restrictions.resources." + param
		if !resourceParamPattern.MatchString(param) {
			if err := checkText("restrictions.resources", "parameter name", param); err != nil {
				return out, err
			}
			return out, keyward.FieldErrorf("restrictions.resources", "%q is not a path parameter's name: use 1 to 64 letters, digits and underscores, not starting with a digit, as in the route policy's {site}", param)
		}
		values := res[param]
		switch {
		case len(values) == 0:
			return out, keyward.FieldErrorf(field, "is empty, which would allow no value at all; give the values the key may reach, or leave the parameter out to allow every value")
		case len(values) > MaxResourceValues:
			return out, keyward.FieldErrorf(field, "has %d values; use at most %d", len(values), MaxResourceValues)
		}
		kept := []string{}
		for i, v := range values {
			vf := fmt.Sprintf("%s[%d]", field, i)
			switch {
			case v == "":
				return out, keyward.FieldErrorf(vf, "is empty; give the value of the path parameter, such as site_1")
			case len(v) > MaxResourceValueLen:
				return out, keyward.FieldErrorf(vf, "is %d bytes long; use at most %d", len(v), MaxResourceValueLen)
			}
			if err := checkText(vf, "", v); err != nil {
				return out, err
			}
			if !slices.Contains(kept, v) {
				kept = append(kept, v)
			}
		}
		out[param] = kept
	}
	return out, nil
}

func checkPage(p keyward.Page) error {
	if p.Limit < 0 || p.Limit > keyward.MaxPageLimit {
		return keyward.FieldErrorf("limit", "%d is out of range; use 1 to %d", p.Limit, keyward.MaxPageLimit)
	}
	return nil
}
