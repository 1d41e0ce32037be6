-- Reverts exoclaw schema 14.

DROP TABLE IF EXISTS tool_grants;
DROP TABLE IF EXISTS tool_sources;
