package manage

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/alexedwards/argon2id"

	"github.com/keyward/keyward"
)

// Password rules (docs/dashboard.md, "Signing in").
const (
	// MinPasswordLen and MaxPasswordLen bound a password, in characters
	// and bytes: long enough to resist guessing, short enough that hashing
	// it costs what hashing any other does.
	MinPasswordLen = 12
	MaxPasswordLen = 256
)

// passwordParams are argon2id's parameters for new hashes: OWASP's first
// choice (19 MiB, 2 passes, 1 lane). They are written into each hash, so
// that raising them later leaves older hashes readable.
var passwordParams = &argon2id.Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// HashPassword returns the argon2id hash of password in the PHC form
// ($argon2id$v=19$m=…,t=…,p=…$salt$hash), or an error that says what is
// wrong with the password.
func HashPassword(password string) (string, error) {
	if err := checkPassword(password); err != nil {
		return "", err
	}
	var hash string
	err := withHashSlot(context.Background(), func() (err error) {
		hash, err = argon2id.CreateHash(password, passwordParams)
		return err
	})
	return hash, err
}

// checkPassword refuses a password that is too short or too long, or not
// text.
func checkPassword(pw string) error {
	switch {
	case !utf8.ValidString(pw):
		return keyward.FieldErrorf("password", "is not valid UTF-8 text")
	case utf8.RuneCountInString(pw) < MinPasswordLen:
		return keyward.FieldErrorf("password", "is %d characters long; a password needs at least %d (a few words make a long one that is easy to remember)", utf8.RuneCountInString(pw), MinPasswordLen)
	case len(pw) > MaxPasswordLen:
		return keyward.FieldErrorf("password", "is %d bytes long; a password may have at most %d", len(pw), MaxPasswordLen)
	case strings.TrimSpace(pw) != pw:
		return keyward.FieldErrorf("password", "begins or ends with a space, which is easy to lose when it is typed; take it away")
	}
	return nil
}

// SetPassword sets the password member memberID signs in to the dashboard
// with, and ends its other sessions. The operator (a root caller: the
// command line) sets anyone's; a member sets only its own, after the
// dashboard has checked the current one.
func (s *Service) SetPassword(ctx context.Context, c Caller, memberID, password string) error {
	m, err := s.store.Member(ctx, memberID)
	if keyward.ErrorCode(err) == keyward.CodeNotFound || (err == nil && !c.inScope(m.TenantID)) {
		return errNotFound("member", memberID)
	}
	if err != nil {
		return err
	}
	if !c.Root() && c.MemberID != memberID {
		return keyward.Errorf(keyward.CodeInsufficientPermissions,
			"Only %s themselves, or the operator, can set their password; ask them to, or send them an invitation link.", memberID)
	}
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	if err := s.store.SetPassword(ctx, memberID, hash, s.now().UTC().Truncate(time.Microsecond), c.Actor); err != nil {
		return err
	}
	// A new password unlocks the account.
	return s.store.ClearSignInFailures(ctx, accountSubject(m.Email))
}

// EndSessions signs member memberID out of the dashboard everywhere: the
// member itself, the operator, or whoever may change the member
// (authorizeMember).
func (s *Service) EndSessions(ctx context.Context, c Caller, memberID string) (int64, error) {
	if c.MemberID != memberID {
		m, err := s.Member(ctx, c, memberID)
		if err != nil {
			return 0, err
		}
		if err := authorizeMember(c, memberChange, m, ""); err != nil {
			return 0, err
		}
	}
	return s.store.EndSessions(ctx, memberID, s.now().UTC().Truncate(time.Microsecond), c.Actor)
}

// Sign-in limits (docs/dashboard.md, "Signing in"): in SignInWindow,
// an account may be tried MaxSignInFailures times from one address,
// MaxAccountSignInFails times from all addresses together, and an
// address MaxAddressSignInFails times whatever the accounts; past any of
// them the next try is refused until the oldest leaves the window. A
// success counts nothing.
const (
	SignInWindow          = 15 * time.Minute
	MaxSignInFailures     = 5
	MaxAccountSignInFails = 50
	MaxAddressSignInFails = 20
	// maxAccountsPerEmail bounds the members one sign-in checks a password
	// against (one email in several tenants) when it names no tenant.
	maxAccountsPerEmail = 10
)

