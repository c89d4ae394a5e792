-- The read side (CQRS) on SQLite, in a file of its own beside the event log's (ADR 0030):
-- `<name>.read-models.db` beside `<name>.db`, attached to every reading connection as
-- `read_models`, so that queries name these tables as they would in one file. Every table
-- here is derived from the event log: deleting the file (with its `-wal` and `-shm`) while
-- the server is stopped makes the projections build it again from position 0.
--
-- The same tables as PostgreSQL's, as the SQLite migrations 0010-0018 had left them in the
-- main file (where 0020 drops them).

-- Where each projection stands: the position of the last event it applied (written in the
-- same transaction as the rows it changed, which lie in this file too), the version of its
-- code, and whether it stopped on an event it could not apply.
--
-- Amounts are integers in thousandths of the currency's unit, so sums in SQL are exact;
-- `minor_units` says how to show them.

CREATE TABLE projection_checkpoints (
    name            TEXT    PRIMARY KEY,
    version         INTEGER NOT NULL,
    position        INTEGER NOT NULL,
    -- 'running' or 'failed'.
    status          TEXT    NOT NULL,
    failed_position INTEGER,
    error           TEXT,
    updated_at_us   INTEGER NOT NULL
);

CREATE TABLE rm_wallets (
    owner         TEXT    PRIMARY KEY,
    currency      TEXT    NOT NULL,
    minor_units   INTEGER NOT NULL,
    balance_milli INTEGER NOT NULL,
    saved_milli   INTEGER NOT NULL
);

CREATE TABLE rm_expenses (
    expense_id   TEXT    PRIMARY KEY,
    owner        TEXT    NOT NULL,
    amount_milli INTEGER NOT NULL,
    category     TEXT    NOT NULL,
    -- Lower-cased: categories compare without regard to case.
    category_key TEXT    NOT NULL,
    description  TEXT    NOT NULL,
    -- YYYY-MM-DD, so that text order is date order.
    spent_on     TEXT    NOT NULL,
    receipt_id   TEXT,
    voided       INTEGER NOT NULL,
    void_reason  TEXT
);

CREATE INDEX rm_expenses_by_owner_day ON rm_expenses (owner, spent_on, expense_id);

CREATE TABLE rm_categories (
    owner        TEXT NOT NULL,
    category_key TEXT NOT NULL,
    category     TEXT NOT NULL,
    PRIMARY KEY (owner, category_key)
);

CREATE TABLE rm_limits (
    owner        TEXT    NOT NULL,
    -- The limit's key as JSON (period and category), unique per owner.
    limit_key    TEXT    NOT NULL,
    period       TEXT    NOT NULL,
    first_day    INTEGER,
    category     TEXT,
    category_key TEXT,
    amount_milli INTEGER NOT NULL,
    set_at       INTEGER NOT NULL,
    PRIMARY KEY (owner, limit_key)
);

CREATE TABLE rm_goals (
    goal_id      TEXT    PRIMARY KEY,
    owner        TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    target_milli INTEGER NOT NULL,
    saved_milli  INTEGER NOT NULL,
    due          TEXT,
    reached      INTEGER NOT NULL
);

CREATE INDEX rm_goals_by_owner ON rm_goals (owner);

