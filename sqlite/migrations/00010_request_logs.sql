-- +goose Up
-- Request logs (docs/logs.md): one row per verification on any surface,
-- written in batches off the request path and pruned after
-- --log-retention. Empty text for what a request did not have (no key, no
-- route); rl_* NULL when the key had no rate limit. The indexes serve the
-- filters of GET /v1/logs (a tenant's, a key's, one request id) and the
-- pruning (at).
CREATE TABLE request_logs (
    id           INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    request_id   TEXT    NOT NULL,
    surface      TEXT    NOT NULL,
    key_id       TEXT    NOT NULL,
    tenant_id    TEXT    NOT NULL,
    member_id    TEXT    NOT NULL,
    environment  TEXT    NOT NULL,
    method       TEXT    NOT NULL,
    route        TEXT    NOT NULL,
    path         TEXT    NOT NULL,
    status       INTEGER NOT NULL,
    code         TEXT    NOT NULL,
    client_ip    TEXT    NOT NULL,
    user_agent   TEXT    NOT NULL,
    referrer     TEXT    NOT NULL,
    latency_us   INTEGER NOT NULL,
    rl_limit     INTEGER,
    rl_remaining INTEGER,
    rl_reset_ms  INTEGER
) STRICT;

CREATE INDEX request_logs_tenant ON request_logs (tenant_id, id);
CREATE INDEX request_logs_key ON request_logs (key_id, id);
CREATE INDEX request_logs_request ON request_logs (request_id);
CREATE INDEX request_logs_at ON request_logs (at);

-- +goose Down
DROP TABLE request_logs;
