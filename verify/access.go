package verify

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unique"

	"github.com/maypok86/otter/v2"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/limit"
)

// Access is what a key may do at the time of a verification, worked out
// from the key, its tenant, its member and its plan (docs/access.md). A
// key's cache entry keeps its Access until one of these changes, so that a
// cached verification reads it rather than working it out. It is shared
// with the cache: treat it as read-only.
type Access struct {
	// Tenant is the key's tenant.
	Tenant *keyward.Tenant
	// Member is the member the key belongs to, or nil for a key of the
	// tenant as a whole, or when the member was removed (MemberRemoved).
	Member *keyward.Member
	// MemberRemoved says that the key belongs to a member who no longer
	// exists: it may use none of its permissions.
	MemberRemoved bool
	// Plan is the tenant's plan.
	Plan *keyward.Plan
	// Permissions are the key's effective permissions: its own, less
	// those withheld. Keyward's own permissions (keys:manage, keyward:*)
	// are never withheld.
	Permissions []string
	// PermissionList is Permissions joined by commas, as forward-auth's
	// X-Keyward-Permissions carries them: worked out once with the
	// Access, not at every verification.
	PermissionList string
	// Withheld lists the permissions the key holds but may not use, and
	// why, in the order the key holds them.
	Withheld []Withheld

	tenantActive bool
	apiAccess    bool // the plan's APIAccess, read without reading the plan
	// capabilities are the plan's, each the one copy of its name that
	// the route policy's capabilities share too, so that comparing them
	// compares pointers.
	capabilities []string
	// epoch is the verifier's access epoch when this was worked out, and
	// loaded the cache-clock time when the oldest of the tenant, member
	// and plan was read from the store: the Access is current while the
	// epoch has not moved on and loaded is within the cache TTL.
	epoch  uint64
	loaded int64
	// limits are the key's and its tenant's rate limits bound to the
	// verifier's limiter (nil for none), or limitsErr why they could not
	// be: then the key is refused rather than let through unlimited.
	limits    limit.Set
	limitsErr error
	// keyQuota and tenantQuota are the quotas the key counts against (its
	// own or its plan's, its tenant's or its plan's), in the tenant's time
	// zone loc; metered says that there is one, or credits.
	keyQuota, tenantQuota *keyward.Quota
	loc                   *time.Location
	metered               bool
}

// Withheld is a permission a key holds but may not use, and why.
type Withheld struct {
	Permission string `json:"permission"`
	// By is what withholds it: WithheldByMember (the member who made the
	// key does not hold it, is suspended or was removed) or WithheldByPlan
	// (the tenant's plan does not allow it).
	By string `json:"by" enum:"member,plan"`
}

// What withholds a permission.
const (
	WithheldByMember = "member"
	WithheldByPlan   = "plan"
)

// withheld returns why the key may not use p, or nil when it may or does
// not hold p at all.
func (a *Access) withheld(p string) *Withheld {
	for i := range a.Withheld {
		if a.Withheld[i].Permission == p {
			return &a.Withheld[i]
		}
	}
	return nil
}

// newAccess works out what key k may do with its tenant t, its member m
// (nil for none, or when removed is true) and its plan p.
func newAccess(k *keyward.Key, t *keyward.Tenant, m *keyward.Member, removed bool, p *keyward.Plan) *Access {
	a := &Access{Tenant: t, Member: m, MemberRemoved: removed, Plan: p, Permissions: k.Permissions,
		tenantActive: t.Status == keyward.TenantActive, apiAccess: p.APIAccess,
		capabilities: make([]string, len(p.Capabilities))}
	for i, c := range p.Capabilities {
		a.capabilities[i] = unique.Make(c).Value()
	}
	memberHolds := func(q string) bool {
		switch {
		case k.MemberID == "":
			return true
		case m == nil:
			return false
		}
		return m.Status == keyward.MemberActive && m.HasPermission(q)
	}
	for _, q := range k.Permissions {
		switch {
		case keyward.BuiltIn(q):
		case !memberHolds(q):
			a.Withheld = append(a.Withheld, Withheld{Permission: q, By: WithheldByMember})
		case !p.Allows(q):
			a.Withheld = append(a.Withheld, Withheld{Permission: q, By: WithheldByPlan})
		}
	}
	if len(a.Withheld) > 0 {
		a.Permissions = make([]string, 0, len(k.Permissions)-len(a.Withheld))
		for _, q := range k.Permissions {
			if a.withheld(q) == nil {
				a.Permissions = append(a.Permissions, q)
			}
		}
	}
	a.PermissionList = strings.Join(a.Permissions, ",")
	return a
}

// withheldDetail is the detail of an insufficient_permissions refusal for
// permission w, which the key holds but may not use.
func (a *Access) withheldDetail(w *Withheld) string {
	if w.By == WithheldByPlan {
		return fmt.Sprintf("The key holds %q, but the plan of this account (%s) does not include it. "+
			"Upgrade the plan, or use a key of an account whose plan does.", w.Permission, a.Plan.Name)
	}
	switch {
	case a.MemberRemoved:
		return fmt.Sprintf("The key holds %q, but the member it belongs to was removed from the account, "+
			"so it may use none of its permissions. Use a key of a current member.", w.Permission)
	case a.Member.Status != keyward.MemberActive:
		return fmt.Sprintf("The key holds %q, but the member who made it is suspended, "+
			"so it may use none of its permissions until the member is resumed.", w.Permission)
	}
	return fmt.Sprintf("The key holds %q, but the member who made it no longer does. "+
		"Ask an admin of the account to give the member %q again, or use another key.", w.Permission, w.Permission)
}

