// Package keyward is the domain of Keyward, a self-hosted API key service:
// tenants, keys, the audit log, the change feed, the outcomes of a
// verification, and the Store interface every storage engine implements.
//
// Subpackages own one dependency or one concern each: apikey (the key format),
// sqlstore (the queries and transactions of both SQL stores), sqlite (the
// embedded store), postgres (the store for several nodes), storetest (the
// suite every store passes), verify (the verifier and its cache), manage
// (who may do what, and the management operations shared by the HTTP API and
// the command line), view (the answers both show), httpapi (the HTTP
// surface) and cmd/keyward (the binary). Internal packages: sqlrow (how keys,
// times and cursors are stored), connlimit (connection caps per client
// address), scale (a bulk loader of a million keys for the scale
// benchmarks), and, for tests, pgtest (throwaway PostgreSQL servers, and a
// proxy that can go silent), testclock and lockedbuffer.
package keyward

import (
	"context"
	"time"
)

// Version is the release of this build; the linker may override it.
var Version = "0.1.0-dev"

// Clock tells the current time. Production code uses time.Now; tests inject
// a clock they move by hand so that expiry and rotation need no sleeping.
type Clock func() time.Time

// Actor says who made a management change and from where; it is written to
// the audit log with the change, in the same transaction.
type Actor struct {
	// ID is the id of the key that authenticated the request, or "cli" for
	// the command line.
	ID string
	// IP is the client address of the request; empty for the command line.
	IP string
	// MemberID is the member the key acts for, when it belongs to one: the
	// audit log names the person as well as the key.
	MemberID string
}

// CommandLineActor returns the actor of every change made from the command
// line: "cli" in the audit log. A function, not a variable, so that no one
// can change who the command line is.
func CommandLineActor() Actor { return Actor{ID: "cli"} }

// Page asks for one page of a list. Cursor is the NextCursor of the page
// before, or empty for the first page. Limit is at most MaxPageLimit; zero
// means DefaultPageLimit.
type Page struct {
	Cursor string
	Limit  int
}

// Page limits.
const (
	DefaultPageLimit = 50
	MaxPageLimit     = 200
)

// Settings keeps what is chosen once for a database, when it is created:
// the prefix of its keys. The first writer wins, so that processes that
// create one database at once agree on it or learn that they do not.
type Settings interface {
	// KeyPrefix returns the prefix of the database's keys, without the
	// underscore. It is CodeNotFound while none is stored: a database is
	// given one when it is created (InitKeyPrefix), and one created before
	// prefixes were stored gets, when it is migrated, the prefix that most
	// of its unrevoked keys have (none if it has no key).
	KeyPrefix(ctx context.Context) (string, error)
	// InitKeyPrefix stores prefix as the prefix of the database's keys
	// unless one is stored already, and returns the one stored: prefix, or
	// the one that was there before, which it leaves unchanged. The caller
	// checks that prefix is valid. It writes no audit entry and no change.
	InitKeyPrefix(ctx context.Context, prefix string) (string, error)
}

// TenantLookup finds one tenant: what a verifier needs of the tenants.
// Errors are those of Store.
type TenantLookup interface {
	// Tenant finds a tenant by id or by slug.
	Tenant(ctx context.Context, idOrSlug string) (*Tenant, error)
}

// TenantStore keeps the tenants. Errors are those of Store.
type TenantStore interface {
	TenantLookup
	// Tenants lists tenants, oldest first.
	Tenants(ctx context.Context, p Page) (tenants []*Tenant, next string, err error)
	// CreateTenant stores a new tenant. The caller fills every field. A
	// plan that does not exist, or any plan but DefaultPlan for the system
	// tenant, is a CodeInvalidRequest naming plan.
	CreateTenant(ctx context.Context, t *Tenant, by Actor) error
	// SetTenantStatus suspends or resumes a tenant and returns it as stored.
	SetTenantStatus(ctx context.Context, id string, status TenantStatus, at time.Time, by Actor) (*Tenant, error)
	// UpdateTenant applies the non-nil fields of u (its limits and time
	// zone), writes its audit entry (tenant.update) and returns the tenant
	// as stored.
	UpdateTenant(ctx context.Context, id string, u TenantUpdate, at time.Time, by Actor) (*Tenant, error)
}

// KeyLookup finds one key: what a verifier needs of the keys. Errors are
// those of Store.
type KeyLookup interface {
	// Key finds a key by id.
	Key(ctx context.Context, id string) (*Key, error)
	// KeyByHash finds a key by the SHA-256 of its plaintext.
	KeyByHash(ctx context.Context, hash [32]byte) (*Key, error)
}

// UsageRecorder writes when keys were last used. Errors are those of Store.
type UsageRecorder interface {
	// RecordUsage writes last-used times and addresses in one batch. A use
	// older than the stored one does not overwrite it. It writes no audit
	// entry and no change.
	RecordUsage(ctx context.Context, uses []Usage) error
}

