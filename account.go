package keyward

import (
	"context"
	"time"
)

// Audit actions of members' sign-in to the dashboard.
const (
	// ActionMemberPassword sets or changes a member's password; it ends
	// the member's other sessions.
	ActionMemberPassword = "member.password"
	// ActionMemberSignOut ends every session of a member ("sign out
	// everywhere").
	ActionMemberSignOut = "member.sign_out_everywhere"
)

// Credential is what a member signs in to the dashboard with.
type Credential struct {
	Member *Member
	// PasswordHash is the member's argon2id hash in the PHC form, or ""
	// when the member has no password.
	PasswordHash string
	// SessionEpoch is raised to end every session of the member: a
	// session begun in an earlier epoch is over.
	SessionEpoch int64
}

// AccountStore keeps what members sign in to the dashboard with: their
// passwords, their sessions and their failed attempts. Errors are those
// of Store.
type AccountStore interface {
	// Credential finds a member, with its password hash and session epoch.
	Credential(ctx context.Context, memberID string) (*Credential, error)
	// CredentialsByEmail lists, oldest first, the members of every tenant
	// whose email is email (compared case-insensitively) and who have a
	// password; at most limit of them.
	CredentialsByEmail(ctx context.Context, email string, limit int) ([]*Credential, error)
	// SetPassword stores a member's password hash and raises its session
	// epoch, so that its other sessions end, with an audit entry
	// (member.password). An unknown member is a CodeNotFound.
	SetPassword(ctx context.Context, memberID, hash string, at time.Time, by Actor) error
	// EndSessions raises a member's session epoch, so that every session
	// it has ends, with an audit entry (member.sign_out_everywhere), and
	// returns the new epoch.
	EndSessions(ctx context.Context, memberID string, at time.Time, by Actor) (int64, error)

	// SignInFailures counts the failed sign-ins of each subject after
	// since.
	SignInFailures(ctx context.Context, subjects []string, since time.Time) (map[string]int, error)
	// AddSignInFailure counts a failed sign-in for each subject.
	AddSignInFailure(ctx context.Context, subjects []string, at time.Time) error
	// ClearSignInFailures forgets the failed sign-ins of a subject.
	ClearSignInFailures(ctx context.Context, subject string) error

	// FindSession returns the data of the session whose token has the
	// SHA-256 hash, unless it expired before now; found is false when
	// there is none.
	FindSession(ctx context.Context, hash [32]byte, now time.Time) (data []byte, found bool, err error)
	// CommitSession stores the data of a session, until expiry.
	CommitSession(ctx context.Context, hash [32]byte, data []byte, expiry time.Time) error
	// DeleteSession deletes a session; an unknown one is no error.
	DeleteSession(ctx context.Context, hash [32]byte) error
	// PruneSessions deletes up to limit of the sessions that expired
	// before now, and of the failed sign-ins counted a day or more before
	// it, and says how many rows it deleted.
	PruneSessions(ctx context.Context, now time.Time, limit int) (int64, error)
}
