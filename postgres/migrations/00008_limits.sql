-- +goose Up
-- Rate limits, quotas and credits (docs/limits.md). Rate limits and quotas
-- are JSON: a list of {name, limit, period (a duration such as "1h0m0s"), burst}, and
-- {limit, period}. On tenants and keys, NULL means the plan's; on plans,
-- a quota of '' means none. A key's credits: credits_remaining NULL means
-- no limit; credits_refill_amount NULL no refill, else the amount put back
-- at the start of every credits_refill_interval (day or month), and
-- credits_refilled_at when it was last refilled.
--
-- quota_usage counts the requests of a subject (k:<key id> or t:<tenant
-- id>) in a calendar period (2026-11-28 for a day, 2026-11 for a month, in
-- the tenant's time zone): a row per subject and period, added by the
-- first request of the period.
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
ALTER TABLE keys ADD COLUMN credits_refill_amount bigint;
ALTER TABLE keys ADD COLUMN credits_refill_interval text NOT NULL DEFAULT '';
ALTER TABLE keys ADD COLUMN credits_refilled_at bigint;

CREATE TABLE quota_usage (
    subject text COLLATE "C" NOT NULL,
    period  text COLLATE "C" NOT NULL,
    used    bigint NOT NULL,
    PRIMARY KEY (subject, period)
);

-- +goose Down
DROP TABLE quota_usage;
ALTER TABLE keys DROP COLUMN credits_refilled_at;
ALTER TABLE keys DROP COLUMN credits_refill_interval;
ALTER TABLE keys DROP COLUMN credits_refill_amount;
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
