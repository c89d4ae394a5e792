-- Kept in step with PostgreSQL's 0015, which makes the expenses read model's keys compare
-- byte by byte. SQLite compares text byte by byte already (BINARY): nothing to change.
SELECT 1;
