DROP TABLE channel_leases;
ALTER TABLE channel_outbox DROP COLUMN claimed_until;
ALTER TABLE channel_outbox DROP COLUMN claimed_by;
