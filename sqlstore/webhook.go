package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/sqlrow"
)

// webhookColumns are the columns of webhook_endpoints, in the order of
// scanWebhook.
const webhookColumns = `id, tenant_id, url, description, events, enabled, secret, previous_secret, previous_until, created_at, updated_at`

// eventList writes an endpoint's events as ",type,type,", which a LIKE
// '%,type,%' finds.
func eventList(events []string) string { return "," + strings.Join(events, ",") + "," }

// webhookRow is a row of webhookColumns as scanned: dest are the
// destinations of the columns, in order, and fill sets what needs
// converting once scanned.
type webhookRow struct {
	w                keyward.Webhook
	events           string
	enabled          int64
	prevUntil        *int64
	created, updated int64
}

func (r *webhookRow) dest() []any {
	w := &r.w
	return []any{&w.ID, &w.TenantID, &w.URL, &w.Description, &r.events, &r.enabled, &w.Secret, &w.PreviousSecret, &r.prevUntil, &r.created, &r.updated}
}

func (r *webhookRow) fill() {
	w := &r.w
	w.Events = strings.Split(strings.Trim(r.events, ","), ",")
	w.Enabled = r.enabled != 0
	w.PreviousUntil, w.CreatedAt, w.UpdatedAt = sqlrow.FromNullMicros(r.prevUntil), sqlrow.FromMicros(r.created), sqlrow.FromMicros(r.updated)
}

// scanWebhook reads a row of webhookColumns.
func scanWebhook(sc sqlrow.Scanner) (*keyward.Webhook, error) {
	var r webhookRow
	if err := sc.Scan(r.dest()...); err != nil {
		return nil, err
	}
	r.fill()
	return &r.w, nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// CreateWebhook stores a new endpoint, with its audit entry.
func (s *Store) CreateWebhook(ctx context.Context, w *keyward.Webhook, by keyward.Actor) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `INSERT INTO webhook_endpoints (`+webhookColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			w.ID, w.TenantID, w.URL, w.Description, eventList(w.Events), boolInt(w.Enabled), w.Secret, w.PreviousSecret,
			sqlrow.NullMicros(w.PreviousUntil), w.CreatedAt.UnixMicro(), w.UpdatedAt.UnixMicro()); err != nil {
			return err
		}
		return s.record(ctx, tx, w.CreatedAt, by, keyward.ActionWebhookCreate, w.TenantID, w.ID)
	})
}