// records is a cache of tenants, members or plans by id (or name), read
// from the store on a miss, and kept fresh as keys are (see freshness).
type records[T any] struct {
	cache *otter.Cache[string, *record[T]]
	load  otter.Loader[string, *record[T]]
}

// record is what a records cache holds: a value as read from the store,
// and when, on the cache clock.
type record[T any] struct {
	value  *T
	loaded int64
	// nextRefresh is when the record may next be read again in the
	// background (see Verifier.refreshNow).
	nextRefresh atomic.Int64
}

// newRecords returns a cache of up to size records that lookup reads on a
// miss, within the verifier's storage timeout.
func newRecords[T any](v *Verifier, size int, lookup func(context.Context, string) (*T, error)) records[T] {
	return records[T]{
		cache: otter.Must(&otter.Options[string, *record[T]]{
			MaximumSize:       size,
			RefreshCalculator: otter.RefreshWriting[string, *record[T]](time.Duration(v.ttl)),
			Clock:             v.cacheClock,
			Logger:            &otter.NoopLogger{},
		}),
		load: otter.LoaderFunc[string, *record[T]](func(ctx context.Context, id string) (*record[T], error) {
			ctx, cancel := context.WithTimeout(ctx, v.storageTimeout)
			defer cancel()
			x, err := lookup(ctx, id)
			if err != nil {
				return nil, err
			}
			return &record[T]{value: x, loaded: v.cacheClock.NowNano()}, nil
		}),
	}
}

// get returns the record with the given id, read from the store first when
// it is not cached or is stale, and read again in the background when it
// is due (see freshness).
func (r records[T]) get(ctx context.Context, v *Verifier, id string) (*record[T], error) {
	if x, ok := r.cache.GetIfPresent(id); ok {
		switch v.freshness(x.loaded) {
		case entryFresh:
			return x, nil
		case entryDue:
			if v.refreshNow(&x.nextRefresh) {
				r.cache.Refresh(ctx, id, r.load)
			}
			return x, nil
		}
		r.cache.Invalidate(id) // stale: read again below
	}
	return r.cache.Get(ctx, id, r.load)
}

// set caches x, just read from the store, under id.
func (r records[T]) set(v *Verifier, id string, x *T) {
	r.cache.Set(id, &record[T]{value: x, loaded: v.cacheClock.NowNano()})
}

// accessOf returns what the key of e may do: the Access e remembers if it
// is still current, or else one worked out from the tenant, member and
// plan caches, loaded from the store if need be. A tenant or plan that does
// not exist is an error (CodeNotFound); a member that does not exist was
// removed, and the key may use none of its permissions.
func (v *Verifier) accessOf(ctx context.Context, e *entry) (*Access, error) {
	// The epoch is read before the caches, and the change feed writes the
	// caches before it moves the epoch on: an Access is never older than
	// the changes counted by its epoch.
	epoch := v.accessEpoch.Load()
	a := e.access.Load()
	if a != nil && a.epoch == epoch && v.cacheClock.NowNano()-a.loaded < v.ttl {
		return a, nil
	}
	k := e.key
	t, err := v.tenants.get(ctx, v, k.TenantID)
	if err != nil {
		return nil, err
	}
	loaded := t.loaded
	var member *keyward.Member
	removed := false
	if k.MemberID != "" {
		m, err := v.members.get(ctx, v, k.MemberID)
		switch {
		case keyward.ErrorCode(err) == keyward.CodeNotFound:
			removed = true
		case err != nil:
			return nil, err
		default:
			member, loaded = m.value, min(loaded, m.loaded)
		}
	}
	p, err := v.plans.get(ctx, v, t.value.Plan)
	if err != nil {
		return nil, fmt.Errorf("the plan %q of tenant %s: %w", t.value.Plan, k.TenantID, err)
	}
	if a != nil && a.epoch == epoch && a.Tenant == t.value && a.Plan == p.value && a.Member == member && a.MemberRemoved == removed {
		// Past the cache TTL, but worked out from these very records:
		// they are being read again in the background, and the Access
		// is worked out again once they have been. Meanwhile, and while
		// the store cannot be read, it stands, without an allocation per
		// verification.
		return a, nil
	}
	a = newAccess(k, t.value, member, removed, p.value)
	a.limits, a.limitsErr = v.bindRateLimits(k, a)
	a.keyQuota, a.tenantQuota = quotasOf(k, t.value, p.value)
	a.metered = a.keyQuota != nil || a.tenantQuota != nil || k.Credits != nil && k.TenantID != keyward.SystemTenantID
	a.loc = time.UTC
	if tz := t.value.TimeZone; tz != "" {
		if loc, err := time.LoadLocation(tz); err == nil {
			a.loc = loc
		} else {
			v.log.Error("verify: a tenant's time zone cannot be loaded; its quotas count days and months in UTC", "tenant_id", t.value.ID, "time_zone", tz, "err", err)
		}
	}
	a.epoch, a.loaded = epoch, min(loaded, p.loaded)
	e.access.Store(a)
	return a, nil
}
