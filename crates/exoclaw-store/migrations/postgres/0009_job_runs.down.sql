-- Reverts exoclaw schema 9.

DROP TABLE IF EXISTS job_runs;
