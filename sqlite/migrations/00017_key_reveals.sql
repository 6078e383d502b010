-- +goose Up
-- The successors of a rotation with notice (keyward keys rotate-all): each
-- waits to be revealed once by its tenant, in the dashboard, which gives
-- it a new secret then (the one it was made with was never shown). And the
-- sign-in links of a member, found by member: a new password, a new
-- invitation and "sign out everywhere" withdraw the unused ones.
CREATE TABLE key_reveals (
    key_id     TEXT    NOT NULL PRIMARY KEY,
    tenant_id  TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX key_reveals_tenant ON key_reveals (tenant_id);
CREATE INDEX sign_in_links_member ON sign_in_links (member_id);

-- +goose Down
DROP INDEX sign_in_links_member;
DROP TABLE key_reveals;
