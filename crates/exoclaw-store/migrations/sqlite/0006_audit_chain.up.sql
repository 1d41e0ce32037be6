-- exoclaw schema 6 (SQLite): the audit log becomes a per-tenant hash chain
-- (see exoclaw-store/src/audit.rs for the encoding) with the agent and
-- session an event concerns. Keep in step with ../postgres/0006_audit_chain.up.sql.
--
-- Events already in the log are numbered per tenant but not hashed (SQLite
-- has no SHA-256 in SQL): the chain starts after them, at each head's
-- chain_start, and verification counts them as unchained.

ALTER TABLE audit_events ADD COLUMN tenant_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit_events ADD COLUMN agent_id TEXT;
ALTER TABLE audit_events ADD COLUMN session_id TEXT;
ALTER TABLE audit_events ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_events ADD COLUMN hash TEXT;

-- Numbering the existing events is the one UPDATE the log ever sees.
DROP TRIGGER audit_events_no_update;
UPDATE audit_events SET tenant_seq = (
    SELECT COUNT(*) FROM audit_events e
    WHERE e.tenant_id = audit_events.tenant_id AND e.seq <= audit_events.seq
);
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

CREATE UNIQUE INDEX audit_events_tenant_chain ON audit_events (tenant_id, tenant_seq);

-- One row per tenant, updated in the transaction of every append: the
-- newest event's number and hash, so deleting the newest events shows.
CREATE TABLE audit_heads (
    tenant_id    TEXT    NOT NULL PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    chain_start  BIGINT  NOT NULL,
    last_seq     BIGINT  NOT NULL,
    last_hash    TEXT    NOT NULL
);

INSERT INTO audit_heads (tenant_id, chain_start, last_seq, last_hash)
SELECT tenant_id, MAX(tenant_seq) + 1, MAX(tenant_seq),
       '0000000000000000000000000000000000000000000000000000000000000000'
FROM audit_events GROUP BY tenant_id;
