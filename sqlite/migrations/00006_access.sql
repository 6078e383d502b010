-- +goose Up
-- The access model (docs/access.md): members of tenants, plans, the
-- permission catalogue, the member a key belongs to, and the member an
-- audited action was made for. Plans are given to the tenants of a
-- database made before they existed by migration 7, written once for both
-- engines in Go (sqlstore.Migrations).
--
-- A member's email is unique in its tenant compared case-insensitively:
-- email_lower holds it lowercased by the store (Go's strings.ToLower, which
-- knows every script, where SQLite's lower() knows only ASCII), so that both
-- engines agree on which emails are the same. The unique indexes are named
-- table_column_key, as PostgreSQL names a unique column's constraint, so
-- that the store tells which one a conflict hit by the same name on both
-- engines.
CREATE TABLE members (
    id          TEXT    NOT NULL PRIMARY KEY,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id),
    email       TEXT    NOT NULL,
    email_lower TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    role        TEXT    NOT NULL,
    permissions TEXT    NOT NULL,
    external_id TEXT    NOT NULL DEFAULT '',
    status      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

CREATE UNIQUE INDEX members_email_lower_key ON members (tenant_id, email_lower);
CREATE UNIQUE INDEX members_external_id_key ON members (tenant_id, external_id) WHERE external_id <> '';
CREATE INDEX members_tenant_created ON members (tenant_id, created_at, id);

-- Capabilities and permissions are JSON lists of names; api_access is 0 or
-- 1; max_keys 0 means no limit.
CREATE TABLE plans (
    name         TEXT    NOT NULL PRIMARY KEY,
    capabilities TEXT    NOT NULL,
    permissions  TEXT    NOT NULL,
    api_access   INTEGER NOT NULL,
    max_keys     INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE permissions (
    name        TEXT    NOT NULL PRIMARY KEY,
    description TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

-- The member a key belongs to, or '' for a key of the tenant as a whole.
-- Listed by member, and revoked or moved all at once when the member is
-- removed. The index holds only the keys that belong to a member, so that
-- the others (a million of them in the scale benchmarks) cost it nothing;
-- a query uses it by saying member_id <> '' as well.
ALTER TABLE keys ADD COLUMN member_id TEXT NOT NULL DEFAULT '';
CREATE INDEX keys_member_created ON keys (member_id, created_at DESC, id DESC) WHERE member_id <> '';

ALTER TABLE audit_log ADD COLUMN actor_member TEXT NOT NULL DEFAULT '';

-- +goose Down
DROP INDEX keys_member_created;
ALTER TABLE audit_log DROP COLUMN actor_member;
ALTER TABLE keys DROP COLUMN member_id;
DROP TABLE permissions;
DROP TABLE plans;
DROP TABLE members;
