-- exoclaw schema 26 (PostgreSQL): how many memories of each namespace hold
-- each lexeme (issue 14). A memory search first counts, per query word, the
-- namespace's matches (up to 200), to leave out the words that match many;
-- through the GIN index a common word's count built a bitmap of all its
-- matches first (about 4 ms a word with 100,000 memories, most of a search).
-- Read from here it is one index lookup a word.
--
-- Kept by statement-level triggers on `memories` (so a bulk insert updates
-- each lexeme once), whoever writes: this gateway, another, the CLI, an
-- import. `user_key` is the memory's user, '' for an agent's shared ones.
-- Every upsert takes its rows in key order, so two never wait on each other
-- in a circle; the counts a delete brings to 0 are then dropped (rows its
-- own upsert holds already). Derived: not exported by a backup, rebuilt by the
-- import's inserts. SQLite counts through FTS5 and needs none; its schema 26
-- is empty (../sqlite/0026_memory_terms.up.sql).

CREATE TABLE memory_terms (
    tenant_id TEXT   NOT NULL,
    agent_id  TEXT   NOT NULL,
    user_key  TEXT   NOT NULL,
    lexeme    TEXT   NOT NULL,
    n         BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, agent_id, user_key, lexeme)
);

CREATE FUNCTION memory_terms_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO memory_terms AS t (tenant_id, agent_id, user_key, lexeme, n)
    SELECT r.tenant_id, r.agent_id, coalesce(r.user_id, ''), l.lexeme, count(*)
    FROM new_rows r, unnest(r.tsv) AS l
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (tenant_id, agent_id, user_key, lexeme) DO UPDATE SET n = t.n + excluded.n;
    RETURN NULL;
END
$$;

CREATE FUNCTION memory_terms_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO memory_terms AS t (tenant_id, agent_id, user_key, lexeme, n)
    SELECT r.tenant_id, r.agent_id, coalesce(r.user_id, ''), l.lexeme, -count(*)
    FROM old_rows r, unnest(r.tsv) AS l
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (tenant_id, agent_id, user_key, lexeme) DO UPDATE SET n = t.n + excluded.n;
    DELETE FROM memory_terms t
    USING (SELECT DISTINCT r.tenant_id, r.agent_id, coalesce(r.user_id, '') AS user_key, l.lexeme
           FROM old_rows r, unnest(r.tsv) AS l) d
    WHERE t.tenant_id = d.tenant_id AND t.agent_id = d.agent_id AND t.user_key = d.user_key
      AND t.lexeme = d.lexeme AND t.n <= 0;
    RETURN NULL;
END
$$;

-- An update changes the counts only for rows whose text or namespace
-- changed: the old lexemes out, the new ones in, in one ordered upsert.
CREATE FUNCTION memory_terms_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    WITH changed AS (
        SELECT o.tenant_id AS o_tenant, o.agent_id AS o_agent, o.user_id AS o_user, o.tsv AS o_tsv,
               n.tenant_id, n.agent_id, n.user_id, n.tsv
        FROM old_rows o JOIN new_rows n ON n.tenant_id = o.tenant_id AND n.id = o.id
        WHERE o.tsv IS DISTINCT FROM n.tsv OR o.agent_id IS DISTINCT FROM n.agent_id
           OR o.user_id IS DISTINCT FROM n.user_id
    ), delta AS (
        SELECT o_tenant AS tenant_id, o_agent AS agent_id, coalesce(o_user, '') AS user_key,
               l.lexeme, -1 AS d
        FROM changed, unnest(o_tsv) AS l
        UNION ALL
        SELECT tenant_id, agent_id, coalesce(user_id, ''), l.lexeme, 1
        FROM changed, unnest(tsv) AS l
    )
    INSERT INTO memory_terms AS t (tenant_id, agent_id, user_key, lexeme, n)
    SELECT tenant_id, agent_id, user_key, lexeme, sum(d)
    FROM delta
    GROUP BY 1, 2, 3, 4
    HAVING sum(d) <> 0
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (tenant_id, agent_id, user_key, lexeme) DO UPDATE SET n = t.n + excluded.n;
    IF FOUND THEN
        DELETE FROM memory_terms t
        USING (SELECT DISTINCT o.tenant_id, o.agent_id, coalesce(o.user_id, '') AS user_key, l.lexeme
               FROM old_rows o JOIN new_rows n ON n.tenant_id = o.tenant_id AND n.id = o.id,
                    unnest(o.tsv) AS l
               WHERE o.tsv IS DISTINCT FROM n.tsv OR o.agent_id IS DISTINCT FROM n.agent_id
                  OR o.user_id IS DISTINCT FROM n.user_id) d
        WHERE t.tenant_id = d.tenant_id AND t.agent_id = d.agent_id AND t.user_key = d.user_key
          AND t.lexeme = d.lexeme AND t.n <= 0;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER memory_terms_insert AFTER INSERT ON memories
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION memory_terms_insert();

CREATE TRIGGER memory_terms_update AFTER UPDATE ON memories
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION memory_terms_update();

CREATE TRIGGER memory_terms_delete AFTER DELETE ON memories
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION memory_terms_delete();

INSERT INTO memory_terms (tenant_id, agent_id, user_key, lexeme, n)
SELECT m.tenant_id, m.agent_id, coalesce(m.user_id, ''), l.lexeme, count(*)
FROM memories m, unnest(m.tsv) AS l
GROUP BY 1, 2, 3, 4;
