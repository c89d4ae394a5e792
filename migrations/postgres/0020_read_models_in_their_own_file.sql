-- Moving the read models to a file of their own (ADR 0030) is a SQLite matter: on
-- PostgreSQL every writer has its own connection and row locks, and the read models stay
-- in the same database. This file keeps the two folders' numbering in step.
SELECT 1;
