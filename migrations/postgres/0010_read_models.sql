-- The read side (CQRS). Every table here is derived from the event log and can be dropped
-- and rebuilt from position 0; none of it is a source of truth.

-- Where each projection stands: the position of the last event it applied (written in the
-- same transaction as the rows it changed), the version of its code, and whether it stopped
-- on an event it could not apply.
CREATE TABLE projection_checkpoints (
    name            TEXT    PRIMARY KEY,
    version         BIGINT NOT NULL,
    position        BIGINT NOT NULL,
    -- 'running' or 'failed'.
    status          TEXT    NOT NULL,
    failed_position BIGINT,
    error           TEXT,
    updated_at_us   BIGINT NOT NULL
);

-- Amounts are integers in thousandths of the currency's unit (no currency has more than
-- three decimals), so sums in SQL are exact; `minor_units` says how to show them.

-- One row per customer's wallet.
CREATE TABLE rm_wallets (
    owner         TEXT    PRIMARY KEY,
    currency      TEXT    NOT NULL,
    minor_units   BIGINT NOT NULL,
    balance_milli BIGINT NOT NULL,
    saved_milli   BIGINT NOT NULL
);

-- Every expense, live or voided.
CREATE TABLE rm_expenses (
    expense_id   TEXT    PRIMARY KEY,
    owner        TEXT    NOT NULL,
    amount_milli BIGINT NOT NULL,
    category     TEXT    NOT NULL,
    -- Lower-cased: categories compare without regard to case.
    category_key TEXT    NOT NULL,
    description  TEXT    NOT NULL,
    -- YYYY-MM-DD, so that text order is date order.
    spent_on     TEXT    NOT NULL,
    receipt_id   TEXT,
    voided       BIGINT NOT NULL,
    void_reason  TEXT
);
-- The list, newest first, a page at a time (keyset on spent_on, expense_id).
CREATE INDEX rm_expenses_by_owner_day ON rm_expenses (owner, spent_on, expense_id);

-- Each customer's categories as first typed.
CREATE TABLE rm_categories (
    owner        TEXT NOT NULL,
    category_key TEXT NOT NULL,
    category     TEXT NOT NULL,
    PRIMARY KEY (owner, category_key)
);

-- Spending limits, in the order they were first set.
CREATE TABLE rm_limits (
    owner        TEXT    NOT NULL,
    -- The limit's key as JSON (period and category), unique per owner.
    limit_key    TEXT    NOT NULL,
    period       TEXT    NOT NULL,
    first_day    BIGINT,
    category     TEXT,
    category_key TEXT,
    amount_milli BIGINT NOT NULL,
    set_at       BIGINT NOT NULL,
    PRIMARY KEY (owner, limit_key)
);

-- Savings goals.
CREATE TABLE rm_goals (
    goal_id      TEXT    PRIMARY KEY,
    owner        TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    target_milli BIGINT NOT NULL,
    saved_milli  BIGINT NOT NULL,
    due          TEXT,
    reached      BIGINT NOT NULL
);
CREATE INDEX rm_goals_by_owner ON rm_goals (owner);
