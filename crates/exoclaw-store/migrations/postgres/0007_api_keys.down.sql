-- Reverts 0007_api_keys.up.sql.
DROP TABLE IF EXISTS api_keys;