// hashing bounds the argon2id hashes computed at once, each of which
// takes 19 MiB: sign-ins beyond it wait, and are refused after
// hashWait, rather than take the process's memory.
var hashing = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))

// hashWait is how long a sign-in waits for its turn to hash.
const hashWait = 5 * time.Second

// withHashSlot runs fn with one of hashing's slots, or refuses with 429
// when none comes free within hashWait.
func withHashSlot(ctx context.Context, fn func() error) error {
	t := time.NewTimer(hashWait)
	defer t.Stop()
	select {
	case hashing <- struct{}{}:
	case <-t.C:
		return &keyward.Error{Code: keyward.CodeRateLimited, RetryAfter: time.Second,
			Message: "Too many sign-ins are being checked at once; try again in a second."}
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-hashing }()
	return fn()
}

// dummyHash is checked against when no member has the email, so that a
// sign-in takes as long whether or not the email is known.
var dummyHash = sync.OnceValue(func() string {
	h, err := argon2id.CreateHash("keyward-no-such-member", passwordParams)
	if err != nil {
		panic(err)
	}
	return h
})

// SignInInput is what a person gives to sign in to the dashboard.
type SignInInput struct {
	Email    string
	Password string
	// Tenant, an id or slug, chooses among the accounts of an email that
	// is a member of several tenants with the same password; "" for any.
	Tenant string
	// IP is the client's address.
	IP string
}

// SignIn finds the member that email and password sign in as. Every
// failure is the same CodeSignInFailed, whether the email is unknown, the
// password wrong or the member suspended, so that the answer does not tell
// which; an account or an address that failed too often is refused with
// CodeTooManyFailedAttempts until its failures leave the window, even with
// the right password. An email whose password signs in to several tenants
// is asked which (a CodeInvalidRequest naming tenant).
func (s *Service) SignIn(ctx context.Context, in SignInInput) (*keyward.Credential, error) {
	now := s.now().UTC().Truncate(time.Microsecond)
	email := strings.ToLower(strings.TrimSpace(in.Email))
	account, address := accountSubject(email), "a:"+in.IP
	pair := account + "|" + address
	// The attempt is counted before the password is checked, so that
	// attempts made at once are all counted.
	counts, err := s.store.SignInAttempt(ctx, []string{address, pair, account}, now, now.Add(-SignInWindow))
	if err != nil {
		return nil, err
	}
	if counts[pair] > MaxSignInFailures || counts[account] > MaxAccountSignInFails || counts[address] > MaxAddressSignInFails {
		// Refused attempts count against the address that makes them,
		// not against the account, which an address blocked already
		// could otherwise lock for everyone.
		if err := s.store.ForgetSignInAttempt(ctx, []string{pair, account}, now); err != nil {
			return nil, err
		}
		return nil, &keyward.Error{Code: keyward.CodeTooManyFailedAttempts, RetryAfter: SignInWindow,
			Message: fmt.Sprintf("Too many failed sign-ins for this account or from this address: wait %d minutes and try again, or ask the operator for a new password.", int(SignInWindow.Minutes()))}
	}
	matched, err := s.matchPassword(ctx, email, in)
	if err != nil {
		return nil, err
	}
	if in.Tenant != "" && len(matched) > 1 {
		matched = slices.DeleteFunc(matched, func(c *keyward.Credential) bool {
			t, err := s.store.Tenant(ctx, in.Tenant)
			return err != nil || t.ID != c.Member.TenantID
		})
	}
	if len(matched) == 0 {
		return nil, keyward.Errorf(keyward.CodeSignInFailed,
			"The email or the password is wrong (or the member or their account is suspended). Check both and try again; after %d failures the account is locked for %d minutes.", MaxSignInFailures, int(SignInWindow.Minutes()))
	}
	// A success counts nothing: its attempt is forgotten, and only it.
	if err := s.store.ForgetSignInAttempt(ctx, []string{address, pair, account}, now); err != nil {
		return nil, err
	}
	if len(matched) == 1 {
		return matched[0], nil
	}
	var slugs []string
	for _, c := range matched {
		if t, err := s.store.Tenant(ctx, c.Member.TenantID); err == nil {
			slugs = append(slugs, t.Slug)
		}
	}
	slices.Sort(slugs)
	return nil, keyward.FieldErrorf("tenant", "this email and password sign in to several accounts (%s): choose one", strings.Join(slugs, ", "))
}

