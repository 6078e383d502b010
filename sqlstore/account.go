package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/sqlrow"
)

// credentialColumns are a member's columns and its sign-in columns, for
// scanCredential.
const credentialColumns = memberColumns + `, password_hash, session_epoch`

func scanCredential(rows sqlrow.Scanner) (*keyward.Credential, error) {
	var c keyward.Credential
	m, err := scanMember(scannerFunc(func(dest ...any) error {
		return rows.Scan(append(dest, &c.PasswordHash, &c.SessionEpoch)...)
	}))
	if err != nil {
		return nil, err
	}
	c.Member = m
	return &c, nil
}

// scannerFunc is a function that scans, as a sqlrow.Scanner.
type scannerFunc func(dest ...any) error

func (f scannerFunc) Scan(dest ...any) error { return f(dest...) }

// Credential finds a member with its password hash and session epoch.
func (s *Store) Credential(ctx context.Context, memberID string) (*keyward.Credential, error) {
	c, err := scanCredential(s.row(ctx, s.r, `SELECT `+credentialColumns+` FROM members WHERE id = ?`, memberID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, keyward.Errorf(keyward.CodeNotFound, "Member %q was not found.", memberID)
	}
	return c, s.err(err)
}

// CredentialsByEmail lists the members with this email and a password,
// in every tenant or in tenantID's, oldest first.
func (s *Store) CredentialsByEmail(ctx context.Context, email, tenantID string, limit int) ([]*keyward.Credential, error) {
	rows, err := s.query(ctx, s.r, `SELECT `+credentialColumns+` FROM members
		WHERE email_lower = ? AND password_hash <> '' AND (? = '' OR tenant_id = ?) ORDER BY created_at, id LIMIT ?`, emailKey(email), tenantID, tenantID, limit)
	if err != nil {
		return nil, s.err(err)
	}
	defer rows.Close()
	var out []*keyward.Credential
	for rows.Next() {
		c, err := scanCredential(rows)
		if err != nil {
			return nil, s.err(err)
		}
		out = append(out, c)
	}
	return out, s.err(rows.Err())
}

// SetPassword stores a member's password hash and raises its session
// epoch, with the audit entry member.password.
func (s *Store) SetPassword(ctx context.Context, memberID, hash string, at time.Time, by keyward.Actor) error {
	_, err := s.raiseEpoch(ctx, memberID, &hash, at, by, keyward.ActionMemberPassword)
	return err
}

// EndSessions raises a member's session epoch, with the audit entry
// member.sign_out_everywhere.
func (s *Store) EndSessions(ctx context.Context, memberID string, at time.Time, by keyward.Actor) (int64, error) {
	return s.raiseEpoch(ctx, memberID, nil, at, by, keyward.ActionMemberSignOut)
}

// raiseEpoch raises a member's session epoch, sets its password hash
// unless hash is nil, and writes action to the audit log; it returns the
// new epoch.
func (s *Store) raiseEpoch(ctx context.Context, memberID string, hash *string, at time.Time, by keyward.Actor, action string) (int64, error) {
	var epoch int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		m, err := s.member(ctx, tx, memberID)
		if err != nil {
			return err
		}
		if hash != nil {
			_, err = s.exec(ctx, tx, `UPDATE members SET password_hash = ?, session_epoch = session_epoch + 1 WHERE id = ?`, *hash, memberID)
		} else {
			_, err = s.exec(ctx, tx, `UPDATE members SET session_epoch = session_epoch + 1 WHERE id = ?`, memberID)
		}
		if err != nil {
			return err
		}
		if err := s.row(ctx, tx, `SELECT session_epoch FROM members WHERE id = ?`, memberID).Scan(&epoch); err != nil {
			return err
		}
		if err := s.withdrawLinks(ctx, tx, memberID, ""); err != nil {
			return err
		}
		return s.record(ctx, tx, at, by, action, m.TenantID, memberID)
	})
	return epoch, s.err(err)
}

// SignInAttempt records an attempt per subject and counts each
// subject's attempts after since, in one transaction.
func (s *Store) SignInAttempt(ctx context.Context, subjects []string, at, since time.Time) (map[string]int, error) {
	out := make(map[string]int, len(subjects))
	err := s.inTx(ctx, false, func(tx *sql.Tx) error {
		for _, sub := range subjects {
			if _, err := s.exec(ctx, tx, `INSERT INTO sign_in_failures (subject, at) VALUES (?, ?)`, sub, at.UnixMicro()); err != nil {
				return err
			}
			var n int
			if err := s.row(ctx, tx, `SELECT count(*) FROM sign_in_failures WHERE subject = ? AND at > ?`, sub, since.UnixMicro()).Scan(&n); err != nil {
				return err
			}
			out[sub] = n
		}
		return nil
	})
	if err != nil {
		return nil, s.err(err)
	}
	return out, nil
}

