-- Reverts exoclaw schema 6 (PostgreSQL): the chain columns and heads go;
-- the events themselves stay. Dropping columns fires no trigger.

DROP TABLE IF EXISTS audit_heads;
DROP INDEX IF EXISTS audit_events_tenant_chain;
ALTER TABLE audit_events
    DROP COLUMN IF EXISTS hash,
    DROP COLUMN IF EXISTS prev_hash,
    DROP COLUMN IF EXISTS session_id,
    DROP COLUMN IF EXISTS agent_id,
    DROP COLUMN IF EXISTS tenant_seq;
