-- +goose Up
-- Times are INTEGER microseconds since the Unix epoch, UTC. Lists of
-- permissions, metadata and restrictions are JSON text.
CREATE TABLE tenants (
    id         TEXT    NOT NULL PRIMARY KEY,
    slug       TEXT    NOT NULL UNIQUE,
    plan       TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE INDEX tenants_created ON tenants (created_at, id);

CREATE TABLE keys (
    id           TEXT    NOT NULL PRIMARY KEY,
    tenant_id    TEXT    NOT NULL REFERENCES tenants (id),
    environment  TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    prefix       TEXT    NOT NULL,
    start        TEXT    NOT NULL,
    last4        TEXT    NOT NULL,
    hash         BLOB    NOT NULL UNIQUE CHECK (length(hash) = 32),
    permissions  TEXT    NOT NULL,
    metadata     TEXT    NOT NULL,
    restrictions TEXT    NOT NULL,
    expires_at   INTEGER,
    rotate_by    INTEGER,
    status       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    created_by   TEXT    NOT NULL,
    updated_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    last_used_at INTEGER,
    last_used_ip TEXT    NOT NULL,
    rotated_from TEXT    NOT NULL,
    rotated_to   TEXT    NOT NULL
) STRICT;

CREATE INDEX keys_created ON keys (created_at DESC, id DESC);
CREATE INDEX keys_tenant_created ON keys (tenant_id, created_at DESC, id DESC);

CREATE TABLE audit_log (
    id        INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    actor_ip  TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    tenant_id TEXT    NOT NULL,
    target    TEXT    NOT NULL,
    related   TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);
CREATE INDEX audit_log_target ON audit_log (target, id);
CREATE INDEX audit_log_related ON audit_log (related, id) WHERE related <> '';

CREATE TABLE changes (
    seq  INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    kind TEXT    NOT NULL,
    id   TEXT    NOT NULL,
    at   INTEGER NOT NULL
) STRICT;

-- +goose Down
DROP TABLE changes;
DROP TABLE audit_log;
DROP TABLE keys;
DROP TABLE tenants;
