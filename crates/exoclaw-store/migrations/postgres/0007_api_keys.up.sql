-- exoclaw schema 7 (PostgreSQL): users' API keys, stored only as SHA-256 digests.
-- A key belongs to one user (deleted with them) and may expire, be revoked,
-- and be limited to scopes (a JSON array of permission names; empty = all
-- the user's role allows). Keep in step with ../sqlite/0007_api_keys.up.sql.

CREATE TABLE api_keys (
    id            TEXT    NOT NULL PRIMARY KEY,
    tenant_id     TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    key_hash      TEXT    NOT NULL UNIQUE,
    prefix        TEXT    NOT NULL,
    scopes        TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    expires_at    BIGINT,
    revoked_at    BIGINT,
    last_used_at  BIGINT
);

CREATE INDEX api_keys_tenant_user ON api_keys (tenant_id, user_id);
