-- The event store: the single source of truth of the product. Every change to every
-- aggregate is one row here; read models are derived from it and can be rebuilt.
--
-- Positions are assigned by the application's group committer while it holds the
-- transaction-scoped advisory lock 'event store append' (pg_advisory_xact_lock): every
-- append transaction of every instance is serialised, positions are contiguous and commit
-- in order, so a reader that sees position N also sees every position below N (ADR 0003).
-- There is deliberately no sequence: a sequence hands out numbers at insert time, not at
-- commit time, which is how readers of other event stores skip events.
CREATE TABLE events (
    -- Place in the global log, from 1, without gaps.
    position        BIGINT  PRIMARY KEY,
    -- Which aggregate instance this event belongs to, e.g. 'wallet-<uuid>'.
    stream_id       TEXT    NOT NULL,
    -- 1 for the first event of a stream; UNIQUE(stream_id, version) is the optimistic
    -- concurrency guard of last resort.
    version         BIGINT  NOT NULL CHECK (version >= 1),
    event_id        UUID    NOT NULL UNIQUE,
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL CHECK (schema_version >= 1),
    -- Duplicated out of metadata so that an idempotent retry is found by index.
    command_id      UUID    NOT NULL,
    -- Duplicated out of metadata (microseconds since the Unix epoch) for time-range reads;
    -- the same representation as on SQLite keeps the two adapters identical.
    recorded_at_us  BIGINT  NOT NULL,
    -- JSON (not JSONB): stored byte for byte as the application serialised it.
    payload         JSON    NOT NULL,
    -- command_id, correlation_id, causation_id, actor, recorded_at.
    metadata        JSON    NOT NULL,
    UNIQUE (stream_id, version)
);

CREATE INDEX events_by_command ON events (command_id);

-- Events are facts: corrections are new events, never edits. The schema refuses any
-- attempt to change, remove or truncate stored events, whoever makes it.
CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only: % is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER events_are_never_updated BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER events_are_never_deleted BEFORE DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER events_are_never_truncated BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();
