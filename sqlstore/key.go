package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/sqlrow"
)

// insertKey stores k in tx. A taken id or hash is a CodeConflict, an unknown
// tenant a CodeNotFound, a member that is not one of the tenant's a
// CodeInvalidRequest naming member_id: checked here, under the write lock,
// so that no key is made for a member that a removal has just taken away.
func (s *Store) insertKey(ctx context.Context, tx *sql.Tx, k *keyward.Key) error {
	if k.MemberID != "" {
		var tenantID string
		err := s.row(ctx, tx, `SELECT tenant_id FROM members WHERE id = ?`, k.MemberID).Scan(&tenantID)
		switch {
		case errors.Is(err, sql.ErrNoRows), err == nil && tenantID != k.TenantID:
			return keyward.FieldErrorf("member_id", "tenant %q has no member %q; give the id of one of its members, or none for a key of the tenant as a whole", k.TenantID, k.MemberID)
		case err != nil:
			return err
		}
	}
	values, err := sqlrow.KeyValues(k)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, tx, `INSERT INTO keys (`+sqlrow.KeyColumns+`)
		VALUES (?`+strings.Repeat(`, ?`, len(values)-1)+`)`, values...)
	switch {
	case s.d.Unique(err, "keys.id"):
		return keyward.Errorf(keyward.CodeConflict, "A key with id %q exists.", k.ID)
	case s.d.Unique(err, "keys.hash"):
		// The message names no hash: a hash is as good as a key to a
		// brute-force search, and it helps nobody here.
		return keyward.Errorf(keyward.CodeConflict, "A key with the same secret exists; generate a new key.")
	case s.d.ForeignKey(err):
		return keyward.Errorf(keyward.CodeNotFound, "Tenant %q was not found.", k.TenantID)
	case err != nil:
		return err
	}
	if k.Credits != nil {
		// Credits made now are refilled at the start of the next period.
		_, err = s.exec(ctx, tx, `UPDATE keys SET credits_refilled_at = ? WHERE id = ?`, k.CreatedAt.UnixMicro(), k.ID)
	}
	return err
}

// CreateKey stores a new key, its audit entry (key.create) and its change.
// ExpiresAt, RotateBy, RevokedAt and LastUsedAt that point to the zero time
// are stored as unset. A key past the key limit of the tenant's plan (its
// unrevoked keys, counted in the same transaction, so that keys created at
// once cannot pass the limit together) is a CodePlanNotEntitled.
func (s *Store) CreateKey(ctx context.Context, k *keyward.Key, by keyward.Actor) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if k.Status != keyward.KeyRevoked {
			if err := s.checkKeyLimit(ctx, tx, k.TenantID); err != nil {
				return err
			}
		}
		if err := s.insertKey(ctx, tx, k); err != nil {
			return err
		}
		return s.record(ctx, tx, k.CreatedAt, by, keyward.ActionKeyCreate, k.TenantID, k.ID,
			keyward.Change{Kind: keyward.ChangeKey, ID: k.ID})
	})
}

// checkKeyLimit refuses, with CodePlanNotEntitled, one more unrevoked key
// for a tenant that holds as many as its plan's MaxKeys. A tenant that does
// not exist has no limit here: inserting its key fails.
func (s *Store) checkKeyLimit(ctx context.Context, tx *sql.Tx, tenantID string) error {
	var plan string
	var limit int
	err := s.row(ctx, tx, `SELECT p.name, p.max_keys FROM tenants t JOIN plans p ON p.name = t.plan WHERE t.id = ?`, tenantID).Scan(&plan, &limit)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && limit <= 0) {
		return nil
	}
	if err != nil {
		return err
	}
	n, err := s.countKeys(ctx, tx, tenantID)
	if err != nil {
		return err
	}
	if n >= limit {
		return keyward.Errorf(keyward.CodePlanNotEntitled,
			"The plan %q allows a tenant at most %d keys, and tenant %q holds %d that are not revoked (expired keys count until they are revoked); revoke a key to make room, or move the tenant to a plan that allows more.",
			plan, limit, tenantID, n)
	}
	return nil
}

