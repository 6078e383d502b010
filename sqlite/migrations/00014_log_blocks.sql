-- +goose Up
-- The request logs in blocks (docs/logs.md, "How it is stored"): a row
-- per write of up to 4096 entries instead of a row per entry, so that
-- logging costs a node a small part of what four indexes per entry did.
-- request_log_blocks.data is a JSON array (UTF-8) of entries, each an array of
-- the columns of the table it replaces (id, at, request_id, surface,
-- key_id, tenant_id, member_id, environment, method, route, path, status,
-- code, client_ip, user_agent, referrer, latency_us, rl_limit,
-- rl_remaining, rl_reset_ms); bloom is a Bloom filter of the entries'
-- request ids (NULL: none, look inside); min_at and max_at bound the
-- entries' times. request_log_needles names the tenants ('t:' and its id)
-- and keys ('k:' and its id) each block holds. request_log_ids.next is
-- the id of the next entry: a write takes as many as it has entries.
-- The entries stored until now move into blocks of 1024, as plain JSON;
-- the blocks Keyward writes are compressed (a zero byte, then S2), which
-- SQL cannot read: Down moves back only the plain ones.
CREATE TABLE request_log_blocks (
    id     INTEGER NOT NULL PRIMARY KEY,
    last_id INTEGER NOT NULL,
    min_at INTEGER NOT NULL,
    max_at INTEGER NOT NULL,
    n      INTEGER NOT NULL,
    bloom  BLOB,
    data   BLOB    NOT NULL
) STRICT;
CREATE INDEX request_log_blocks_max_at ON request_log_blocks (max_at);

CREATE TABLE request_log_needles (
    needle   TEXT    NOT NULL,
    block_id INTEGER NOT NULL,
    PRIMARY KEY (needle, block_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX request_log_needles_block ON request_log_needles (block_id);

CREATE TABLE request_log_ids (next INTEGER NOT NULL) STRICT;
INSERT INTO request_log_ids (next) SELECT COALESCE(MAX(id), 0) + 1 FROM request_logs;

INSERT INTO request_log_blocks (id, last_id, min_at, max_at, n, bloom, data)
SELECT MIN(id), MAX(id), MIN(at), MAX(at), COUNT(*), NULL, CAST(
       json_group_array(json_array(id, at, request_id, surface, key_id, tenant_id, member_id, environment, method, route, path,
                                   status, code, client_ip, user_agent, referrer, latency_us, rl_limit, rl_remaining, rl_reset_ms)) AS BLOB)
FROM (SELECT * FROM request_logs ORDER BY id) GROUP BY (id - 1) / 1024;
INSERT INTO request_log_needles (needle, block_id)
SELECT DISTINCT 't:' || r.tenant_id, b.id FROM request_logs r JOIN request_log_blocks b ON r.id BETWEEN b.id AND b.last_id;
INSERT INTO request_log_needles (needle, block_id)
SELECT DISTINCT 'k:' || r.key_id, b.id FROM request_logs r JOIN request_log_blocks b ON r.id BETWEEN b.id AND b.last_id WHERE r.key_id <> '';
DROP TABLE request_logs;

-- A claim of webhook deliveries looks for an endpoint's delivery under
-- way (one per endpoint at a time): by endpoint and status, not through
-- every delivery an endpoint ever had.
CREATE INDEX webhook_deliveries_endpoint_status ON webhook_deliveries (endpoint_id, status, lease_until);

-- +goose Down
DROP INDEX webhook_deliveries_endpoint_status;
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
INSERT INTO request_logs
SELECT e.value ->> 0, e.value ->> 1, e.value ->> 2, e.value ->> 3, e.value ->> 4, e.value ->> 5, e.value ->> 6, e.value ->> 7,
       e.value ->> 8, e.value ->> 9, e.value ->> 10, e.value ->> 11, e.value ->> 12, e.value ->> 13, e.value ->> 14,
       e.value ->> 15, e.value ->> 16, e.value ->> 17, e.value ->> 18, e.value ->> 19
FROM (SELECT data FROM request_log_blocks WHERE hex(substr(data, 1, 1)) = '5B') b, json_each(CAST(b.data AS TEXT)) e;
DROP TABLE request_log_ids;
DROP TABLE request_log_needles;
DROP TABLE request_log_blocks;
