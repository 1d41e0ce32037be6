-- Reverts exoclaw schema 16.

DROP TABLE IF EXISTS budget_reservations;
