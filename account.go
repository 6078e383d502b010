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
	// ActionMemberInvite makes an invitation link for a member.
	ActionMemberInvite = "member.invite"
	// ActionPortalSession makes a portal link that signs a member in.
	ActionPortalSession = "member.portal_session"
)

// Kinds of one-time sign-in links.
const (
	// LinkInvitation lets a member set a password, once.
	LinkInvitation = "invitation"
	// LinkPortal signs a provider's customer in to the dashboard, once.
	LinkPortal = "portal"
)

// SignInLink is a one-time link to the dashboard: an invitation or a
// portal session. Only the SHA-256 of its token is stored.
type SignInLink struct {
	Hash      [32]byte
	Kind      string
	MemberID  string
	TenantID  string
	ReturnURL string
	CreatedAt time.Time
	ExpiresAt time.Time
}

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
	// (of tenant tenantID only, unless it is "") whose email is email
	// (compared case-insensitively) and who have a password; at most
	// limit of them.
	CredentialsByEmail(ctx context.Context, email, tenantID string, limit int) ([]*Credential, error)
	// SetPassword stores a member's password hash and raises its session
	// epoch, so that its other sessions end and its unused sign-in links
	// are withdrawn, with an audit entry (member.password). An unknown
	// member is a CodeNotFound.
	SetPassword(ctx context.Context, memberID, hash string, at time.Time, by Actor) error
	// EndSessions raises a member's session epoch, so that every session
	// it has ends and its unused sign-in links are withdrawn, with an
	// audit entry (member.sign_out_everywhere), and returns the new epoch.
	EndSessions(ctx context.Context, memberID string, at time.Time, by Actor) (int64, error)

	// SignInAttempt records a sign-in attempt for each subject at at and
	// counts each subject's attempts after since, this one included, in
	// one transaction: two attempts at once are counted both.
	SignInAttempt(ctx context.Context, subjects []string, at, since time.Time) (map[string]int, error)
	// ForgetSignInAttempt deletes, for each subject, one attempt recorded
	// at at: the attempt that turned out to succeed, or was not made.
	ForgetSignInAttempt(ctx context.Context, subjects []string, at time.Time) error
	// ClearSignInFailures forgets the attempts of subject, and of every
	// subject that begins with subject and "|".
	ClearSignInFailures(ctx context.Context, subject string) error

	// FindSession returns the data of the session whose token has the
	// SHA-256 hash, unless it expired before now; found is false when
	// there is none.
	FindSession(ctx context.Context, hash [32]byte, now time.Time) (data []byte, found bool, err error)
	// CommitSession stores the data of a session, until expiry.
	CommitSession(ctx context.Context, hash [32]byte, data []byte, expiry time.Time) error
	// DeleteSession deletes a session; an unknown one is no error.
	DeleteSession(ctx context.Context, hash [32]byte) error
	// MemberByExternalID finds the member of a tenant with an external
	// id; CodeNotFound when none has it.
	MemberByExternalID(ctx context.Context, tenantID, externalID string) (*Member, error)
	// CreateSignInLink stores a one-time link, with its audit entry
	// (member.invite or member.portal_session); an invitation withdraws
	// the member's unused earlier ones. An unknown member is a
	// CodeNotFound.
	CreateSignInLink(ctx context.Context, l *SignInLink, by Actor) error
	// SignInLink finds a link of kind that is neither used nor expired at
	// now; CodeSignInFailed when there is none.
	SignInLink(ctx context.Context, hash [32]byte, kind string, now time.Time) (*SignInLink, error)
	// UseSignInLink uses a link of kind that is neither used nor expired
	// at now: once, also when several nodes try at the same moment (a
	// conditional update). When passwordHash is not "", it is set as the
	// member's password in the same transaction, as SetPassword does
	// (member.password, the other links withdrawn). It returns the link and the member's credential;
	// CodeSignInFailed when the link is unknown, used or expired.
	UseSignInLink(ctx context.Context, hash [32]byte, kind string, now time.Time, passwordHash string) (*SignInLink, *Credential, error)
	// PruneSessions deletes up to limit of the sessions and of the sign-in
	// links that expired before now, and of the failed sign-ins counted a
	// day or more before it, and says how many rows it deleted.
	PruneSessions(ctx context.Context, now time.Time, limit int) (int64, error)
}