// ForgetSignInAttempt deletes one attempt per subject recorded at at.
func (s *Store) ForgetSignInAttempt(ctx context.Context, subjects []string, at time.Time) error {
	return s.err(s.inTx(ctx, false, func(tx *sql.Tx) error {
		for _, sub := range subjects {
			if _, err := s.exec(ctx, tx, `DELETE FROM sign_in_failures WHERE id IN
				(SELECT id FROM sign_in_failures WHERE subject = ? AND at = ? LIMIT 1)`, sub, at.UnixMicro()); err != nil {
				return err
			}
		}
		return nil
	}))
}

// ClearSignInFailures forgets the attempts of subject and of the
// subjects "subject|…" (byte order: "|" is followed by "}").
func (s *Store) ClearSignInFailures(ctx context.Context, subject string) error {
	_, err := s.exec(ctx, s.w, `DELETE FROM sign_in_failures WHERE subject = ? OR (subject >= ? AND subject < ?)`,
		subject, subject+"|", subject+"}")
	return s.err(err)
}

// FindSession returns the data of an unexpired session.
func (s *Store) FindSession(ctx context.Context, hash [32]byte, now time.Time) ([]byte, bool, error) {
	var data []byte
	err := s.row(ctx, s.r, `SELECT data FROM sessions WHERE token_hash = ? AND expiry > ?`, hash[:], now.UnixMicro()).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, s.err(err)
	}
	return data, true, nil
}

// CommitSession stores a session's data until expiry.
func (s *Store) CommitSession(ctx context.Context, hash [32]byte, data []byte, expiry time.Time) error {
	_, err := s.exec(ctx, s.w, `INSERT INTO sessions (token_hash, data, expiry) VALUES (?, ?, ?)
		ON CONFLICT (token_hash) DO UPDATE SET data = excluded.data, expiry = excluded.expiry`, hash[:], data, expiry.UnixMicro())
	return s.err(err)
}

// DeleteSession deletes a session.
func (s *Store) DeleteSession(ctx context.Context, hash [32]byte) error {
	_, err := s.exec(ctx, s.w, `DELETE FROM sessions WHERE token_hash = ?`, hash[:])
	return s.err(err)
}

// failureMemory is how long failed sign-ins are kept: longer than any
// window the sign-in limits count in.
const failureMemory = 24 * time.Hour

// PruneSessions deletes up to limit expired sessions and up to limit
// failed sign-ins older than failureMemory.
func (s *Store) PruneSessions(ctx context.Context, now time.Time, limit int) (int64, error) {
	if limit <= 0 {
		return 0, nil
	}
	return s.pruneEach(ctx, limit, []pruning{
		{`DELETE FROM sessions WHERE token_hash IN (SELECT token_hash FROM sessions WHERE expiry <= ? LIMIT ?)`, now.UnixMicro()},
		{`DELETE FROM sign_in_failures WHERE id IN (SELECT id FROM sign_in_failures WHERE at < ? LIMIT ?)`, now.Add(-failureMemory).UnixMicro()},
		{`DELETE FROM sign_in_links WHERE token_hash IN (SELECT token_hash FROM sign_in_links WHERE expires_at <= ? LIMIT ?)`, now.UnixMicro()},
	})
}

