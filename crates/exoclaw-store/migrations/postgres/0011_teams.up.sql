-- exoclaw schema 11 (PostgreSQL): agent teams. A team (a lead and members),
-- its task board (tasks, their dependencies and comments), its mailbox (with
-- who read what), and conversation handoffs. Keep in step with
-- ../sqlite/0011_teams.up.sql.
--
-- Deleting an agent deletes its team memberships and the handoffs from or to
-- it; deleting the lead of a team is refused (teams.lead has no ON DELETE
-- action: the store answers Conflict, naming the team) so that a team's board
-- and mailbox never vanish with one agent. Deleting a team deletes its
-- board and mailbox. Task owners and authors, mail senders and recipients
-- are records (not foreign keys): the board keeps its history when an agent
-- goes.

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

-- The members besides the lead.
CREATE TABLE team_members (
    tenant_id  TEXT  NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    team_id    TEXT  NOT NULL,
    agent      TEXT  NOT NULL,
    PRIMARY KEY (tenant_id, team_id, agent),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, agent) REFERENCES agents (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX team_members_agent ON team_members (tenant_id, agent);

-- search: title and description lowercased by the store (the same Unicode
-- rules on both backends), matched with LIKE.
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

-- task_id waits for blocked_by. Both are tasks of the same team (the
-- foreign keys include the team), so a dependency never crosses teams or
-- tenants; a task names its dependencies only when it is created, so they
-- cannot loop.
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

-- The dependents of a finished task.
CREATE INDEX team_task_deps_blocked_by ON team_task_deps (tenant_id, team_id, blocked_by);

CREATE TABLE team_task_comments (
    seq        BIGSERIAL  PRIMARY KEY,
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

-- to_agent NULL: a broadcast to every member but the sender.
CREATE TABLE team_mail (
    seq         BIGSERIAL  PRIMARY KEY,
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

-- One row per message and reader. take_unread inserts these rows with
-- ON CONFLICT DO NOTHING and returns the messages of the rows it inserted
-- (found by its take_id), so two concurrent takers never both get one.
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

-- At most one handoff per conversation (channel, peer, user).
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
