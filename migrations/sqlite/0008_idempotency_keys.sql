-- Answers to POST requests that carried an Idempotency-Key header, so that a retry gets the
-- first answer (same status, same body) instead of doing the work again. Keys belong to
-- whoever sent them (a user, or 'anonymous'), and are kept at least 24 hours.
CREATE TABLE idempotency_keys (
    -- 'user:<id>' or 'anonymous'.
    scope          TEXT    NOT NULL,
    -- The client's key.
    key            TEXT    NOT NULL,
    -- SHA-256 of method, path and body: the same key with another request is refused.
    request_hash   BLOB    NOT NULL,
    -- NULL while the first request is still being handled.
    status         INTEGER,
    content_type   TEXT,
    body           BLOB,
    created_at_us  INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);
