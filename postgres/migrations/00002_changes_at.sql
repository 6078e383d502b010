-- +goose Up
-- The change feed is pruned by time (Store.PruneChanges).
CREATE INDEX changes_at ON changes (at);

-- +goose Down
DROP INDEX changes_at;