// webhook reads an endpoint by id.
func (s *Store) webhook(ctx context.Context, q querier, id string) (*keyward.Webhook, error) {
	w, err := scanWebhook(s.row(ctx, q, `SELECT `+webhookColumns+` FROM webhook_endpoints WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, keyward.Errorf(keyward.CodeNotFound, "Webhook %q was not found.", id)
	}
	return w, err
}

// Webhook finds an endpoint by id.
func (s *Store) Webhook(ctx context.Context, id string) (*keyward.Webhook, error) {
	w, err := s.webhook(ctx, s.r, id)
	return w, s.err(err)
}

// Webhooks lists the endpoints of tenantID, or of every tenant with all,
// by creation.
func (s *Store) Webhooks(ctx context.Context, tenantID string, all bool, p keyward.Page) ([]*keyward.Webhook, string, error) {
	limit := sqlrow.PageLimit(p.Limit)
	var w conditions
	if !all {
		w.add(`tenant_id = ?`, tenantID)
	}
	if p.Cursor != "" {
		c, err := sqlrow.DecodeCursor(sqlrow.CursorWebhooks, p.Cursor)
		if err != nil {
			return nil, "", err
		}
		w.add(`(created_at > ? OR (created_at = ? AND id > ?))`, c.N, c.N, c.ID)
	}
	w.args = append(w.args, limit+1)
	rows, err := s.query(ctx, s.r, `SELECT `+webhookColumns+` FROM webhook_endpoints`+w.where()+` ORDER BY created_at, id LIMIT ?`, w.args...)
	if err != nil {
		return nil, "", s.err(err)
	}
	defer rows.Close()
	list, next, err := sqlrow.ScanPage(rows, limit, sqlrow.CursorWebhooks, scanWebhook,
		func(w *keyward.Webhook) sqlrow.Cursor { return sqlrow.CreatedCursor(w.CreatedAt, w.ID) })
	return list, next, s.err(err)
}

// UpdateWebhook applies u to an endpoint, with its audit entry.
func (s *Store) UpdateWebhook(ctx context.Context, id string, u keyward.WebhookUpdate, at time.Time, by keyward.Actor) (*keyward.Webhook, error) {
	var out *keyward.Webhook
	err := s.write(ctx, func(tx *sql.Tx) error {
		w, err := s.webhook(ctx, tx, id)
		if err != nil {
			return err
		}
		if u.URL != nil {
			w.URL = *u.URL
		}
		if u.Description != nil {
			w.Description = *u.Description
		}
		if u.Events != nil {
			w.Events = u.Events
		}
		if u.Enabled != nil {
			w.Enabled = *u.Enabled
		}
		if u.Secret != nil {
			until := u.PreviousUntil
			w.PreviousSecret, w.PreviousUntil, w.Secret = w.Secret, &until, *u.Secret
		}
		w.UpdatedAt = at
		if _, err := s.exec(ctx, tx, `UPDATE webhook_endpoints SET url = ?, description = ?, events = ?, enabled = ?, secret = ?,
			previous_secret = ?, previous_until = ?, updated_at = ? WHERE id = ?`,
			w.URL, w.Description, eventList(w.Events), boolInt(w.Enabled), w.Secret, w.PreviousSecret, sqlrow.NullMicros(w.PreviousUntil),
			at.UnixMicro(), id); err != nil {
			return err
		}
		out = w
		return s.record(ctx, tx, at, by, keyward.ActionWebhookUpdate, w.TenantID, id)
	})
	return out, s.err(err)
}

// DeleteWebhook deletes an endpoint and its deliveries, with its audit
// entry.
func (s *Store) DeleteWebhook(ctx context.Context, id string, at time.Time, by keyward.Actor) error {
	return s.err(s.write(ctx, func(tx *sql.Tx) error {
		w, err := s.webhook(ctx, tx, id)
		if err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM webhook_endpoints WHERE id = ?`, id); err != nil {
			return err
		}
		return s.record(ctx, tx, at, by, keyward.ActionWebhookDelete, w.TenantID, id)
	}))
}

// emit writes event e and a pending delivery, due at once, to every
// enabled endpoint that asks for its type and may see its tenant, in tx:
// the outbox of the change that tx makes.
func (s *Store) emit(ctx context.Context, tx *sql.Tx, e *keyward.Event) error {
	if e.ID == "" {
		e.ID = apikey.NewID("msg")
	}
	at := e.At.UnixMicro()
	if _, err := s.exec(ctx, tx, `INSERT INTO webhook_events (id, type, tenant_id, at, data) VALUES (?, ?, ?, ?, ?)`,
		e.ID, e.Type, e.TenantID, at, string(e.Data)); err != nil {
		return err
	}
	_, err := s.exec(ctx, tx, `INSERT INTO webhook_deliveries (event_id, endpoint_id, status, attempts, next_at, lease_until, last_status, last_error, created_at)
		SELECT CAST(? AS TEXT), id, CAST(? AS TEXT), 0, CAST(? AS BIGINT), 0, 0, '', CAST(? AS BIGINT) FROM webhook_endpoints
		WHERE enabled = 1 AND (tenant_id = '' OR tenant_id = ?) AND (events LIKE ? OR events LIKE '%,*,%')`,
		e.ID, keyward.DeliveryPending, at, at, e.TenantID, "%,"+e.Type+",%")
	return err
}

// keyEvents are the events of the audit actions on keys.
var keyEvents = map[string]string{
	keyward.ActionKeyCreate: keyward.EventKeyCreated,
	keyward.ActionKeyUpdate: keyward.EventKeyUpdated,
	keyward.ActionKeyRevoke: keyward.EventKeyRevoked,
	keyward.ActionKeyRotate: keyward.EventKeyRotated,
}

