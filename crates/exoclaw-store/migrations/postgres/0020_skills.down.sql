DROP TABLE skill_files;
DROP TABLE skills;
