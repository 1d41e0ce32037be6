-- Reverts exoclaw schema 1 (PostgreSQL).

DROP TABLE IF EXISTS messages, sessions, agents, users, tenants;
