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

CREATE TRIGGER agents_directory_insert AFTER INSERT ON agents BEGIN
    INSERT OR IGNORE INTO directory_versions (tenant_id, version) VALUES (NEW.tenant_id, 0);
    UPDATE directory_versions SET version = version + 1 WHERE tenant_id = NEW.tenant_id;
END;

CREATE TRIGGER agents_directory_delete AFTER DELETE ON agents BEGIN
    INSERT OR IGNORE INTO directory_versions (tenant_id, version) VALUES (OLD.tenant_id, 0);
    UPDATE directory_versions SET version = version + 1 WHERE tenant_id = OLD.tenant_id;
END;

CREATE TRIGGER agents_directory_update AFTER UPDATE ON agents BEGIN
    INSERT OR IGNORE INTO directory_versions (tenant_id, version) VALUES (NEW.tenant_id, 0);
    UPDATE directory_versions SET version = version + 1 WHERE tenant_id = NEW.tenant_id;
END;

CREATE TRIGGER agent_links_directory_insert AFTER INSERT ON agent_links BEGIN
    INSERT OR IGNORE INTO directory_versions (tenant_id, version) VALUES (NEW.tenant_id, 0);
    UPDATE directory_versions SET version = version + 1 WHERE tenant_id = NEW.tenant_id;
END;

CREATE TRIGGER agent_links_directory_delete AFTER DELETE ON agent_links BEGIN
    INSERT OR IGNORE INTO directory_versions (tenant_id, version) VALUES (OLD.tenant_id, 0);
    UPDATE directory_versions SET version = version + 1 WHERE tenant_id = OLD.tenant_id;
END;

CREATE TRIGGER agent_links_directory_update AFTER UPDATE ON agent_links BEGIN
    INSERT OR IGNORE INTO directory_versions (tenant_id, version) VALUES (NEW.tenant_id, 0);
    UPDATE directory_versions SET version = version + 1 WHERE tenant_id = NEW.tenant_id;
END;

CREATE TRIGGER teams_directory_insert AFTER INSERT ON teams BEGIN
    INSERT OR IGNORE INTO directory_versions (tenant_id, version) VALUES (NEW.tenant_id, 0);
    UPDATE directory_versions SET version = version + 1 WHERE tenant_id = NEW.tenant_id;
END;

CREATE TRIGGER teams_directory_delete AFTER DELETE ON teams BEGIN
    INSERT OR IGNORE INTO directory_versions (tenant_id, version) VALUES (OLD.tenant_id, 0);
    UPDATE directory_versions SET version = version + 1 WHERE tenant_id = OLD.tenant_id;
END;

CREATE TRIGGER teams_directory_update AFTER UPDATE ON teams BEGIN
    INSERT OR IGNORE INTO directory_versions (tenant_id, version) VALUES (NEW.tenant_id, 0);
    UPDATE directory_versions SET version = version + 1 WHERE tenant_id = NEW.tenant_id;
END;

CREATE TRIGGER team_members_directory_insert AFTER INSERT ON team_members BEGIN
    INSERT OR IGNORE INTO directory_versions (tenant_id, version) VALUES (NEW.tenant_id, 0);
    UPDATE directory_versions SET version = version + 1 WHERE tenant_id = NEW.tenant_id;
END;

CREATE TRIGGER team_members_directory_delete AFTER DELETE ON team_members BEGIN
    INSERT OR IGNORE INTO directory_versions (tenant_id, version) VALUES (OLD.tenant_id, 0);
    UPDATE directory_versions SET version = version + 1 WHERE tenant_id = OLD.tenant_id;
END;

CREATE TRIGGER team_members_directory_update AFTER UPDATE ON team_members BEGIN
    INSERT OR IGNORE INTO directory_versions (tenant_id, version) VALUES (NEW.tenant_id, 0);
    UPDATE directory_versions SET version = version + 1 WHERE tenant_id = NEW.tenant_id;
END;

CREATE TRIGGER handoffs_directory_insert AFTER INSERT ON handoffs BEGIN
    INSERT OR IGNORE INTO directory_versions (tenant_id, version) VALUES (NEW.tenant_id, 0);
    UPDATE directory_versions SET version = version + 1 WHERE tenant_id = NEW.tenant_id;
END;

CREATE TRIGGER handoffs_directory_delete AFTER DELETE ON handoffs BEGIN
    INSERT OR IGNORE INTO directory_versions (tenant_id, version) VALUES (OLD.tenant_id, 0);
    UPDATE directory_versions SET version = version + 1 WHERE tenant_id = OLD.tenant_id;
END;
