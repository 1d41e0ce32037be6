-- Reverts exoclaw schema 16.

DROP TRIGGER IF EXISTS agents_directory_insert;
DROP TRIGGER IF EXISTS agents_directory_delete;
DROP TRIGGER IF EXISTS agents_directory_update;
DROP TRIGGER IF EXISTS agent_links_directory_insert;
DROP TRIGGER IF EXISTS agent_links_directory_delete;
DROP TRIGGER IF EXISTS agent_links_directory_update;
DROP TRIGGER IF EXISTS teams_directory_insert;
DROP TRIGGER IF EXISTS teams_directory_delete;
DROP TRIGGER IF EXISTS teams_directory_update;
DROP TRIGGER IF EXISTS team_members_directory_insert;
DROP TRIGGER IF EXISTS team_members_directory_delete;
DROP TRIGGER IF EXISTS team_members_directory_update;
DROP TRIGGER IF EXISTS handoffs_directory_insert;
DROP TRIGGER IF EXISTS handoffs_directory_delete;
DROP TABLE IF EXISTS directory_versions;
DROP INDEX IF EXISTS messages_summaries;
