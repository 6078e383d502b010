package manage

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// MaxNotice is the longest notice of a rotation with notice.
const MaxNotice = 365 * 24 * time.Hour

// NoticeRotationInput asks the operator's rotation of many keys with a
// notice: those of one tenant, of every tenant on one plan, or of every
// tenant.
type NoticeRotationInput struct {
	TenantID string
	Plan     string
	All      bool
	// Notice is how long the old keys keep working: a duration such as
	// 30d, at most 365d.
	Notice string
}

// NoticeRotation is what a rotation with notice did.
type NoticeRotation struct {
	// Rotated are the old keys rotated, and Failed those that could not
	// be (with why); Skipped counts the working keys rotated already, and
	// the successors that wait to be revealed, which are left alone
	// (expired and revoked keys are not counted).
	Rotated  []string          `json:"rotated"`
	Failed   map[string]string `json:"failed"`
	Skipped  int               `json:"skipped"`
	SunsetAt time.Time         `json:"sunset_at"`
}

// RotateWithNotice rotates, for the operator, every working key of a
// tenant, of a plan's tenants or of every tenant (the system tenant's
// aside), with notice (imin: "we will add a new API key for your access,
// then after a period deprecate the old key… we will always give
// notice"): each successor waits in its tenant's dashboard to be revealed
// once (RevealKey), each old key carries the Deprecation and Sunset
// headers from now on and stops at the end of the notice (or at its own
// expiry, if sooner), and key.rotated, with the date, goes to the
// tenant's webhooks. Keys are rotated one at a time: a failure is
// reported and the rest go on, and running it again rotates only what
// was not rotated.
func (s *Service) RotateWithNotice(ctx context.Context, c Caller, in NoticeRotationInput) (*NoticeRotation, error) {
	if err := operatorOnly(c, "notice", "rotates keys with notice"); err != nil {
		return nil, err
	}
	notice, err := ParseDuration(in.Notice)
	switch {
	case in.Notice == "":
		return nil, keyward.FieldErrorf("notice", "is required: how long the old keys keep working, such as 30d")
	case err != nil:
		return nil, keyward.FieldErrorf("notice", "%v; use a duration such as 30d, at most 365d", err)
	case notice <= 0 || notice > MaxNotice:
		return nil, keyward.FieldErrorf("notice", "%s is not between 1 minute and 365 days", in.Notice)
	}
	given := 0
	for _, b := range []bool{in.TenantID != "", in.Plan != "", in.All} {
		if b {
			given++
		}
	}
	if given != 1 {
		return nil, keyward.FieldErrorf("tenant", "name one tenant, one plan, or all: exactly one of them")
	}
	var tenants []*keyward.Tenant
	if in.TenantID != "" {
		t, err := s.Tenant(ctx, c, in.TenantID)
		if err != nil {
			return nil, err
		}
		tenants = append(tenants, t)
	} else {
		if in.Plan != "" {
			if _, err := s.Plan(ctx, c, in.Plan); err != nil {
				return nil, err
			}
		}
		for p := (keyward.Page{Limit: keyward.MaxPageLimit}); ; {
			ts, next, err := s.store.Tenants(ctx, p)
			if err != nil {
				return nil, err
			}
			for _, t := range ts {
				if in.All || t.Plan == in.Plan {
					tenants = append(tenants, t)
				}
			}
			if next == "" {
				break
			}
			p.Cursor = next
		}
	}
	now := s.now()
	out := &NoticeRotation{Failed: map[string]string{}, SunsetAt: now.Add(notice).UTC().Truncate(time.Microsecond)}
	for _, t := range tenants {
		if t.ID == keyward.SystemTenantID {
			continue
		}
		// Every key is listed before any is rotated, so that the list
		// does not meet the successors.
		// A successor that waits to be revealed is the new key of an
		// earlier rotation: left alone.
		pending, err := s.store.PendingReveals(ctx, t.ID, nil)
		if err != nil {
			return out, err
		}
		var ids []string
		for p := (keyward.Page{Limit: keyward.MaxPageLimit}); ; {
			ks, next, err := s.store.Keys(ctx, keyward.KeyFilter{TenantID: t.ID, Status: keyward.KeyActive, Now: now}, p)
			if err != nil {
				return out, err
			}
			for _, k := range ks {
				if k.RotatedTo == "" && !slices.Contains(pending, k.ID) {
					ids = append(ids, k.ID)
				} else {
					out.Skipped++
				}
			}
			if next == "" {
				break
			}
			p.Cursor = next
		}
		for _, id := range ids {
			if _, _, _, err := s.rotate(ctx, c, id, notice, true); err != nil {
				if e := keyward.ErrorCode(err); e == keyward.CodeStorageUnavailable || ctx.Err() != nil {
					return out, err
				}
				out.Failed[id] = err.Error()
				continue
			}
			out.Rotated = append(out.Rotated, id)
		}
	}
	return out, nil
}

