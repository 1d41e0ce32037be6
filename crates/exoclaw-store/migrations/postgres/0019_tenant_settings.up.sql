-- exoclaw schema 19: tenant settings.
--
-- A tenant's own limits (sandbox, egress, budgets) as a JSON object the
-- gateway validates: they can only narrow the gateway's configuration,
-- never widen it. '{}' is "the gateway's limits as configured".
-- settings_version counts the changes, so a gateway can tell a stale copy.
ALTER TABLE tenants ADD COLUMN settings JSONB   NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE tenants ADD COLUMN settings_version BIGINT NOT NULL DEFAULT 0;

-- A settings change bumps the tenant's directory version (schema 16), which
-- every turn already reads: a gateway keeps the settings in memory and sees
-- a change, whoever made it, at the tenant's next turn.
CREATE FUNCTION exoclaw_bump_tenant_directory() RETURNS trigger AS $$
BEGIN
    INSERT INTO directory_versions (tenant_id, version) VALUES (NEW.id, 1)
    ON CONFLICT (tenant_id) DO UPDATE SET version = directory_versions.version + 1;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER tenants_settings_directory AFTER UPDATE OF settings ON tenants
    FOR EACH ROW EXECUTE FUNCTION exoclaw_bump_tenant_directory();
