-- +goose Up
-- A rotation points the predecessors of the key it rotates that are still
-- in their grace period to the new key (sqlstore.repointPredecessors), so
-- that each names the newest key of its chain: it finds them by rotated_to.
CREATE INDEX keys_rotated_to ON keys (rotated_to);

-- +goose Down
DROP INDEX keys_rotated_to;
