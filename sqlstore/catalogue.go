package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/sqlrow"
)

// Permissions lists the permission catalogue, by name.
func (s *Store) Permissions(ctx context.Context) ([]*keyward.Permission, error) {
	rows, err := s.query(ctx, s.r, `SELECT name, description, created_at FROM permissions ORDER BY name`)
	if err != nil {
		return nil, s.err(err)
	}
	defer rows.Close()
	perms := []*keyward.Permission{}
	for rows.Next() {
		var p keyward.Permission
		var created int64
		if err := rows.Scan(&p.Name, &p.Description, &created); err != nil {
			return nil, s.err(err)
		}
		p.CreatedAt = sqlrow.FromMicros(created)
		perms = append(perms, &p)
	}
	return perms, s.err(rows.Err())
}

// CreatePermission adds an entry to the catalogue and its audit entry
// (permission.add, of no tenant); no change, as no verification reads the
// catalogue. A taken name is a CodeConflict.
func (s *Store) CreatePermission(ctx context.Context, p *keyward.Permission, by keyward.Actor) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, `INSERT INTO permissions (name, description, created_at) VALUES (?, ?, ?)`,
			p.Name, p.Description, p.CreatedAt.UnixMicro())
		if s.d.Unique(err, "permissions.name") {
			return &keyward.Error{Code: keyward.CodeConflict, Field: "name",
				Message: fmt.Sprintf("name: the permission %q is in the catalogue already", p.Name), Err: err}
		}
		if err != nil {
			return err
		}
		return s.record(ctx, tx, p.CreatedAt, by, keyward.ActionPermissionAdd, "", p.Name)
	})
}

// DeletePermission removes an entry from the catalogue and writes its audit
// entry (permission.remove, of no tenant); no change. A permission that is
// not in the catalogue is a CodeNotFound. One held by an unrevoked key, a
// member or a plan stays: the error is a CodeConflict that says where, and
// the use is returned.
//
// Where it is held is found in the transaction that removes it, under the
// write lock, so that no key, member or plan written in between is missed.
// The stored lists are JSON text: a LIKE on the name as JSON writes it,
// quotes included, finds on both engines alike the rows that may hold it,
// and the lists of those rows are read to be sure (SQLite's LIKE ignores
// the case of ASCII letters, and a longer name that holds a quote may hold
// the pattern too). That reads every unrevoked key's list once, in the
// database: a removal from the catalogue is rare, and an index that would
// spare it would cost every key written.
func (s *Store) DeletePermission(ctx context.Context, name string, at time.Time, by keyward.Actor) (keyward.PermissionUse, error) {
	var use keyward.PermissionUse
	err := s.write(ctx, func(tx *sql.Tx) error {
		var exists bool
		if err := s.row(ctx, tx, `SELECT EXISTS (SELECT 1 FROM permissions WHERE name = ?)`, name).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return keyward.Errorf(keyward.CodeNotFound, "The permission %q is not in the catalogue.", name)
		}
		var err error
		if use, err = s.permissionUse(ctx, tx, name); err != nil {
			return err
		}
		if use.InUse() {
			return keyward.Errorf(keyward.CodeConflict, "The permission %q is in use, so it stays in the catalogue: %s. Take it from them first.", name, useText(use))
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM permissions WHERE name = ?`, name); err != nil {
			return err
		}
		return s.record(ctx, tx, at, by, keyward.ActionPermissionRemove, "", name)
	})
	return use, err
}

// permissionUse finds, in tx, the unrevoked keys, the members and the plans
// whose permissions hold name.
func (s *Store) permissionUse(ctx context.Context, tx *sql.Tx, name string) (keyward.PermissionUse, error) {
	use := keyward.PermissionUse{Members: []string{}, Plans: []string{}}
	quoted, err := json.Marshal(name)
	if err != nil {
		return use, err
	}
	like := "%" + escapeLike(string(quoted)) + "%"
	// holders calls found with the id of each row of query, (id,
	// permissions), whose list holds name.
	holders := func(found func(id string), query string, args ...any) error {
		rows, err := s.query(ctx, tx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id, perms string
			if err := rows.Scan(&id, &perms); err != nil {
				return err
			}
			list, err := sqlrow.ReadList(perms)
			if err != nil {
				return fmt.Errorf("%s: permissions: %w", id, err)
			}
			if slices.Contains(list, name) {
				found(id)
			}
		}
		return rows.Err()
	}
	if err := holders(func(string) { use.Keys++ },
		`SELECT id, permissions FROM keys WHERE status <> ? AND permissions LIKE ? ESCAPE '\'`,
		string(keyward.KeyRevoked), like); err != nil {
		return use, err
	}
	if err := holders(func(id string) { use.Members = append(use.Members, id) },
		`SELECT id, permissions FROM members WHERE permissions LIKE ? ESCAPE '\' ORDER BY id`, like); err != nil {
		return use, err
	}
	err = holders(func(name string) { use.Plans = append(use.Plans, name) },
		`SELECT name, permissions FROM plans WHERE permissions LIKE ? ESCAPE '\' ORDER BY name`, like)
	return use, err
}

// escapeLike escapes the wildcards of a LIKE pattern, and its escape
// character, the backslash.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// useText says where a permission is used: `2 unrevoked keys hold it;
// members "mem_a", "mem_b" hold it; plans "pro" list it`.
func useText(u keyward.PermissionUse) string {
	var parts []string
	switch u.Keys {
	case 0:
	case 1:
		parts = append(parts, "1 unrevoked key holds it")
	default:
		parts = append(parts, fmt.Sprintf("%d unrevoked keys hold it", u.Keys))
	}
	if len(u.Members) > 0 {
		parts = append(parts, "members "+namesText(u.Members)+" hold it")
	}
	if len(u.Plans) > 0 {
		parts = append(parts, "plans "+namesText(u.Plans)+" list it")
	}
	return strings.Join(parts, "; ")
}

// namesText lists names for a message, quoted: the first ten of them and
// how many more.
func namesText(names []string) string {
	const most = 10
	quoted := make([]string, 0, most)
	for _, n := range names[:min(len(names), most)] {
		quoted = append(quoted, strconv.Quote(n))
	}
	text := strings.Join(quoted, ", ")
	if len(names) > most {
		text += fmt.Sprintf(" and %d more", len(names)-most)
	}
	return text
}
