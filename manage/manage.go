// Package manage owns the management operations of Keyward: who may do what
// (a root key for every tenant, a tenant's key with keys:manage for its own,
// with its member's role; Authorize and the rules of authorize.go, which the
// HTTP API's routes declare and enforce), validation of what they ask with
// errors that name the field at fault, the issuing, rotation and revocation
// of keys, and the members, plans, permission catalogue and tenants they
// belong to (docs/access.md). The HTTP API and the command line both call
// it, so the two behave the same.
package manage

import (
	"context"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/verify"
)

// Store is what a Service asks of the storage: the tenants, the keys, the
// members, the plans, the permission catalogue, the audit log and the
// request log. Every keyward.Store is one.
type Store interface {
	keyward.TenantStore
	keyward.KeyStore
	keyward.MemberStore
	keyward.PlanStore
	keyward.Catalogue
	keyward.AuditStore
	keyward.Meter
	keyward.RequestLogStore
	keyward.UsageStore
	keyward.WebhookStore
	keyward.AccountStore
	keyward.NoticeStore
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
	// AllowPrivateWebhooks lets webhook endpoints point at loopback and
	// private addresses (serve --webhook-allow-private).
	AllowPrivateWebhooks bool
	// Delivered, if set, is called when a webhook delivery is made due,
	// so that the process's dispatcher attempts it at once.
	Delivered func()
}

// Service performs management operations on behalf of a Caller.
type Service struct {
	store       Store
	format      apikey.Format
	now         keyward.Clock
	afterChange func(ctx context.Context) error
	// allowPrivate and delivered are Config's AllowPrivateWebhooks and
	// Delivered.
	allowPrivate bool
	delivered    func()
}

// New returns a Service.
func New(c Config) *Service {
	now := c.Clock
	if now == nil {
		now = time.Now
	}
	return &Service{store: c.Store, format: c.Format, now: now, afterChange: c.AfterChange, allowPrivate: c.AllowPrivateWebhooks, delivered: c.Delivered}
}

// Now is the time on the service's clock: what decides whether a key has
// expired, for the answers that show its status.
func (s *Service) Now() time.Time { return s.now() }

// Caller is who asks for an operation: the key that authenticated a request,
// with the member it belongs to, or the command line.
type Caller struct {
	// Actor is written to the audit log: the key's id and the client's
	// address, and the member the key belongs to.
	Actor    keyward.Actor
	TenantID string
	// Permissions are what the caller's key may use now: its effective
	// permissions (verify.Access), which bound what it makes and changes.
	Permissions []string
	// Role is what the caller may manage in its tenant (docs/access.md):
	// its member's current role, or RoleAdmin for a tenant's key without a
	// member. Root and the command line act as the operator and have none.
	Role keyward.Role
	// MemberID is the member the caller's key belongs to, or "".
	MemberID string
	// MemberState says why the caller's member may not act, or "" when it
	// may (or the key has no member): MemberSuspended or MemberRemoved.
	MemberState string
	// Environment, ExpiresAt and Restrictions are those of the caller's
	// key. They bound what a caller that is not root makes and changes
	// (see authorizeKey and checkBounds); empty, they bound nothing.
	Environment  keyward.Environment
	ExpiresAt    *time.Time
	Restrictions keyward.Restrictions
}

// Why a caller's member may not act (Caller.MemberState).
const (
	MemberSuspended = "suspended"
	MemberRemoved   = "removed"
)

// CommandLine returns the caller of every command-line operation: a root
// caller, which may do everything, acting as keyward.CommandLineActor. A
// function, not a variable, so that no one can change what it may do.
func CommandLine() Caller {
	return Caller{Actor: keyward.CommandLineActor(), TenantID: keyward.SystemTenantID, Permissions: []string{keyward.PermAdmin}}
}

// CallerOf returns the caller that a verified key stands for, from the
// verification's result res; ip is the client address of the request. The
// key acts with its effective permissions and, when it belongs to a member,
// with that member's current role, while the member is active; a tenant's
// key without a member acts as an admin (docs/access.md).
func CallerOf(res verify.Result, ip string) Caller {
	k := res.Key
	c := Caller{
		Actor: keyward.Actor{ID: k.ID, IP: ip, MemberID: k.MemberID}, TenantID: k.TenantID, Permissions: k.Permissions,
		MemberID: k.MemberID, Environment: k.Environment, ExpiresAt: k.ExpiresAt, Restrictions: k.Restrictions,
	}
	a := res.Access
	if a != nil {
		c.Permissions = a.Permissions
	}
	switch {
	case c.Root():
	case k.MemberID == "":
		c.Role = keyward.RoleAdmin
	case a == nil:
		// Without its member the key cannot say whom it acts for.
		c.MemberState = MemberRemoved
	case a.Member == nil:
		c.MemberState = MemberRemoved
	default:
		c.Role = a.Member.Role
		if a.Member.Status != keyward.MemberActive {
			c.MemberState = MemberSuspended
		}
	}
	return c
}

// errNotFound is the answer for anything outside the caller's reach: the
// same as for an id that does not exist, so ids cannot be probed.
// An id that looks like a key is not repeated: a key pasted where its id
// belongs must not reach an answer or a log.
func errNotFound(what, id string) *keyward.Error {
	if apikey.Head(id) != "" {
		return keyward.Errorf(keyward.CodeNotFound, "No %s has that id: it looks like an API key, not an id. Ids start with key_, mem_ or ten_; never put a key in a URL, and replace this one if it may have been logged.", what)
	}
	return keyward.Errorf(keyward.CodeNotFound, "No %s with id %q exists in your account.", what, id)
}

// formatTime writes a time in answers: RFC 3339, in UTC.
func formatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}

func (s *Service) changed(ctx context.Context) {
	if s.afterChange != nil {
		// A failure here only delays the local view: the poller applies
		// the change on its next tick.
		_ = s.afterChange(ctx)
	}
	if s.delivered != nil {
		// The change may have written webhook events: delivered now,
		// not at the dispatcher's next look.
		s.delivered()
	}
}
