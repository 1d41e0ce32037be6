-- Reverts exoclaw schema 15.

DROP TABLE IF EXISTS channel_cursors;
DROP TABLE IF EXISTS channel_inbound;
DROP TABLE IF EXISTS channel_outbox;
