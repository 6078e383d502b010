-- +goose Up
-- What is chosen once for a database, when it is created: one row per
-- setting (Store.KeyPrefix, Store.InitKeyPrefix).
CREATE TABLE settings (
    name  text COLLATE "C" NOT NULL PRIMARY KEY,
    value text NOT NULL
);

-- A database made before prefixes were stored was used with the prefix of
-- its keys (the column prefix holds it with the environment: sk_live_): the
-- one most of its unrevoked keys have, then the first root key's, then the
-- oldest. A database without keys gets none here; the first command or
-- server that needs one stores it.
INSERT INTO settings (name, value)
SELECT 'key_prefix', p FROM (
    SELECT split_part(prefix, '_', 1) AS p, id, status, created_at
    FROM keys WHERE position('_' in prefix) > 1
) AS k
GROUP BY p
ORDER BY sum(CASE WHEN status <> 'revoked' THEN 1 ELSE 0 END) DESC,
         max(CASE WHEN id = 'key_root' THEN 1 ELSE 0 END) DESC,
         min(created_at), p
LIMIT 1;

-- +goose Down
DROP TABLE settings;
