-- exoclaw schema 3 (SQLite): traces of agent runs (one span per LLM or tool
-- call) and the usage ledger budgets are checked against. Token counts are
-- integers, money is integer micro-dollars (1 USD = 1_000_000), timestamps
-- Unix milliseconds, JSON TEXT. Keep in step with
-- ../postgres/0003_traces_usage.up.sql.

-- agent_id, user_id and session_id are deliberately not foreign keys: a trace
-- records what happened and outlives its session (and agent, and user).
-- UNIQUE (tenant_id, id) is the target of the spans' foreign key.
CREATE TABLE traces (
    id                  TEXT    NOT NULL PRIMARY KEY,
    tenant_id           TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    agent_id            TEXT,
    user_id             TEXT,
    session_id          TEXT,
    name                TEXT    NOT NULL,
    status              TEXT    NOT NULL,
    error               TEXT,
    started_at          BIGINT  NOT NULL,
    ended_at            BIGINT,
    input_tokens        BIGINT  NOT NULL DEFAULT 0,
    output_tokens       BIGINT  NOT NULL DEFAULT 0,
    cache_read_tokens   BIGINT  NOT NULL DEFAULT 0,
    cache_write_tokens  BIGINT  NOT NULL DEFAULT 0,
    cost_micros         BIGINT  NOT NULL DEFAULT 0,
    UNIQUE (tenant_id, id)
);

CREATE INDEX traces_tenant_started ON traces (tenant_id, started_at DESC);
CREATE INDEX traces_tenant_session ON traces (tenant_id, session_id);

-- (tenant_id, trace_id) references the trace, so a span can never sit in
-- another tenant's trace. The (trace_id, started_at) index serves reading a
-- trace's spans in order and the cascade from traces.
CREATE TABLE spans (
    id                  TEXT    NOT NULL PRIMARY KEY,
    trace_id            TEXT    NOT NULL,
    tenant_id           TEXT    NOT NULL,
    kind                TEXT    NOT NULL,
    name                TEXT    NOT NULL,
    provider            TEXT,
    status              TEXT    NOT NULL,
    error               TEXT,
    started_at          BIGINT  NOT NULL,
    latency_ms          BIGINT  NOT NULL,
    input_tokens        BIGINT  NOT NULL,
    output_tokens       BIGINT  NOT NULL,
    cache_read_tokens   BIGINT  NOT NULL,
    cache_write_tokens  BIGINT  NOT NULL,
    cost_micros         BIGINT  NOT NULL,
    attributes          TEXT    NOT NULL,
    FOREIGN KEY (tenant_id, trace_id) REFERENCES traces (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX spans_trace_started ON spans (trace_id, started_at);

-- One row per LLM call. agent_id and user_id are not foreign keys: spend
-- stays on the books after an agent or user is deleted. One index per budget
-- scope serves spend_since's range sum.
CREATE TABLE usage_ledger (
    id                  TEXT    NOT NULL PRIMARY KEY,
    tenant_id           TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    at                  BIGINT  NOT NULL,
    provider            TEXT    NOT NULL,
    model               TEXT    NOT NULL,
    agent_id            TEXT,
    user_id             TEXT,
    input_tokens        BIGINT  NOT NULL,
    output_tokens       BIGINT  NOT NULL,
    cache_read_tokens   BIGINT  NOT NULL,
    cache_write_tokens  BIGINT  NOT NULL,
    cost_micros         BIGINT  NOT NULL
);

CREATE INDEX usage_ledger_tenant_model_at ON usage_ledger (tenant_id, model, at);
CREATE INDEX usage_ledger_tenant_agent_at ON usage_ledger (tenant_id, agent_id, at);
CREATE INDEX usage_ledger_tenant_user_at ON usage_ledger (tenant_id, user_id, at);