// KeyStore keeps the keys. Errors are those of Store.
type KeyStore interface {
	KeyLookup
	UsageRecorder
	// Keys lists keys that match the filter, newest first.
	Keys(ctx context.Context, f KeyFilter, p Page) (keys []*Key, next string, err error)
	// CreateKey stores a new key. The caller fills every field. A MemberID
	// that is not one of the tenant's members is a CodeInvalidRequest
	// naming member_id; an unrevoked key past the key limit of the
	// tenant's plan (Plan.MaxKeys, counted in the same transaction) a
	// CodePlanNotEntitled that says the limit.
	CreateKey(ctx context.Context, k *Key, by Actor) error
	// UpdateKey applies the non-nil fields of u to the key and returns it as
	// stored. It refuses (CodeConflict) to change a revoked key.
	UpdateKey(ctx context.Context, id string, u KeyUpdate, at time.Time, by Actor) (*Key, error)
	// RevokeKey marks a key revoked at the given time and returns it. Revoking
	// a revoked key changes nothing and is no error.
	RevokeKey(ctx context.Context, id string, at time.Time, by Actor) (*Key, error)
	// RotateKey stores successor, sets the old key's RotatedTo to the
	// successor's id and its ExpiresAt to oldExpiresAt, and sets the
	// RotatedTo of the old key's predecessors still in their grace period
	// (not revoked, expiring after the successor's CreatedAt) to the
	// successor's id too, so that a key in its grace period always names the
	// newest key of its chain; all in one transaction, with a change for
	// each key changed. It returns the old key as stored. The successor
	// belongs to the old key's member, whatever its MemberID says, and does
	// not count against the plan's key limit. It refuses (CodeConflict) to
	// rotate a revoked key or one that was rotated already.
	RotateKey(ctx context.Context, oldID string, successor *Key, oldExpiresAt time.Time, by Actor) (*Key, error)
}

// AuditStore reads the audit log, which the writes of TenantStore,
// KeyStore, MemberStore, PlanStore and Catalogue fill. Errors are those of
// Store.
type AuditStore interface {
	// AuditLog lists audit entries that match the filter, newest first.
	AuditLog(ctx context.Context, f AuditFilter, p Page) (entries []*AuditEntry, next string, err error)
}

// ChangeFeed reads the change feed, which the writes of TenantStore,
// KeyStore, MemberStore and PlanStore append to, and prunes it. Errors are
// those of Store.
type ChangeFeed interface {
	// Changes returns up to limit changes with a sequence number above after,
	// in order.
	Changes(ctx context.Context, after int64, limit int) ([]Change, error)
	// LastChange returns the highest sequence number in the change feed, or
	// zero when it is empty.
	LastChange(ctx context.Context) (int64, error)
	// PruneChanges deletes the changes made before the given time and
	// returns how many it deleted. Sequence numbers are never reused: a
	// change made afterwards numbers above every deleted one.
	PruneChanges(ctx context.Context, before time.Time) (int64, error)
}

// Store keeps tenants, keys, members, plans, the permission catalogue, the
// audit log, the change feed and the settings: every interface above and in
// member.go and plan.go, which a consumer asks for one by one (the verifier
// needs KeyLookup, TenantLookup, MemberLookup, PlanLookup, UsageRecorder
// and ChangeFeed; the management service the stores and AuditStore).
// SQLite and PostgreSQL implement it and pass the same suite (package
// storetest).
//
// Every method that changes a tenant, a key, a member, a plan or the
// catalogue writes, in one transaction, the change itself, an entry in the
// audit log and (for all but the catalogue, which no verification reads)
// an entry in the change feed: either all are stored or none is.
//
// The rules that span rows are checked by the store in the transaction of
// the write, so that writers at once cannot break them together: a tenant
// with members keeps an active owner, a plan's key limit holds, a key
// belongs to a member of its tenant, and a permission leaves the catalogue
// only while nothing holds it. (That a key, member or plan holds only
// catalogued permissions is the caller's check, made before the write.)
//
// Errors are *Error values with these codes: CodeNotFound when the tenant,
// key, member, plan or permission does not exist; CodeConflict when a
// unique value (a tenant slug, a member's email or external id, a plan's
// or permission's name) is taken, or when a write would leave a tenant
// without an active owner or remove a permission in use;
// CodePlanNotEntitled for a key past its plan's limit; CodeInvalidRequest
// when a cursor or a value cannot be read or stored (PostgreSQL refuses
// text with a NUL) or names what is not there (a tenant's plan, a key's
// member); CodeStorageUnavailable when the storage does not answer or is
// busy beyond its timeout (a caller may retry); CodeInternal for anything
// else (the cause is wrapped).
type Store interface {
	TenantStore
	KeyStore
	MemberStore
	PlanStore
	Catalogue
	AuditStore
	ChangeFeed
	Settings
	Meter
	RequestLogStore
	UsageStore
	WebhookStore
	AccountStore
	NoticeStore

	// Ping checks that the storage answers.
	Ping(ctx context.Context) error
	// Close releases the storage.
	Close() error
}
