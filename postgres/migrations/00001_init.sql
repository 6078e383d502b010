-- +goose Up
-- The schema of sqlite/migrations, column for column. Times are bigint
-- microseconds since the Unix epoch, UTC, as in SQLite, so that both stores
-- keep a time to the microsecond and page with the same cursors. Lists of
-- permissions, metadata and restrictions are JSON text. Ids are compared
-- byte by byte (COLLATE "C"), as SQLite compares them, whatever the locale
-- of the database.
CREATE TABLE tenants (
    id         text COLLATE "C" NOT NULL PRIMARY KEY,
    slug       text COLLATE "C" NOT NULL UNIQUE,
    plan       text   NOT NULL,
    status     text   NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL
);

CREATE INDEX tenants_created ON tenants (created_at, id);

CREATE TABLE keys (
    id           text COLLATE "C" NOT NULL PRIMARY KEY,
    tenant_id    text COLLATE "C" NOT NULL REFERENCES tenants (id),
    environment  text   NOT NULL,
    name         text   NOT NULL,
    prefix       text   NOT NULL,
    start        text   NOT NULL,
    last4        text   NOT NULL,
    hash         bytea  NOT NULL UNIQUE CHECK (octet_length(hash) = 32),
    permissions  text   NOT NULL,
    metadata     text   NOT NULL,
    restrictions text   NOT NULL,
    expires_at   bigint,
    rotate_by    bigint,
    status       text   NOT NULL,
    created_at   bigint NOT NULL,
    created_by   text   NOT NULL,
    updated_at   bigint NOT NULL,
    revoked_at   bigint,
    last_used_at bigint,
    last_used_ip text   NOT NULL,
    rotated_from text   NOT NULL,
    rotated_to   text   NOT NULL
);

CREATE INDEX keys_created ON keys (created_at DESC, id DESC);
CREATE INDEX keys_tenant_created ON keys (tenant_id, created_at DESC, id DESC);

CREATE TABLE audit_log (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        bigint NOT NULL,
    actor     text   NOT NULL,
    actor_ip  text   NOT NULL,
    action    text   NOT NULL,
    tenant_id text COLLATE "C" NOT NULL,
    target    text COLLATE "C" NOT NULL,
    related   text COLLATE "C" NOT NULL DEFAULT ''
);

CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);
CREATE INDEX audit_log_target ON audit_log (target, id);
CREATE INDEX audit_log_related ON audit_log (related, id) WHERE related <> '';

-- Sequence numbers are handed out in commit order: every transaction that
-- appends a change holds the store's write lock (an advisory lock) from its
-- start to its commit.
CREATE TABLE changes (
    seq  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind text   NOT NULL,
    id   text COLLATE "C" NOT NULL,
    at   bigint NOT NULL
);

-- +goose Down
DROP TABLE changes;
DROP TABLE audit_log;
DROP TABLE keys;
DROP TABLE tenants;
