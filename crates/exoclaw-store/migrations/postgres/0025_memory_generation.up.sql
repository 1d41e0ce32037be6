-- exoclaw schema 25 (PostgreSQL): nothing. SQLite's schema 25 adds the
-- generations that let its store keep a namespace's vector sign bits in
-- memory; PostgreSQL answers vector searches from its HNSW indexes and
-- keeps nothing. The version stays in step with
-- ../sqlite/0025_memory_generation.up.sql.
SELECT 1;
