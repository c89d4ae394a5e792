-- Least privilege (ADR 0024): the running application belongs to the group role
-- expense_tracker_app, which may read and append the log but never change it, and owns
-- only what it rebuilds. Migrations run under another role, the owner of everything else.
-- deploy/README.md ("Two database roles") shows the set-up; with one role for both (the
-- simple case) that role is made a member of expense_tracker_app and nothing changes.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'expense_tracker_app') THEN
        CREATE ROLE expense_tracker_app NOLOGIN;
    END IF;
EXCEPTION
    -- Another database on the same server created it at the same moment.
    WHEN duplicate_object OR unique_violation THEN NULL;
    WHEN insufficient_privilege THEN
        RAISE EXCEPTION 'the role expense_tracker_app does not exist and % may not create roles', current_user
            USING HINT = 'As a superuser: CREATE ROLE expense_tracker_app NOLOGIN; GRANT expense_tracker_app TO '
                         || current_user || '; (deploy/README.md, "Two database roles")';
END
$$;

DO $$
BEGIN
    -- The migrating role hands the read models to expense_tracker_app below and alters them
    -- in later migrations: both need membership (a superuser has it already).
    IF NOT pg_has_role(current_user, 'expense_tracker_app', 'MEMBER') THEN
        EXECUTE format('GRANT expense_tracker_app TO %I', current_user);
    END IF;
    -- A blue/green rebuild creates its twin tables beside the live ones.
    EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO expense_tracker_app', current_schema());
END
$$;

-- At start the application checks that every migration is applied (and applies none).
GRANT SELECT ON _sqlx_migrations TO expense_tracker_app;

-- The log and what watches it: read and append only. No UPDATE, DELETE or TRUNCATE, so a
-- stolen application password cannot rewrite history, whatever the triggers would say.
GRANT SELECT, INSERT ON events, seals, audit_reads TO expense_tracker_app;
-- Unique values are claimed and released with the events that make and free them.
GRANT SELECT, INSERT, DELETE ON unique_claims TO expense_tracker_app;

-- The application's own working state.
GRANT SELECT, INSERT, UPDATE, DELETE ON
    access_tokens, idempotency_keys, login_failures, outbox, password_resets,
    personal_data_keys, process_checkpoints, projection_checkpoints, receipts, web_sessions
    TO expense_tracker_app;

-- Read models are derived and rebuilt blue/green (twin tables created, swapped by renaming,
-- the old ones dropped), which only their owner may do.
ALTER TABLE rm_categories OWNER TO expense_tracker_app;
ALTER TABLE rm_expenses OWNER TO expense_tracker_app;
ALTER TABLE rm_goals OWNER TO expense_tracker_app;
ALTER TABLE rm_limits OWNER TO expense_tracker_app;
ALTER TABLE rm_recurring_payments OWNER TO expense_tracker_app;
ALTER TABLE rm_reminders OWNER TO expense_tracker_app;
ALTER TABLE rm_ticket_comments OWNER TO expense_tracker_app;
ALTER TABLE rm_tickets OWNER TO expense_tracker_app;
ALTER TABLE rm_users OWNER TO expense_tracker_app;
ALTER TABLE rm_wallets OWNER TO expense_tracker_app;
