-- Where each process manager stands in the log. A process manager acts on an event, then
-- moves its checkpoint; what it does for an event is idempotent (its commands carry ids
-- derived from the event, its mail goes in the same append as its command), so an event
-- handled again after a crash doubles nothing.
CREATE TABLE process_checkpoints (
    name          TEXT    PRIMARY KEY,
    position      INTEGER NOT NULL,
    updated_at_us INTEGER NOT NULL
);
