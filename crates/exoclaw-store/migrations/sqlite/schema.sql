-- The SQLite schema at version 26: every migration in this folder applied in
-- order, as SQLite keeps it (sqlite_master in creation order), then their seed
-- rows. A new database is made from this one script instead of step by step
-- (src/migrate.rs); src/sqlite/squashed_tests.rs checks both give the same.
-- Generated, do not edit: UPDATE_SCHEMA=1 cargo nextest run -p exoclaw-store squashed

CREATE TABLE tenants (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
, settings TEXT    NOT NULL DEFAULT '{}', settings_version BIGINT NOT NULL DEFAULT 0);

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
    config        TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

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

CREATE TABLE messages (
    id          TEXT    NOT NULL PRIMARY KEY,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    session_id  TEXT    NOT NULL,
    seq         BIGINT  NOT NULL,
    role        TEXT    NOT NULL,
    content     TEXT    NOT NULL,
    meta        TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    UNIQUE (session_id, seq),
    FOREIGN KEY (tenant_id, session_id) REFERENCES sessions (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE secrets (
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    owner       TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    key_id      TEXT    NOT NULL,
    nonce       BLOB    NOT NULL,
    ciphertext  BLOB    NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, owner, name)
);

CREATE TABLE vault_check (
    id          INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    key_id      TEXT    NOT NULL,
    nonce       BLOB    NOT NULL,
    ciphertext  BLOB    NOT NULL
);

CREATE TABLE audit_events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT    NOT NULL UNIQUE,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    at          BIGINT  NOT NULL,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    resource    TEXT    NOT NULL,
    decision    TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    request_id  TEXT,
    detail      TEXT    NOT NULL
, tenant_seq INTEGER NOT NULL DEFAULT 0, agent_id TEXT, session_id TEXT, prev_hash TEXT, hash TEXT);

CREATE INDEX audit_events_tenant_seq ON audit_events (tenant_id, seq);

CREATE INDEX audit_events_action ON audit_events (action);

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

CREATE TABLE traces (
    id                  TEXT    NOT NULL PRIMARY KEY,
    tenant_id           TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    agent_id            TEXT,
    user_id             TEXT,
    session_id          TEXT,
    name                TEXT    NOT NULL,
    status              TEXT    NOT NULL,
    error               TEXT,
    started_at          BIGINT  NOT NULL,
    ended_at            BIGINT,
    input_tokens        BIGINT  NOT NULL DEFAULT 0,
    output_tokens       BIGINT  NOT NULL DEFAULT 0,
    cache_read_tokens   BIGINT  NOT NULL DEFAULT 0,
    cache_write_tokens  BIGINT  NOT NULL DEFAULT 0,
    cost_micros         BIGINT  NOT NULL DEFAULT 0, owner TEXT,
    UNIQUE (tenant_id, id)
);

CREATE INDEX traces_tenant_started ON traces (tenant_id, started_at DESC);

CREATE INDEX traces_tenant_session ON traces (tenant_id, session_id);

