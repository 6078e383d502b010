-- +goose Up
-- Usage counts (docs/logs.md, "Usage"): the requests of each key (key_id
-- and tenant_id empty for none) per hour and per day (granularity 'hour'
-- or 'day', start in Unix seconds, UTC) and outcome (code empty when the
-- key was accepted). The request-log writer adds to them in the
-- transaction that writes its entries; pruned after --usage-retention.
CREATE TABLE usage_counts (
    tenant_id   text COLLATE "C" NOT NULL,
    key_id      text COLLATE "C" NOT NULL,
    granularity text COLLATE "C" NOT NULL CHECK (granularity IN ('hour', 'day')),
    start       bigint NOT NULL,
    code        text COLLATE "C" NOT NULL,
    count       bigint NOT NULL,
    PRIMARY KEY (tenant_id, key_id, granularity, start, code)
);

CREATE INDEX usage_counts_key ON usage_counts (key_id, granularity, start);
CREATE INDEX usage_counts_start ON usage_counts (start);

-- +goose Down
DROP TABLE usage_counts;
