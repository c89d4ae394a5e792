-- Least privilege (ADR 0024) is a PostgreSQL matter: an embedded SQLite file has no roles,
-- and whoever can open the file can change it (tamper evidence, ADR 0018, detects that).
-- This file keeps the two folders' numbering in step.
SELECT 1;
