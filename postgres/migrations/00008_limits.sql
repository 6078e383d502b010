-- +goose Up
-- Rate limits, quotas and credits (docs/limits.md). Rate limits and quotas
-- are JSON: a list of {name, limit, period (a duration such as "1h0m0s"), burst}, and
-- {limit, period}. On tenants and keys, NULL means the plan's; on plans,
-- a quota of '' means none. A key's credits: credits_remaining NULL means
-- no limit; credits_refill is '' or {amount, interval}, and
-- credits_refilled_at when it was last refilled.
ALTER TABLE plans ADD COLUMN key_rate_limits text NOT NULL DEFAULT '[]';
ALTER TABLE plans ADD COLUMN key_quota text NOT NULL DEFAULT '';
ALTER TABLE plans ADD COLUMN tenant_rate_limits text NOT NULL DEFAULT '[]';
ALTER TABLE plans ADD COLUMN tenant_quota text NOT NULL DEFAULT '';

ALTER TABLE tenants ADD COLUMN rate_limits text;
ALTER TABLE tenants ADD COLUMN quota text;
ALTER TABLE tenants ADD COLUMN time_zone text NOT NULL DEFAULT '';

ALTER TABLE keys ADD COLUMN rate_limits text;
ALTER TABLE keys ADD COLUMN quota text;
ALTER TABLE keys ADD COLUMN credits_remaining bigint;
ALTER TABLE keys ADD COLUMN credits_refill text NOT NULL DEFAULT '';
ALTER TABLE keys ADD COLUMN credits_refilled_at bigint;

-- +goose Down
ALTER TABLE keys DROP COLUMN credits_refilled_at;
ALTER TABLE keys DROP COLUMN credits_refill;
ALTER TABLE keys DROP COLUMN credits_remaining;
ALTER TABLE keys DROP COLUMN quota;
ALTER TABLE keys DROP COLUMN rate_limits;
ALTER TABLE tenants DROP COLUMN time_zone;
ALTER TABLE tenants DROP COLUMN quota;
ALTER TABLE tenants DROP COLUMN rate_limits;
ALTER TABLE plans DROP COLUMN tenant_quota;
ALTER TABLE plans DROP COLUMN tenant_rate_limits;
ALTER TABLE plans DROP COLUMN key_quota;
ALTER TABLE plans DROP COLUMN key_rate_limits;