// KeyEventData is the data of a key's event: the key as it is after the
// change (never its plaintext or hash), who made the change, and, for a
// rotation, the successor.
type KeyEventData struct {
	Key       *keyward.Key `json:"key"`
	Actor     string       `json:"actor"`
	Successor *keyward.Key `json:"successor,omitempty"`
	// SunsetAt, for a rotation, is when the old key stops: the end of its
	// grace period, or of the operator's notice.
	SunsetAt *time.Time `json:"sunset_at,omitempty"`
}

// emitKeyEvent writes the event of action on key id, when action has one
// (keyEvents), in tx, after the change; related is a rotation's
// successor.
func (s *Store) emitKeyEvent(ctx context.Context, tx *sql.Tx, at time.Time, by keyward.Actor, action, id, related string) error {
	typ, ok := keyEvents[action]
	if !ok {
		return nil
	}
	k, err := s.key(ctx, tx, id)
	if err != nil {
		return err
	}
	d := KeyEventData{Key: k, Actor: by.ID}
	if action == keyward.ActionKeyRotate && related != "" {
		if d.Successor, err = s.key(ctx, tx, related); err != nil {
			return err
		}
		d.SunsetAt = k.ExpiresAt
	}
	data, err := json.Marshal(d)
	if err != nil {
		// A key that JSON cannot show (a date past year 9999, put in
		// past every check) is told of by its id: its change, a
		// revocation above all, is never refused for its event.
		data, err = json.Marshal(map[string]any{"key": map[string]string{"id": k.ID, "tenant_id": k.TenantID, "name": k.Name}, "actor": by.ID})
		if err != nil {
			return err
		}
	}
	return s.emit(ctx, tx, &keyward.Event{Type: typ, TenantID: k.TenantID, At: at, Data: data})
}

