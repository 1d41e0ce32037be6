-- exoclaw schema 24 (SQLite): indexes that answer a memory search without
-- reading the namespace (issue 14). Keep in step with
-- ../postgres/0024_memory_index.up.sql.
--
-- Vectors: one sqlite-vec `vec0` table per indexed dimension (384, 768,
-- 1024, 1536; a vector of another dimension is found by the scan of
-- `memories`), holding each vector's sign bits (`vec_quantize_binary`),
-- partitioned by tenant, agent, owner ('' for the agent's shared memories,
-- 'u:' and the user id for a user's) and embedder, so a search reads only
-- its namespace's chunks. The store takes the best by Hamming distance
-- with a generous margin, then orders those by the exact cosine of the
-- stored float vectors. The rowid is `memories.num`. Triggers keep the
-- tables in step with every write to `memories` (save, merge, retention,
-- delete, re-embedding, a tenant's cascade), so every connection that
-- writes memories needs sqlite-vec: the store registers it before any
-- connection opens.
--
-- Full text: `memories_fts` again, contentless (with deletes) and with a
-- second column `ns` holding one token per namespace ('n', the hex of the
-- tenant, 'x', of the agent, 'x', of the user or nothing for shared), so a
-- query can be limited to the namespace inside FTS5 and stop after a
-- bounded number of matches.

DROP TRIGGER memories_fts_update;
DROP TRIGGER memories_fts_delete;
DROP TRIGGER memories_fts_insert;
DROP TABLE memories_fts;

CREATE VIRTUAL TABLE memories_fts USING fts5 (
    content, ns, content = '', contentless_delete = 1, tokenize = 'porter unicode61'
);

INSERT INTO memories_fts (rowid, content, ns)
    SELECT num, content,
           'n' || hex(tenant_id) || 'x' || hex(agent_id) || 'x' || hex(coalesce(user_id, ''))
    FROM memories;

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

-- The memories stored before: each update fires the triggers above (one
-- row at a time, as `vec0` needs: its bit vectors must come straight from
-- `vec_quantize_binary`, which an INSERT ... SELECT does not keep).
UPDATE memories SET embedding = embedding WHERE embedding IS NOT NULL;
