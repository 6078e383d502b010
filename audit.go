package keyward

import "time"

// Audit actions.
const (
	ActionTenantCreate  = "tenant.create"
	ActionTenantSuspend = "tenant.suspend"
	ActionTenantResume  = "tenant.resume"
	ActionTenantUpdate  = "tenant.update"
	ActionKeyCreate     = "key.create"
	ActionKeyUpdate     = "key.update"
	ActionKeyRevoke     = "key.revoke"
	ActionKeyRotate     = "key.rotate"
	// ActionKeyTransfer moves a key to another member when the member it
	// belonged to is removed.
	ActionKeyTransfer      = "key.transfer"
	ActionMemberAdd        = "member.add"
	ActionMemberUpdate     = "member.update"
	ActionMemberRemove     = "member.remove"
	ActionPlanCreate       = "plan.create"
	ActionPlanUpdate       = "plan.update"
	ActionTenantSetPlan    = "tenant.set_plan"
	ActionPermissionAdd    = "permission.add"
	ActionPermissionRemove = "permission.remove"
	ActionWebhookCreate    = "webhook.create"
	ActionWebhookUpdate    = "webhook.update"
	ActionWebhookDelete    = "webhook.delete"
	ActionWebhookRedeliver = "webhook.redeliver"
)

// AuditEntry records one management action. It never holds a key's
// plaintext: a key is named by its id.
type AuditEntry struct {
	ID      int64     `json:"id"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"` // key id, or "cli"
	ActorIP string    `json:"actor_ip"`
	// ActorMember is the member the acting key belongs to, or "".
	ActorMember string `json:"actor_member,omitempty"`
	Action      string `json:"action"`
	TenantID    string `json:"tenant_id"`
	Target      string `json:"target"` // the id of the tenant, key or member, or the name of the plan or permission, acted on
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
	ChangeMember = "member" // ID is the member's id
	ChangePlan   = "plan"   // ID is the plan's name
)

// Change is one entry of the change feed: a tenant, key, member or plan that
// changed. Every
// running server reads the feed and refreshes what it has cached.
type Change struct {
	Seq  int64     `json:"seq"`
	Kind string    `json:"kind"` // ChangeKey, ChangeTenant, ChangeMember or ChangePlan
	ID   string    `json:"id"`
	At   time.Time `json:"at"`
}
