-- exoclaw schema 5 (SQLite): exec approvals. A flagged command waits here for an
-- operator; an approval is bound to the hash of the resolved argv, cwd and
-- environment. Keep in step with ../postgres/0005_approvals.up.sql.

CREATE TABLE approvals (
    id            TEXT    NOT NULL PRIMARY KEY,
    tenant_id     TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    agent_id      TEXT    NOT NULL,
    user_id       TEXT    NOT NULL,
    session_id    TEXT,
    command       TEXT    NOT NULL,
    cwd           TEXT    NOT NULL,
    command_hash  TEXT    NOT NULL,
    rule          TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    requested_at  BIGINT  NOT NULL,
    decided_at    BIGINT,
    decided_by    TEXT
);

CREATE INDEX approvals_tenant_status ON approvals (tenant_id, status, requested_at DESC);
CREATE INDEX approvals_tenant_hash ON approvals (tenant_id, command_hash, status);
