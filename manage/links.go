package manage

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/keyward/keyward"
)

// How long one-time sign-in links last.
const (
	// InvitationLifetime: an invitation waits a week for its member.
	InvitationLifetime = 7 * 24 * time.Hour
	// PortalLinkLifetime: a portal link is followed at once, by a
	// redirect of the provider's app.
	PortalLinkLifetime = 5 * time.Minute
)

// Paths of one-time links on the dashboard, before the token.
const (
	InvitationPath = "/invitations/"
	PortalPath     = "/portal/"
)

// newLinkToken returns a link's token, with prefix (inv_ or pst_), and
// the SHA-256 the store keeps of it.
func newLinkToken(prefix string) (string, [32]byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	token := prefix + base64.RawURLEncoding.EncodeToString(b)
	return token, sha256.Sum256([]byte(token))
}

// Link is a one-time link just made: its token, shown once, as the path
// of the dashboard that takes it.
type Link struct {
	Path      string    `json:"path" description:"the link's path on the dashboard, to put after its base URL; it holds the one-time token, shown only now"`
	URL       string    `json:"url" description:"the whole link, when Keyward knows its public URL (serve --public-url); else empty"`
	ExpiresAt time.Time `json:"expires_at"`
	MemberID  string    `json:"member_id"`
}

// InviteMember makes an invitation link with which member memberID sets
// a password, once, within InvitationLifetime, under authorizeSignInAs;
// a member who has a password already only the operator may invite. base
// is the dashboard's public URL, "" when unknown.
func (s *Service) InviteMember(ctx context.Context, c Caller, memberID, base string) (*Link, error) {
	m, err := s.Member(ctx, c, memberID)
	if err != nil {
		return nil, err
	}
	if err := authorizeSignInAs(c, m); err != nil {
		return nil, err
	}
	cred, err := s.store.Credential(ctx, m.ID)
	if err != nil {
		return nil, err
	}
	if cred.PasswordHash != "" && !c.Root() {
		return nil, keyward.Errorf(keyward.CodeInsufficientPermissions,
			"Member %s has a password already, and an invitation would replace it: only the operator may (keyward members invite, or set-password). The member can change it themselves.", m.ID)
	}
	return s.newLink(ctx, c, m, keyward.LinkInvitation, "", base)
}

// authorizeSignInAs is the one rule for making a link that signs someone
// in as member m: an invitation (which sets m's password) or a portal
// session. The session it opens acts as m, live, with no expiry and no
// restriction, with m's role and permissions; so a caller that is not
// root must be one that may change m (authorizeMember: an admin not an
// owner), and no less than that session: a live key, with no expiry and
// no restriction, that holds every permission m holds. A weaker key
// cannot obtain a stronger session, as it cannot obtain a stronger key
// (authorizeKey).
func authorizeSignInAs(c Caller, m *keyward.Member) error {
	if c.Root() {
		return nil
	}
	if err := authorizeMember(c, memberChange, m, ""); err != nil {
		return err
	}
	if err := unboundedCaller(c); err != nil {
		return err
	}
	for _, p := range m.Permissions {
		if !slices.Contains(c.Permissions, p) {
			return keyward.Errorf(keyward.CodeInsufficientPermissions,
				"Member %s holds %q, which your key does not: %s.", m.ID, p, signInWhy)
		}
	}
	return nil
}

const signInWhy = "a link signs in as the member, live, with no expiry and no restriction; only a key that is no less may make one, or a root key"

// unboundedCaller refuses a caller that is a test key, expires or has
// restrictions: it may make no sign-in link (authorizeSignInAs).
func unboundedCaller(c Caller) error {
	r := c.Restrictions
	switch {
	case c.Root():
	case c.Environment == keyward.Test:
		return keyward.Errorf(keyward.CodeInsufficientPermissions, "Your key is a test key: %s.", signInWhy)
	case c.ExpiresAt != nil:
		return keyward.Errorf(keyward.CodeInsufficientPermissions, "Your key expires: %s.", signInWhy)
	case len(r.IPs)+len(r.Referrers)+len(r.Endpoints)+len(r.Resources) > 0:
		return keyward.Errorf(keyward.CodeInsufficientPermissions, "Your key has restrictions: %s.", signInWhy)
	}
	return nil
}

// newLink stores a one-time link of kind for member m and returns it.
func (s *Service) newLink(ctx context.Context, c Caller, m *keyward.Member, kind, returnURL, base string) (*Link, error) {
	prefix, path, life := "inv_", InvitationPath, InvitationLifetime
	if kind == keyward.LinkPortal {
		prefix, path, life = "pst_", PortalPath, PortalLinkLifetime
	}
	token, hash := newLinkToken(prefix)
	now := s.now().UTC().Truncate(time.Microsecond)
	l := &keyward.SignInLink{Hash: hash, Kind: kind, MemberID: m.ID, TenantID: m.TenantID, ReturnURL: returnURL, CreatedAt: now, ExpiresAt: now.Add(life)}
	if err := s.store.CreateSignInLink(ctx, l, c.Actor); err != nil {
		return nil, err
	}
	out := &Link{Path: path + token, ExpiresAt: l.ExpiresAt, MemberID: m.ID}
	if base != "" {
		out.URL = strings.TrimSuffix(base, "/") + out.Path
	}
	return out, nil
}

// Invitation is the member an invitation token is for, while it is
// neither used nor expired: what the page that takes it shows. It uses
// nothing: a link previewer that opens it spends nothing.
func (s *Service) Invitation(ctx context.Context, token string) (*keyward.Member, error) {
	l, err := s.store.SignInLink(ctx, sha256.Sum256([]byte(token)), keyward.LinkInvitation, s.now())
	if err != nil {
		return nil, err
	}
	return s.store.Member(ctx, l.MemberID)
}

