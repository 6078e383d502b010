package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/keyward/keyward"
)

// KeyPrefix returns the prefix of the database's keys; CodeNotFound while
// none is stored.
func (s *Store) KeyPrefix(ctx context.Context) (string, error) {
	var prefix string
	err := s.pool.QueryRow(ctx, `SELECT value FROM settings WHERE name = 'key_prefix'`).Scan(&prefix)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", keyward.Errorf(keyward.CodeNotFound, "The database %s has no key prefix yet.", s.where)
	}
	return prefix, dbError(err)
}

// InitKeyPrefix stores prefix unless the database has a key prefix
// already, and returns the one it has. It holds the write lock, so the
// first writer's prefix is the one every other finds.
func (s *Store) InitKeyPrefix(ctx context.Context, prefix string) (string, error) {
	var stored string
	err := s.write(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx,
			`INSERT INTO settings (name, value) VALUES ('key_prefix', $1) ON CONFLICT (name) DO NOTHING`, prefix); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT value FROM settings WHERE name = 'key_prefix'`).Scan(&stored)
	})
	return stored, err
}
