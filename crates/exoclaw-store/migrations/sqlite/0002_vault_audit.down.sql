-- Reverts exoclaw schema 2 (SQLite). Dropping a table drops its indexes and
-- triggers.

DROP TABLE IF EXISTS audit_events;
DROP TABLE IF EXISTS vault_check;
DROP TABLE IF EXISTS secrets;
