-- Reverts exoclaw schema 2 (PostgreSQL). Dropping a table drops its indexes
-- and triggers (and fires none of them).

DROP TABLE IF EXISTS audit_events, vault_check, secrets;
DROP FUNCTION IF EXISTS exoclaw_audit_append_only();
