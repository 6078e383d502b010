package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/pressly/goose/v3"
)

// Migrations returns the schema migrations written in Go, the same for both
// engines, which each engine's goose provider runs beside its own SQL files
// (goose.WithGoMigrations). A migration whose SQL both engines understand
// alike is written here once rather than in two files.
func Migrations() []*goose.Migration {
	return []*goose.Migration{
		goose.NewGoMigration(5, &goose.GoFunc{RunTx: storeKeyPrefixOfKeys}, &goose.GoFunc{Mode: goose.TransactionEnabled}),
		goose.NewGoMigration(7, &goose.GoFunc{RunTx: seedPlans}, &goose.GoFunc{Mode: goose.TransactionEnabled}),
	}
}

// storeKeyPrefixOfKeys gives a database made before prefixes were stored
// (migration 00003 made the settings table) the prefix it was used with: the
// one most of its unrevoked keys have, then the first root key's, then the
// oldest. The keys' column prefix holds the head, <prefix>_<env>_, whose
// environment is four letters. A database without keys gets none here; the
// first command or server that needs one stores it. A database that has a
// prefix keeps it (releases whose migration 00003 stored it already).
func storeKeyPrefixOfKeys(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `
INSERT INTO settings (name, value)
SELECT 'key_prefix', p FROM (
    SELECT substr(prefix, 1, length(prefix) - 6) AS p, id, status, created_at
    FROM keys WHERE length(prefix) > 6
) AS k
WHERE NOT EXISTS (SELECT 1 FROM settings WHERE name = 'key_prefix')
GROUP BY p
ORDER BY sum(CASE WHEN status <> 'revoked' THEN 1 ELSE 0 END) DESC,
         max(CASE WHEN id = 'key_root' THEN 1 ELSE 0 END) DESC,
         min(created_at), p
LIMIT 1`)
	return err
}

// seedPlans stores the built-in default plan, and, for a database made
// before plans existed (migration 00006 made the plans table), one plan per
// plan name its tenants are on, so that every tenant's plan exists. Each
// includes everything, as the default plan does: API access, no key limit,
// every permission, no capability named; nothing that worked stops working.
// Plans that exist are left as they are. No audit entry and no change:
// nobody acted, and no key may do less than before.
//
// Both engines read the same SQL: $1 placeholders (SQLite's driver takes
// them too), the time cast to an integer, TRUE, which SQLite stores as 1,
// and ON CONFLICT.
func seedPlans(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `
INSERT INTO plans (name, capabilities, permissions, api_access, max_keys, created_at, updated_at)
SELECT name, '[]', '[]', TRUE, 0, CAST($1 AS BIGINT), CAST($1 AS BIGINT) FROM (
    SELECT 'default' AS name
    UNION
    SELECT DISTINCT plan FROM tenants
) AS used
WHERE TRUE -- SQLite reads ON CONFLICT after a FROM clause as a join
ORDER BY name
ON CONFLICT (name) DO NOTHING`, time.Now().UnixMicro())
	return err
}
