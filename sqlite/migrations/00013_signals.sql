-- +goose Up
-- The signals of the request logs (docs/signals.md). key_sightings: the
-- client networks, user agents and referrer origins each key was used
-- from, per UTC day (day in Unix seconds), written by the request-log
-- writer; keys.sharing holds the evidence of a key judged shared (JSON,
-- '' for none). failure_episodes: per tenant ('t:' and its id, 't:' for
-- unknown keys) and per key ('k:' and its id), when the current episode
-- of refusal spikes started and was last seen (Unix microseconds), so
-- that several nodes raise auth.failure_spike once per episode.
CREATE TABLE key_sightings (
    key_id    TEXT    NOT NULL,
    day       INTEGER NOT NULL,
    kind      TEXT    NOT NULL,
    value     TEXT    NOT NULL,
    tenant_id TEXT    NOT NULL,
    first_at  INTEGER NOT NULL,
    PRIMARY KEY (key_id, day, kind, value)
) STRICT, WITHOUT ROWID;
CREATE INDEX key_sightings_day ON key_sightings (day);

ALTER TABLE keys ADD COLUMN sharing TEXT NOT NULL DEFAULT '';

CREATE TABLE failure_episodes (
    subject TEXT    NOT NULL PRIMARY KEY,
    started INTEGER NOT NULL,
    last    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- +goose Down
DROP TABLE failure_episodes;
ALTER TABLE keys DROP COLUMN sharing;
DROP TABLE key_sightings;
