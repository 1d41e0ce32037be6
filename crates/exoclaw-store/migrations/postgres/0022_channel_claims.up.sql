-- exoclaw schema 22 (postgres): several gateways on one database. An outbox
-- message is claimed by one gateway (claimed_by, its instance id) until
-- claimed_until (a lease): only its claimer sends it, and a crashed
-- claimer's lease lapses so another gateway delivers it. channel_leases
-- holds a channel's receive lease: one gateway polls a platform at a time
-- (Telegram answers 409 Conflict to a second getUpdates), another takes
-- over when the lease lapses. Keep in step with
-- ../sqlite/0022_channel_claims.up.sql.

ALTER TABLE channel_outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE channel_outbox ADD COLUMN claimed_until BIGINT;

CREATE TABLE channel_leases (
    tenant_id  TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    channel    TEXT    NOT NULL,
    holder     TEXT    NOT NULL,
    until_ms   BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, channel)
);
