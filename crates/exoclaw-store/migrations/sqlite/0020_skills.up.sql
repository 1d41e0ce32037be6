-- exoclaw schema 19 (SQLite): skills. A skill belongs to a tenant, or
-- (tenant_id NULL) is the gateway's own, loaded from skills/ in the data
-- dir and seen by every tenant; its name is unique in that scope. The
-- files' contents are in skill_files. sha256 pins the content an
-- administrator approves; a quarantined skill is never searched. skills_fts
-- is the FTS5 index over search_text (external content, kept by triggers;
-- `num` is the rowid it points at). embedding is the vector (little-endian
-- f32s) of the embedder named in `embedder`. Keep in step with
-- ../postgres/0019_skills.up.sql.

CREATE TABLE skills (
    num          INTEGER  PRIMARY KEY,
    id           TEXT     NOT NULL UNIQUE,
    tenant_id    TEXT     REFERENCES tenants (id) ON DELETE CASCADE,
    name         TEXT     NOT NULL,
    description  TEXT     NOT NULL,
    version      TEXT     NOT NULL,
    tools        TEXT     NOT NULL,
    status       TEXT     NOT NULL CHECK (status IN ('active', 'quarantined')),
    sha256       TEXT     NOT NULL,
    warnings     TEXT     NOT NULL,
    size         BIGINT   NOT NULL,
    paths        TEXT     NOT NULL,
    search_text  TEXT     NOT NULL,
    embedder     TEXT,
    embedding    BLOB,
    installed_by TEXT     NOT NULL,
    installed_at BIGINT   NOT NULL,
    approved_by  TEXT,
    approved_at  BIGINT
);

CREATE UNIQUE INDEX skills_scope_name ON skills (COALESCE(tenant_id, ''), name);

CREATE TABLE skill_files (
    skill_id  TEXT  NOT NULL REFERENCES skills (id) ON DELETE CASCADE,
    path      TEXT  NOT NULL,
    content   TEXT  NOT NULL,
    PRIMARY KEY (skill_id, path)
);

CREATE VIRTUAL TABLE skills_fts USING fts5 (
    search_text, content = 'skills', content_rowid = 'num', tokenize = 'porter unicode61'
);

CREATE TRIGGER skills_fts_insert AFTER INSERT ON skills BEGIN
    INSERT INTO skills_fts (rowid, search_text) VALUES (new.num, new.search_text);
END;

CREATE TRIGGER skills_fts_delete AFTER DELETE ON skills BEGIN
    INSERT INTO skills_fts (skills_fts, rowid, search_text) VALUES ('delete', old.num, old.search_text);
END;

CREATE TRIGGER skills_fts_update AFTER UPDATE OF search_text ON skills BEGIN
    INSERT INTO skills_fts (skills_fts, rowid, search_text) VALUES ('delete', old.num, old.search_text);
    INSERT INTO skills_fts (rowid, search_text) VALUES (new.num, new.search_text);
END;
