-- exoclaw schema 9 (PostgreSQL): occurrences of scheduled jobs (the daily
-- backup, later cron jobs). An occurrence is claimed by inserting its row:
-- the primary key lets exactly one claimer win, also when several gateways
-- share one database. The newest occurrences of a job are read back through
-- the primary key. Keep in step with ../sqlite/0009_job_runs.up.sql.

CREATE TABLE job_runs (
    tenant_id    TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    job          TEXT    NOT NULL,
    due_at       BIGINT  NOT NULL,
    owner        TEXT    NOT NULL,
    started_at   BIGINT  NOT NULL,
    status       TEXT    NOT NULL,
    detail       TEXT,
    finished_at  BIGINT,
    PRIMARY KEY (tenant_id, job, due_at)
);
