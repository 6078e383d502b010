// Package sqlrow holds how the SQL stores (package sqlstore, and the bulk
// loader of internal/scale) lay out rows: how a key maps to its columns,
// how times are stored (microseconds since the Unix epoch, NULL for none),
// page sizes, and the opaque cursors of lists.
package sqlrow

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keyward/keyward"
)

// Scanner is a row of either driver: *sql.Row, *sql.Rows, pgx.Row, pgx.Rows.
type Scanner interface {
	Scan(dest ...any) error
}

// KeyColumns are the columns of the keys table, in the order ScanKey reads
// them.
const KeyColumns = `id, tenant_id, environment, name, prefix, start, last4, hash,
	permissions, metadata, restrictions, expires_at, rotate_by, status,
	created_at, created_by, updated_at, revoked_at, last_used_at, last_used_ip,
	rotated_from, rotated_to, member_id, rate_limits, quota, credits_remaining,
	credits_refill_amount, credits_refill_interval, sharing`

// StatusCondition is the condition, for a WHERE clause, of the keys that
// show status st at time now (keyward.Key.StatusAt): revoked keys for
// revoked; keys past their expiry that are not revoked for expired; keys
// of the stored status that have not expired for any other. arg adds a
// parameter to the query and returns its placeholder.
func StatusCondition(st keyward.KeyStatus, now time.Time, arg func(v any) string) string {
	switch st {
	case keyward.KeyRevoked:
		return `status = ` + arg(string(keyward.KeyRevoked))
	case keyward.KeyExpired:
		return `(status <> ` + arg(string(keyward.KeyRevoked)) + ` AND expires_at <= ` + arg(now.UnixMicro()) + `)`
	}
	return `(status = ` + arg(string(st)) + ` AND (expires_at IS NULL OR expires_at > ` + arg(now.UnixMicro()) + `))`
}

// ScanKey reads a key from a row of KeyColumns. store names the store in
// errors about data it cannot read.
func ScanKey(store string, sc Scanner) (*keyward.Key, error) {
	var (
		k                                  keyward.Key
		hash                               []byte
		perms, meta, restr                 string
		expires, rotateBy, revoked, lastAt *int64
		created, updated                   int64
		rates, quota                       *string
		credits, refillAmount              *int64
		refillInterval, sharing            string
	)
	err := sc.Scan(&k.ID, &k.TenantID, &k.Environment, &k.Name, &k.Head, &k.Start, &k.Last4, &hash,
		&perms, &meta, &restr, &expires, &rotateBy, &k.Status,
		&created, &k.CreatedBy, &updated, &revoked, &lastAt, &k.LastUsedIP,
		&k.RotatedFrom, &k.RotatedTo, &k.MemberID, &rates, &quota, &credits, &refillAmount, &refillInterval, &sharing)
	if err != nil {
		return nil, err
	}
	if sharing != "" {
		k.Sharing = new(keyward.Sharing)
		if err := json.Unmarshal([]byte(sharing), k.Sharing); err != nil {
			return nil, fmt.Errorf("%s: key %s: sharing: %w", store, k.ID, err)
		}
	}
	if k.RateLimits, err = ReadRateLimits(rates); err != nil {
		return nil, fmt.Errorf("%s: key %s: rate limits: %w", store, k.ID, err)
	}
	if k.Quota, err = ReadQuota(quota); err != nil {
		return nil, fmt.Errorf("%s: key %s: quota: %w", store, k.ID, err)
	}
	if k.Credits, err = ReadCredits(credits, refillAmount, refillInterval); err != nil {
		return nil, fmt.Errorf("%s: key %s: credits: %w", store, k.ID, err)
	}
	if len(hash) != len(k.Hash) {
		return nil, fmt.Errorf("%s: key %s: stored hash has %d bytes", store, k.ID, len(hash))
	}
	copy(k.Hash[:], hash)
	if k.Permissions, err = ReadList(perms); err != nil {
		return nil, fmt.Errorf("%s: key %s: permissions: %w", store, k.ID, err)
	}
	if err := json.Unmarshal([]byte(meta), &k.Metadata); err != nil {
		return nil, fmt.Errorf("%s: key %s: metadata: %w", store, k.ID, err)
	}
	if err := json.Unmarshal([]byte(restr), &k.Restrictions); err != nil {
		return nil, fmt.Errorf("%s: key %s: restrictions: %w", store, k.ID, err)
	}
	if k.Metadata == nil {
		k.Metadata = map[string]string{}
	}
	k.ExpiresAt = FromNullMicros(expires)
	k.RotateBy = FromNullMicros(rotateBy)
	k.CreatedAt = FromMicros(created)
	k.UpdatedAt = FromMicros(updated)
	k.RevokedAt = FromNullMicros(revoked)
	k.LastUsedAt = FromNullMicros(lastAt)
	return &k, nil
}

