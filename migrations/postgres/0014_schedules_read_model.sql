-- The `schedules` read model: each customer's reminders and recurring payments with their
-- next dates. Serves the reminders pages and the dashboard's upcoming reminders, and tells
-- the scheduler which customers have something due (it then decides from the schedule
-- itself). Derived from the schedule streams; rebuilt from them.
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
    sent         BIGINT NOT NULL,
    last_sent_on TEXT,
    -- The log position of its setting: the stable order of lists.
    set_at       BIGINT NOT NULL
);
CREATE INDEX rm_reminders_by_customer ON rm_reminders (customer, set_at);
CREATE INDEX rm_reminders_due ON rm_reminders (status, next_due);

CREATE TABLE rm_recurring_payments (
    payment_id      TEXT    PRIMARY KEY,
    customer        TEXT    NOT NULL,
    -- Each occurrence's amount in thousandths, and its currency.
    amount_milli    BIGINT NOT NULL,
    currency        TEXT    NOT NULL,
    category        TEXT    NOT NULL,
    description     TEXT    NOT NULL,
    -- 'weekly', 'monthly' or 'yearly'.
    cadence         TEXT    NOT NULL,
    first_due       TEXT    NOT NULL,
    remind_before   BIGINT NOT NULL,
    -- The next occurrence's date and the day its reminder goes out (NULL once sent);
    -- both NULL once cancelled.
    next_due        TEXT,
    next_reminder   TEXT,
    -- 'active' or 'cancelled'.
    status          TEXT    NOT NULL,
    recorded        BIGINT NOT NULL,
    refused         BIGINT NOT NULL,
    last_settled_on TEXT,
    scheduled_at    BIGINT NOT NULL
);
CREATE INDEX rm_recurring_payments_by_customer ON rm_recurring_payments (customer, scheduled_at);
CREATE INDEX rm_recurring_payments_due ON rm_recurring_payments (status, next_due);
