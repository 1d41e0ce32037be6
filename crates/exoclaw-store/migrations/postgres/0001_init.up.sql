-- exoclaw schema 1 (PostgreSQL): multi-tenant from day one. Every row is owned
-- by a tenant (foreign key, ON DELETE CASCADE). Timestamps are Unix
-- milliseconds, JSON is JSONB. Keep in step with ../sqlite/0001_init.up.sql.

CREATE TABLE tenants (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);

INSERT INTO tenants (id, name, created_at)
VALUES ('default', 'Default', (extract(epoch FROM clock_timestamp()) * 1000)::bigint);

CREATE TABLE users (
    id          TEXT    NOT NULL PRIMARY KEY,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    role        TEXT    NOT NULL,
    disabled    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  BIGINT  NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE agents (
    tenant_id     TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id            TEXT    NOT NULL,
    display_name  TEXT    NOT NULL,
    agent_type    TEXT    NOT NULL,
    config        JSONB   NOT NULL,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- user_id is deliberately not a foreign key: the gateway token's owner may
-- not be a users row. delete_user removes a user's sessions explicitly.
CREATE TABLE sessions (
    id          TEXT    NOT NULL PRIMARY KEY,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    agent_id    TEXT    NOT NULL,
    user_id     TEXT    NOT NULL,
    channel     TEXT    NOT NULL,
    peer        TEXT    NOT NULL,
    title       TEXT,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    UNIQUE (tenant_id, agent_id, user_id, channel, peer),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX sessions_tenant_updated ON sessions (tenant_id, updated_at DESC);
CREATE INDEX sessions_tenant_user ON sessions (tenant_id, user_id);

-- (tenant_id, session_id) references the session, so a message can never sit
-- in another tenant's session. UNIQUE (session_id, seq) also serves the
-- cascade from sessions and paging by seq.
CREATE TABLE messages (
    id          TEXT    NOT NULL PRIMARY KEY,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    session_id  TEXT    NOT NULL,
    seq         BIGINT  NOT NULL,
    role        TEXT    NOT NULL,
    content     JSONB   NOT NULL,
    meta        JSONB   NOT NULL,
    created_at  BIGINT  NOT NULL,
    UNIQUE (session_id, seq),
    FOREIGN KEY (tenant_id, session_id) REFERENCES sessions (tenant_id, id) ON DELETE CASCADE
);