// AcceptInvitation sets the password of the member an invitation is for
// and uses the invitation, in one transaction: a password that is refused
// leaves the invitation as it was; a second use is a CodeSignInFailed.
func (s *Service) AcceptInvitation(ctx context.Context, token, password string) (*keyward.Credential, error) {
	hash, err := HashPassword(password)
	if err != nil {
		return nil, err
	}
	_, cred, err := s.store.UseSignInLink(ctx, sha256.Sum256([]byte(token)), keyward.LinkInvitation, s.now().UTC().Truncate(time.Microsecond), hash)
	if err != nil {
		return nil, err
	}
	// A new password unlocks the account.
	return cred, s.store.ClearSignInFailures(ctx, accountSubject(cred.Member.Email))
}

// PortalSessionInput asks for a portal link: the provider's app signs one
// of its customers in to the dashboard, as the member of the tenant with
// the external id it knows them by.
type PortalSessionInput struct {
	TenantID   string `json:"tenant_id,omitempty" description:"tenant id or slug; a tenant's key may leave it out (its own tenant)"`
	ExternalID string `json:"external_id" description:"the customer's id in your own user system: the member's external_id" example:"user_8812"`
	ReturnURL  string `json:"return_url,omitempty" description:"where the dashboard's link back to your app goes: an absolute http or https URL" example:"https://app.example.com/settings"`
	// Member, when given, creates the member on first use, with these
	// fields, as POST /v1/members would (bounded by the calling key).
	Member *PortalMemberInput `json:"member,omitempty" description:"create the member on first use with these fields, if no member has the external id; bounded by the calling key as POST /v1/members is"`
}

// PortalMemberInput is the member a portal session creates on first use.
type PortalMemberInput struct {
	Email       string   `json:"email" example:"ada@example.com"`
	Name        string   `json:"name" example:"Ada Lovelace"`
	Role        string   `json:"role" enum:"owner,admin,developer,viewer"`
	Permissions []string `json:"permissions,omitempty"`
}

// PortalSession is a portal link just made.
type PortalSession struct {
	Link
	// Created says whether the member was created for it.
	Created bool `json:"created"`
}

// CreatePortalSession makes a one-time link, valid PortalLinkLifetime,
// that signs the tenant's member with in.ExternalID in to the dashboard
// with no password (the pattern of Stripe's billing portal); the member
// is created first when none has the external id and in.Member says how.
// The caller is held to authorizeSignInAs: a key cannot sign anyone in
// as more than itself.
func (s *Service) CreatePortalSession(ctx context.Context, c Caller, in PortalSessionInput, base string) (*PortalSession, error) {
	if err := Authorize(c, Manager); err != nil {
		return nil, err
	}
	// Before a member is created for it.
	if err := unboundedCaller(c); err != nil {
		return nil, err
	}
	t, err := s.memberTenant(ctx, c, in.TenantID)
	if err != nil {
		return nil, err
	}
	ext, err := checkExternalID(in.ExternalID)
	if err != nil {
		return nil, err
	}
	if ext == "" {
		return nil, keyward.FieldErrorf("external_id", "is required: the customer's id in your own user system, as the member's external_id")
	}
	if in.ReturnURL != "" {
		u, err := url.Parse(in.ReturnURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			return nil, keyward.FieldErrorf("return_url", "%q is not an absolute http or https URL without credentials; give your app's page, such as https://app.example.com/settings", in.ReturnURL)
		}
	}
	m, err := s.memberByExternalID(ctx, t.ID, ext)
	if err != nil {
		return nil, err
	}
	out := &PortalSession{}
	if m == nil {
		if in.Member == nil {
			return nil, keyward.Errorf(keyward.CodeNotFound,
				"No member of tenant %s has external_id %q. Add them first (POST /v1/members), or give \"member\" with their email, name and role to create them on first use.", t.Slug, ext)
		}
		m, err = s.CreateMember(ctx, c, CreateMemberInput{TenantID: t.ID, Email: in.Member.Email, Name: in.Member.Name,
			Role: in.Member.Role, Permissions: in.Member.Permissions, ExternalID: ext})
		if err != nil {
			return nil, err
		}
		out.Created = true
	}
	if err := authorizeSignInAs(c, m); err != nil {
		return nil, err
	}
	if m.Status != keyward.MemberActive {
		return nil, keyward.Errorf(keyward.CodeConflict, "Member %s is suspended and cannot sign in; resume them first.", m.ID)
	}
	l, err := s.newLink(ctx, c, m, keyward.LinkPortal, in.ReturnURL, base)
	if err != nil {
		return nil, err
	}
	out.Link = *l
	return out, nil
}

// memberByExternalID finds the member of tenant tenantID with external id
// ext, nil when none has it.
func (s *Service) memberByExternalID(ctx context.Context, tenantID, ext string) (*keyward.Member, error) {
	m, err := s.store.MemberByExternalID(ctx, tenantID, ext)
	if keyward.ErrorCode(err) == keyward.CodeNotFound {
		return nil, nil
	}
	return m, err
}

// UsePortalLink signs in with a portal link, once: the member's
// credential, and where its "back" link goes.
func (s *Service) UsePortalLink(ctx context.Context, token string) (*keyward.Credential, string, error) {
	l, cred, err := s.store.UseSignInLink(ctx, sha256.Sum256([]byte(token)), keyward.LinkPortal, s.now().UTC().Truncate(time.Microsecond), "")
	if err != nil {
		return nil, "", err
	}
	if cred.Member.Status != keyward.MemberActive {
		return nil, "", keyward.Errorf(keyward.CodeSignInFailed, "Your membership is suspended: ask an admin or owner of the account.")
	}
	return cred, l.ReturnURL, nil
}
