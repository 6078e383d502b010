// Package manage owns the management operations of Keyward: who may do what
// (a root key for every tenant, a tenant's key with keys:manage for its own;
// Authorize and the rules of authorize.go, which the HTTP API's routes
// declare and enforce), validation of what they ask with errors that name the field at fault, and
// the issuing, rotation and revocation of keys. The HTTP API and the command
// line both call it, so the two behave the same.
package manage

import (
	"context"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// Store is what a Service asks of the storage: the tenants, the keys and
// the audit log. Every keyward.Store is one.
type Store interface {
	keyward.TenantStore
	keyward.KeyStore
	keyward.AuditStore
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
}

// Service performs management operations on behalf of a Caller.
type Service struct {
	store       Store
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
	// Environment, ExpiresAt and IPs are those of the caller's key. They
	// bound what a caller that is not root makes and changes (see
	// authorizeKey and checkBounds); empty, they bound nothing.
	Environment keyward.Environment
	ExpiresAt   *time.Time
	IPs         []string
}

// CommandLine returns the caller of every command-line operation: a root
// caller, which may do everything, acting as keyward.CommandLineActor. A
// function, not a variable, so that no one can change what it may do.
func CommandLine() Caller {
	return Caller{Actor: keyward.CommandLineActor(), TenantID: keyward.SystemTenantID, Permissions: []string{keyward.PermAdmin}}
}

// CallerFromKey returns the caller that a verified key stands for; ip is the
// client address of the request.
func CallerFromKey(k *keyward.Key, ip string) Caller {
	return Caller{
		Actor: keyward.Actor{ID: k.ID, IP: ip}, TenantID: k.TenantID, Permissions: k.Permissions,
		Environment: k.Environment, ExpiresAt: k.ExpiresAt, IPs: k.Restrictions.IPs,
	}
}

// errNotFound is the answer for anything outside the caller's reach: the
// same as for an id that does not exist, so ids cannot be probed.
// An id that looks like a key is not repeated: a key pasted where its id
// belongs must not reach an answer or a log.
func errNotFound(what, id string) *keyward.Error {
	if apikey.Head(id) != "" {
		return keyward.Errorf(keyward.CodeNotFound, "No %s has that id: it looks like an API key, not an id. Ids start with key_; never put a key in a URL, and replace this one if it may have been logged.", what)
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
}