// Emit writes events in one transaction, each with its deliveries; one
// with a mark only if its mark is new.
func (s *Store) Emit(ctx context.Context, events []keyward.Event, marks []*keyward.Mark) (int, error) {
	n := 0
	err := s.inTx(ctx, false, func(tx *sql.Tx) error {
		n = 0
		for i := range events {
			if i < len(marks) && marks[i] != nil {
				m := marks[i]
				res, err := s.exec(ctx, tx, `INSERT INTO webhook_marks (kind, key_id, due) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
					m.Kind, m.KeyID, m.Due.UnixMicro())
				if err != nil {
					return err
				}
				if added, err := res.RowsAffected(); err != nil || added == 0 {
					if err != nil {
						return err
					}
					continue
				}
			}
			e := events[i]
			if err := s.emit(ctx, tx, &e); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, s.err(err)
}

// DueKeys returns active keys that expire between now and before (not
// those in a rotation's grace period, whose rotation told of their end),
// and those past their rotate_by, without a mark of that date yet.
func (s *Store) DueKeys(ctx context.Context, now, before time.Time, limit int) (expiring, rotationDue []*keyward.Key, err error) {
	read := func(query string, args ...any) ([]*keyward.Key, error) {
		rows, err := s.query(ctx, s.r, query, args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []*keyward.Key
		for rows.Next() {
			k, err := sqlrow.ScanKey(s.d.Name, rows)
			if err != nil {
				return nil, err
			}
			out = append(out, k)
		}
		return out, rows.Err()
	}
	active := string(keyward.KeyActive)
	expiring, err = read(`SELECT `+sqlrow.KeyColumns+` FROM keys k WHERE status = ? AND expires_at > ? AND expires_at <= ? AND rotated_to = ''
		AND NOT EXISTS (SELECT 1 FROM webhook_marks m WHERE m.kind = ? AND m.key_id = k.id AND m.due = k.expires_at) ORDER BY expires_at LIMIT ?`,
		active, now.UnixMicro(), before.UnixMicro(), keyward.EventKeyExpiring, limit)
	if err != nil {
		return nil, nil, s.err(err)
	}
	rotationDue, err = read(`SELECT `+sqlrow.KeyColumns+` FROM keys k WHERE status = ? AND rotate_by <= ? AND (expires_at IS NULL OR expires_at > ?) AND rotated_to = ''
		AND NOT EXISTS (SELECT 1 FROM webhook_marks m WHERE m.kind = ? AND m.key_id = k.id AND m.due = k.rotate_by) ORDER BY rotate_by LIMIT ?`,
		active, now.UnixMicro(), now.UnixMicro(), keyward.EventKeyRotationDue, limit)
	return expiring, rotationDue, s.err(err)
}

// deliveryColumns are the columns of a delivery with its event's type, in
// the order of scanDelivery; d is webhook_deliveries, e webhook_events.
const deliveryColumns = `d.id, d.event_id, e.type, d.endpoint_id, d.status, d.attempts, d.next_at, d.last_status, d.last_error, d.delivered_at, d.created_at`

// scanDelivery reads a row of deliveryColumns.
func scanDelivery(sc sqlrow.Scanner) (*keyward.Delivery, error) {
	var (
		d             keyward.Delivery
		next, created int64
		delivered     *int64
	)
	if err := sc.Scan(&d.ID, &d.EventID, &d.EventType, &d.WebhookID, &d.Status, &d.Attempts, &next, &d.LastStatus, &d.LastError, &delivered, &created); err != nil {
		return nil, err
	}
	if d.Status == keyward.DeliveryPending {
		t := sqlrow.FromMicros(next)
		d.NextAt = &t
	}
	d.DeliveredAt, d.CreatedAt = sqlrow.FromNullMicros(delivered), sqlrow.FromMicros(created)
	return &d, nil
}

// ClaimDeliveries leases up to limit due deliveries that no node holds,
// one per endpoint (the oldest due), and none of an endpoint that has one
// leased already: so a slow or dead endpoint holds one worker, not all
// of them, and each endpoint gets its deliveries one at a time. One
// UPDATE whose condition is checked again on each row it changes, so that
// of two nodes claiming at once (PostgreSQL, READ COMMITTED) only one gets
// a row, the other skipping it once the first commits; two nodes may
// then each hold one delivery of the same endpoint.
func (s *Store) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*keyward.Claimed, error) {
	var ids []int64
	until := now.Add(lease)
	err := s.inTx(ctx, false, func(tx *sql.Tx) error {
		n := now.UnixMicro()
		pending := keyward.DeliveryPending
		rows, err := s.query(ctx, tx, `UPDATE webhook_deliveries SET lease_until = ?, attempts = attempts + 1
			WHERE status = ? AND next_at <= ? AND lease_until < ? AND id IN
				(SELECT MIN(d.id) FROM webhook_deliveries d WHERE d.status = ? AND d.next_at <= ? AND d.lease_until < ?
					AND NOT EXISTS (SELECT 1 FROM webhook_deliveries o WHERE o.endpoint_id = d.endpoint_id AND o.status = ? AND o.lease_until >= ?)
				GROUP BY d.endpoint_id ORDER BY MIN(d.next_at) LIMIT ?)
			RETURNING id`,
			until.UnixMicro(), pending, n, n, pending, n, n, pending, n, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return rows.Err()
	})
	if err != nil || len(ids) == 0 {
		return nil, s.err(err)
	}
	out := make([]*keyward.Claimed, 0, len(ids))
	for _, id := range ids {
		row := s.row(ctx, s.r, `SELECT `+deliveryColumns+`, e.tenant_id, e.at, e.data, `+prefixed("w.", webhookColumns)+`
			FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id JOIN webhook_endpoints w ON w.id = d.endpoint_id WHERE d.id = ?`, id)
		c, err := scanClaimed(row)
		if errors.Is(err, sql.ErrNoRows) {
			continue // its endpoint was deleted meanwhile
		}
		if err != nil {
			return nil, s.err(err)
		}
		c.LeaseUntil = until
		out = append(out, c)
	}
	return out, nil
}

// prefixed is a list of columns, each with prefix.
func prefixed(prefix, columns string) string {
	parts := strings.Split(columns, ",")
	for i := range parts {
		parts[i] = prefix + strings.TrimSpace(parts[i])
	}
	return strings.Join(parts, ", ")
}

// scanClaimed reads a delivery, its event and its endpoint.
func scanClaimed(sc sqlrow.Scanner) (*keyward.Claimed, error) {
	var (
		c                 keyward.Claimed
		next, created, at int64
		delivered         *int64
		data              string
		w                 webhookRow
	)
	d := &c.Delivery
	dest := append([]any{&d.ID, &d.EventID, &d.EventType, &d.WebhookID, &d.Status, &d.Attempts, &next, &d.LastStatus, &d.LastError, &delivered, &created,
		&c.Event.TenantID, &at, &data}, w.dest()...)
	if err := sc.Scan(dest...); err != nil {
		return nil, err
	}
	w.fill()
	c.Webhook = w.w
	d.CreatedAt = sqlrow.FromMicros(created)
	c.Event.ID, c.Event.Type, c.Event.At, c.Event.Data = d.EventID, d.EventType, sqlrow.FromMicros(at), json.RawMessage(data)
	return &c, nil
}

// FinishDelivery records attempt a of delivery id and releases it, if
// the claim that made the attempt still holds it (its lease is lease): a
// delivery redelivered by hand, or taken by another node after the lease
// ran out, keeps its new state, and only the attempt is recorded.
func (s *Store) FinishDelivery(ctx context.Context, id int64, lease time.Time, a keyward.Attempt, delivered bool, next time.Time) error {
	return s.err(s.inTx(ctx, false, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `INSERT INTO webhook_attempts (delivery_id, at, status, error, duration_ms) VALUES (?, ?, ?, ?, ?)`,
			id, a.At.UnixMicro(), a.Status, a.Error, a.DurationMs); err != nil {
			return err
		}
		status, nextAt := keyward.DeliveryPending, next.UnixMicro()
		var deliveredAt *int64
		switch {
		case delivered:
			status, nextAt = keyward.DeliveryDelivered, 0
			t := a.At.UnixMicro()
			deliveredAt = &t
		case next.IsZero():
			status, nextAt = keyward.DeliveryFailed, 0
		}
		_, err := s.exec(ctx, tx, `UPDATE webhook_deliveries SET status = ?, next_at = ?, lease_until = 0, last_status = ?, last_error = ?, delivered_at = ?
			WHERE id = ? AND lease_until = ?`,
			status, nextAt, a.Status, a.Error, deliveredAt, id, lease.UnixMicro())
		return err
	}))
}

// Deliveries lists the deliveries that match f, newest first.
func (s *Store) Deliveries(ctx context.Context, f keyward.DeliveryFilter, p keyward.Page) ([]*keyward.Delivery, string, error) {
	limit := sqlrow.PageLimit(p.Limit)
	var w conditions
	w.add(`d.endpoint_id = ?`, f.WebhookID)
	if f.Status != "" {
		w.add(`d.status = ?`, f.Status)
	}
	if f.EventType != "" {
		w.add(`e.type = ?`, f.EventType)
	}
	if p.Cursor != "" {
		c, err := sqlrow.DecodeCursor(sqlrow.CursorDeliveries, p.Cursor)
		if err != nil {
			return nil, "", err
		}
		w.add(`d.id < ?`, c.N)
	}
	w.args = append(w.args, limit+1)
	rows, err := s.query(ctx, s.r, `SELECT `+deliveryColumns+` FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id`+
		w.where()+` ORDER BY d.id DESC LIMIT ?`, w.args...)
	if err != nil {
		return nil, "", s.err(err)
	}
	defer rows.Close()
	list, next, err := sqlrow.ScanPage(rows, limit, sqlrow.CursorDeliveries, scanDelivery,
		func(d *keyward.Delivery) sqlrow.Cursor { return sqlrow.Cursor{N: d.ID} })
	return list, next, s.err(err)
}

// Delivery reads a delivery with its attempts, newest first.
func (s *Store) Delivery(ctx context.Context, id int64) (*keyward.Delivery, error) {
	d, err := scanDelivery(s.row(ctx, s.r, `SELECT `+deliveryColumns+` FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id WHERE d.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, keyward.Errorf(keyward.CodeNotFound, "Delivery %d was not found.", id)
	}
	if err != nil {
		return nil, s.err(err)
	}
	rows, err := s.query(ctx, s.r, `SELECT at, status, error, duration_ms FROM webhook_attempts WHERE delivery_id = ? ORDER BY id DESC LIMIT 100`, id)
	if err != nil {
		return nil, s.err(err)
	}
	defer rows.Close()
	d.Log = []keyward.Attempt{}
	for rows.Next() {
		var a keyward.Attempt
		var at int64
		if err := rows.Scan(&at, &a.Status, &a.Error, &a.DurationMs); err != nil {
			return nil, s.err(err)
		}
		a.At = sqlrow.FromMicros(at)
		d.Log = append(d.Log, a)
	}
	return d, s.err(rows.Err())
}

// Redeliver makes delivery id pending again, due at at, its attempts
// counted anew, with an audit entry.
func (s *Store) Redeliver(ctx context.Context, id int64, at time.Time, by keyward.Actor) error {
	return s.err(s.write(ctx, func(tx *sql.Tx) error {
		var endpoint, tenant string
		err := s.row(ctx, tx, `SELECT d.endpoint_id, w.tenant_id FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id WHERE d.id = ?`, id).
			Scan(&endpoint, &tenant)
		if errors.Is(err, sql.ErrNoRows) {
			return keyward.Errorf(keyward.CodeNotFound, "Delivery %d was not found.", id)
		}
		if err != nil {
			return err
		}
		res, err := s.exec(ctx, tx, `UPDATE webhook_deliveries SET status = ?, attempts = 0, next_at = ? WHERE id = ? AND lease_until < ?`,
			keyward.DeliveryPending, at.UnixMicro(), id, at.UnixMicro())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err != nil {
				return err
			}
			return keyward.Errorf(keyward.CodeConflict, "Delivery %d is being attempted now; look at its log in a minute, and redeliver it then if it failed.", id)
		}
		return s.recordRelated(ctx, tx, at, by, keyward.ActionWebhookRedeliver, tenant, endpoint, strconv.FormatInt(id, 10))
	}))
}

// PruneWebhooks deletes up to limit events older than before with no
// pending delivery (their deliveries and attempts go with them: ON DELETE
// CASCADE), and the marks of dates before it that are no longer the
// date of an active key.
func (s *Store) PruneWebhooks(ctx context.Context, before time.Time, limit int) (int64, error) {
	if limit <= 0 {
		return 0, nil
	}
	var n int64
	err := s.inTx(ctx, false, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `DELETE FROM webhook_events WHERE id IN (SELECT e.id FROM webhook_events e WHERE e.at < ?
			AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id AND d.status = ?) ORDER BY e.at LIMIT ?)`,
			before.UnixMicro(), keyward.DeliveryPending, limit)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		// A mark stays while it is still the date of a key that could be
		// raised again for it: an active key past its rotate_by long ago
		// is key.rotation_due at every scan but for its mark.
		_, err = s.exec(ctx, tx, `DELETE FROM webhook_marks WHERE (kind, key_id, due) IN (SELECT m.kind, m.key_id, m.due FROM webhook_marks m WHERE m.due < ?
			AND NOT EXISTS (SELECT 1 FROM keys k WHERE k.id = m.key_id AND k.status = ? AND (k.rotate_by = m.due OR k.expires_at = m.due)) LIMIT ?)`,
			before.UnixMicro(), string(keyward.KeyActive), limit)
		return err
	})
	return n, s.err(err)
}
