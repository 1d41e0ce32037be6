-- exoclaw schema 6 (PostgreSQL): the audit log becomes a per-tenant hash
-- chain (see exoclaw-store/src/audit.rs for the encoding) with the agent and
-- session an event concerns. Keep in step with ../sqlite/0006_audit_chain.up.sql.
--
-- Events already in the log are numbered per tenant but not hashed (the
-- hash is computed by exoclaw, identically for both backends): the chain
-- starts after them, at each head's chain_start, and verification counts
-- them as unchained.

ALTER TABLE audit_events
    ADD COLUMN tenant_seq  BIGINT,
    ADD COLUMN agent_id    TEXT,
    ADD COLUMN session_id  TEXT,
    ADD COLUMN prev_hash   TEXT,
    ADD COLUMN hash        TEXT;

-- Numbering the existing events is the one UPDATE the log ever sees.
ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete;
UPDATE audit_events e SET tenant_seq = n.rn
FROM (SELECT seq, row_number() OVER (PARTITION BY tenant_id ORDER BY seq) AS rn
      FROM audit_events) n
WHERE e.seq = n.seq;
ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update_delete;

ALTER TABLE audit_events ALTER COLUMN tenant_seq SET NOT NULL;
CREATE UNIQUE INDEX audit_events_tenant_chain ON audit_events (tenant_id, tenant_seq);

-- One row per tenant, locked and updated in the transaction of every
-- append: appends to a tenant are serialised across processes, and the
-- newest event's number and hash make deleting the newest events show.
CREATE TABLE audit_heads (
    tenant_id    TEXT    NOT NULL PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    chain_start  BIGINT  NOT NULL,
    last_seq     BIGINT  NOT NULL,
    last_hash    TEXT    NOT NULL
);

INSERT INTO audit_heads (tenant_id, chain_start, last_seq, last_hash)
SELECT tenant_id, MAX(tenant_seq) + 1, MAX(tenant_seq), repeat('0', 64)
FROM audit_events GROUP BY tenant_id;
