-- Reverts exoclaw schema 10.

DROP TABLE IF EXISTS bindings;
DROP TABLE IF EXISTS delegations;
DROP TABLE IF EXISTS agent_links;
