package manage

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/keyward/keyward"
)

// authorizeLimits is the one rule for setting rate limits, quotas and
// credits, on a plan, a tenant or a key, at creation or later: only the
// operator (a root key) may, since they are what the plans sell, and a
// tenant that set its own could lift them. field names what the request
// asked to set.
func authorizeLimits(c Caller, field string) error {
	if c.Root() {
		return nil
	}
	return &keyward.Error{Code: keyward.CodeInsufficientPermissions, Field: field, Message: fmt.Sprintf(
		"%s: only the operator (a root key, of the system tenant with %q) sets rate limits, quotas and credits; they come from the account's plan otherwise.",
		field, keyward.PermAdmin)}
}

// unsetFields reads the unset list of a change: names among allowed, each
// once, none of them also given a value (given reports whether a field is
// given). It returns them as a set.
func unsetFields(unset []string, allowed []string, given func(field string) bool) (map[string]bool, error) {
	out := map[string]bool{}
	for i, f := range unset {
		field := fmt.Sprintf("unset[%d]", i)
		switch {
		case !slices.Contains(allowed, f):
			return nil, keyward.FieldErrorf(field, "%q cannot be unset; give one of %s", f, strings.Join(allowed, ", "))
		case out[f]:
			return nil, keyward.FieldErrorf(field, "%q is listed twice", f)
		case given(f):
			return nil, keyward.FieldErrorf(field, "%q is both given and unset; give a value, or unset it", f)
		}
		out[f] = true
	}
	return out, nil
}

// rateLimitsChange is a change of rate limits from a request: in (nil when
// absent) checked as field, or, when unset, a pointer to nil (the plan's
// again, or none on a plan). It returns nil for no change, and for a
// change to what cur holds already.
func rateLimitsChange(field string, in *[]keyward.RateLimit, unset bool, cur []keyward.RateLimit) (*[]keyward.RateLimit, error) {
	var next []keyward.RateLimit
	switch {
	case unset:
		if cur == nil {
			return nil, nil
		}
	case in == nil:
		return nil, nil
	default:
		if err := keyward.CheckRateLimits(field, *in); err != nil {
			return nil, err
		}
		next = append([]keyward.RateLimit{}, *in...) // [] stays none, not the plan's
		if cur != nil && reflect.DeepEqual(next, cur) {
			return nil, nil
		}
	}
	return &next, nil
}

// quotaChange is a change of a quota from a request: in (nil when absent)
// checked as field, or, when unset, a pointer to the zero Quota (the
// plan's again, or none on a plan). It returns nil for no change.
func quotaChange(field string, in *keyward.Quota, unset bool, cur *keyward.Quota) (*keyward.Quota, error) {
	switch {
	case unset:
		if cur == nil {
			return nil, nil
		}
		return &keyward.Quota{}, nil
	case in == nil:
		return nil, nil
	}
	if err := keyward.CheckQuota(field, in); err != nil {
		return nil, err
	}
	if cur != nil && *cur == *in {
		return nil, nil
	}
	q := *in
	return &q, nil
}

// checkNewLimits checks the rate limits, quota and credits of a new key or
// plan, as field names them.
func checkNewLimits(c Caller, fields map[string]bool) error {
	for _, f := range []string{"rate_limits", "quota", "credits", "key_rate_limits", "key_quota", "tenant_rate_limits", "tenant_quota"} {
		if fields[f] {
			return authorizeLimits(c, f)
		}
	}
	return nil
}
