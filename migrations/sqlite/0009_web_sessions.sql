-- Sessions of the web pages (tower-sessions). Like access tokens, only a SHA-256 digest of
-- the session id the browser holds is stored, every instance sharing the database honours
-- every session, and revoking a person's sessions (logout, password change, deactivation,
-- erasure) takes effect everywhere at once.
CREATE TABLE web_sessions (
    -- SHA-256 of the session id in the cookie.
    id_hash       BLOB   PRIMARY KEY,
    -- The signed-in user, copied out of the data so that all of a person's sessions can be
    -- found; NULL for a session that holds no sign-in.
    user_id       TEXT,
    -- The session's values as JSON.
    data          TEXT    NOT NULL,
    -- Microseconds since the Unix epoch. Moves forward with use (the idle timeout).
    expires_at_us INTEGER NOT NULL,
    -- The absolute end of the session's life, whatever its use.
    ends_at_us    INTEGER NOT NULL
);

CREATE INDEX web_sessions_by_user ON web_sessions (user_id);
CREATE INDEX web_sessions_by_end ON web_sessions (expires_at_us);
