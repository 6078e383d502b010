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
    key_id    text COLLATE "C" NOT NULL,
    day       bigint NOT NULL,
    kind      text COLLATE "C" NOT NULL,
    value     text COLLATE "C" NOT NULL,
    tenant_id text COLLATE "C" NOT NULL,
    first_at  bigint NOT NULL,
    PRIMARY KEY (key_id, day, kind, value)
);
CREATE INDEX key_sightings_day ON key_sightings (day);

ALTER TABLE keys ADD COLUMN sharing text NOT NULL DEFAULT '';

CREATE TABLE failure_episodes (
    subject text COLLATE "C" NOT NULL PRIMARY KEY,
    started bigint NOT NULL,
    last    bigint NOT NULL
);

-- +goose Down
DROP TABLE failure_episodes;
ALTER TABLE keys DROP COLUMN sharing;
DROP TABLE key_sightings;
