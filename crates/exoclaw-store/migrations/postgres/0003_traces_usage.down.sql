-- Reverts exoclaw schema 3 (PostgreSQL). Dropping a table drops its indexes.

DROP TABLE IF EXISTS usage_ledger, spans, traces;