CREATE TABLE rm_users (
    user_id          TEXT    PRIMARY KEY,
    -- 'customer', 'agent', 'admin' or 'auditor'.
    role             TEXT    NOT NULL,
    -- The sealed profile (name, email, mobile, gender, username); NULL once erased.
    profile          TEXT,
    -- 0 while an admin keeps the account deactivated.
    active           INTEGER NOT NULL,
    erased           INTEGER NOT NULL,
    -- 'self_sign_up', 'admin' (with the admin's id) or 'operator'.
    registered_by    TEXT    NOT NULL,
    registered_by_id TEXT,
    registered_at_us INTEGER NOT NULL,
    -- The log position of the registration: the directory's stable order.
    registered_at    INTEGER NOT NULL,
    password_changed_at_us INTEGER
);

CREATE INDEX rm_users_by_role ON rm_users (role, registered_at);

CREATE TABLE rm_tickets (
    ticket_id       TEXT    PRIMARY KEY,
    customer        TEXT    NOT NULL,
    -- 'unassigned', 'assigned' or 'resolved'.
    status          TEXT    NOT NULL,
    assignee        TEXT,
    -- The limit crossed: 'weekly' or 'monthly' (from first_day), one category or NULL
    -- for all spending, its amount and the spending, in thousandths.
    limit_period    TEXT    NOT NULL,
    limit_first_day INTEGER,
    limit_category  TEXT,
    limit_milli     INTEGER NOT NULL,
    spent_milli     INTEGER NOT NULL,
    period_start    TEXT    NOT NULL,
    expense_id      TEXT    NOT NULL,
    -- The LimitExceeded event that opened it.
    cause           TEXT    NOT NULL,
    opened_at_us    INTEGER NOT NULL,
    -- The log position of the opening: the stable order of queues and lists.
    opened_at       INTEGER NOT NULL,
    -- When it was last given to someone: the process manager gives new tickets to the
    -- agent with the fewest open ones, and among those to the one who waited longest.
    assigned_at_us  INTEGER,
    updated_at_us   INTEGER NOT NULL,
    resolution      TEXT,
    comments        INTEGER NOT NULL
);

CREATE INDEX rm_tickets_by_customer ON rm_tickets (customer, opened_at);

CREATE INDEX rm_tickets_by_status ON rm_tickets (status, assignee, opened_at);

CREATE TABLE rm_ticket_comments (
    ticket_id   TEXT    NOT NULL,
    -- The comment's log position.
    position    INTEGER NOT NULL,
    -- 'agent', 'admin', 'customer' or 'system', and who.
    author_kind TEXT    NOT NULL,
    author_id   TEXT,
    body        TEXT    NOT NULL,
    at_us       INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, position)
);

CREATE TABLE rm_reminders (
    reminder_id  TEXT    PRIMARY KEY,
    customer     TEXT    NOT NULL,
    title        TEXT    NOT NULL,
    first_due    TEXT    NOT NULL,
    -- 'weekly', 'monthly', 'yearly', or NULL for once.
    repeat       TEXT,
    -- The next date it is mailed on; NULL once it has ended.
    next_due     TEXT,
    -- 'active', 'done' (sent, not repeating) or 'cancelled'.
    status       TEXT    NOT NULL,
    sent         INTEGER NOT NULL,
    last_sent_on TEXT,
    -- The log position of its setting: the stable order of lists.
    set_at       INTEGER NOT NULL
);

CREATE INDEX rm_reminders_by_customer ON rm_reminders (customer, set_at);

CREATE INDEX rm_reminders_due ON rm_reminders (status, next_due);

CREATE TABLE rm_recurring_payments (
    payment_id      TEXT    PRIMARY KEY,
    customer        TEXT    NOT NULL,
    -- Each occurrence's amount in thousandths, and its currency.
    amount_milli    INTEGER NOT NULL,
    currency        TEXT    NOT NULL,
    category        TEXT    NOT NULL,
    description     TEXT    NOT NULL,
    -- 'weekly', 'monthly' or 'yearly'.
    cadence         TEXT    NOT NULL,
    first_due       TEXT    NOT NULL,
    remind_before   INTEGER NOT NULL,
    -- The next occurrence's date and the day its reminder goes out (NULL once sent);
    -- both NULL once cancelled.
    next_due        TEXT,
    next_reminder   TEXT,
    -- 'active' or 'cancelled'.
    status          TEXT    NOT NULL,
    recorded        INTEGER NOT NULL,
    refused         INTEGER NOT NULL,
    last_settled_on TEXT,
    scheduled_at    INTEGER NOT NULL
);

CREATE INDEX rm_recurring_payments_by_customer ON rm_recurring_payments (customer, scheduled_at);

CREATE INDEX rm_recurring_payments_due ON rm_recurring_payments (status, next_due);

-- The log these read models were made from: the id of its first event, recorded once the
-- log has one. At each start a file made from another log (the main file restored from a
-- backup of another database), or ahead of this log (the main file restored from an older
-- backup), is emptied and made again from the log (ADR 0030).
CREATE TABLE made_from_log (
    first_event_id BLOB NOT NULL
);
