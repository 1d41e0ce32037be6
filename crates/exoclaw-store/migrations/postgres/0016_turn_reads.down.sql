-- Reverts exoclaw schema 16.

DROP TRIGGER IF EXISTS agents_directory ON agents;
DROP TRIGGER IF EXISTS agent_links_directory ON agent_links;
DROP TRIGGER IF EXISTS teams_directory ON teams;
DROP TRIGGER IF EXISTS team_members_directory ON team_members;
DROP TRIGGER IF EXISTS handoffs_directory ON handoffs;
DROP FUNCTION IF EXISTS exoclaw_bump_directory();
DROP TABLE IF EXISTS directory_versions;
DROP INDEX IF EXISTS messages_summaries;
