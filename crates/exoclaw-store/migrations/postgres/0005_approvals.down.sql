-- Reverts exoclaw schema 5.

DROP TABLE IF EXISTS approvals;
