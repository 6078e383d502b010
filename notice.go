package keyward

import (
	"context"
	"time"
)

// ActionKeyReveal gives the successor of a rotation with notice the
// secret its tenant is shown, once.
const ActionKeyReveal = "key.reveal"

// NoticeStore keeps the rotations with notice that the operator makes
// (docs/dashboard.md, "Rotation with notice"): each successor waits to be
// revealed once by its tenant. Errors are those of Store.
type NoticeStore interface {
	// RotateKeyForReveal is RotateKey, whose successor, in the same
	// transaction, waits to be revealed (RevealKey).
	RotateKeyForReveal(ctx context.Context, oldID string, successor *Key, oldExpiresAt time.Time, by Actor) (*Key, error)
	// PendingReveals lists the keys of a tenant that wait to be revealed:
	// all of them when ids is nil, else those among ids.
	PendingReveals(ctx context.Context, tenantID string, ids []string) ([]string, error)
	// RevealKey gives a key that waits to be revealed the secret whose
	// SHA-256 is hash (start and last4 as Key's), once: a key that does
	// not wait (revealed already, or never rotated with notice) is a
	// CodeConflict, also when two reveals race. It writes key.reveal to
	// the audit log and a change of the key, and returns it as stored.
	RevealKey(ctx context.Context, id string, hash [32]byte, start, last4 string, at time.Time, by Actor) (*Key, error)
	// KeysInNotice lists, oldest rotation first, up to limit keys in a
	// rotation's grace period at now (rotated, neither revoked nor
	// expired) that were used after their successor was made: the old
	// keys still in use.
	KeysInNotice(ctx context.Context, now time.Time, limit int) ([]*Key, error)
}
