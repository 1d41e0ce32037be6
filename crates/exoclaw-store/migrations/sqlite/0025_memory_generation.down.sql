DROP TRIGGER memory_generation_update;
DROP TRIGGER memory_generation_delete;
DROP TRIGGER memory_generation_insert;
DROP TABLE memory_generations;
