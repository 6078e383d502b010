-- +goose Up
-- What is chosen once for a database, when it is created: one row per
-- setting (Store.KeyPrefix, Store.InitKeyPrefix).
CREATE TABLE settings (
    name  TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- A database made before prefixes were stored is given the prefix of its
-- keys by migration 5, written once for both engines in Go
-- (sqlstore.Migrations). Releases before that did it here, with the same
-- result.

-- +goose Down
DROP TABLE settings;
