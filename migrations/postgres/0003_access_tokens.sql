-- Bearer tokens of the JSON API. Only a SHA-256 digest of each token is stored, so a copy
-- of the database does not let anyone sign in. Every instance sharing the database accepts
-- every token; revoking one (logout, password change) takes effect everywhere.
CREATE TABLE access_tokens (
    -- SHA-256 of the token the client holds.
    token_hash    BYTEA   PRIMARY KEY,
    user_id       TEXT    NOT NULL,
    -- Microseconds since the Unix epoch, like the event store's instants.
    created_at_us BIGINT  NOT NULL,
    -- Moves forward as the token is used; the idle timeout counts from here.
    last_used_us  BIGINT  NOT NULL,
    -- The absolute end of the token's life, whatever its use.
    expires_at_us BIGINT  NOT NULL,
    -- Set when revoked; a revoked token never works again.
    revoked_at_us BIGINT
);

-- Revoking every token of a person (password change, erasure) finds them by user.
CREATE INDEX access_tokens_by_user ON access_tokens (user_id);
