-- Reverts exoclaw schema 12.

DROP INDEX IF EXISTS traces_running_by_owner;
ALTER TABLE traces DROP COLUMN owner;
