-- exoclaw schema 25 (SQLite): a generation per tenant and agent, raised by
-- every write to the agent's memories (save, merge, re-embedding,
-- retention, forget, a tenant's or user's cascade), so that the store can
-- keep a namespace's vector sign bits in memory between searches and know,
-- in the search's own read transaction, whether its copy is still what the
-- sqlite-vec table holds (src/sqlite/vectors.rs). Keep in step with
-- ../postgres/0025_memory_generation.up.sql.

CREATE TABLE memory_generations (
    tenant_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    generation INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, agent_id)
) WITHOUT ROWID;

INSERT INTO memory_generations (tenant_id, agent_id, generation)
    SELECT DISTINCT tenant_id, agent_id, 1 FROM memories;

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
