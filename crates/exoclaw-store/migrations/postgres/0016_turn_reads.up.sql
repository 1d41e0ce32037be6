-- exoclaw schema 16: what a turn reads, cheaply.
--
-- 1. A session's latest compaction summary without reading its whole
--    history (SessionStore::list_window). Partial: only summaries are
--    indexed, a few per long session.
CREATE INDEX messages_summaries ON messages (session_id, seq) WHERE role = 'summary';

-- 2. A version per tenant of what every turn reads about its agents (the
--    agents, their links and teams, whether any conversation is handed
--    over), bumped by triggers on every change, whoever makes it (this
--    gateway, another one, the CLI on the same file): a gateway keeps those
--    rows in memory and reads only this version per turn.
CREATE TABLE directory_versions (
    tenant_id  TEXT    NOT NULL PRIMARY KEY,
    version    BIGINT  NOT NULL
);

CREATE FUNCTION exoclaw_bump_directory() RETURNS trigger AS $$
DECLARE
    t TEXT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        t := OLD.tenant_id;
    ELSE
        t := NEW.tenant_id;
    END IF;
    INSERT INTO directory_versions (tenant_id, version) VALUES (t, 1)
    ON CONFLICT (tenant_id) DO UPDATE SET version = directory_versions.version + 1;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER agents_directory AFTER INSERT OR UPDATE OR DELETE ON agents
    FOR EACH ROW EXECUTE FUNCTION exoclaw_bump_directory();

CREATE TRIGGER agent_links_directory AFTER INSERT OR UPDATE OR DELETE ON agent_links
    FOR EACH ROW EXECUTE FUNCTION exoclaw_bump_directory();

CREATE TRIGGER teams_directory AFTER INSERT OR UPDATE OR DELETE ON teams
    FOR EACH ROW EXECUTE FUNCTION exoclaw_bump_directory();

CREATE TRIGGER team_members_directory AFTER INSERT OR UPDATE OR DELETE ON team_members
    FOR EACH ROW EXECUTE FUNCTION exoclaw_bump_directory();

CREATE TRIGGER handoffs_directory AFTER INSERT OR DELETE ON handoffs
    FOR EACH ROW EXECUTE FUNCTION exoclaw_bump_directory();
