-- exoclaw schema 17 (PostgreSQL): long-term memory. A memory belongs to a
-- tenant's agent and to one of its users, or (user_id NULL) is the agent's
-- shared memory. content_key is the normalised text's digest, for exact
-- duplicates within a namespace. Full text goes through an expression GIN
-- index over to_tsvector('english', content) (English stemming, like
-- SQLite's porter tokenizer; no generated column, so a backup's rows import
-- as they were exported). embedding
-- is the vector (little-endian f32s) of the embedder named in `embedder`.
-- Keep in step with ../sqlite/0017_memory.up.sql.

CREATE TABLE memories (
    tenant_id    TEXT     NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id           TEXT     NOT NULL,
    agent_id     TEXT     NOT NULL,
    user_id      TEXT,
    content      TEXT     NOT NULL,
    content_key  TEXT     NOT NULL,
    untrusted    BOOLEAN  NOT NULL,
    importance   BIGINT   NOT NULL CHECK (importance BETWEEN 0 AND 10),
    embedder     TEXT,
    embedding    BYTEA,
    created_at   BIGINT   NOT NULL,
    updated_at   BIGINT   NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE INDEX memories_namespace ON memories (tenant_id, agent_id, user_id, updated_at);
CREATE INDEX memories_key ON memories (tenant_id, agent_id, content_key);
CREATE INDEX memories_embedder ON memories (embedder);
CREATE INDEX memories_tsv ON memories USING GIN (to_tsvector('english', content));
