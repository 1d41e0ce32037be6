DROP TRIGGER memories_vec_1536_unset;
DROP TRIGGER memories_vec_1536_update;
DROP TRIGGER memories_vec_1536_delete;
DROP TRIGGER memories_vec_1536_insert;
DROP TABLE memories_vec_1536;
DROP TRIGGER memories_vec_1024_unset;
DROP TRIGGER memories_vec_1024_update;
DROP TRIGGER memories_vec_1024_delete;
DROP TRIGGER memories_vec_1024_insert;
DROP TABLE memories_vec_1024;
DROP TRIGGER memories_vec_768_unset;
DROP TRIGGER memories_vec_768_update;
DROP TRIGGER memories_vec_768_delete;
DROP TRIGGER memories_vec_768_insert;
DROP TABLE memories_vec_768;
DROP TRIGGER memories_vec_384_unset;
DROP TRIGGER memories_vec_384_update;
DROP TRIGGER memories_vec_384_delete;
DROP TRIGGER memories_vec_384_insert;
DROP TABLE memories_vec_384;
DROP TRIGGER memories_fts_update;
DROP TRIGGER memories_fts_delete;
DROP TRIGGER memories_fts_insert;
DROP TABLE memories_fts;

CREATE VIRTUAL TABLE memories_fts USING fts5 (
    content, content = 'memories', content_rowid = 'num', tokenize = 'porter unicode61'
);

INSERT INTO memories_fts (memories_fts) VALUES ('rebuild');

CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories BEGIN
    INSERT INTO memories_fts (rowid, content) VALUES (new.num, new.content);
END;

CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, content) VALUES ('delete', old.num, old.content);
END;

CREATE TRIGGER memories_fts_update AFTER UPDATE OF content ON memories BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, content) VALUES ('delete', old.num, old.content);
    INSERT INTO memories_fts (rowid, content) VALUES (new.num, new.content);
END;
