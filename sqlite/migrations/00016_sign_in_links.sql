-- +goose Up
-- One-time sign-in links (docs/dashboard.md): an invitation lets a member
-- set a password; a portal link signs a provider's customer in. Stored by
-- the SHA-256 of their token (the URL's secret is never stored), used at
-- most once (used_at, set by a conditional UPDATE), until expires_at (Unix
-- microseconds). return_url is where a portal session's "back" goes.
CREATE TABLE sign_in_links (
    token_hash BLOB    NOT NULL PRIMARY KEY,
    kind       TEXT    NOT NULL,
    member_id  TEXT    NOT NULL,
    tenant_id  TEXT    NOT NULL,
    return_url TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
) STRICT, WITHOUT ROWID;
CREATE INDEX sign_in_links_expires_at ON sign_in_links (expires_at);

-- +goose Down
DROP TABLE sign_in_links;
