-- The transactional outbox: mail (and later other side effects) to send because of events,
-- written in the same transaction as those events, so a crash can neither lose a mail
-- whose cause was stored nor send one whose cause was not. A dispatcher sends due
-- messages, retries failures with growing delays, and parks a message that keeps failing
-- where an admin can see and retry it.
CREATE TABLE outbox (
    message_id          UUID    PRIMARY KEY,
    -- What to render, e.g. 'password_reset'.
    kind                TEXT    NOT NULL,
    -- What the template needs (JSON). Emptied once sent: it may hold a one-time link.
    payload             TEXT    NOT NULL,
    -- Microseconds since the Unix epoch, like every instant in the schema.
    created_at_us       BIGINT  NOT NULL,
    attempts            INTEGER NOT NULL DEFAULT 0,
    -- Due when in the past; also pushed forward while a dispatcher holds the message, so
    -- that two dispatchers never send it both.
    next_attempt_at_us  BIGINT  NOT NULL,
    sent_at_us          BIGINT,
    parked_at_us        BIGINT,
    last_error          TEXT
);

CREATE INDEX outbox_due ON outbox (next_attempt_at_us) WHERE sent_at_us IS NULL AND parked_at_us IS NULL;
