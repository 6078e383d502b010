-- +goose Up
-- The schema of sqlite/migrations/00006_access.sql, column for column: the
-- access model (docs/access.md): members of tenants, plans, the permission
-- catalogue, the member a key belongs to, and the member an audited action
-- was made for. Plans are given to the tenants of a database made before
-- they existed by migration 7, written once for both engines in Go
-- (sqlstore.Migrations).
--
-- A member's email is unique in its tenant compared case-insensitively:
-- email_lower holds it lowercased by the store (Go's strings.ToLower), so
-- that both engines agree on which emails are the same whatever the
-- database's locale. The unique indexes are named table_column_key, as
-- PostgreSQL names a unique column's constraint, so that the store tells
-- which one a conflict hit by the same name on both engines.
CREATE TABLE members (
    id          text COLLATE "C" NOT NULL PRIMARY KEY,
    tenant_id   text COLLATE "C" NOT NULL REFERENCES tenants (id),
    email       text   NOT NULL,
    email_lower text COLLATE "C" NOT NULL,
    name        text   NOT NULL,
    role        text   NOT NULL,
    permissions text   NOT NULL,
    external_id text COLLATE "C" NOT NULL DEFAULT '',
    status      text   NOT NULL,
    created_at  bigint NOT NULL,
    updated_at  bigint NOT NULL
);

CREATE UNIQUE INDEX members_email_lower_key ON members (tenant_id, email_lower);
CREATE UNIQUE INDEX members_external_id_key ON members (tenant_id, external_id) WHERE external_id <> '';
CREATE INDEX members_tenant_created ON members (tenant_id, created_at, id);

-- Capabilities and permissions are JSON lists of names; max_keys 0 means
-- no limit.
CREATE TABLE plans (
    name         text COLLATE "C" NOT NULL PRIMARY KEY,
    capabilities text    NOT NULL,
    permissions  text    NOT NULL,
    api_access   boolean NOT NULL,
    max_keys     bigint  NOT NULL,
    created_at   bigint  NOT NULL,
    updated_at   bigint  NOT NULL
);

CREATE TABLE permissions (
    name        text COLLATE "C" NOT NULL PRIMARY KEY,
    description text   NOT NULL,
    created_at  bigint NOT NULL
);

-- The member a key belongs to, or '' for a key of the tenant as a whole.
-- Listed by member, and revoked or moved all at once when the member is
-- removed. The index holds only the keys that belong to a member, so that
-- the others (a million of them in the scale benchmarks) cost it nothing;
-- a query uses it by saying member_id <> '' as well. Adding
-- a column with a constant default rewrites no row.
ALTER TABLE keys ADD COLUMN member_id text COLLATE "C" NOT NULL DEFAULT '';
CREATE INDEX keys_member_created ON keys (member_id, created_at DESC, id DESC) WHERE member_id <> '';

ALTER TABLE audit_log ADD COLUMN actor_member text COLLATE "C" NOT NULL DEFAULT '';

-- +goose Down
DROP INDEX keys_member_created;
ALTER TABLE audit_log DROP COLUMN actor_member;
ALTER TABLE keys DROP COLUMN member_id;
DROP TABLE permissions;
DROP TABLE plans;
DROP TABLE members;
