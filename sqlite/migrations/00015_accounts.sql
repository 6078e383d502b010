-- +goose Up
-- Signing in to the dashboard (docs/dashboard.md). members.password_hash
-- is the member's argon2id hash in the PHC form ('' for none: the member
-- cannot sign in with a password); members.session_epoch is raised to
-- end every session of the member at once ("sign out everywhere", a new
-- password): a session remembers the epoch it began in. sessions holds
-- the dashboard's sessions by the SHA-256 of their token (the cookie's
-- value is never stored), with their data (the session library's) and
-- when they expire (Unix microseconds). sign_in_failures counts failed
-- sign-ins per account ('e:' and the email, lowercased) and per client
-- address ('a:' and the address), for the sign-in limits.
ALTER TABLE members ADD COLUMN password_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE members ADD COLUMN session_epoch INTEGER NOT NULL DEFAULT 0;
CREATE INDEX members_email_lower ON members (email_lower);

CREATE TABLE sessions (
    token_hash BLOB    NOT NULL PRIMARY KEY,
    data       BLOB    NOT NULL,
    expiry     INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX sessions_expiry ON sessions (expiry);

CREATE TABLE sign_in_failures (
    id      INTEGER NOT NULL PRIMARY KEY,
    subject TEXT    NOT NULL,
    at      INTEGER NOT NULL
) STRICT;
CREATE INDEX sign_in_failures_subject ON sign_in_failures (subject, at);
CREATE INDEX sign_in_failures_at ON sign_in_failures (at);

-- +goose Down
DROP TABLE sign_in_failures;
DROP TABLE sessions;
DROP INDEX members_email_lower;
ALTER TABLE members DROP COLUMN session_epoch;
ALTER TABLE members DROP COLUMN password_hash;
