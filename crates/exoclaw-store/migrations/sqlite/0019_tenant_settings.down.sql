-- Reverts exoclaw schema 19.

DROP TRIGGER IF EXISTS tenants_settings_directory;
ALTER TABLE tenants DROP COLUMN settings_version;
ALTER TABLE tenants DROP COLUMN settings;
