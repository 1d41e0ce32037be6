-- exoclaw schema 12 (PostgreSQL): the gateway instance running a trace, so
-- that a restart finds the runs the last process left `running` (killed, or
-- stopped before they ended) and marks them `interrupted`; another instance
-- sharing the database never touches them. Keep in step with
-- ../sqlite/0012_run_owner.up.sql.

ALTER TABLE traces ADD COLUMN owner TEXT;
CREATE INDEX traces_running_by_owner ON traces (owner) WHERE status = 'running';
