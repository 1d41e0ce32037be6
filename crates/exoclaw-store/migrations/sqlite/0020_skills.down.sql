DROP TRIGGER skills_fts_update;
DROP TRIGGER skills_fts_delete;
DROP TRIGGER skills_fts_insert;
DROP TABLE skills_fts;
DROP TABLE skill_files;
DROP TABLE skills;
