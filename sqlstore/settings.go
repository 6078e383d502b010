package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/keyward/keyward"
)

// KeyPrefix returns the prefix of the database's keys; CodeNotFound while
// none is stored.
func (s *Store) KeyPrefix(ctx context.Context) (string, error) {
	var prefix string
	err := s.r.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = 'key_prefix'`).Scan(&prefix)
	if errors.Is(err, sql.ErrNoRows) {
		return "", keyward.Errorf(keyward.CodeNotFound, "The database %s has no key prefix yet.", s.name)
	}
	return prefix, s.err(err)
}

// InitKeyPrefix stores prefix unless the database has a key prefix
// already, and returns the one it has. It holds the write lock, so the
// first writer's prefix is the one every other finds.
func (s *Store) InitKeyPrefix(ctx context.Context, prefix string) (string, error) {
	var stored string
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx,
			`INSERT INTO settings (name, value) VALUES ('key_prefix', ?) ON CONFLICT (name) DO NOTHING`, prefix); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = 'key_prefix'`).Scan(&stored)
	})
	return stored, err
}
