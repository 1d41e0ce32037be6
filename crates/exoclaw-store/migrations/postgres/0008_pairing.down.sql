-- Reverts exoclaw schema 8.

DROP TABLE IF EXISTS pairing_failures;
DROP TABLE IF EXISTS channel_senders;
DROP TABLE IF EXISTS devices;
DROP TABLE IF EXISTS pairing_requests;
