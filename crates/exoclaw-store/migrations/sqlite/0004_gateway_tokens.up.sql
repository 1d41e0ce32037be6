-- exoclaw schema 4 (SQLite): gateway tokens, stored only as SHA-256 digests.
-- EXOCLAW_GATEWAY_TOKEN seeds this table; `exoclaw token rotate` retires the
-- active token with an overlap window. Keep in step with
-- ../postgres/0004_gateway_tokens.up.sql.

CREATE TABLE gateway_tokens (
    id          TEXT    NOT NULL PRIMARY KEY,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    token_hash  TEXT    NOT NULL UNIQUE,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT
);
