-- exoclaw schema 17 (SQLite): long-term memory. A memory belongs to a
-- tenant's agent and to one of its users, or (user_id NULL) is the agent's
-- shared memory. content_key is the normalised text's digest, for exact
-- duplicates within a namespace. memories_fts is the FTS5 index over the
-- content (external content, kept by triggers; `num` is the stable rowid
-- it points at). embedding is the vector (little-endian f32s) of the
-- embedder named in `embedder`. Keep in step with
-- ../postgres/0017_memory.up.sql.

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

CREATE VIRTUAL TABLE memories_fts USING fts5 (
    content, content = 'memories', content_rowid = 'num', tokenize = 'porter unicode61'
);

CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories BEGIN
    INSERT INTO memories_fts (rowid, content) VALUES (new.num, new.content);
END;

CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, content) VALUES ('delete', old.num, old.content);
END;

CREATE TRIGGER memories_fts_update AFTER UPDATE OF content ON memories BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, content) VALUES ('delete', old.num, old.content);
    INSERT INTO memories_fts (rowid, content) VALUES (new.num, new.content);
END;