// CreateSignInLink stores a one-time link with its audit entry.
func (s *Store) CreateSignInLink(ctx context.Context, l *keyward.SignInLink, by keyward.Actor) error {
	action := keyward.ActionMemberInvite
	if l.Kind == keyward.LinkPortal {
		action = keyward.ActionPortalSession
	}
	return s.err(s.write(ctx, func(tx *sql.Tx) error {
		if _, err := s.member(ctx, tx, l.MemberID); err != nil {
			return err
		}
		// A new invitation replaces the member's earlier ones.
		if l.Kind == keyward.LinkInvitation {
			if err := s.withdrawLinks(ctx, tx, l.MemberID, keyward.LinkInvitation); err != nil {
				return err
			}
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO sign_in_links (token_hash, kind, member_id, tenant_id, return_url, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, l.Hash[:], l.Kind, l.MemberID, l.TenantID, l.ReturnURL, l.CreatedAt.UnixMicro(), l.ExpiresAt.UnixMicro()); err != nil {
			return err
		}
		return s.record(ctx, tx, l.CreatedAt, by, action, l.TenantID, l.MemberID)
	}))
}

const linkColumns = `kind, member_id, tenant_id, return_url, created_at, expires_at`

func scanLink(sc sqlrow.Scanner, hash [32]byte) (*keyward.SignInLink, error) {
	l := &keyward.SignInLink{Hash: hash}
	var created, expires int64
	if err := sc.Scan(&l.Kind, &l.MemberID, &l.TenantID, &l.ReturnURL, &created, &expires); err != nil {
		return nil, err
	}
	l.CreatedAt, l.ExpiresAt = sqlrow.FromMicros(created), sqlrow.FromMicros(expires)
	return l, nil
}

// errLinkUsed is the answer for a link that is unknown, used or expired:
// one answer for all three, so that tokens cannot be probed.
func errLinkUsed() error {
	return keyward.Errorf(keyward.CodeSignInFailed, "This link was used already, has expired, or is not a link of this site. Ask for a new one.")
}

// SignInLink finds a link that is neither used nor expired.
func (s *Store) SignInLink(ctx context.Context, hash [32]byte, kind string, now time.Time) (*keyward.SignInLink, error) {
	l, err := scanLink(s.row(ctx, s.r, `SELECT `+linkColumns+` FROM sign_in_links
		WHERE token_hash = ? AND kind = ? AND used_at IS NULL AND expires_at > ?`, hash[:], kind, now.UnixMicro()), hash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errLinkUsed()
	}
	return l, s.err(err)
}

// UseSignInLink uses a link once, and sets the member's password with it
// when passwordHash is not "".
func (s *Store) UseSignInLink(ctx context.Context, hash [32]byte, kind string, now time.Time, passwordHash string) (*keyward.SignInLink, *keyward.Credential, error) {
	var (
		l *keyward.SignInLink
		c *keyward.Credential
	)
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `UPDATE sign_in_links SET used_at = ?
			WHERE token_hash = ? AND kind = ? AND used_at IS NULL AND expires_at > ?`, now.UnixMicro(), hash[:], kind, now.UnixMicro())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			if err != nil {
				return err
			}
			return errLinkUsed()
		}
		if l, err = scanLink(s.row(ctx, tx, `SELECT `+linkColumns+` FROM sign_in_links WHERE token_hash = ?`, hash[:]), hash); err != nil {
			return err
		}
		if passwordHash != "" {
			if _, err := s.exec(ctx, tx, `UPDATE members SET password_hash = ?, session_epoch = session_epoch + 1 WHERE id = ?`, passwordHash, l.MemberID); err != nil {
				return err
			}
			if err := s.record(ctx, tx, now, keyward.Actor{ID: "invitation", MemberID: l.MemberID}, keyward.ActionMemberPassword, l.TenantID, l.MemberID); err != nil {
				return err
			}
			if err := s.withdrawLinks(ctx, tx, l.MemberID, ""); err != nil {
				return err
			}
		}
		c, err = scanCredential(s.row(ctx, tx, `SELECT `+credentialColumns+` FROM members WHERE id = ?`, l.MemberID))
		if errors.Is(err, sql.ErrNoRows) {
			return errLinkUsed()
		}
		return err
	})
	if err != nil {
		return nil, nil, s.err(err)
	}
	return l, c, nil
}

// MemberByExternalID finds a tenant's member by its external id.
func (s *Store) MemberByExternalID(ctx context.Context, tenantID, externalID string) (*keyward.Member, error) {
	m, err := scanMember(s.row(ctx, s.r, `SELECT `+memberColumns+` FROM members WHERE tenant_id = ? AND external_id = ? AND external_id <> ''`, tenantID, externalID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, keyward.Errorf(keyward.CodeNotFound, "No member of tenant %q has external id %q.", tenantID, externalID)
	}
	return m, s.err(err)
}

// withdrawLinks deletes the unused sign-in links of a member, of kind ("",
// every kind): a new password, a new invitation or "sign out everywhere"
// leaves none of the links made before working.
func (s *Store) withdrawLinks(ctx context.Context, tx *sql.Tx, memberID, kind string) error {
	q := `DELETE FROM sign_in_links WHERE member_id = ? AND used_at IS NULL`
	args := []any{memberID}
	if kind != "" {
		q += ` AND kind = ?`
		args = append(args, kind)
	}
	_, err := s.exec(ctx, tx, q, args...)
	return err
}
