-- exoclaw schema 24 (PostgreSQL): indexes that answer a memory search without
-- reading the namespace (issue 14). Needs pgvector 0.8 or later (for
-- `hnsw.iterative_scan`). Keep in step with ../sqlite/0024_memory_index.up.sql.
--
-- tsv: the stored tsvector of the content (English), under a GIN index, so
-- ranking a match does not compute it again. embedding_v: the vector as
-- pgvector's `vector`, with one HNSW (cosine) index per indexed dimension
-- (384, 768, 1024, 1536: HNSW needs a fixed dimension, so partial expression
-- indexes; a vector of another dimension is found by a scan). Both are
-- derived from `content` and `embedding` by a trigger on every insert and
-- update (so a backup's rows, which leave them out, and plain INSERTs fill
-- them too); the backup's export leaves them out.

DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS vector;
EXCEPTION WHEN OTHERS THEN
    RAISE EXCEPTION 'exoclaw schema 24 needs the pgvector extension (0.8 or later) in this database: %', SQLERRM
        USING HINT = 'install pgvector on the PostgreSQL server (e.g. the postgresql-<version>-pgvector package, or build it from github.com/pgvector/pgvector), then run the migration again as a role that may CREATE EXTENSION, or have an administrator run CREATE EXTENSION vector in this database first';
END
$$;

DO $$
BEGIN
    IF string_to_array(split_part((SELECT extversion FROM pg_extension WHERE extname = 'vector'), '-', 1), '.')::int[] < ARRAY[0, 8] THEN
        RAISE EXCEPTION 'exoclaw schema 24 needs pgvector 0.8 or later; this database has %',
            (SELECT extversion FROM pg_extension WHERE extname = 'vector')
            USING HINT = 'upgrade pgvector on the server, then ALTER EXTENSION vector UPDATE';
    END IF;
END
$$;

-- The little-endian f32s of `embedding` as a vector (NULL for NULL).
CREATE FUNCTION memory_vector(b BYTEA) RETURNS vector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT array_agg(
        CASE WHEN e = 0 THEN m * power(2::float8, -149)
             ELSE (1 + m / 8388608) * power(2::float8, e - 127) END
        * CASE WHEN s = 1 THEN -1 ELSE 1 END
        ORDER BY i)::real[]::vector
    FROM (
        SELECT i, u >> 31 AS s, (u >> 23) & 255 AS e, (u & 8388607)::float8 AS m
        FROM (
            SELECT i, get_byte(b, 4 * i)::bigint
                | (get_byte(b, 4 * i + 1)::bigint << 8)
                | (get_byte(b, 4 * i + 2)::bigint << 16)
                | (get_byte(b, 4 * i + 3)::bigint << 24) AS u
            FROM generate_series(0, length(b) / 4 - 1) AS i
        ) AS w
    ) AS f
$$;

CREATE FUNCTION memories_derive() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.tsv := to_tsvector('english', NEW.content);
    NEW.embedding_v := memory_vector(NEW.embedding);
    RETURN NEW;
END
$$;

ALTER TABLE memories ADD COLUMN tsv tsvector, ADD COLUMN embedding_v vector;

UPDATE memories SET tsv = to_tsvector('english', content), embedding_v = memory_vector(embedding);

CREATE TRIGGER memories_derive BEFORE INSERT OR UPDATE OF content, embedding ON memories
    FOR EACH ROW EXECUTE FUNCTION memories_derive();

DROP INDEX memories_tsv;
CREATE INDEX memories_tsv ON memories USING GIN (tsv);

CREATE INDEX memories_vec_384 ON memories
    USING hnsw ((embedding_v::vector(384)) vector_cosine_ops)
    WHERE vector_dims(embedding_v) = 384;

CREATE INDEX memories_vec_768 ON memories
    USING hnsw ((embedding_v::vector(768)) vector_cosine_ops)
    WHERE vector_dims(embedding_v) = 768;

CREATE INDEX memories_vec_1024 ON memories
    USING hnsw ((embedding_v::vector(1024)) vector_cosine_ops)
    WHERE vector_dims(embedding_v) = 1024;

CREATE INDEX memories_vec_1536 ON memories
    USING hnsw ((embedding_v::vector(1536)) vector_cosine_ops)
    WHERE vector_dims(embedding_v) = 1536;
