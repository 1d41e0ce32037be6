-- exoclaw schema 23 (sqlite): the web dashboard's sign-ins. A browser trades a
-- credential for a session cookie; only the SHA-256 of the cookie's secret
-- is kept, with the kind and digest of the credential it stands for, so the
-- credential is re-checked on every request and its revocation ends the
-- session (and a deleted user's keys and devices fail that check; the
-- gateway token's sessions act as the tenant's `owner`, who has no row).
-- Idle and absolute expiry are judged by the gateway. Keep in step
-- with ../postgres/0023_dashboard_sessions.up.sql.

CREATE TABLE dashboard_sessions (
    id_hash       TEXT    NOT NULL PRIMARY KEY,
    tenant_id     TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id       TEXT    NOT NULL,
    credential    TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    last_seen_at  BIGINT  NOT NULL,
    expires_at    BIGINT  NOT NULL
);

CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions (expires_at);
