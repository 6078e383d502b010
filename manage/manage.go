// Package manage owns the management operations of Keyward: who may do what
// (a root key for every tenant, a tenant's key with keys:manage for its own),
// validation of what they ask with errors that name the field at fault, and
// the issuing, rotation and revocation of keys. The HTTP API and the command
// line both call it, so the two behave the same.
package manage

import (
	"context"
	"slices"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// Config holds what a Service needs.
type Config struct {
	Store  keyward.Store
	Format apikey.Format
	// Clock tells the time; nil means time.Now.
	Clock keyward.Clock
	// AfterChange, if set, is called after every change is stored, so that
	// the process's own verifier applies it at once (e.g. Verifier.Refresh).
	AfterChange func(ctx context.Context) error
}

// Service performs management operations on behalf of a Caller.
type Service struct {
	store       keyward.Store
	format      apikey.Format
	now         keyward.Clock
	afterChange func(ctx context.Context) error
}

// New returns a Service.
func New(c Config) *Service {
	now := c.Clock
	if now == nil {
		now = time.Now
	}
	return &Service{store: c.Store, format: c.Format, now: now, afterChange: c.AfterChange}
}

// Now is the time on the service's clock: what decides whether a key has
// expired, for the answers that show its status.
func (s *Service) Now() time.Time { return s.now() }

// Caller is who asks for an operation: the key that authenticated a request,
// or the command line.
type Caller struct {
	Actor       keyward.Actor
	TenantID    string
	Permissions []string
}

// CLI is the caller of every command-line operation: it may do everything.
var CLI = Caller{Actor: keyward.ActorCLI, TenantID: keyward.SystemTenantID, Permissions: []string{keyward.PermAdmin}}

// CallerFromKey returns the caller that a verified key stands for; ip is the
// client address of the request.
func CallerFromKey(k *keyward.Key, ip string) Caller {
	return Caller{Actor: keyward.Actor{ID: k.ID, IP: ip}, TenantID: k.TenantID, Permissions: k.Permissions}
}

// Root reports whether the caller manages every tenant: a key of the system
// tenant with keyward:admin.
func (c Caller) Root() bool {
	return c.TenantID == keyward.SystemTenantID && slices.Contains(c.Permissions, keyward.PermAdmin)
}

// CanManage reports whether the caller may use the management API at all.
func (c Caller) CanManage() bool {
	return c.Root() || slices.Contains(c.Permissions, keyward.PermManageKeys)
}

// errNotFound is the answer for anything outside the caller's reach: the
// same as for an id that does not exist, so ids cannot be probed.
// An id that looks like a key is not repeated: a key pasted where its id
// belongs must not reach an answer or a log.
func errNotFound(what, id string) *keyward.Error {
	if apikey.KeyPrefix(id) != "" {
		return keyward.Errorf(keyward.CodeNotFound, "No %s has that id: it looks like an API key, not an id. Ids start with key_; never put a key in a URL, and replace this one if it may have been logged.", what)
	}
	return keyward.Errorf(keyward.CodeNotFound, "No %s with id %q exists in your account.", what, id)
}

// authorizeKey refuses a caller that is not root from changing or rotating
// a key that holds a permission the caller does not: a key can neither be
// given nor reach, through a successor, more than its manager holds.
func authorizeKey(c Caller, k *keyward.Key) error {
	if c.Root() {
		return nil
	}
	for _, p := range k.Permissions {
		if !slices.Contains(c.Permissions, p) {
			return keyward.Errorf(keyward.CodeInsufficientPermissions,
				"This key holds %q, which your key does not; only a key that holds all its permissions, or a root key, can change or rotate it.", p)
		}
	}
	return nil
}

// authorize refuses a caller that may not manage at all.
func authorize(c Caller) error {
	if !c.CanManage() {
		return keyward.Errorf(keyward.CodeInsufficientPermissions,
			"This key cannot manage keys: it needs the %q permission (or be a root key).", keyward.PermManageKeys)
	}
	return nil
}

// authorizeRoot refuses a caller that is not a root key.
func authorizeRoot(c Caller) error {
	if !c.Root() {
		return keyward.Errorf(keyward.CodeInsufficientPermissions,
			"Only a root key (system tenant, %q) can do this.", keyward.PermAdmin)
	}
	return nil
}

// inScope reports whether the caller may see tenant id.
func (c Caller) inScope(tenantID string) bool {
	return c.Root() || c.TenantID == tenantID
}

func (s *Service) changed(ctx context.Context) {
	if s.afterChange != nil {
		// A failure here only delays the local view: the poller applies
		// the change on its next tick.
		_ = s.afterChange(ctx)
	}
}