// PendingReveals lists which of the keys ks, of the caller's tenant (a
// tenant the operator names), wait to be revealed.
func (s *Service) PendingReveals(ctx context.Context, c Caller, tenantID string, ks []*keyward.Key) ([]string, error) {
	if err := Authorize(c, Manager); err != nil {
		return nil, err
	}
	if tenantID == "" && c.Root() {
		return nil, nil
	}
	t, err := s.tenantFor(ctx, c, tenantID)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(ks))
	for i, k := range ks {
		ids[i] = k.ID
	}
	return s.store.PendingReveals(ctx, t.ID, ids)
}

// RevealKey gives a successor of a rotation with notice a new secret and
// returns it, to be shown once, under authorizeReveal. A second reveal is
// a CodeConflict.
func (s *Service) RevealKey(ctx context.Context, c Caller, id string) (*keyward.Key, string, error) {
	k, err := s.Key(ctx, c, id)
	if err != nil {
		return nil, "", err
	}
	if err := authorizeReveal(c, k); err != nil {
		return nil, "", err
	}
	plaintext, err := s.format.Generate(k.Environment)
	if err != nil {
		return nil, "", keyward.Internal(fmt.Errorf("generate key: %w", err))
	}
	start, last4 := apikey.Display(plaintext)
	k, err = s.store.RevealKey(ctx, id, apikey.Hash(plaintext), start, last4, s.now().UTC().Truncate(time.Microsecond), c.Actor)
	if err != nil {
		return nil, "", err
	}
	s.changed(ctx)
	return k, plaintext, nil
}

// KeysInNotice lists, for the operator, the old keys in a rotation's
// notice that were used after their successor was made: who has not
// moved to the new key yet.
func (s *Service) KeysInNotice(ctx context.Context, c Caller) ([]*keyward.Key, error) {
	if err := operatorOnly(c, "keys", "sees the keys still in use during a notice"); err != nil {
		return nil, err
	}
	return s.store.KeysInNotice(ctx, s.now(), 1000)
}

// authorizeReveal is the rule for revealing a successor of the operator's
// rotation with notice: whoever may rotate the key (authorizeKey), and
// the owners of its tenant whatever the key holds: the operator hands the
// new key to the account, which an owner answers for, and the old key
// stops at the end of the notice, so someone in the account must be able
// to take it. An owner's key must be no less than a session (live, no
// expiry, no restriction) to do it.
func authorizeReveal(c Caller, k *keyward.Key) error {
	err := authorizeKey(c, k)
	if err != nil && c.Role == keyward.RoleOwner && c.inScope(k.TenantID) && c.allowsEnvironment(k.Environment) && unboundedCaller(c) == nil {
		return nil
	}
	return err
}

// MayRevealKey reports whether caller c may reveal key k, a successor
// that waits to be revealed (authorizeReveal).
func MayRevealKey(c Caller, k *keyward.Key) bool {
	return Authorize(c, Manager) == nil && authorizeReveal(c, k) == nil
}
