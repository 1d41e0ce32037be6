-- exoclaw schema 19: tenant settings.
--
-- A tenant's own limits (sandbox, egress, budgets) as a JSON object the
-- gateway validates: they can only narrow the gateway's configuration,
-- never widen it. '{}' is "the gateway's limits as configured".
-- settings_version counts the changes, so a gateway can tell a stale copy.
ALTER TABLE tenants ADD COLUMN settings TEXT    NOT NULL DEFAULT '{}';
ALTER TABLE tenants ADD COLUMN settings_version BIGINT NOT NULL DEFAULT 0;

-- A settings change bumps the tenant's directory version (schema 16), which
-- every turn already reads: a gateway keeps the settings in memory and sees
-- a change, whoever made it, at the tenant's next turn.
CREATE TRIGGER tenants_settings_directory AFTER UPDATE OF settings ON tenants BEGIN
    INSERT OR IGNORE INTO directory_versions (tenant_id, version) VALUES (NEW.id, 0);
    UPDATE directory_versions SET version = version + 1 WHERE tenant_id = NEW.id;
END;
