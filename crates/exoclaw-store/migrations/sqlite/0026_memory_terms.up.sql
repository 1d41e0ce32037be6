-- exoclaw schema 26 (SQLite): nothing. PostgreSQL's schema 26 counts each
-- lexeme's memories per namespace, because its GIN index counts a common
-- word slowly; FTS5 counts fast enough. The version stays in step with
-- ../postgres/0026_memory_terms.up.sql.
SELECT 1;
