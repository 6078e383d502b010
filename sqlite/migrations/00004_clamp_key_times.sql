-- +goose Up
-- Releases before dates were bounded to 100 years ahead stored any expiry
-- or rotate-by time, such as 9999-12-31T23:30:00-23:59: year 10000 in UTC,
-- which no JSON or RFC 3339 answer can hold, so that every list including
-- the key failed, and a revoked key could not be changed to repair it.
-- Each such time is brought down to 9999-12-31T23:59:59.999999Z
-- (253402300799999999 microseconds), the last one every surface can write:
-- it is as far from reach as the old one, so no key's status changes. These
-- are the only times a caller sets; the others are the server's clock.
--
-- No audit entry: nobody acted, and what the key allows is unchanged. Each
-- key changed gets a change in the feed, so that a server already running
-- on this database drops the time it has cached (the migration holds the
-- only write transaction, so sequence numbers stay in commit order).
INSERT INTO changes (kind, id, at)
SELECT 'key', id, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)
FROM keys
WHERE expires_at > 253402300799999999 OR rotate_by > 253402300799999999
ORDER BY id;

UPDATE keys SET expires_at = 253402300799999999 WHERE expires_at > 253402300799999999;
UPDATE keys SET rotate_by = 253402300799999999 WHERE rotate_by > 253402300799999999;

-- +goose Down
-- The times before the clamp are not kept: nothing to undo.
