-- One-time password-reset links. Only a SHA-256 digest of each token is stored; a token
-- works once, for 30 minutes, and every open one dies when the account's password changes.
CREATE TABLE password_resets (
    token_hash     BLOB    PRIMARY KEY,
    user_id        TEXT    NOT NULL,
    expires_at_us  INTEGER NOT NULL,
    used_at_us     INTEGER
);

CREATE INDEX password_resets_by_user ON password_resets (user_id);
