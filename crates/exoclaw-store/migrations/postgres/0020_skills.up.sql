-- exoclaw schema 19 (PostgreSQL): skills. A skill belongs to a tenant, or
-- (tenant_id NULL) is the gateway's own, loaded from skills/ in the data
-- dir and seen by every tenant; its name is unique in that scope. The
-- files' contents are in skill_files. sha256 pins the content an
-- administrator approves; a quarantined skill is never searched. Full text
-- goes through an expression GIN index over to_tsvector('english',
-- search_text), as for memories. embedding is the vector (little-endian
-- f32s) of the embedder named in `embedder`. Keep in step with
-- ../sqlite/0019_skills.up.sql.

CREATE TABLE skills (
    id           TEXT     PRIMARY KEY,
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
    embedding    BYTEA,
    installed_by TEXT     NOT NULL,
    installed_at BIGINT   NOT NULL,
    approved_by  TEXT,
    approved_at  BIGINT
);

CREATE UNIQUE INDEX skills_scope_name ON skills ((COALESCE(tenant_id, '')), name);
CREATE INDEX skills_tsv ON skills USING GIN (to_tsvector('english', search_text));

CREATE TABLE skill_files (
    skill_id  TEXT  NOT NULL REFERENCES skills (id) ON DELETE CASCADE,
    path      TEXT  NOT NULL,
    content   TEXT  NOT NULL,
    PRIMARY KEY (skill_id, path)
);
