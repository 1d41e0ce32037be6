-- Reverts exoclaw schema 18.

DROP TABLE IF EXISTS budget_reservations;
