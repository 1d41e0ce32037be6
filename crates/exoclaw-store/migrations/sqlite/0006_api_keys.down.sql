-- Reverts 0006_api_keys.up.sql.
DROP TABLE IF EXISTS api_keys;