// KeyValues returns the values of KeyColumns for k, as the stores write
// a new key.
func KeyValues(k *keyward.Key) ([]any, error) {
	perms, meta, restr, err := KeyJSON(k.Permissions, k.Metadata, k.Restrictions)
	if err != nil {
		return nil, err
	}
	rates, err := WriteRateLimits(k.RateLimits)
	if err != nil {
		return nil, err
	}
	quota, err := WriteQuota(k.Quota)
	if err != nil {
		return nil, err
	}
	credits, refillAmount, refillInterval := WriteCredits(k.Credits)
	sharing := ""
	if k.Sharing != nil {
		b, err := json.Marshal(k.Sharing)
		if err != nil {
			return nil, err
		}
		sharing = string(b)
	}
	return []any{k.ID, k.TenantID, string(k.Environment), k.Name, k.Head, k.Start, k.Last4, k.Hash[:],
		perms, meta, restr, NullMicros(k.ExpiresAt), NullMicros(k.RotateBy), string(k.Status),
		k.CreatedAt.UnixMicro(), k.CreatedBy, k.UpdatedAt.UnixMicro(), NullMicros(k.RevokedAt),
		NullMicros(k.LastUsedAt), k.LastUsedIP, k.RotatedFrom, k.RotatedTo, k.MemberID,
		rates, quota, credits, refillAmount, refillInterval, sharing}, nil
}

// WriteRateLimits is the stored text of a key's or a tenant's rate
// limits: nil (NULL) for nil, the plan's; JSON otherwise, [] for none.
func WriteRateLimits(limits []keyward.RateLimit) (*string, error) {
	if limits == nil {
		return nil, nil
	}
	b, err := json.Marshal(limits)
	text := string(b)
	return &text, err
}

// ReadRateLimits reads what WriteRateLimits stored: nil for NULL, a
// non-nil slice otherwise.
func ReadRateLimits(text *string) ([]keyward.RateLimit, error) {
	if text == nil {
		return nil, nil
	}
	limits := []keyward.RateLimit{}
	err := json.Unmarshal([]byte(*text), &limits)
	return limits, err
}

// WriteQuota is the stored text of a quota: nil (NULL) for none.
func WriteQuota(q *keyward.Quota) (*string, error) {
	if q == nil {
		return nil, nil
	}
	b, err := json.Marshal(q)
	text := string(b)
	return &text, err
}

// ReadQuota reads what WriteQuota stored; "" is no quota too, as plans
// store it.
func ReadQuota(text *string) (*keyward.Quota, error) {
	if text == nil || *text == "" {
		return nil, nil
	}
	var q keyward.Quota
	if err := json.Unmarshal([]byte(*text), &q); err != nil {
		return nil, err
	}
	return &q, nil
}

// WriteCredits returns the stored columns of a key's credits: remaining
// (NULL for no limit), and the refill's amount (NULL for none) and
// interval (” for none).
func WriteCredits(c *keyward.Credits) (remaining, refillAmount *int64, refillInterval string) {
	if c == nil {
		return nil, nil, ""
	}
	if c.Refill != nil {
		return &c.Remaining, &c.Refill.Amount, string(c.Refill.Interval)
	}
	return &c.Remaining, nil, ""
}

// ReadCredits reads what WriteCredits stored.
func ReadCredits(remaining, refillAmount *int64, refillInterval string) (*keyward.Credits, error) {
	if remaining == nil {
		return nil, nil
	}
	c := &keyward.Credits{Remaining: *remaining}
	if refillAmount != nil {
		c.Refill = &keyward.Refill{Amount: *refillAmount, Interval: keyward.QuotaPeriod(refillInterval)}
		if !c.Refill.Interval.Valid() {
			return nil, fmt.Errorf("refill interval %q is neither day nor month", refillInterval)
		}
	}
	return c, nil
}

