-- Reverts exoclaw schema 1 (SQLite). Children first; dropping a table drops
-- its indexes and triggers.

DROP TABLE IF EXISTS messages;
DROP TABLE IF EXISTS sessions;
DROP TABLE IF EXISTS agents;
DROP TABLE IF EXISTS users;
DROP TABLE IF EXISTS tenants;
