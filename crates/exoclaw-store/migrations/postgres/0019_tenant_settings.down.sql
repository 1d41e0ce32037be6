-- Reverts exoclaw schema 19.

DROP TRIGGER IF EXISTS tenants_settings_directory ON tenants;
DROP FUNCTION IF EXISTS exoclaw_bump_tenant_directory();
ALTER TABLE tenants DROP COLUMN settings_version;
ALTER TABLE tenants DROP COLUMN settings;
