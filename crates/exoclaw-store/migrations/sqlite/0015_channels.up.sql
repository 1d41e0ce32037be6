-- exoclaw schema 15 (sqlite): messaging channels' durable state. The outbox
-- holds every outbound message before it is sent (pending, then sent or,
-- after too many failures, dead); its idempotency key is unique per tenant
-- and channel. channel_inbound holds the platform ids of inbound messages
-- already handled (dedup, webhook replay protection); channel_cursors a
-- channel's position (Telegram's getUpdates offset). Keep in step with
-- ../postgres/0014_channels.up.sql.

CREATE TABLE channel_outbox (
    tenant_id        TEXT     NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id               TEXT     NOT NULL,
    channel          TEXT     NOT NULL,
    peer             TEXT     NOT NULL,
    text             TEXT     NOT NULL,
    idempotency_key  TEXT     NOT NULL,
    status           TEXT     NOT NULL CHECK (status IN ('pending', 'sent', 'dead')),
    attempts         BIGINT   NOT NULL,
    next_attempt_at  BIGINT   NOT NULL,
    last_error       TEXT,
    platform_id      TEXT,
    created_at       BIGINT   NOT NULL,
    sent_at          BIGINT,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, channel, idempotency_key)
);

CREATE INDEX channel_outbox_due ON channel_outbox (tenant_id, channel, next_attempt_at)
    WHERE status = 'pending';

CREATE TABLE channel_inbound (
    tenant_id    TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    channel      TEXT    NOT NULL,
    platform_id  TEXT    NOT NULL,
    seen_at      BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, channel, platform_id)
);

CREATE INDEX channel_inbound_seen ON channel_inbound (tenant_id, seen_at);

CREATE TABLE channel_cursors (
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    channel     TEXT    NOT NULL,
    cursor      TEXT    NOT NULL,
    updated_at  BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, channel)
);
