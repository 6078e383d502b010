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
    id             text COLLATE "C"    NOT NULL PRIMARY KEY,
    tenant_id      text COLLATE "C"    NOT NULL,
    url            text COLLATE "C"    NOT NULL,
    description    text COLLATE "C"    NOT NULL,
    events         text COLLATE "C"    NOT NULL,
    enabled        bigint NOT NULL,
    secret         text COLLATE "C"    NOT NULL,
    previous_secret text COLLATE "C"   NOT NULL,
    previous_until bigint,
    created_at     bigint NOT NULL,
    updated_at     bigint NOT NULL
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, id);

CREATE TABLE webhook_events (
    id        text COLLATE "C"    NOT NULL PRIMARY KEY,
    type      text COLLATE "C"    NOT NULL,
    tenant_id text COLLATE "C"    NOT NULL,
    at        bigint NOT NULL,
    data      text COLLATE "C"    NOT NULL
);
CREATE INDEX webhook_events_at ON webhook_events (at);

CREATE TABLE webhook_deliveries (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     text COLLATE "C"    NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    endpoint_id  text COLLATE "C"    NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    status       text COLLATE "C"    NOT NULL,
    attempts     bigint NOT NULL,
    next_at      bigint NOT NULL,
    lease_until  bigint NOT NULL,
    last_status  bigint NOT NULL,
    last_error   text COLLATE "C"    NOT NULL,
    delivered_at bigint,
    created_at   bigint NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);

CREATE TABLE webhook_attempts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id bigint NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    at          bigint NOT NULL,
    status      bigint NOT NULL,
    error       text COLLATE "C"    NOT NULL,
    duration_ms bigint NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);

CREATE TABLE webhook_marks (
    kind   text COLLATE "C"    NOT NULL,
    key_id text COLLATE "C"    NOT NULL,
    due    bigint NOT NULL,
    PRIMARY KEY (kind, key_id, due)
);

-- +goose Down
DROP TABLE webhook_marks;
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_events;
DROP TABLE webhook_endpoints;
