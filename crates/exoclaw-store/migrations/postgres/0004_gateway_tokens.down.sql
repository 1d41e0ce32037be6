-- Reverts exoclaw schema 4.

DROP TABLE IF EXISTS gateway_tokens;
