package manage

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// CreateKeyInput asks for a new key.
type CreateKeyInput struct {
	TenantID     string                `json:"tenant_id,omitempty" description:"tenant id or slug; a tenant's key may leave it out (its own tenant)"`
	Name         string                `json:"name" description:"what the key is for, 1 to 100 characters of visible text: no control, bidirectional or zero-width characters" example:"prod-order-bot"`
	Environment  string                `json:"environment,omitempty" enum:"live,test" description:"default live"`
	Permissions  []string              `json:"permissions,omitempty" example:"[\"contacts:write\"]"`
	Expires      *string               `json:"expires,omitempty" description:"a date (2027-01-01), an RFC 3339 time, or a duration from now (90d, 12h, 30m), at most 100 years ahead; \"never\" or absent: no expiry" example:"90d"`
	RotateBy     *string               `json:"rotate_by,omitempty" description:"when rotation is due: a date, a time or a duration, at most 100 years ahead; \"never\" or absent: none" example:"90d"`
	Metadata     map[string]string     `json:"metadata,omitempty" description:"tags such as owner, service, environment: names of 1 to 64 letters, digits, dots, dashes and underscores; values of visible text, at most 256 bytes in UTF-8"`
	Restrictions *keyward.Restrictions `json:"restrictions,omitempty"`
	MemberID     string                `json:"member_id,omitempty" description:"the member the key belongs to, whose permissions bound it: a root key, or an admin or owner, may make a key for a member of the tenant; a member's key makes keys for its own member when this is left out"`
	RateLimits   []keyward.RateLimit   `json:"rate_limits,omitempty" description:"the key's own rate limits, instead of its plan's (root keys only); [] for none at all"`
	Quota        *keyward.Quota        `json:"quota,omitempty" description:"the key's own quota, instead of its plan's (root keys only)"`
	Credits      *keyward.Credits      `json:"credits,omitempty" description:"uses the key has, each allowed request costing 1 or its route's cost, optionally refilled (root keys only); absent: no limit"`
}

// UpdateKeyInput changes a key; absent fields stay as they are.
type UpdateKeyInput struct {
	Name         *string               `json:"name,omitempty"`
	Permissions  *[]string             `json:"permissions,omitempty"`
	Expires      *string               `json:"expires,omitempty" description:"a date, a time or a duration from now, at most 100 years ahead; \"never\" removes the expiry"`
	RotateBy     *string               `json:"rotate_by,omitempty" description:"a date, a time or a duration from now, at most 100 years ahead; \"never\" removes it"`
	Metadata     *map[string]string    `json:"metadata,omitempty" description:"replaces all metadata (tags)"`
	Restrictions *keyward.Restrictions `json:"restrictions,omitempty" description:"replaces the restrictions"`
	Enabled      *bool                 `json:"enabled,omitempty" description:"false disables the key until it is enabled again"`
	RateLimits   *[]keyward.RateLimit  `json:"rate_limits,omitempty" description:"replaces the key's own rate limits (root keys only); [] for none at all"`
	Quota        *keyward.Quota        `json:"quota,omitempty" description:"replaces the key's own quota (root keys only)"`
	Credits      *keyward.Credits      `json:"credits,omitempty" description:"sets the key's credits, remaining uses included (root keys only): uses under way count down from the new value"`
	Unset        []string              `json:"unset,omitempty" description:"fields to take away, among rate_limits, quota and credits: rate_limits and quota give the key its plan's again, credits takes its credit limit away (root keys only)"`
	// SharingSuspected false clears the key's suspicion of sharing.
	SharingSuspected *bool `json:"sharing_suspected,omitempty" description:"false clears the suspicion of sharing and its evidence (root keys only); the key can be flagged again on a later day. Only Keyward sets it true"`
}

// RotateKeyInput asks for a successor key.
type RotateKeyInput struct {
	GracePeriod *string `json:"grace_period,omitempty" description:"how long the old key keeps working: a duration up to 30d, 0 for not at all; default 24h" example:"24h"`
}

