-- Reverts exoclaw schema 13.

DROP TABLE IF EXISTS cron_jobs;
