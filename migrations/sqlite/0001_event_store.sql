-- The event store: the single source of truth of the product. Every change to every
-- aggregate is one row here; read models are derived from it and can be rebuilt.
--
-- Positions are assigned by the application's group committer, which holds SQLite's write
-- lock (BEGIN IMMEDIATE) while it reads the head and inserts: positions are therefore
-- contiguous and committed in order, so a reader that has seen position N has seen every
-- position below N (ADR 0003).
CREATE TABLE events (
    -- Place in the global log, from 1, without gaps. The rowid, so reading the log in
    -- order and finding its head are both a walk of the table's own b-tree.
    position        INTEGER PRIMARY KEY,
    -- Which aggregate instance this event belongs to, e.g. 'wallet-<uuid>'.
    stream_id       TEXT    NOT NULL,
    -- 1 for the first event of a stream; UNIQUE(stream_id, version) is the optimistic
    -- concurrency guard of last resort.
    version         INTEGER NOT NULL CHECK (version >= 1),
    event_id        BLOB    NOT NULL UNIQUE,
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL CHECK (schema_version >= 1),
    -- Duplicated out of metadata so that an idempotent retry is found by index.
    command_id      BLOB    NOT NULL,
    -- Duplicated out of metadata (microseconds since the Unix epoch) for time-range reads.
    recorded_at_us  INTEGER NOT NULL,
    -- JSON text, stored byte for byte as the application serialised it.
    payload         TEXT    NOT NULL,
    -- JSON: command_id, correlation_id, causation_id, actor, recorded_at.
    metadata        TEXT    NOT NULL,
    UNIQUE (stream_id, version)
);

CREATE INDEX events_by_command ON events (command_id);

-- Events are facts: corrections are new events, never edits. The schema refuses any
-- attempt to change or remove a stored event, whoever makes it.
CREATE TRIGGER events_are_never_updated BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: UPDATE is refused');
END;

CREATE TRIGGER events_are_never_deleted BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: DELETE is refused');
END;