// KeyListInput selects keys to list.
type KeyListInput struct {
	TenantID    string
	MemberID    string
	Environment string
	Status      string
}

// CreateKey issues a key. It returns the key as stored and its plaintext,
// which is never kept and cannot be shown again.
func (s *Service) CreateKey(ctx context.Context, c Caller, in CreateKeyInput) (*keyward.Key, string, error) {
	return s.createKey(ctx, c, in, "")
}

// createKey is CreateKey, with the key's id given, or generated when id is
// "".
func (s *Service) createKey(ctx context.Context, c Caller, in CreateKeyInput, id string) (*keyward.Key, string, error) {
	if err := Authorize(c, Manager); err != nil {
		return nil, "", err
	}
	tenant, err := s.tenantFor(ctx, c, in.TenantID)
	if err != nil {
		return nil, "", err
	}
	if err := authorizeCreateKey(c, in.MemberID); err != nil {
		return nil, "", err
	}
	if err := s.entitled(ctx, tenant); err != nil {
		return nil, "", err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	k := &keyward.Key{TenantID: tenant.ID, Status: keyward.KeyActive, CreatedAt: now, UpdatedAt: now, CreatedBy: c.Actor.ID}
	member, err := s.keyMember(ctx, c, tenant.ID, in.MemberID)
	if err != nil {
		return nil, "", err
	}
	if member != nil {
		k.MemberID = member.ID
	}
	if k.Name, err = checkName(in.Name); err != nil {
		return nil, "", err
	}
	if k.Environment, err = checkEnvironment(in.Environment); err != nil {
		return nil, "", err
	}
	if k.Permissions, err = s.checkKeyPermissions(ctx, c, tenant.ID, member, in.Permissions); err != nil {
		return nil, "", err
	}
	if err := authorizeActingAs(c, member, k.Permissions, "member_id"); err != nil {
		return nil, "", err
	}
	if k.ExpiresAt, err = parseOptionalWhen("expires", in.Expires, now); err != nil {
		return nil, "", err
	}
	if k.RotateBy, err = parseOptionalWhen("rotate_by", in.RotateBy, now); err != nil {
		return nil, "", err
	}
	if k.Metadata, err = checkMetadata(in.Metadata); err != nil {
		return nil, "", err
	}
	if k.Restrictions, err = checkRestrictions(in.Restrictions); err != nil {
		return nil, "", err
	}
	limits := map[string]bool{"rate_limits": in.RateLimits != nil, "quota": in.Quota != nil, "credits": in.Credits != nil}
	if err := authorizeLimitFields(c, limits); err != nil {
		return nil, "", err
	}
	if err := checkLimitable(k.TenantID, limits); err != nil {
		return nil, "", err
	}
	k.RateLimits, k.Quota, k.Credits = in.RateLimits, in.Quota, in.Credits
	if err := k.CheckLimits(); err != nil {
		return nil, "", err
	}
	if err := checkBounds(c, k); err != nil {
		return nil, "", err
	}
	plaintext, err := s.issue(k)
	if err != nil {
		return nil, "", err
	}
	if id != "" {
		k.ID = id
	}
	if err := s.store.CreateKey(ctx, k, c.Actor); err != nil {
		return nil, "", err
	}
	s.changed(ctx)
	return k, plaintext, nil
}

// keyMember returns the member a new key in tenant tenantID belongs to:
// the one the request names (id), else the caller's own member, else none
// (nil), for a key of the tenant as a whole. A member named but not in the
// tenant is a 404 that names member_id, as for one that does not exist; a
// suspended one is a 409.
func (s *Service) keyMember(ctx context.Context, c Caller, tenantID, id string) (*keyward.Member, error) {
	if id == "" && !c.Root() {
		id = c.MemberID
	}
	if id == "" {
		return nil, nil
	}
	m, err := s.store.Member(ctx, id)
	switch {
	case keyward.ErrorCode(err) == keyward.CodeNotFound || (err == nil && m.TenantID != tenantID):
		return nil, &keyward.Error{Code: keyward.CodeNotFound, Field: "member_id",
			Message: fmt.Sprintf("member_id: no member with id %q is in the key's tenant; list them with GET /v1/members", id)}
	case err != nil:
		return nil, err
	case m.Status != keyward.MemberActive:
		return nil, &keyward.Error{Code: keyward.CodeConflict, Field: "member_id",
			Message: fmt.Sprintf("member_id: member %s is suspended, and a suspended member's keys may use nothing; resume the member first", m.ID)}
	}
	return m, nil
}

// checkKeyPermissions validates the permissions of a key in tenant
// tenantID that belongs to member m (nil for none): checkPermissions's
// rules, catalogued once the catalogue has entries, and each held by m,
// whose current permissions bound the key's (Keyward's own are bounded by
// roles instead).
func (s *Service) checkKeyPermissions(ctx context.Context, c Caller, tenantID string, m *keyward.Member, perms []string) ([]string, error) {
	out, err := checkPermissions(c, tenantID, perms)
	if err != nil {
		return nil, err
	}
	if err := s.checkCatalogued(ctx, "permissions", perms); err != nil {
		return nil, err
	}
	if m == nil {
		return out, nil
	}
	for i, p := range perms {
		if !keyward.BuiltIn(p) && !m.HasPermission(p) {
			field := fmt.Sprintf("permissions[%d]", i)
			return nil, &keyward.Error{Code: keyward.CodeInsufficientPermissions, Field: field,
				Message: fmt.Sprintf("%s: member %s, whom the key belongs to, does not hold %q, and a key may hold only permissions its member holds: give the member %q first, or leave it out", field, m.ID, p, p)}
		}
	}
	return out, nil
}

// issue gives k a fresh id and secret, and returns the secret.
func (s *Service) issue(k *keyward.Key) (string, error) {
	plaintext, err := s.format.Generate(k.Environment)
	if err != nil {
		return "", keyward.Internal(fmt.Errorf("generate key: %w", err))
	}
	k.ID = apikey.NewID("key")
	k.Hash = apikey.Hash(plaintext)
	k.Head = apikey.Head(plaintext)
	k.Start, k.Last4 = apikey.Display(plaintext)
	return plaintext, nil
}

// tenantFor resolves the tenant a key operation is about: the given one for
// a root key (required), the caller's own for a tenant's key.
func (s *Service) tenantFor(ctx context.Context, c Caller, idOrSlug string) (*keyward.Tenant, error) {
	if idOrSlug == "" {
		if c.Root() {
			return nil, keyward.FieldErrorf("tenant_id", "is required with a root key: name the tenant the key is for")
		}
		idOrSlug = c.TenantID
	}
	return s.Tenant(ctx, c, idOrSlug)
}

// Key returns one key of the caller's reach.
func (s *Service) Key(ctx context.Context, c Caller, id string) (*keyward.Key, error) {
	if err := Authorize(c, Manager); err != nil {
		return nil, err
	}
	k, err := s.store.Key(ctx, id)
	if keyward.ErrorCode(err) == keyward.CodeNotFound || (err == nil && !c.inScope(k.TenantID)) {
		return nil, errNotFound("API key", id)
	}
	return k, err
}

// Keys lists the keys of the caller's reach that match in.
func (s *Service) Keys(ctx context.Context, c Caller, in KeyListInput, p keyward.Page) ([]*keyward.Key, string, error) {
	if err := Authorize(c, Manager); err != nil {
		return nil, "", err
	}
	f := keyward.KeyFilter{TenantID: in.TenantID}
	if in.TenantID != "" || !c.Root() {
		t, err := s.tenantFor(ctx, c, in.TenantID)
		if err != nil {
			return nil, "", err
		}
		f.TenantID = t.ID
	}
	if in.MemberID != "" {
		m, err := s.Member(ctx, c, in.MemberID)
		if err != nil {
			return nil, "", err
		}
		if f.TenantID != "" && m.TenantID != f.TenantID {
			return nil, "", errNotFound("member", in.MemberID)
		}
		f.MemberID = m.ID
	}
	if in.Environment != "" {
		e, err := checkEnvironment(in.Environment)
		if err != nil {
			return nil, "", err
		}
		f.Environment = e
	}
	switch st := keyward.KeyStatus(in.Status); st {
	case "", keyward.KeyActive, keyward.KeyDisabled, keyward.KeyExpired, keyward.KeyRevoked:
		f.Status, f.Now = st, s.Now()
	default:
		return nil, "", keyward.FieldErrorf("status", "%q is not a status; use active, disabled, expired or revoked", in.Status)
	}
	if err := checkPage(p); err != nil {
		return nil, "", err
	}
	return s.store.Keys(ctx, f, p)
}

// UpdateKey changes a key of the caller's reach.
func (s *Service) UpdateKey(ctx context.Context, c Caller, id string, in UpdateKeyInput) (*keyward.Key, error) {
	k, err := s.Key(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if err := authorizeKey(c, k); err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	if err := changeable(k, now); err != nil {
		return nil, err
	}
	var u keyward.KeyUpdate
	if in.Name != nil {
		n, err := checkName(*in.Name)
		if err != nil {
			return nil, err
		}
		u.Name = &n
	}
	if in.Permissions != nil {
		var member *keyward.Member
		if k.MemberID != "" {
			if member, err = s.store.Member(ctx, k.MemberID); err != nil {
				return nil, err
			}
		}
		p, err := s.checkKeyPermissions(ctx, c, k.TenantID, member, *in.Permissions)
		if err != nil {
			return nil, err
		}
		if err := authorizeActingAs(c, member, p, "permissions"); err != nil {
			return nil, err
		}
		u.Permissions = &p
	}
	if u.ExpiresAt, err = parseChange("expires", in.Expires, now); err != nil {
		return nil, err
	}
	if k.RotatedTo != "" && u.ExpiresAt != nil && (u.ExpiresAt.IsZero() || k.ExpiresAt == nil || u.ExpiresAt.After(*k.ExpiresAt)) {
		return nil, &keyward.Error{Code: keyward.CodeConflict, Field: "expires", Message: fmt.Sprintf(
			"expires: this key was rotated to %s and stops working at the end of its grace period; its expiry can be brought forward, not extended.", k.RotatedTo)}
	}
	if u.RotateBy, err = parseChange("rotate_by", in.RotateBy, now); err != nil {
		return nil, err
	}
	if in.Metadata != nil {
		md, err := checkMetadata(*in.Metadata)
		if err != nil {
			return nil, err
		}
		u.Metadata = &md
	}
	if in.Restrictions != nil {
		r, err := checkRestrictions(in.Restrictions)
		if err != nil {
			return nil, err
		}
		u.Restrictions = &r
	}
	if in.Enabled != nil {
		st := keyward.KeyDisabled
		if *in.Enabled {
			st = keyward.KeyActive
		}
		u.Status = &st
	}
	if err := s.keyLimitsChange(c, k, in, &u); err != nil {
		return nil, err
	}
	if in.SharingSuspected != nil {
		if *in.SharingSuspected {
			return nil, keyward.FieldErrorf("sharing_suspected", "only Keyward sets it, from the clients it sees the key used by (docs/signals.md); give false to clear it")
		}
		if err := operatorOnly(c, "sharing_suspected", "clears a suspicion of sharing"); err != nil {
			return nil, err
		}
		u.ClearSharing = k.Sharing != nil
	}
	if err := checkBounds(c, applied(k, u)); err != nil {
		return nil, err
	}
	// A revoked key is refused by the store (409) whatever the request.
	if k.Status != keyward.KeyRevoked && !dropUnchanged(&u, k) {
		return nil, keyward.Errorf(keyward.CodeInvalidRequest,
			"Nothing to change: the request gives no field, or only values the key has already. Send at least one of name, permissions, expires, rotate_by, metadata, restrictions, enabled, rate_limits, quota, credits, unset or sharing_suspected with a new value.")
	}
	k, err = s.store.UpdateKey(ctx, id, u, now, c.Actor)
	if keyward.ErrorCode(err) == keyward.CodeConflict {
		return nil, &keyward.Error{Code: keyward.CodeConflict, Message: revokedMessage, Err: err}
	}
	if err != nil {
		return nil, err
	}
	s.changed(ctx)
	return k, nil
}

// keyLimitsChange puts into u the change of rate limits, quota and
// credits that in asks of key k, after authorizeLimits.
func (s *Service) keyLimitsChange(c Caller, k *keyward.Key, in UpdateKeyInput, u *keyward.KeyUpdate) error {
	given := map[string]bool{"rate_limits": in.RateLimits != nil, "quota": in.Quota != nil, "credits": in.Credits != nil}
	unset, err := unsetFields(in.Unset, []string{"rate_limits", "quota", "credits"}, func(f string) bool { return given[f] })
	if err != nil {
		return err
	}
	if err := checkLimitable(k.TenantID, given); err != nil {
		return err
	}
	for f := range unset {
		given[f] = true
	}
	if err := authorizeLimitFields(c, given); err != nil {
		return err
	}
	if u.RateLimits, err = rateLimitsChange("rate_limits", in.RateLimits, unset["rate_limits"], k.RateLimits); err != nil {
		return err
	}
	if u.Quota, err = quotaChange("quota", in.Quota, unset["quota"], k.Quota); err != nil {
		return err
	}
	if in.Credits != nil {
		if err := keyward.CheckCredits("credits", in.Credits); err != nil {
			return err
		}
		credits := *in.Credits
		u.Credits = &credits
	}
	u.NoCredits = unset["credits"] && k.Credits != nil
	return nil
}

// revokedMessage answers a change to a revoked key.
const revokedMessage = "This key is revoked and can no longer be changed; create a new key instead."

// changeable refuses a change to a key that is revoked or has expired at
// now: a key that stopped working stays stopped (it can still be revoked),
// so a new expiry cannot revive it.
func changeable(k *keyward.Key, now time.Time) error {
	switch {
	case k.Status == keyward.KeyRevoked:
		return keyward.Errorf(keyward.CodeConflict, revokedMessage)
	case k.Expired(now):
		return keyward.Errorf(keyward.CodeConflict,
			"This key expired on %s; an expired key can no longer be changed, nor be given a new expiry: create a new key instead.", formatTime(*k.ExpiresAt))
	}
	return nil
}

// applied returns k as update u would leave it.
func applied(k *keyward.Key, u keyward.KeyUpdate) *keyward.Key {
	after := *k
	if u.Permissions != nil {
		after.Permissions = *u.Permissions
	}
	if u.ExpiresAt != nil {
		after.ExpiresAt = u.ExpiresAt
		if u.ExpiresAt.IsZero() {
			after.ExpiresAt = nil
		}
	}
	if u.Restrictions != nil {
		after.Restrictions = *u.Restrictions
	}
	return &after
}

// dropUnchanged clears the fields of u that would leave k as it is, and
// reports whether any change remains. Permissions and allowed IPs are
// compared as sets; a time to clear (the zero time) is unchanged on a key
// without one.
func dropUnchanged(u *keyward.KeyUpdate, k *keyward.Key) bool {
	if u.Name != nil && *u.Name == k.Name {
		u.Name = nil
	}
	if u.Permissions != nil && sameSet(*u.Permissions, k.Permissions) {
		u.Permissions = nil
	}
	if u.Metadata != nil && maps.Equal(*u.Metadata, k.Metadata) {
		u.Metadata = nil
	}
	if u.ExpiresAt != nil && sameTime(u.ExpiresAt, k.ExpiresAt) {
		u.ExpiresAt = nil
	}
	if u.RotateBy != nil && sameTime(u.RotateBy, k.RotateBy) {
		u.RotateBy = nil
	}
	if u.Restrictions != nil && sameRestrictions(*u.Restrictions, k.Restrictions) {
		u.Restrictions = nil
	}
	if u.Status != nil && *u.Status == k.Status {
		u.Status = nil
	}
	return *u != keyward.KeyUpdate{}
}

// sameRestrictions reports whether a and b allow the same: each list
// compared as a set.
func sameRestrictions(a, b keyward.Restrictions) bool {
	return sameSet(a.IPs, b.IPs) && sameSet(a.Referrers, b.Referrers) && sameSet(a.Endpoints, b.Endpoints) &&
		len(a.Resources) == len(b.Resources) && !slices.ContainsFunc(slices.Collect(maps.Keys(a.Resources)), func(p string) bool {
		v, ok := b.Resources[p]
		return !ok || !sameSet(a.Resources[p], v)
	})
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(s string) bool { return !slices.Contains(b, s) }) &&
		!slices.ContainsFunc(b, func(s string) bool { return !slices.Contains(a, s) })
}

// sameTime reports whether the new time of an update, the zero time for
// none, is the one a key has, nil for none.
func sameTime(next, cur *time.Time) bool {
	if next.IsZero() || cur == nil {
		return next.IsZero() && cur == nil
	}
	return next.Equal(*cur)
}

// parseOptionalWhen reads an optional time of a new key: nil and "never"
// are none, "" is refused (say "never", or leave the field out), anything
// else is a future time as parseWhen reads it.
func parseOptionalWhen(field string, s *string, now time.Time) (*time.Time, error) {
	t, err := parseChange(field, s, now)
	if err != nil || t == nil || t.IsZero() {
		return nil, err
	}
	return t, nil
}

// parseChange reads an optional new time for an update: nil leaves it,
// "never" clears it (a pointer to the zero time), "" is refused rather than
// taken for either, anything else is a future time as parseWhen reads it.
func parseChange(field string, s *string, now time.Time) (*time.Time, error) {
	switch {
	case s == nil:
		return nil, nil
	case *s == "never":
		return &time.Time{}, nil
	case strings.TrimSpace(*s) == "":
		return nil, keyward.FieldErrorf(field, "is empty; give a date (2027-01-01), a duration such as 90d, or \"never\" for none")
	}
	return parseWhen(field, *s, now)
}

// RevokeKey revokes a key of the caller's reach at once. Revoking a revoked
// key changes nothing.
func (s *Service) RevokeKey(ctx context.Context, c Caller, id string) (*keyward.Key, error) {
	k, err := s.Key(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if err := authorizeKey(c, k); err != nil {
		return nil, err
	}
	k, err = s.store.RevokeKey(ctx, id, s.now().UTC().Truncate(time.Microsecond), c.Actor)
	if err != nil {
		return nil, err
	}
	s.changed(ctx)
	return k, nil
}

// RotateKey issues a successor with the same tenant, environment, name,
// permissions, tags, restrictions and enabled state; an expiry or rotation date keeps the
// same distance from creation. The old key keeps working for the grace
// period (default 24h, at most 30 days, 0 for not at all). It returns the
// successor, its plaintext, and the old key as stored.
func (s *Service) RotateKey(ctx context.Context, c Caller, id string, in RotateKeyInput) (successor *keyward.Key, plaintext string, old *keyward.Key, err error) {
	grace := DefaultGrace
	if in.GracePeriod != nil {
		grace, err = ParseDuration(*in.GracePeriod)
		var de *DurationError
		if err != nil && !(errors.As(err, &de) && de.TooLong) {
			return nil, "", nil, keyward.FieldErrorf("grace_period", "%v; use a duration such as 24h, 7d or 0 (the old key stops at once)", err)
		}
		if err != nil || grace > MaxGrace {
			return nil, "", nil, keyward.FieldErrorf("grace_period", "%s is longer than 30 days; the old key may keep working for at most 30d", *in.GracePeriod)
		}
	}
	return s.rotate(ctx, c, id, grace, false)
}

// rotate is RotateKey with a grace period of grace; the successor waits
// to be revealed (and its plaintext, never shown, is "") when forReveal
// is true (RotateWithNotice).
func (s *Service) rotate(ctx context.Context, c Caller, id string, grace time.Duration, forReveal bool) (successor *keyward.Key, plaintext string, old *keyward.Key, err error) {
	if old, err = s.Key(ctx, c, id); err != nil {
		return nil, "", nil, err
	}
	if err := authorizeKey(c, old); err != nil {
		return nil, "", nil, err
	}
	if old.MemberID != "" && !c.Root() && slices.Contains(old.Permissions, keyward.PermManageKeys) {
		m, err := s.store.Member(ctx, old.MemberID)
		if err != nil && keyward.ErrorCode(err) != keyward.CodeNotFound {
			return nil, "", nil, err
		}
		if err := authorizeActingAs(c, m, old.Permissions, ""); err != nil {
			return nil, "", nil, err
		}
	}
	// A successor replaces its predecessor, so the plan's key limit does
	// not refuse it; a plan without API access does.
	if err := s.entitledByID(ctx, old.TenantID); err != nil {
		return nil, "", nil, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	switch {
	case old.Status == keyward.KeyRevoked:
		return nil, "", nil, keyward.Errorf(keyward.CodeConflict, "This key is revoked; create a new key instead of rotating it.")
	case old.RotatedTo != "":
		return nil, "", nil, keyward.Errorf(keyward.CodeConflict, "This key was rotated already, to %s; rotate that key instead.", old.RotatedTo)
	case old.Expired(now):
		return nil, "", nil, keyward.Errorf(keyward.CodeConflict,
			"This key expired on %s; an expired key cannot be rotated: create a new key instead.", formatTime(*old.ExpiresAt))
	}
	successor = &keyward.Key{
		TenantID: old.TenantID, Environment: old.Environment, Name: old.Name,
		Permissions: old.Permissions, Metadata: old.Metadata, Restrictions: old.Restrictions,
		ExpiresAt: sameDistance(old.ExpiresAt, old.CreatedAt, now), RotateBy: sameDistance(old.RotateBy, old.CreatedAt, now),
		Status: old.Status, CreatedAt: now, UpdatedAt: now, CreatedBy: c.Actor.ID, RotatedFrom: old.ID, MemberID: old.MemberID,
		// The key's own limits go with it, and its credits move to it
		// (the store takes them as they are when it rotates): a rotation
		// never sheds a limit.
		RateLimits: old.RateLimits, Quota: old.Quota, Credits: old.Credits,
	}
	// The successor keeps its predecessor's lifetime, but not past the
	// caller's own expiry: it is brought forward to it rather than refused,
	// since a rotation has no expiry to ask the caller for.
	if !c.Root() && c.ExpiresAt != nil && successor.ExpiresAt != nil && successor.ExpiresAt.After(*c.ExpiresAt) {
		bound := *c.ExpiresAt
		successor.ExpiresAt = &bound
	}
	if err := checkBounds(c, successor); err != nil {
		return nil, "", nil, err
	}
	if plaintext, err = s.issue(successor); err != nil {
		return nil, "", nil, err
	}
	oldExpires := now.Add(grace)
	if old.ExpiresAt != nil && old.ExpiresAt.Before(oldExpires) {
		oldExpires = *old.ExpiresAt
	}
	if forReveal {
		plaintext = ""
		old, err = s.store.RotateKeyForReveal(ctx, old.ID, successor, oldExpires, c.Actor)
	} else {
		old, err = s.store.RotateKey(ctx, old.ID, successor, oldExpires, c.Actor)
	}
	if keyward.ErrorCode(err) == keyward.CodeConflict {
		return nil, "", nil, &keyward.Error{Code: keyward.CodeConflict, Message: "This key was revoked or rotated meanwhile; reload it and try again.", Err: err}
	}
	if err != nil {
		return nil, "", nil, err
	}
	s.changed(ctx)
	return successor, plaintext, old, nil
}

// entitledByID is entitled for the tenant with id tenantID.
func (s *Service) entitledByID(ctx context.Context, tenantID string) error {
	t, err := s.store.Tenant(ctx, tenantID)
	if err != nil {
		return err
	}
	return s.entitled(ctx, t)
}

// sameDistance returns now plus the time from created to t, or nil.
func sameDistance(t *time.Time, created, now time.Time) *time.Time {
	if t == nil {
		return nil
	}
	d := now.Add(t.Sub(created))
	return &d
}

// AuditLog lists audit entries of the caller's reach.
func (s *Service) AuditLog(ctx context.Context, c Caller, f keyward.AuditFilter, p keyward.Page) ([]*keyward.AuditEntry, string, error) {
	if err := Authorize(c, Manager); err != nil {
		return nil, "", err
	}
	if f.TenantID != "" || !c.Root() {
		t, err := s.tenantFor(ctx, c, f.TenantID)
		if err != nil {
			return nil, "", err
		}
		f.TenantID = t.ID
	}
	// A key outside the caller's reach is answered as one that does not
	// exist, as on every other route. A member is not looked up: one who
	// was removed has a history but no row, and the tenant filter keeps
	// every other tenant's entries out, answering alike for a member of
	// another tenant and one that never was.
	if f.Target != "" && !c.Root() && f.Target != c.TenantID && !strings.HasPrefix(f.Target, "mem_") {
		if _, err := s.Key(ctx, c, f.Target); err != nil {
			return nil, "", err
		}
	}
	if err := checkPage(p); err != nil {
		return nil, "", err
	}
	return s.store.AuditLog(ctx, f, p)
}

// Bootstrap makes sure the system tenant exists and, on an empty database,
// issues the first root key. It returns that key's plaintext, to be shown
// once, or "" when the database had been set up before.
func (s *Service) Bootstrap(ctx context.Context) (string, error) {
	now := s.now().UTC().Truncate(time.Microsecond)
	sys := &keyward.Tenant{ID: keyward.SystemTenantID, Slug: keyward.SystemTenantSlug, Plan: DefaultPlan, Status: keyward.TenantActive, CreatedAt: now, UpdatedAt: now}
	if err := s.store.CreateTenant(ctx, sys, keyward.CommandLineActor()); err != nil && keyward.ErrorCode(err) != keyward.CodeConflict {
		return "", err
	}
	// A root key is issued while the system tenant has never had a key, so
	// a start that stopped between the two steps still ends with one.
	keys, _, err := s.store.Keys(ctx, keyward.KeyFilter{TenantID: keyward.SystemTenantID}, keyward.Page{Limit: 1})
	if err != nil || len(keys) > 0 {
		return "", err
	}
	_, plaintext, err := s.createKey(ctx, CommandLine(), CreateKeyInput{
		TenantID: keyward.SystemTenantID, Name: "root", Permissions: []string{keyward.PermAdmin},
	}, FirstRootKeyID)
	if keyward.ErrorCode(err) == keyward.CodeConflict {
		// Another process starting on the same new database issued it
		// first, and printed it.
		return "", nil
	}
	return plaintext, err
}

// FirstRootKeyID is the id of the root key that Bootstrap issues. Being
// fixed, it is issued once however many processes start on a new database
// at the same moment: the others' inserts conflict.
const FirstRootKeyID = "key_root"
