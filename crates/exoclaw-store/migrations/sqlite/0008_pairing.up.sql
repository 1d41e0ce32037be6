-- exoclaw schema 8 (SQLite): browser and channel pairing. Codes and device
-- credentials are stored only as SHA-256 hex digests. Keep in step with
-- ../postgres/0008_pairing.up.sql.
--
-- user_id of a request is deliberately not a foreign key: a browser may ask
-- for any syntactically valid user id (whether it exists is not revealed);
-- approval checks the user.

CREATE TABLE pairing_requests (
    id           TEXT    NOT NULL PRIMARY KEY,
    tenant_id    TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind         TEXT    NOT NULL CHECK (kind IN ('device', 'channel')),
    user_id      TEXT,
    channel      TEXT,
    sender_id    TEXT,
    code_hash    TEXT    NOT NULL UNIQUE,
    status       TEXT    NOT NULL
                 CHECK (status IN ('pending', 'approved', 'issued', 'denied', 'expired')),
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    approved_by  TEXT,
    approved_at  BIGINT
);

CREATE INDEX pairing_requests_tenant_status ON pairing_requests (tenant_id, status, created_at DESC);
CREATE INDEX pairing_requests_user ON pairing_requests (tenant_id, user_id, status);
CREATE INDEX pairing_requests_sender ON pairing_requests (tenant_id, channel, sender_id, status);

CREATE TABLE devices (
    id            TEXT    NOT NULL PRIMARY KEY,
    tenant_id     TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash    TEXT    NOT NULL UNIQUE,
    label         TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    last_seen_at  BIGINT,
    revoked_at    BIGINT
);

CREATE INDEX devices_tenant ON devices (tenant_id, created_at DESC);

CREATE TABLE channel_senders (
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    channel     TEXT    NOT NULL,
    sender_id   TEXT    NOT NULL,
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, channel, sender_id)
);

-- Failed approval attempts (unknown or expired codes), counted for the
-- lockout; in the store so that the CLI and every gateway instance share it.
CREATE TABLE pairing_failures (
    id         TEXT    NOT NULL PRIMARY KEY,
    tenant_id  TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    actor      TEXT    NOT NULL,
    at         BIGINT  NOT NULL
);

CREATE INDEX pairing_failures_tenant_at ON pairing_failures (tenant_id, at);
