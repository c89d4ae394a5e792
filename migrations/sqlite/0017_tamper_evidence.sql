-- Tamper evidence (ADR 0018). Each event's link in a SHA-256 chain over the global log:
-- chain = H(chain of the previous position, position, version, digest of the stored columns).
-- NULL only for events stored before this migration, until the first start chains them.
ALTER TABLE events ADD COLUMN chain BLOB;

-- Events stay append-only; the one write allowed after the insert is giving a pre-chain
-- event its chain value, once.
DROP TRIGGER events_are_never_updated;
CREATE TRIGGER events_are_never_updated
BEFORE UPDATE OF position, stream_id, version, event_id, event_type, schema_version,
                 command_id, recorded_at_us, payload, metadata ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: UPDATE is refused');
END;
CREATE TRIGGER events_chain_is_written_once BEFORE UPDATE OF chain ON events
WHEN OLD.chain IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: a chain value is written once');
END;

-- Seals: the chain's value at a position, recorded now and then, so that removing the
-- newest events (which leaves a shorter but consistent chain) is detected. A copy kept
-- outside the database (`expense-tracker seal`) also catches a rewrite of the whole chain.
CREATE TABLE seals (
    position      BIGINT  PRIMARY KEY,
    chain         BLOB    NOT NULL,
    sealed_at_us  BIGINT  NOT NULL
);
CREATE TRIGGER seals_are_never_updated BEFORE UPDATE ON seals
BEGIN
    SELECT RAISE(ABORT, 'seals are append-only: UPDATE is refused');
END;
CREATE TRIGGER seals_are_never_deleted BEFORE DELETE ON seals
BEGIN
    SELECT RAISE(ABORT, 'seals are append-only: DELETE is refused');
END;

-- Every read an auditor makes of someone's history: who, what, whose, when. Shown to
-- admins; append-only like the log it watches.
CREATE TABLE audit_reads (
    read_id       TEXT    PRIMARY KEY,
    auditor_id    TEXT    NOT NULL,
    what          TEXT    NOT NULL,
    customer_id   TEXT,
    read_at_us    BIGINT  NOT NULL
);
CREATE INDEX audit_reads_by_time ON audit_reads (read_at_us);
CREATE TRIGGER audit_reads_are_never_updated BEFORE UPDATE ON audit_reads
BEGIN
    SELECT RAISE(ABORT, 'audit reads are append-only: UPDATE is refused');
END;
CREATE TRIGGER audit_reads_are_never_deleted BEFORE DELETE ON audit_reads
BEGIN
    SELECT RAISE(ABORT, 'audit reads are append-only: DELETE is refused');
END;