// accountSubject is the subject of an account's sign-in attempts.
func accountSubject(email string) string { return "e:" + strings.ToLower(strings.TrimSpace(email)) }

// matchPassword returns the active members, of active tenants, whose
// email is email and whose password is in.Password: of in.Tenant alone
// when it names one. An unknown email is checked against a dummy hash,
// so that the time does not tell.
func (s *Service) matchPassword(ctx context.Context, email string, in SignInInput) ([]*keyward.Credential, error) {
	tenantID := ""
	if in.Tenant != "" {
		if t, err := s.store.Tenant(ctx, in.Tenant); err == nil {
			tenantID = t.ID
		}
	}
	creds, err := s.store.CredentialsByEmail(ctx, email, tenantID, maxAccountsPerEmail)
	if err != nil {
		return nil, err
	}
	var matched []*keyward.Credential
	err = withHashSlot(ctx, func() error {
		if len(creds) == 0 {
			_, _ = argon2id.ComparePasswordAndHash(in.Password, dummyHash())
		}
		for _, c := range creds {
			ok, err := argon2id.ComparePasswordAndHash(in.Password, c.PasswordHash)
			if err != nil && !errors.Is(err, argon2id.ErrInvalidHash) && !errors.Is(err, argon2id.ErrIncompatibleVersion) {
				return keyward.Internal(fmt.Errorf("compare the password of %s: %w", c.Member.ID, err))
			}
			if ok && c.Member.Status == keyward.MemberActive {
				matched = append(matched, c)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(matched, func(c *keyward.Credential) bool {
		t, err := s.store.Tenant(ctx, c.Member.TenantID)
		return err != nil || t.Status != keyward.TenantActive
	}), nil
}

// SessionCaller is the caller a dashboard session of member memberID,
// begun in session epoch epoch, acts as: its member's current role, and
// its permissions as far as its tenant's plan allows them, with keys:manage
// (built in: the role decides what it manages), acting as "dashboard"
// from address ip. An admin or owner of the system tenant (the operator's
// staff) is root. A member removed, suspended or signed out everywhere
// since, or whose tenant is suspended, is a CodeSignInFailed: the session
// is over.
func (s *Service) SessionCaller(ctx context.Context, memberID string, epoch int64, ip string) (Caller, *keyward.Member, error) {
	cred, err := s.store.Credential(ctx, memberID)
	switch {
	case keyward.ErrorCode(err) == keyward.CodeNotFound:
		return Caller{}, nil, keyward.Errorf(keyward.CodeSignInFailed, "Your session is over: you are no longer a member of this account.")
	case err != nil:
		return Caller{}, nil, err
	case cred.SessionEpoch != epoch:
		return Caller{}, nil, keyward.Errorf(keyward.CodeSignInFailed, "Your session is over: you were signed out everywhere, or your password changed. Sign in again.")
	case cred.Member.Status != keyward.MemberActive:
		return Caller{}, nil, keyward.Errorf(keyward.CodeSignInFailed, "Your session is over: your membership is suspended. Ask an admin or owner of the account.")
	}
	m := cred.Member
	c := Caller{Actor: keyward.Actor{ID: DashboardActor, IP: ip, MemberID: m.ID}, TenantID: m.TenantID,
		Role: m.Role, MemberID: m.ID, Environment: keyward.Live}
	if m.TenantID == keyward.SystemTenantID {
		if m.Role.Rank() >= keyward.RoleAdmin.Rank() {
			c.Permissions = []string{keyward.PermAdmin, keyward.PermManageKeys}
		}
		return c, m, nil
	}
	t, plan, err := s.tenantAndPlan(ctx, m.TenantID)
	if err != nil {
		return Caller{}, nil, err
	}
	if t.Status != keyward.TenantActive {
		return Caller{}, nil, keyward.Errorf(keyward.CodeSignInFailed, "Your session is over: your account (%s) is suspended. Contact the provider of the API.", t.Slug)
	}
	c.Permissions = []string{keyward.PermManageKeys}
	for _, p := range m.Permissions {
		if plan.Allows(p) {
			c.Permissions = append(c.Permissions, p)
		}
	}
	return c, m, nil
}

// DashboardActor is the actor id of what a member does in the dashboard,
// in the audit log beside the member's id.
const DashboardActor = "dashboard"