// KeyJSON returns the JSON columns of a key: permissions, metadata and
// restrictions. Nil lists and maps are stored empty.
func KeyJSON(perms []string, meta map[string]string, restr keyward.Restrictions) (p, m, r string, err error) {
	if meta == nil {
		meta = map[string]string{}
	}
	if p, err = WriteList(perms); err != nil {
		return "", "", "", err
	}
	mb, err := json.Marshal(meta)
	if err != nil {
		return "", "", "", err
	}
	rb, err := json.Marshal(restr)
	if err != nil {
		return "", "", "", err
	}
	return p, string(mb), string(rb), nil
}

// WriteList is the JSON text of a stored list of names (a key's, a
// member's or a plan's permissions, a plan's capabilities): [] for nil.
func WriteList(names []string) (string, error) {
	if names == nil {
		names = []string{}
	}
	b, err := json.Marshal(names)
	return string(b), err
}

// ReadList reads a stored list of names: never nil.
func ReadList(text string) ([]string, error) {
	var names []string
	if err := json.Unmarshal([]byte(text), &names); err != nil {
		return nil, err
	}
	if names == nil {
		names = []string{}
	}
	return names, nil
}

// NullMicros stores an optional time: nil (NULL) for nil or the zero time.
func NullMicros(t *time.Time) *int64 {
	if t == nil || t.IsZero() {
		return nil
	}
	v := t.UnixMicro()
	return &v
}

// FromMicros reads a stored time, in UTC.
func FromMicros(v int64) time.Time {
	return time.UnixMicro(v).UTC()
}

// FromNullMicros reads a stored optional time.
func FromNullMicros(v *int64) *time.Time {
	if v == nil {
		return nil
	}
	t := FromMicros(*v)
	return &t
}

// PageLimit returns the number of rows a page holds.
func PageLimit(limit int) int {
	switch {
	case limit <= 0:
		return keyward.DefaultPageLimit
	case limit > keyward.MaxPageLimit:
		return keyward.MaxPageLimit
	}
	return limit
}

// Cursor kinds: a cursor of one list is refused by another.
const (
	CursorTenants    byte = 't'
	CursorKeys       byte = 'k'
	CursorAudit      byte = 'a'
	CursorMembers    byte = 'm'
	CursorLogs       byte = 'l'
	CursorWebhooks   byte = 'w'
	CursorDeliveries byte = 'd'
)

// Cursor is the position after the last row of a page: a number (a time in
// microseconds, or a row id) and a text id that breaks ties.
type Cursor struct {
	N  int64
	ID string
}

// EncodeCursor returns c as opaque URL-safe text: the kind, the number
// (8 bytes, big-endian), the id.
func EncodeCursor(kind byte, c Cursor) string {
	b := make([]byte, 0, 9+len(c.ID))
	b = append(b, kind)
	b = binary.BigEndian.AppendUint64(b, uint64(c.N))
	b = append(b, c.ID...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor reads a cursor that EncodeCursor wrote for the same kind of
// list. An id that is not UTF-8 or holds a NUL is no cursor: no id is.
func DecodeCursor(kind byte, s string) (Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 9 || b[0] != kind || !utf8.Valid(b[9:]) || strings.IndexByte(string(b[9:]), 0) >= 0 {
		return Cursor{}, keyward.FieldErrorf("cursor", "is not a cursor of this list; pass the next_cursor of the page before, or nothing for the first page")
	}
	return Cursor{N: int64(binary.BigEndian.Uint64(b[1:9])), ID: string(b[9:])}, nil
}

// Rows is a result set of either driver: *sql.Rows or pgx.Rows.
type Rows interface {
	Scanner
	Next() bool
	Err() error
}

// ScanPage reads every row of a list query with scan and cuts the result
// to one page of limit rows; the query asks for limit+1, so that one more
// row tells that another page follows. It returns the page and the cursor
// of the next one, "" on the last page. An empty page is an empty slice,
// never nil. Errors are the driver's.
func ScanPage[T any](rows Rows, limit int, kind byte, scan func(Scanner) (T, error), cursorOf func(T) Cursor) ([]T, string, error) {
	items := []T{}
	for rows.Next() {
		item, err := scan(rows)
		if err != nil {
			return nil, "", err
		}
		items = append(items, item)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	if len(items) <= limit {
		return items, "", nil
	}
	items = items[:limit]
	return items, EncodeCursor(kind, cursorOf(items[limit-1])), nil
}

// CreatedCursor is the cursor after a row listed by creation time and id.
func CreatedCursor(created time.Time, id string) Cursor {
	return Cursor{N: created.UnixMicro(), ID: id}
}
