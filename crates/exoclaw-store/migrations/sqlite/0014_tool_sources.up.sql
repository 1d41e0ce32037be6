-- exoclaw schema 14 (SQLite): tools a tenant adds at run time (custom tools,
-- MCP servers), each as its validated JSON definition (never a secret: those
-- are in the vault), and the grants that offer a source's tools to an agent
-- ('*': every agent) and optionally to one user only ('': every user).
-- Nothing is offered without a grant. Keep in step with
-- ../postgres/0013_tool_sources.up.sql.

CREATE TABLE tool_sources (
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind        TEXT    NOT NULL CHECK (kind IN ('custom', 'mcp')),
    name        TEXT    NOT NULL,
    spec        TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, kind, name)
);

CREATE TABLE tool_grants (
    tenant_id   TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    agent_id    TEXT    NOT NULL,
    user_id     TEXT    NOT NULL DEFAULT '',
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, kind, source, agent_id, user_id),
    FOREIGN KEY (tenant_id, kind, source)
        REFERENCES tool_sources (tenant_id, kind, name) ON DELETE CASCADE
);
