package keyward

import "time"

// Audit actions.
const (
	ActionTenantCreate  = "tenant.create"
	ActionTenantSuspend = "tenant.suspend"
	ActionTenantResume  = "tenant.resume"
	ActionKeyCreate     = "key.create"
	ActionKeyUpdate     = "key.update"
	ActionKeyRevoke     = "key.revoke"
	ActionKeyRotate     = "key.rotate"
)

// AuditEntry records one management action. It never holds a key's
// plaintext: a key is named by its id.
type AuditEntry struct {
	ID       int64     `json:"id"`
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"` // key id, or "cli"
	ActorIP  string    `json:"actor_ip"`
	Action   string    `json:"action"`
	TenantID string    `json:"tenant_id"`
	Target   string    `json:"target"` // the id of the tenant or key acted on
	// Related is another id the action concerns, or "": the successor of a
	// rotated key.
	Related string `json:"related,omitempty"`
}

// AuditFilter selects audit entries. Empty fields match everything.
type AuditFilter struct {
	TenantID string
	// Target matches an entry's Target or its Related id.
	Target string
}

// Change kinds in the change feed.
const (
	ChangeKey    = "key"
	ChangeTenant = "tenant"
)

// Change is one entry of the change feed: a tenant or key that changed. Every
// running server reads the feed and refreshes what it has cached.
type Change struct {
	Seq  int64     `json:"seq"`
	Kind string    `json:"kind"` // ChangeKey or ChangeTenant
	ID   string    `json:"id"`
	At   time.Time `json:"at"`
}
