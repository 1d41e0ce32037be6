-- exoclaw schema 10 (PostgreSQL): multi-agent orchestration. Permission links
-- between agents, the delegation history, and bindings that pick the agent
-- answering a conversation. Keep in step with ../sqlite/0010_orchestration.up.sql.
--
-- Links and bindings name agents that must exist: deleting an agent deletes
-- the links it is an end of and the bindings that route to it (conversations
-- fall back to the tenant's default agent). The delegation history is a
-- record like the traces: its agent, user and session ids are not foreign
-- keys and outlive what they name.

CREATE TABLE agent_links (
    tenant_id       TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    source          TEXT    NOT NULL,
    target          TEXT    NOT NULL,
    direction       TEXT    NOT NULL CHECK (direction IN ('outbound', 'inbound', 'bidirectional')),
    max_concurrent  BIGINT  CHECK (max_concurrent >= 0),
    users           JSONB   NOT NULL,
    created_at      BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, source, target),
    CHECK (source <> target),
    FOREIGN KEY (tenant_id, source) REFERENCES agents (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, target) REFERENCES agents (tenant_id, id) ON DELETE CASCADE
);

-- The primary key serves listings by source; this one those by target (and
-- the cascade from a deleted target).
CREATE INDEX agent_links_target ON agent_links (tenant_id, target);

CREATE TABLE delegations (
    id               TEXT     NOT NULL PRIMARY KEY,
    tenant_id        TEXT     NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind             TEXT     NOT NULL CHECK (kind IN ('spawn', 'delegate')),
    mode             TEXT     NOT NULL CHECK (mode IN ('sync', 'async')),
    caller_agent     TEXT     NOT NULL,
    user_id          TEXT     NOT NULL,
    caller_session   TEXT,
    target_agent     TEXT     NOT NULL,
    parent_id        TEXT,
    task_digest      TEXT     NOT NULL,
    status           TEXT     NOT NULL
                     CHECK (status IN ('running', 'done', 'failed', 'cancelled', 'interrupted')),
    parent_trace_id  TEXT,
    child_trace_id   TEXT,
    child_session    TEXT,
    owner            TEXT     NOT NULL,
    started_at       BIGINT   NOT NULL,
    finished_at      BIGINT,
    input_tokens     BIGINT   NOT NULL DEFAULT 0,
    output_tokens    BIGINT   NOT NULL DEFAULT 0,
    cost_micros      BIGINT   NOT NULL DEFAULT 0,
    error_code       TEXT,
    announced        BOOLEAN  NOT NULL DEFAULT FALSE
);

-- Listings are newest first, per tenant, optionally by caller, target or user.
CREATE INDEX delegations_tenant_started ON delegations (tenant_id, started_at DESC, id DESC);
CREATE INDEX delegations_caller ON delegations (tenant_id, caller_agent, started_at DESC);
CREATE INDEX delegations_target ON delegations (tenant_id, target_agent, started_at DESC);
CREATE INDEX delegations_user ON delegations (tenant_id, user_id, started_at DESC);
-- interrupt_running: what an instance still runs, in every tenant.
CREATE INDEX delegations_running ON delegations (owner) WHERE status = 'running';

-- A match field that is NULL matches anything; the store refuses empty
-- strings, so COALESCE(x, '') makes "the same match" one unique key in both
-- dialects (NULLs are distinct in a plain unique index).
CREATE TABLE bindings (
    id          TEXT    NOT NULL PRIMARY KEY,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    channel     TEXT,
    account     TEXT,
    peer        TEXT,
    user_id     TEXT,
    agent       TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    FOREIGN KEY (tenant_id, agent) REFERENCES agents (tenant_id, id) ON DELETE CASCADE
);

CREATE UNIQUE INDEX bindings_match ON bindings
    (tenant_id, COALESCE(channel, ''), COALESCE(account, ''), COALESCE(peer, ''),
     COALESCE(user_id, ''));
CREATE INDEX bindings_tenant_created ON bindings (tenant_id, created_at, id);
CREATE INDEX bindings_agent ON bindings (tenant_id, agent);
