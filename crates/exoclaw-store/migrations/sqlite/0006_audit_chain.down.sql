-- Reverts exoclaw schema 6 (SQLite): the chain columns and heads go; the
-- events themselves stay.

DROP TABLE IF EXISTS audit_heads;
DROP INDEX IF EXISTS audit_events_tenant_chain;
ALTER TABLE audit_events DROP COLUMN hash;
ALTER TABLE audit_events DROP COLUMN prev_hash;
ALTER TABLE audit_events DROP COLUMN session_id;
ALTER TABLE audit_events DROP COLUMN agent_id;
ALTER TABLE audit_events DROP COLUMN tenant_seq;
