-- On SQLite the read models live in a file of their own beside this one (ADR 0030), so that
-- the projections write them without waiting for the event log's writer, nor it for them.
-- Their tables here are derived data: dropped, and made again in the new file from
-- position 0 of the log by the projections as they start. `main.` because the new file is
-- attached under the same table names.
DROP TABLE IF EXISTS main.projection_checkpoints;
DROP TABLE IF EXISTS main.rm_wallets;
DROP TABLE IF EXISTS main.rm_expenses;
DROP TABLE IF EXISTS main.rm_categories;
DROP TABLE IF EXISTS main.rm_limits;
DROP TABLE IF EXISTS main.rm_goals;
DROP TABLE IF EXISTS main.rm_users;
DROP TABLE IF EXISTS main.rm_tickets;
DROP TABLE IF EXISTS main.rm_ticket_comments;
DROP TABLE IF EXISTS main.rm_reminders;
DROP TABLE IF EXISTS main.rm_recurring_payments;
