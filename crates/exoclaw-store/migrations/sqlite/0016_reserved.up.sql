-- exoclaw schema 16: reserved for a branch developed alongside memory
-- (schema 17); this placeholder keeps the versions contiguous until it
-- lands, and is replaced by it.
SELECT 1;
