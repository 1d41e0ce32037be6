-- Reverts exoclaw schema 3 (SQLite). Children first; dropping a table drops
-- its indexes.

DROP TABLE IF EXISTS usage_ledger;
DROP TABLE IF EXISTS spans;
DROP TABLE IF EXISTS traces;
