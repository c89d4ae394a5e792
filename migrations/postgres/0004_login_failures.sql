-- Failed logins, counted per account and per client address to slow down password
-- guessing: past the limits, logins are refused with 429 for a while. Shared through the
-- database so that every instance counts the same attempts. Subjects are SHA-256 digests
-- ('account:' or 'ip:' followed by the login or the address), never the login itself.
CREATE TABLE login_failures (
    subject_hash  BYTEA   NOT NULL,
    -- Microseconds since the Unix epoch.
    failed_at_us  BIGINT  NOT NULL
);

CREATE INDEX login_failures_by_subject ON login_failures (subject_hash, failed_at_us);
