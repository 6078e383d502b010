-- +goose Up
-- Webhooks (docs/webhooks.md). webhook_endpoints: tenant_id '' for the
-- operator's endpoint (every tenant's events); events as ",type,type,"
-- (or ",*,") so that a LIKE finds a type; the signing secret as it is
-- sent (it must sign, so it cannot be hashed), and the one before a
-- rotation until previous_until. webhook_events is the outbox: written in
-- the transaction of the change, with a row of webhook_deliveries per
-- endpoint that wants it; a node takes a delivery by setting lease_until,
-- and each try is a row of webhook_attempts. webhook_marks make the
-- events of a date (a key's expiry, its rotate_by) be raised once.
CREATE TABLE webhook_endpoints (
    id             TEXT    NOT NULL PRIMARY KEY,
    tenant_id      TEXT    NOT NULL,
    url            TEXT    NOT NULL,
    description    TEXT    NOT NULL,
    events         TEXT    NOT NULL,
    enabled        INTEGER NOT NULL,
    secret         TEXT    NOT NULL,
    previous_secret TEXT   NOT NULL,
    previous_until INTEGER,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, id);

CREATE TABLE webhook_events (
    id        TEXT    NOT NULL PRIMARY KEY,
    type      TEXT    NOT NULL,
    tenant_id TEXT    NOT NULL,
    at        INTEGER NOT NULL,
    data      TEXT    NOT NULL
) STRICT;
CREATE INDEX webhook_events_at ON webhook_events (at);

CREATE TABLE webhook_deliveries (
    id           INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT    NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    endpoint_id  TEXT    NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    status       TEXT    NOT NULL,
    attempts     INTEGER NOT NULL,
    next_at      INTEGER NOT NULL,
    lease_until  INTEGER NOT NULL,
    last_status  INTEGER NOT NULL,
    last_error   TEXT    NOT NULL,
    delivered_at INTEGER,
    created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);

CREATE TABLE webhook_attempts (
    id          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    delivery_id INTEGER NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    status      INTEGER NOT NULL,
    error       TEXT    NOT NULL,
    duration_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);

CREATE TABLE webhook_marks (
    kind   TEXT    NOT NULL,
    key_id TEXT    NOT NULL,
    due    INTEGER NOT NULL,
    PRIMARY KEY (kind, key_id, due)
) STRICT, WITHOUT ROWID;

-- +goose Down
DROP TABLE webhook_marks;
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_events;
DROP TABLE webhook_endpoints;