// countKeys counts a tenant's unrevoked keys, from the read pool or in a
// transaction.
func (s *Store) countKeys(ctx context.Context, q querier, tenantID string) (int, error) {
	var n int
	err := s.row(ctx, q, `SELECT count(*) FROM keys WHERE tenant_id = ? AND status <> ?`, tenantID, string(keyward.KeyRevoked)).Scan(&n)
	return n, err
}

// CountKeys counts a tenant's unrevoked keys, expired ones included.
func (s *Store) CountKeys(ctx context.Context, tenantID string) (int, error) {
	n, err := s.countKeys(ctx, s.r, tenantID)
	return n, s.err(err)
}

// key reads a key by id, from the read pool or in a transaction.
func (s *Store) key(ctx context.Context, q querier, id string) (*keyward.Key, error) {
	k, err := sqlrow.ScanKey(s.d.Name, s.row(ctx, q, `SELECT `+sqlrow.KeyColumns+` FROM keys WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, keyward.Errorf(keyward.CodeNotFound, "Key %q was not found.", id)
	}
	return k, err
}

// Key finds a key by id.
func (s *Store) Key(ctx context.Context, id string) (*keyward.Key, error) {
	k, err := s.key(ctx, s.r, id)
	return k, s.err(err)
}

// KeyByHash finds a key by the SHA-256 of its plaintext.
func (s *Store) KeyByHash(ctx context.Context, hash [32]byte) (*keyward.Key, error) {
	var row sqlrow.Scanner
	if s.keyByHash != nil {
		row = s.keyByHash.QueryRowContext(ctx, hash[:])
	} else {
		row = s.d.QueryRow(ctx, s.keyByHashQuery, hash[:])
	}
	k, err := sqlrow.ScanKey(s.d.Name, row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, keyward.Errorf(keyward.CodeNotFound, "No key has this secret.")
	}
	return k, s.err(err)
}

// Keys lists the keys that match f, newest first (by creation time, then by
// id).
func (s *Store) Keys(ctx context.Context, f keyward.KeyFilter, p keyward.Page) ([]*keyward.Key, string, error) {
	limit := sqlrow.PageLimit(p.Limit)
	var w conditions
	if f.TenantID != "" {
		w.add(`tenant_id = ?`, f.TenantID)
	}
	if f.MemberID != "" {
		// The second condition lets the store use the index of the keys
		// that belong to a member, which holds no other.
		w.add(`member_id = ? AND member_id <> ''`, f.MemberID)
	}
	if f.Environment != "" {
		w.add(`environment = ?`, string(f.Environment))
	}
	if f.Status != "" {
		w.add(sqlrow.StatusCondition(f.Status, f.Now, w.arg))
	}
	if p.Cursor != "" {
		c, err := sqlrow.DecodeCursor(sqlrow.CursorKeys, p.Cursor)
		if err != nil {
			return nil, "", err
		}
		w.add(`(created_at, id) < (?, ?)`, c.N, c.ID)
	}
	w.args = append(w.args, limit+1)
	rows, err := s.query(ctx, s.r, `SELECT `+sqlrow.KeyColumns+` FROM keys`+w.where()+` ORDER BY created_at DESC, id DESC LIMIT ?`, w.args...)
	if err != nil {
		return nil, "", s.err(err)
	}
	defer rows.Close()
	keys, next, err := sqlrow.ScanPage(rows, limit, sqlrow.CursorKeys, func(sc sqlrow.Scanner) (*keyward.Key, error) { return sqlrow.ScanKey(s.d.Name, sc) },
		func(x *keyward.Key) sqlrow.Cursor { return sqlrow.CreatedCursor(x.CreatedAt, x.ID) })
	if err != nil {
		return nil, "", s.err(err)
	}
	return keys, next, nil
}

// UpdateKey applies the non-nil fields of u, sets UpdatedAt to at, writes
// the audit entry (key.update) and the change, and returns the key as
// stored. A revoked key is a CodeConflict; a Status other than active or
// disabled a CodeInvalidRequest.
func (s *Store) UpdateKey(ctx context.Context, id string, u keyward.KeyUpdate, at time.Time, by keyward.Actor) (*keyward.Key, error) {
	if u.Status != nil && *u.Status != keyward.KeyActive && *u.Status != keyward.KeyDisabled {
		return nil, keyward.FieldErrorf("status", "must be %q or %q; revoke a key to make it %q", keyward.KeyActive, keyward.KeyDisabled, keyward.KeyRevoked)
	}
	return s.changeKey(ctx, id, func(tx *sql.Tx, k *keyward.Key) (bool, error) {
		if k.Status == keyward.KeyRevoked {
			return false, keyward.Errorf(keyward.CodeConflict, "Key %q is revoked and cannot be changed; create a new key.", id)
		}
		if u.Name != nil {
			k.Name = *u.Name
		}
		if u.Permissions != nil {
			k.Permissions = *u.Permissions
		}
		if u.Metadata != nil {
			k.Metadata = *u.Metadata
		}
		if u.ExpiresAt != nil {
			k.ExpiresAt = u.ExpiresAt
		}
		if u.RotateBy != nil {
			k.RotateBy = u.RotateBy
		}
		if u.Restrictions != nil {
			k.Restrictions = *u.Restrictions
		}
		if u.Status != nil {
			k.Status = *u.Status
		}
		if u.RateLimits != nil {
			k.RateLimits = *u.RateLimits
		}
		if u.Quota != nil {
			k.Quota = u.Quota
			if *u.Quota == (keyward.Quota{}) {
				k.Quota = nil
			}
		}
		perms, meta, restr, err := sqlrow.KeyJSON(k.Permissions, k.Metadata, k.Restrictions)
		if err != nil {
			return false, err
		}
		rates, err := sqlrow.WriteRateLimits(k.RateLimits)
		if err != nil {
			return false, err
		}
		quota, err := sqlrow.WriteQuota(k.Quota)
		if err != nil {
			return false, err
		}
		if _, err := s.exec(ctx, tx, `UPDATE keys SET name = ?, permissions = ?, metadata = ?,
			restrictions = ?, expires_at = ?, rotate_by = ?, status = ?, rate_limits = ?, quota = ?,
			updated_at = ? WHERE id = ?`,
			k.Name, perms, meta, restr, sqlrow.NullMicros(k.ExpiresAt), sqlrow.NullMicros(k.RotateBy),
			string(k.Status), rates, quota, at.UnixMicro(), id); err != nil {
			return false, err
		}
		if u.ClearSharing {
			if _, err := s.exec(ctx, tx, `UPDATE keys SET sharing = '' WHERE id = ?`, id); err != nil {
				return false, err
			}
		}
		// Credits are written only when set, so that uses counted down
		// meanwhile by other transactions are not written back over.
		if u.Credits != nil || u.NoCredits {
			remaining, refillAmount, refillInterval := sqlrow.WriteCredits(u.Credits)
			if _, err := s.exec(ctx, tx, `UPDATE keys SET credits_remaining = ?, credits_refill_amount = ?, credits_refill_interval = ?,
				credits_refilled_at = ? WHERE id = ?`,
				remaining, refillAmount, refillInterval, at.UnixMicro(), id); err != nil {
				return false, err
			}
		}
		return true, s.record(ctx, tx, at, by, keyward.ActionKeyUpdate, k.TenantID, id,
			keyward.Change{Kind: keyward.ChangeKey, ID: id})
	})
}

// changeKey reads the key id in a write transaction and calls change with
// it, which changes it in tx and reports whether it did; it then returns
// the key as stored, read again in tx if it changed, as read if not.
func (s *Store) changeKey(ctx context.Context, id string, change func(tx *sql.Tx, k *keyward.Key) (changed bool, err error)) (*keyward.Key, error) {
	var out *keyward.Key
	err := s.write(ctx, func(tx *sql.Tx) error {
		k, err := s.key(ctx, tx, id)
		if err != nil {
			return err
		}
		changed, err := change(tx, k)
		if err != nil || !changed {
			out = k
			return err
		}
		out, err = s.key(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RevokeKey marks a key revoked at the given time, writes the audit entry
// (key.revoke) and the change, and returns the key. Revoking a revoked key
// writes nothing, keeps the first RevokedAt, and returns the key as stored.
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time, by keyward.Actor) (*keyward.Key, error) {
	return s.changeKey(ctx, id, func(tx *sql.Tx, k *keyward.Key) (bool, error) {
		if k.Status == keyward.KeyRevoked {
			return false, nil
		}
		if _, err := s.exec(ctx, tx,
			`UPDATE keys SET status = ?, revoked_at = ?, updated_at = ? WHERE id = ?`,
			string(keyward.KeyRevoked), at.UnixMicro(), at.UnixMicro(), id); err != nil {
			return false, err
		}
		return true, s.record(ctx, tx, at, by, keyward.ActionKeyRevoke, k.TenantID, id,
			keyward.Change{Kind: keyward.ChangeKey, ID: id})
	})
}

// RotateKey stores successor with RotatedFrom set to oldID and MemberID to
// the old key's (a successor belongs to the member the old key does), sets
// the old key's RotatedTo to the successor's id, its ExpiresAt to
// oldExpiresAt and its UpdatedAt to the successor's CreatedAt, points the
// old key's predecessors still in their grace period to the successor too
// (repointPredecessors), writes one audit entry (key.rotate, target the old
// key) and a change for each key it changed (the old key, the successor,
// each predecessor it pointed on), all in one transaction, and returns the
// old key as stored.
//
// A revoked key, or one rotated already, is a CodeConflict; a successor of
// another tenant a CodeInvalidRequest; a successor whose id or hash is taken
// a CodeConflict, and then nothing is changed.
func (s *Store) RotateKey(ctx context.Context, oldID string, successor *keyward.Key, oldExpiresAt time.Time, by keyward.Actor) (*keyward.Key, error) {
	return s.rotateKey(ctx, oldID, successor, oldExpiresAt, by, false)
}

// RotateKeyForReveal is RotateKey for a rotation with notice: the
// successor waits, in the same transaction, to be revealed (RevealKey).
func (s *Store) RotateKeyForReveal(ctx context.Context, oldID string, successor *keyward.Key, oldExpiresAt time.Time, by keyward.Actor) (*keyward.Key, error) {
	return s.rotateKey(ctx, oldID, successor, oldExpiresAt, by, true)
}

// rotateKey is RotateKey, whose successor waits to be revealed when
// forReveal is true.
func (s *Store) rotateKey(ctx context.Context, oldID string, successor *keyward.Key, oldExpiresAt time.Time, by keyward.Actor, forReveal bool) (*keyward.Key, error) {
	return s.changeKey(ctx, oldID, func(tx *sql.Tx, old *keyward.Key) (bool, error) {
		switch {
		case old.Status == keyward.KeyRevoked:
			return false, keyward.Errorf(keyward.CodeConflict, "Key %q is revoked and cannot be rotated; create a new key.", oldID)
		case old.RotatedTo != "":
			return false, keyward.Errorf(keyward.CodeConflict, "Key %q was rotated already, to %q; rotate that key instead.", oldID, old.RotatedTo)
		case successor.TenantID != old.TenantID:
			return false, keyward.FieldErrorf("tenant_id", "the successor of key %q must belong to tenant %q", oldID, old.TenantID)
		}
		next := *successor
		next.RotatedFrom = oldID
		next.MemberID = old.MemberID
		if err := s.insertKey(ctx, tx, &next); err != nil {
			return false, err
		}
		// The successor takes the credits as they are now, in this
		// transaction, not as the caller read them; during the grace
		// period the old key spends from them too (verify), so that the
		// two never spend the same credits twice.
		if _, err := s.exec(ctx, tx, `UPDATE keys SET
			credits_remaining = (SELECT credits_remaining FROM keys WHERE id = ?),
			credits_refill_amount = (SELECT credits_refill_amount FROM keys WHERE id = ?),
			credits_refill_interval = (SELECT credits_refill_interval FROM keys WHERE id = ?),
			credits_refilled_at = (SELECT credits_refilled_at FROM keys WHERE id = ?)
			WHERE id = ?`, oldID, oldID, oldID, oldID, next.ID); err != nil {
			return false, err
		}
		// The old key keeps none of its own (0, not NULL, which is no
		// limit): rotated again, a key's credits are never in two places.
		if _, err := s.exec(ctx, tx, `UPDATE keys SET credits_remaining = 0, credits_refill_amount = NULL
			WHERE id = ? AND credits_remaining IS NOT NULL`, oldID); err != nil {
			return false, err
		}
		at := successor.CreatedAt
		if _, err := s.exec(ctx, tx,
			`UPDATE keys SET rotated_to = ?, expires_at = ?, updated_at = ? WHERE id = ?`,
			successor.ID, oldExpiresAt.UnixMicro(), at.UnixMicro(), oldID); err != nil {
			return false, err
		}
		repointed, err := s.repointPredecessors(ctx, tx, oldID, successor.ID, at)
		if err != nil {
			return false, err
		}
		if forReveal {
			if _, err := s.exec(ctx, tx, `INSERT INTO key_reveals (key_id, tenant_id, created_at) VALUES (?, ?, ?)`, next.ID, next.TenantID, at.UnixMicro()); err != nil {
				return false, err
			}
		}
		changes := []keyward.Change{{Kind: keyward.ChangeKey, ID: oldID}, {Kind: keyward.ChangeKey, ID: successor.ID}}
		for _, id := range repointed {
			changes = append(changes, keyward.Change{Kind: keyward.ChangeKey, ID: id})
		}
		return true, s.recordRelated(ctx, tx, at, by, keyward.ActionKeyRotate, old.TenantID, oldID, successor.ID, changes...)
	})
}

// repointPredecessors points the predecessors of key oldID that are still
// in their grace period at time at (rotated to it, not revoked, expiring
// after at) to successorID, and returns their ids. The verifier meters an
// old key against the key its RotatedTo names (verify.meterID), and the
// credits and per-key rate-limit buckets of a chain are the newest key's
// only: a predecessor left pointing at oldID would spend from credits that
// are now 0, in buckets no other key of the chain shares. Expired and
// revoked predecessors keep their RotatedTo as history (each key's
// RotatedFrom keeps the chain traceable). The index keys_rotated_to
// (migration 9) finds them.
func (s *Store) repointPredecessors(ctx context.Context, tx *sql.Tx, oldID, successorID string, at time.Time) ([]string, error) {
	return s.ids(ctx, tx, `UPDATE keys SET rotated_to = ?, updated_at = ?
		WHERE rotated_to = ? AND status <> ? AND expires_at > ?
		RETURNING id`,
		successorID, at.UnixMicro(), oldID, string(keyward.KeyRevoked), at.UnixMicro())
}

// RecordUsage writes the last-used time and address of each use in one
// transaction. A use no newer than the stored one, or of a key that does not
// exist, is skipped. It writes no audit entry, no change, and leaves
// UpdatedAt as it is. It does not take the write lock (on SQLite, its
// transaction waits for the single writer all the same): it only takes the
// row locks of the keys it updates, in the order of their ids, so that two
// batches never wait for each other in a circle.
func (s *Store) RecordUsage(ctx context.Context, uses []keyward.Usage) error {
	if len(uses) == 0 {
		return nil
	}
	sorted := slices.Clone(uses)
	slices.SortStableFunc(sorted, func(a, b keyward.Usage) int { return strings.Compare(a.KeyID, b.KeyID) })
	query := s.rebind(`UPDATE keys SET last_used_at = ?, last_used_ip = ?
		WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`)
	args := make([][]any, len(sorted))
	for i, u := range sorted {
		at := u.At.UnixMicro()
		args[i] = []any{at, u.IP, u.KeyID, at}
	}
	if s.d.ExecBatch != nil {
		return s.err(s.d.ExecBatch(ctx, query, args))
	}
	return s.inTx(ctx, false, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, query)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, a := range args {
			if _, err := stmt.ExecContext(ctx, a...); err != nil {
				return err
			}
		}
		return nil
	})
}

// PendingReveals lists the keys of a tenant that wait to be revealed, all
// or those among ids.
func (s *Store) PendingReveals(ctx context.Context, tenantID string, ids []string) ([]string, error) {
	q, args := `SELECT key_id FROM key_reveals WHERE tenant_id = ?`, []any{tenantID}
	if ids != nil {
		if len(ids) == 0 {
			return nil, nil
		}
		q += ` AND key_id IN (?` + strings.Repeat(`, ?`, len(ids)-1) + `)`
		for _, id := range ids {
			args = append(args, id)
		}
	}
	rows, err := s.query(ctx, s.r, q+` ORDER BY created_at, key_id`, args...)
	if err != nil {
		return nil, s.err(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, s.err(err)
		}
		out = append(out, id)
	}
	return out, s.err(rows.Err())
}

// RevealKey gives a key that waits to be revealed its secret, once.
func (s *Store) RevealKey(ctx context.Context, id string, hash [32]byte, start, last4 string, at time.Time, by keyward.Actor) (*keyward.Key, error) {
	return s.changeKey(ctx, id, func(tx *sql.Tx, k *keyward.Key) (bool, error) {
		res, err := s.exec(ctx, tx, `DELETE FROM key_reveals WHERE key_id = ?`, id)
		if err != nil {
			return false, err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			if err != nil {
				return false, err
			}
			return false, keyward.Errorf(keyward.CodeConflict, "Key %q was revealed already, or does not wait to be: a key is shown once. Rotate it to get a new one.", id)
		}
		if _, err := s.exec(ctx, tx, `UPDATE keys SET hash = ?, start = ?, last4 = ?, updated_at = ? WHERE id = ?`,
			hash[:], start, last4, at.UnixMicro(), id); err != nil {
			return false, err
		}
		return true, s.record(ctx, tx, at, by, keyward.ActionKeyReveal, k.TenantID, id, keyward.Change{Kind: keyward.ChangeKey, ID: id})
	})
}

// KeysInNotice lists the keys in a rotation's grace period used since
// their successor was made.
func (s *Store) KeysInNotice(ctx context.Context, now time.Time, limit int) ([]*keyward.Key, error) {
	rows, err := s.query(ctx, s.r, `SELECT `+prefixed("o.", sqlrow.KeyColumns)+` FROM keys o JOIN keys n ON n.id = o.rotated_to
		WHERE o.revoked_at IS NULL AND o.expires_at > ? AND o.last_used_at > n.created_at
		ORDER BY n.created_at, o.id LIMIT ?`, now.UnixMicro(), limit)
	if err != nil {
		return nil, s.err(err)
	}
	defer rows.Close()
	var out []*keyward.Key
	for rows.Next() {
		k, err := sqlrow.ScanKey(s.d.Name, rows)
		if err != nil {
			return nil, s.err(err)
		}
		out = append(out, k)
	}
	return out, s.err(rows.Err())
}
