-- PostgreSQL's expenses read model gets typed keys; SQLite's (in the read models' own
-- file) keeps its text, which it compares byte by byte. This file keeps the two folders'
-- numbering in step.
SELECT 1;
