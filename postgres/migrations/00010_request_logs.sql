-- +goose Up
-- Request logs (docs/logs.md): one row per verification on any surface,
-- written in batches off the request path and pruned after
-- --log-retention. Empty text for what a request did not have (no key, no
-- route); rl_* NULL when the key had no rate limit. The indexes serve the
-- filters of GET /v1/logs (a tenant's, a key's, one request id) and the
-- pruning (at).
CREATE TABLE request_logs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           bigint NOT NULL,
    request_id   text COLLATE "C" NOT NULL,
    surface      text NOT NULL,
    key_id       text COLLATE "C" NOT NULL,
    tenant_id    text COLLATE "C" NOT NULL,
    member_id    text NOT NULL,
    environment  text NOT NULL,
    method       text NOT NULL,
    route        text NOT NULL,
    path         text NOT NULL,
    status       bigint NOT NULL,
    code         text NOT NULL,
    client_ip    text NOT NULL,
    user_agent   text NOT NULL,
    referrer     text NOT NULL,
    latency_us   bigint NOT NULL,
    rl_limit     bigint,
    rl_remaining bigint,
    rl_reset_ms  bigint
);

CREATE INDEX request_logs_tenant ON request_logs (tenant_id, id);
CREATE INDEX request_logs_key ON request_logs (key_id, id);
CREATE INDEX request_logs_request ON request_logs (request_id);
CREATE INDEX request_logs_at ON request_logs (at);

-- +goose Down
DROP TABLE request_logs;
