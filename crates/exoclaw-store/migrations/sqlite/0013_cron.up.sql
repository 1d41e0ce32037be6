-- exoclaw schema 13 (SQLite): cron jobs, an agent's scheduled messages.
-- A job's occurrences (its run history) are rows of job_runs under the key
-- `cron:<id>`, claimed once across gateways. A job does not go with its
-- agent (no foreign key to agents): the scheduler disables it with the
-- reason `agent_deleted` and reports it. The scheduler reads every
-- tenant's enabled jobs by their next occurrence. Keep in step with
-- ../postgres/0013_cron.up.sql.

CREATE TABLE cron_jobs (
    tenant_id        TEXT     NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id               TEXT     NOT NULL,
    agent_id         TEXT     NOT NULL,
    user_id          TEXT     NOT NULL,
    name             TEXT     NOT NULL,
    schedule         TEXT     NOT NULL,
    message          TEXT     NOT NULL,
    delivery         TEXT     NOT NULL CHECK (delivery IN ('session', 'channel', 'webhook')),
    target           TEXT,
    missed           TEXT     NOT NULL CHECK (missed IN ('skip', 'run_once')),
    jitter_ms        BIGINT   NOT NULL,
    enabled          BOOLEAN  NOT NULL,
    disabled_reason  TEXT,
    next_run_at      BIGINT,
    last_run_at      BIGINT,
    created_by       TEXT     NOT NULL,
    created_at       BIGINT   NOT NULL,
    updated_at       BIGINT   NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE INDEX cron_jobs_agent ON cron_jobs (tenant_id, agent_id);
CREATE INDEX cron_jobs_due ON cron_jobs (next_run_at) WHERE enabled;