CREATE TABLE spans (
    id                  TEXT    NOT NULL PRIMARY KEY,
    trace_id            TEXT    NOT NULL,
    tenant_id           TEXT    NOT NULL,
    kind                TEXT    NOT NULL,
    name                TEXT    NOT NULL,
    provider            TEXT,
    status              TEXT    NOT NULL,
    error               TEXT,
    started_at          BIGINT  NOT NULL,
    latency_ms          BIGINT  NOT NULL,
    input_tokens        BIGINT  NOT NULL,
    output_tokens       BIGINT  NOT NULL,
    cache_read_tokens   BIGINT  NOT NULL,
    cache_write_tokens  BIGINT  NOT NULL,
    cost_micros         BIGINT  NOT NULL,
    attributes          TEXT    NOT NULL,
    FOREIGN KEY (tenant_id, trace_id) REFERENCES traces (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX spans_trace_started ON spans (trace_id, started_at);

CREATE TABLE usage_ledger (
    id                  TEXT    NOT NULL PRIMARY KEY,
    tenant_id           TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    at                  BIGINT  NOT NULL,
    provider            TEXT    NOT NULL,
    model               TEXT    NOT NULL,
    agent_id            TEXT,
    user_id             TEXT,
    input_tokens        BIGINT  NOT NULL,
    output_tokens       BIGINT  NOT NULL,
    cache_read_tokens   BIGINT  NOT NULL,
    cache_write_tokens  BIGINT  NOT NULL,
    cost_micros         BIGINT  NOT NULL
);

CREATE INDEX usage_ledger_tenant_model_at ON usage_ledger (tenant_id, model, at);

CREATE INDEX usage_ledger_tenant_agent_at ON usage_ledger (tenant_id, agent_id, at);

CREATE INDEX usage_ledger_tenant_user_at ON usage_ledger (tenant_id, user_id, at);

CREATE TABLE gateway_tokens (
    id          TEXT    NOT NULL PRIMARY KEY,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    token_hash  TEXT    NOT NULL UNIQUE,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT
);

CREATE TABLE approvals (
    id            TEXT    NOT NULL PRIMARY KEY,
    tenant_id     TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    agent_id      TEXT    NOT NULL,
    user_id       TEXT    NOT NULL,
    session_id    TEXT,
    command       TEXT    NOT NULL,
    cwd           TEXT    NOT NULL,
    command_hash  TEXT    NOT NULL,
    rule          TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    requested_at  BIGINT  NOT NULL,
    decided_at    BIGINT,
    decided_by    TEXT
);

CREATE INDEX approvals_tenant_status ON approvals (tenant_id, status, requested_at DESC);

CREATE INDEX approvals_tenant_hash ON approvals (tenant_id, command_hash, status);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

CREATE UNIQUE INDEX audit_events_tenant_chain ON audit_events (tenant_id, tenant_seq);

CREATE TABLE audit_heads (
    tenant_id    TEXT    NOT NULL PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    chain_start  BIGINT  NOT NULL,
    last_seq     BIGINT  NOT NULL,
    last_hash    TEXT    NOT NULL
);

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

CREATE TABLE pairing_failures (
    id         TEXT    NOT NULL PRIMARY KEY,
    tenant_id  TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    actor      TEXT    NOT NULL,
    at         BIGINT  NOT NULL
);

CREATE INDEX pairing_failures_tenant_at ON pairing_failures (tenant_id, at);

CREATE TABLE job_runs (
    tenant_id    TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    job          TEXT    NOT NULL,
    due_at       BIGINT  NOT NULL,
    owner        TEXT    NOT NULL,
    started_at   BIGINT  NOT NULL,
    status       TEXT    NOT NULL,
    detail       TEXT,
    finished_at  BIGINT,
    PRIMARY KEY (tenant_id, job, due_at)
);

CREATE TABLE agent_links (
    tenant_id       TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    source          TEXT    NOT NULL,
    target          TEXT    NOT NULL,
    direction       TEXT    NOT NULL CHECK (direction IN ('outbound', 'inbound', 'bidirectional')),
    max_concurrent  BIGINT  CHECK (max_concurrent >= 0),
    users           TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, source, target),
    CHECK (source <> target),
    FOREIGN KEY (tenant_id, source) REFERENCES agents (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, target) REFERENCES agents (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX agent_links_target ON agent_links (tenant_id, target);

CREATE TABLE delegations (
    id               TEXT     NOT NULL PRIMARY KEY,
    tenant_id        TEXT     NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind             TEXT     NOT NULL CHECK (kind IN ('spawn', 'delegate')),
    mode             TEXT     NOT NULL CHECK (mode IN ('sync', 'async')),
    caller_agent     TEXT     NOT NULL,
    user_id          TEXT     NOT NULL,
    caller_session   TEXT,
    target_agent     TEXT     NOT NULL,
    parent_id        TEXT,
    task_digest      TEXT     NOT NULL,
    status           TEXT     NOT NULL
                     CHECK (status IN ('running', 'done', 'failed', 'cancelled', 'interrupted')),
    parent_trace_id  TEXT,
    child_trace_id   TEXT,
    child_session    TEXT,
    owner            TEXT     NOT NULL,
    started_at       BIGINT   NOT NULL,
    finished_at      BIGINT,
    input_tokens     BIGINT   NOT NULL DEFAULT 0,
    output_tokens    BIGINT   NOT NULL DEFAULT 0,
    cost_micros      BIGINT   NOT NULL DEFAULT 0,
    error_code       TEXT,
    announced        BOOLEAN  NOT NULL DEFAULT FALSE
);

CREATE INDEX delegations_tenant_started ON delegations (tenant_id, started_at DESC, id DESC);

CREATE INDEX delegations_caller ON delegations (tenant_id, caller_agent, started_at DESC);

CREATE INDEX delegations_target ON delegations (tenant_id, target_agent, started_at DESC);

CREATE INDEX delegations_user ON delegations (tenant_id, user_id, started_at DESC);

CREATE INDEX delegations_running ON delegations (owner) WHERE status = 'running';

CREATE TABLE bindings (
    id          TEXT    NOT NULL PRIMARY KEY,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    channel     TEXT,
    account     TEXT,
    peer        TEXT,
    user_id     TEXT,
    agent       TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    FOREIGN KEY (tenant_id, agent) REFERENCES agents (tenant_id, id) ON DELETE CASCADE
);

CREATE UNIQUE INDEX bindings_match ON bindings
    (tenant_id, COALESCE(channel, ''), COALESCE(account, ''), COALESCE(peer, ''),
     COALESCE(user_id, ''));

CREATE INDEX bindings_tenant_created ON bindings (tenant_id, created_at, id);

CREATE INDEX bindings_agent ON bindings (tenant_id, agent);

CREATE TABLE teams (
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id          TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    lead        TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, lead) REFERENCES agents (tenant_id, id)
);

CREATE INDEX teams_lead ON teams (tenant_id, lead);

CREATE TABLE team_members (
    tenant_id  TEXT  NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    team_id    TEXT  NOT NULL,
    agent      TEXT  NOT NULL,
    PRIMARY KEY (tenant_id, team_id, agent),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, agent) REFERENCES agents (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX team_members_agent ON team_members (tenant_id, agent);

CREATE TABLE team_tasks (
    id           TEXT    NOT NULL PRIMARY KEY,
    tenant_id    TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    team_id      TEXT    NOT NULL,
    title        TEXT    NOT NULL,
    description  TEXT    NOT NULL,
    search       TEXT    NOT NULL,
    status       TEXT    NOT NULL
                 CHECK (status IN ('pending', 'blocked', 'in_progress', 'done', 'failed')),
    owner        TEXT,
    result       TEXT,
    created_by   TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    UNIQUE (tenant_id, team_id, id),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX team_tasks_board ON team_tasks (tenant_id, team_id, created_at, id);

CREATE INDEX team_tasks_status ON team_tasks (tenant_id, team_id, status);

CREATE INDEX team_tasks_owner ON team_tasks (tenant_id, team_id, owner);

CREATE TABLE team_task_deps (
    tenant_id   TEXT  NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    team_id     TEXT  NOT NULL,
    task_id     TEXT  NOT NULL,
    blocked_by  TEXT  NOT NULL,
    PRIMARY KEY (tenant_id, team_id, task_id, blocked_by),
    CHECK (task_id <> blocked_by),
    FOREIGN KEY (tenant_id, team_id, task_id)
        REFERENCES team_tasks (tenant_id, team_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, team_id, blocked_by)
        REFERENCES team_tasks (tenant_id, team_id, id) ON DELETE CASCADE
);

CREATE INDEX team_task_deps_blocked_by ON team_task_deps (tenant_id, team_id, blocked_by);

CREATE TABLE team_task_comments (
    seq        INTEGER    PRIMARY KEY AUTOINCREMENT,
    tenant_id  TEXT       NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    team_id    TEXT       NOT NULL,
    task_id    TEXT       NOT NULL,
    author     TEXT       NOT NULL,
    text       TEXT       NOT NULL,
    at         BIGINT     NOT NULL,
    FOREIGN KEY (tenant_id, team_id, task_id)
        REFERENCES team_tasks (tenant_id, team_id, id) ON DELETE CASCADE
);

CREATE INDEX team_task_comments_task ON team_task_comments (tenant_id, team_id, task_id, at, seq);

CREATE TABLE team_mail (
    seq         INTEGER    PRIMARY KEY AUTOINCREMENT,
    id          TEXT       NOT NULL,
    tenant_id   TEXT       NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    team_id     TEXT       NOT NULL,
    from_agent  TEXT       NOT NULL,
    to_agent    TEXT,
    text        TEXT       NOT NULL,
    sent_at     BIGINT     NOT NULL,
    UNIQUE (tenant_id, id),
    CHECK (to_agent <> from_agent),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX team_mail_box ON team_mail (tenant_id, team_id, sent_at, seq);

CREATE TABLE team_mail_reads (
    tenant_id  TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    mail_id    TEXT    NOT NULL,
    agent      TEXT    NOT NULL,
    take_id    TEXT    NOT NULL,
    read_at    BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, mail_id, agent),
    FOREIGN KEY (tenant_id, mail_id) REFERENCES team_mail (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX team_mail_reads_take ON team_mail_reads (take_id);

CREATE TABLE handoffs (
    tenant_id       TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    channel         TEXT    NOT NULL,
    peer            TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    from_agent      TEXT    NOT NULL,
    to_agent        TEXT    NOT NULL,
    reason          TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    last_active_at  BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, channel, peer, user_id),
    CHECK (from_agent <> to_agent),
    FOREIGN KEY (tenant_id, from_agent) REFERENCES agents (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, to_agent) REFERENCES agents (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX handoffs_active ON handoffs (tenant_id, last_active_at DESC);

CREATE INDEX handoffs_from ON handoffs (tenant_id, from_agent);

CREATE INDEX handoffs_to ON handoffs (tenant_id, to_agent);

CREATE INDEX handoffs_user ON handoffs (tenant_id, user_id);

CREATE INDEX traces_running_by_owner ON traces (owner) WHERE status = 'running';

CREATE TABLE cron_jobs (
    tenant_id        TEXT     NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id               TEXT     NOT NULL,
    agent_id         TEXT     NOT NULL,
    user_id          TEXT     NOT NULL,
    name             TEXT     NOT NULL,
    schedule         TEXT     NOT NULL,
    message          TEXT     NOT NULL,
    delivery         TEXT     NOT NULL CHECK (delivery IN ('session', 'channel', 'webhook')),
    target           TEXT,
    missed           TEXT     NOT NULL CHECK (missed IN ('skip', 'run_once')),
    jitter_ms        BIGINT   NOT NULL,
    enabled          BOOLEAN  NOT NULL,
    disabled_reason  TEXT,
    next_run_at      BIGINT,
    last_run_at      BIGINT,
    created_by       TEXT     NOT NULL,
    created_at       BIGINT   NOT NULL,
    updated_at       BIGINT   NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE INDEX cron_jobs_agent ON cron_jobs (tenant_id, agent_id);

CREATE INDEX cron_jobs_due ON cron_jobs (next_run_at) WHERE enabled;

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
    sent_at          BIGINT, file_name TEXT, file_mime TEXT, file_bytes BLOB, claimed_by TEXT, claimed_until INTEGER,
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

CREATE INDEX messages_summaries ON messages (session_id, seq) WHERE role = 'summary';

CREATE TABLE directory_versions (
    tenant_id  TEXT    NOT NULL PRIMARY KEY,
    version    BIGINT  NOT NULL
);

CREATE TRIGGER agents_directory_insert AFTER INSERT ON agents BEGIN
    INSERT OR IGNORE INTO directory_versions (tenant_id, version) VALUES (NEW.tenant_id, 0);
    UPDATE directory_versions SET version = version + 1 WHERE tenant_id = NEW.tenant_id;
END;

CREATE TRIGGER agents_directory_delete AFTER DELETE ON agents BEGIN
    INSERT OR IGNORE INTO directory_versions (tenant_id, version) VALUES (OLD.tenant_id, 0);
    UPDATE directory_versions SET version = version + 1 WHERE tenant_id = OLD.tenant_id;
END;

CREATE TRIGGER agents_directory_update AFTER UPDATE ON agents BEGIN
    INSERT OR IGNORE INTO directory_versions (tenant_id, version) VALUES (NEW.tenant_id, 0);
    UPDATE directory_versions SET version = version + 1 WHERE tenant_id = NEW.tenant_id;
END;

CREATE TRIGGER agent_links_directory_insert AFTER INSERT ON agent_links BEGIN
    INSERT OR IGNORE INTO directory_versions (tenant_id, version) VALUES (NEW.tenant_id, 0);
    UPDATE directory_versions SET version = version + 1 WHERE tenant_id = NEW.tenant_id;
END;

CREATE TRIGGER agent_links_directory_delete AFTER DELETE ON agent_links BEGIN
    INSERT OR IGNORE INTO directory_versions (tenant_id, version) VALUES (OLD.tenant_id, 0);
    UPDATE directory_versions SET version = version + 1 WHERE tenant_id = OLD.tenant_id;
END;

CREATE TRIGGER agent_links_directory_update AFTER UPDATE ON agent_links BEGIN
    INSERT OR IGNORE INTO directory_versions (tenant_id, version) VALUES (NEW.tenant_id, 0);
    UPDATE directory_versions SET version = version + 1 WHERE tenant_id = NEW.tenant_id;
END;

CREATE TRIGGER teams_directory_insert AFTER INSERT ON teams BEGIN
    INSERT OR IGNORE INTO directory_versions (tenant_id, version) VALUES (NEW.tenant_id, 0);
    UPDATE directory_versions SET version = version + 1 WHERE tenant_id = NEW.tenant_id;
END;

CREATE TRIGGER teams_directory_delete AFTER DELETE ON teams BEGIN
    INSERT OR IGNORE INTO directory_versions (tenant_id, version) VALUES (OLD.tenant_id, 0);
    UPDATE directory_versions SET version = version + 1 WHERE tenant_id = OLD.tenant_id;
END;

CREATE TRIGGER teams_directory_update AFTER UPDATE ON teams BEGIN
    INSERT OR IGNORE INTO directory_versions (tenant_id, version) VALUES (NEW.tenant_id, 0);
    UPDATE directory_versions SET version = version + 1 WHERE tenant_id = NEW.tenant_id;
END;

CREATE TRIGGER team_members_directory_insert AFTER INSERT ON team_members BEGIN
    INSERT OR IGNORE INTO directory_versions (tenant_id, version) VALUES (NEW.tenant_id, 0);
    UPDATE directory_versions SET version = version + 1 WHERE tenant_id = NEW.tenant_id;
END;

CREATE TRIGGER team_members_directory_delete AFTER DELETE ON team_members BEGIN
    INSERT OR IGNORE INTO directory_versions (tenant_id, version) VALUES (OLD.tenant_id, 0);
    UPDATE directory_versions SET version = version + 1 WHERE tenant_id = OLD.tenant_id;
END;

CREATE TRIGGER team_members_directory_update AFTER UPDATE ON team_members BEGIN
    INSERT OR IGNORE INTO directory_versions (tenant_id, version) VALUES (NEW.tenant_id, 0);
    UPDATE directory_versions SET version = version + 1 WHERE tenant_id = NEW.tenant_id;
END;

CREATE TRIGGER handoffs_directory_insert AFTER INSERT ON handoffs BEGIN
    INSERT OR IGNORE INTO directory_versions (tenant_id, version) VALUES (NEW.tenant_id, 0);
    UPDATE directory_versions SET version = version + 1 WHERE tenant_id = NEW.tenant_id;
END;

CREATE TRIGGER handoffs_directory_delete AFTER DELETE ON handoffs BEGIN
    INSERT OR IGNORE INTO directory_versions (tenant_id, version) VALUES (OLD.tenant_id, 0);
    UPDATE directory_versions SET version = version + 1 WHERE tenant_id = OLD.tenant_id;
END;

CREATE TABLE memories (
    num          INTEGER  PRIMARY KEY,
    tenant_id    TEXT     NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id           TEXT     NOT NULL,
    agent_id     TEXT     NOT NULL,
    user_id      TEXT,
    content      TEXT     NOT NULL,
    content_key  TEXT     NOT NULL,
    untrusted    BOOLEAN  NOT NULL,
    importance   BIGINT   NOT NULL CHECK (importance BETWEEN 0 AND 10),
    embedder     TEXT,
    embedding    BLOB,
    created_at   BIGINT   NOT NULL,
    updated_at   BIGINT   NOT NULL,
    UNIQUE (tenant_id, id)
);

CREATE INDEX memories_namespace ON memories (tenant_id, agent_id, user_id, updated_at);

CREATE INDEX memories_key ON memories (tenant_id, agent_id, content_key);

CREATE INDEX memories_embedder ON memories (embedder);

CREATE TABLE budget_reservations (
    id           TEXT    NOT NULL PRIMARY KEY,
    tenant_id    TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    at           BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    model        TEXT    NOT NULL,
    agent_id     TEXT,
    user_id      TEXT,
    cost_micros  BIGINT  NOT NULL,
    tokens       BIGINT  NOT NULL
);

CREATE INDEX budget_reservations_tenant_expires ON budget_reservations (tenant_id, expires_at);

CREATE TRIGGER tenants_settings_directory AFTER UPDATE OF settings ON tenants BEGIN
    INSERT OR IGNORE INTO directory_versions (tenant_id, version) VALUES (NEW.id, 0);
    UPDATE directory_versions SET version = version + 1 WHERE tenant_id = NEW.id;
END;

CREATE TABLE skills (
    num          INTEGER  PRIMARY KEY,
    id           TEXT     NOT NULL UNIQUE,
    tenant_id    TEXT     REFERENCES tenants (id) ON DELETE CASCADE,
    name         TEXT     NOT NULL,
    description  TEXT     NOT NULL,
    version      TEXT     NOT NULL,
    tools        TEXT     NOT NULL,
    status       TEXT     NOT NULL CHECK (status IN ('active', 'quarantined')),
    sha256       TEXT     NOT NULL,
    warnings     TEXT     NOT NULL,
    size         BIGINT   NOT NULL,
    paths        TEXT     NOT NULL,
    search_text  TEXT     NOT NULL,
    embedder     TEXT,
    embedding    BLOB,
    installed_by TEXT     NOT NULL,
    installed_at BIGINT   NOT NULL,
    approved_by  TEXT,
    approved_at  BIGINT
);

CREATE UNIQUE INDEX skills_scope_name ON skills (COALESCE(tenant_id, ''), name);

CREATE TABLE skill_files (
    skill_id  TEXT  NOT NULL REFERENCES skills (id) ON DELETE CASCADE,
    path      TEXT  NOT NULL,
    content   TEXT  NOT NULL,
    PRIMARY KEY (skill_id, path)
);

CREATE VIRTUAL TABLE skills_fts USING fts5 (
    search_text, content = 'skills', content_rowid = 'num', tokenize = 'porter unicode61'
);

CREATE TRIGGER skills_fts_insert AFTER INSERT ON skills BEGIN
    INSERT INTO skills_fts (rowid, search_text) VALUES (new.num, new.search_text);
END;

CREATE TRIGGER skills_fts_delete AFTER DELETE ON skills BEGIN
    INSERT INTO skills_fts (skills_fts, rowid, search_text) VALUES ('delete', old.num, old.search_text);
END;

CREATE TRIGGER skills_fts_update AFTER UPDATE OF search_text ON skills BEGIN
    INSERT INTO skills_fts (skills_fts, rowid, search_text) VALUES ('delete', old.num, old.search_text);
    INSERT INTO skills_fts (rowid, search_text) VALUES (new.num, new.search_text);
END;

CREATE TABLE channel_leases (
    tenant_id  TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    channel    TEXT    NOT NULL,
    holder     TEXT    NOT NULL,
    until_ms   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, channel)
);

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

CREATE VIRTUAL TABLE memories_fts USING fts5 (
    content, ns, content = '', contentless_delete = 1, tokenize = 'porter unicode61'
);

CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories BEGIN
    INSERT INTO memories_fts (rowid, content, ns) VALUES (new.num, new.content,
        'n' || hex(new.tenant_id) || 'x' || hex(new.agent_id) || 'x' || hex(coalesce(new.user_id, '')));
END;

CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories BEGIN
    DELETE FROM memories_fts WHERE rowid = old.num;
END;

CREATE TRIGGER memories_fts_update AFTER UPDATE OF content, tenant_id, agent_id, user_id ON memories BEGIN
    DELETE FROM memories_fts WHERE rowid = old.num;
    INSERT INTO memories_fts (rowid, content, ns) VALUES (new.num, new.content,
        'n' || hex(new.tenant_id) || 'x' || hex(new.agent_id) || 'x' || hex(coalesce(new.user_id, '')));
END;

CREATE VIRTUAL TABLE memories_vec_384 USING vec0 (
    tenant_id TEXT PARTITION KEY,
    agent_id TEXT PARTITION KEY,
    owner TEXT PARTITION KEY,
    embedder TEXT PARTITION KEY,
    bits BIT[384],
    chunk_size = 256
);

CREATE TRIGGER memories_vec_384_insert AFTER INSERT ON memories WHEN length(new.embedding) = 1536 BEGIN
    INSERT INTO memories_vec_384 (rowid, tenant_id, agent_id, owner, embedder, bits) VALUES (new.num, new.tenant_id, new.agent_id, coalesce('u:' || new.user_id, ''), coalesce(new.embedder, ''),
        vec_quantize_binary(vec_f32(new.embedding)));
END;

CREATE TRIGGER memories_vec_384_delete AFTER DELETE ON memories WHEN length(old.embedding) = 1536 BEGIN
    DELETE FROM memories_vec_384 WHERE rowid = old.num;
END;

CREATE TRIGGER memories_vec_384_update AFTER UPDATE OF embedding, embedder, tenant_id, agent_id, user_id
ON memories WHEN length(new.embedding) = 1536 BEGIN
    DELETE FROM memories_vec_384 WHERE rowid = new.num;
    INSERT INTO memories_vec_384 (rowid, tenant_id, agent_id, owner, embedder, bits) VALUES (new.num, new.tenant_id, new.agent_id, coalesce('u:' || new.user_id, ''), coalesce(new.embedder, ''),
        vec_quantize_binary(vec_f32(new.embedding)));
END;

CREATE TRIGGER memories_vec_384_unset AFTER UPDATE OF embedding, embedder, tenant_id, agent_id, user_id
ON memories WHEN length(old.embedding) = 1536 AND length(new.embedding) IS NOT 1536 BEGIN
    DELETE FROM memories_vec_384 WHERE rowid = old.num;
END;

CREATE VIRTUAL TABLE memories_vec_768 USING vec0 (
    tenant_id TEXT PARTITION KEY,
    agent_id TEXT PARTITION KEY,
    owner TEXT PARTITION KEY,
    embedder TEXT PARTITION KEY,
    bits BIT[768],
    chunk_size = 256
);

CREATE TRIGGER memories_vec_768_insert AFTER INSERT ON memories WHEN length(new.embedding) = 3072 BEGIN
    INSERT INTO memories_vec_768 (rowid, tenant_id, agent_id, owner, embedder, bits) VALUES (new.num, new.tenant_id, new.agent_id, coalesce('u:' || new.user_id, ''), coalesce(new.embedder, ''),
        vec_quantize_binary(vec_f32(new.embedding)));
END;

CREATE TRIGGER memories_vec_768_delete AFTER DELETE ON memories WHEN length(old.embedding) = 3072 BEGIN
    DELETE FROM memories_vec_768 WHERE rowid = old.num;
END;

CREATE TRIGGER memories_vec_768_update AFTER UPDATE OF embedding, embedder, tenant_id, agent_id, user_id
ON memories WHEN length(new.embedding) = 3072 BEGIN
    DELETE FROM memories_vec_768 WHERE rowid = new.num;
    INSERT INTO memories_vec_768 (rowid, tenant_id, agent_id, owner, embedder, bits) VALUES (new.num, new.tenant_id, new.agent_id, coalesce('u:' || new.user_id, ''), coalesce(new.embedder, ''),
        vec_quantize_binary(vec_f32(new.embedding)));
END;

CREATE TRIGGER memories_vec_768_unset AFTER UPDATE OF embedding, embedder, tenant_id, agent_id, user_id
ON memories WHEN length(old.embedding) = 3072 AND length(new.embedding) IS NOT 3072 BEGIN
    DELETE FROM memories_vec_768 WHERE rowid = old.num;
END;

CREATE VIRTUAL TABLE memories_vec_1024 USING vec0 (
    tenant_id TEXT PARTITION KEY,
    agent_id TEXT PARTITION KEY,
    owner TEXT PARTITION KEY,
    embedder TEXT PARTITION KEY,
    bits BIT[1024],
    chunk_size = 256
);

CREATE TRIGGER memories_vec_1024_insert AFTER INSERT ON memories WHEN length(new.embedding) = 4096 BEGIN
    INSERT INTO memories_vec_1024 (rowid, tenant_id, agent_id, owner, embedder, bits) VALUES (new.num, new.tenant_id, new.agent_id, coalesce('u:' || new.user_id, ''), coalesce(new.embedder, ''),
        vec_quantize_binary(vec_f32(new.embedding)));
END;

CREATE TRIGGER memories_vec_1024_delete AFTER DELETE ON memories WHEN length(old.embedding) = 4096 BEGIN
    DELETE FROM memories_vec_1024 WHERE rowid = old.num;
END;

CREATE TRIGGER memories_vec_1024_update AFTER UPDATE OF embedding, embedder, tenant_id, agent_id, user_id
ON memories WHEN length(new.embedding) = 4096 BEGIN
    DELETE FROM memories_vec_1024 WHERE rowid = new.num;
    INSERT INTO memories_vec_1024 (rowid, tenant_id, agent_id, owner, embedder, bits) VALUES (new.num, new.tenant_id, new.agent_id, coalesce('u:' || new.user_id, ''), coalesce(new.embedder, ''),
        vec_quantize_binary(vec_f32(new.embedding)));
END;

CREATE TRIGGER memories_vec_1024_unset AFTER UPDATE OF embedding, embedder, tenant_id, agent_id, user_id
ON memories WHEN length(old.embedding) = 4096 AND length(new.embedding) IS NOT 4096 BEGIN
    DELETE FROM memories_vec_1024 WHERE rowid = old.num;
END;

CREATE VIRTUAL TABLE memories_vec_1536 USING vec0 (
    tenant_id TEXT PARTITION KEY,
    agent_id TEXT PARTITION KEY,
    owner TEXT PARTITION KEY,
    embedder TEXT PARTITION KEY,
    bits BIT[1536],
    chunk_size = 256
);

CREATE TRIGGER memories_vec_1536_insert AFTER INSERT ON memories WHEN length(new.embedding) = 6144 BEGIN
    INSERT INTO memories_vec_1536 (rowid, tenant_id, agent_id, owner, embedder, bits) VALUES (new.num, new.tenant_id, new.agent_id, coalesce('u:' || new.user_id, ''), coalesce(new.embedder, ''),
        vec_quantize_binary(vec_f32(new.embedding)));
END;

CREATE TRIGGER memories_vec_1536_delete AFTER DELETE ON memories WHEN length(old.embedding) = 6144 BEGIN
    DELETE FROM memories_vec_1536 WHERE rowid = old.num;
END;

CREATE TRIGGER memories_vec_1536_update AFTER UPDATE OF embedding, embedder, tenant_id, agent_id, user_id
ON memories WHEN length(new.embedding) = 6144 BEGIN
    DELETE FROM memories_vec_1536 WHERE rowid = new.num;
    INSERT INTO memories_vec_1536 (rowid, tenant_id, agent_id, owner, embedder, bits) VALUES (new.num, new.tenant_id, new.agent_id, coalesce('u:' || new.user_id, ''), coalesce(new.embedder, ''),
        vec_quantize_binary(vec_f32(new.embedding)));
END;

CREATE TRIGGER memories_vec_1536_unset AFTER UPDATE OF embedding, embedder, tenant_id, agent_id, user_id
ON memories WHEN length(old.embedding) = 6144 AND length(new.embedding) IS NOT 6144 BEGIN
    DELETE FROM memories_vec_1536 WHERE rowid = old.num;
END;

CREATE TABLE memory_generations (
    tenant_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    generation INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, agent_id)
) WITHOUT ROWID;

CREATE TRIGGER memory_generation_insert AFTER INSERT ON memories BEGIN
    INSERT INTO memory_generations (tenant_id, agent_id, generation)
        VALUES (new.tenant_id, new.agent_id, 1)
        ON CONFLICT (tenant_id, agent_id) DO UPDATE SET generation = generation + 1;
END;

CREATE TRIGGER memory_generation_delete AFTER DELETE ON memories BEGIN
    INSERT INTO memory_generations (tenant_id, agent_id, generation)
        VALUES (old.tenant_id, old.agent_id, 1)
        ON CONFLICT (tenant_id, agent_id) DO UPDATE SET generation = generation + 1;
END;

CREATE TRIGGER memory_generation_update
AFTER UPDATE OF embedding, embedder, tenant_id, agent_id, user_id ON memories BEGIN
    INSERT INTO memory_generations (tenant_id, agent_id, generation)
        VALUES (old.tenant_id, old.agent_id, 1)
        ON CONFLICT (tenant_id, agent_id) DO UPDATE SET generation = generation + 1;
    INSERT INTO memory_generations (tenant_id, agent_id, generation)
        VALUES (new.tenant_id, new.agent_id, 1)
        ON CONFLICT (tenant_id, agent_id) DO UPDATE SET generation = generation + 1;
END;

INSERT INTO tenants (id, name, created_at, settings, settings_version) VALUES ('default', 'Default', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), '{}', 0);
