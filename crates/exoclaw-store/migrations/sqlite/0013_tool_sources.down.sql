-- Reverts exoclaw schema 13.

DROP TABLE IF EXISTS tool_grants;
DROP TABLE IF EXISTS tool_sources;
