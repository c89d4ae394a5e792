-- The `tickets` read model: every ticket with where it stands, serving the agents' queue
-- (open tickets, unassigned first, oldest first), each customer's ticket list, and the
-- ticket detail with its comments. Derived from the ticket streams; rebuilt from them.
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

-- What was said on each ticket, in order.
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
