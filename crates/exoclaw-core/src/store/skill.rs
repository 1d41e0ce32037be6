//! Skills ([`SkillStore`]): folders of know-how (a `SKILL.md` with front
//! matter, and supporting text files) that agents find with `skill_search`
//! and read with `skill_read`. A skill is a tenant's (installed through
//! `/v1/skills` or `exoclaw skills install`) or the gateway's own (from
//! `skills/` in the data dir, `tenant_id` `None`), which every tenant sees;
//! a tenant's skill shadows the gateway's of the same name.
//!
//! A skill is stored whole: its files' contents, the SHA-256 pin of that
//! content and its status. One the install checks warned about is
//! [`SkillStatus::Quarantined`]: listed, never searched or read by the
//! tools, until an administrator approves that very content (the pin).
//! Search is hybrid like memory's: full text (SQLite FTS5, PostgreSQL
//! `tsvector`) and, with a query vector, cosine, fused by
//! [`super::memory::fuse_by`].

use super::error::StoreResult;
use super::memory::Embedding;
use crate::{TenantId, UnixMillis};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Whether the tools may use a skill.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkillStatus {
    /// Offered, searched and read.
    Active,
    /// An install check warned: listed, not offered, until approved.
    Quarantined,
}

impl SkillStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SkillStatus::Active => "active",
            SkillStatus::Quarantined => "quarantined",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(SkillStatus::Active),
            "quarantined" => Some(SkillStatus::Quarantined),
            _ => None,
        }
    }
}

/// One file of a skill (UTF-8 text), by its path relative to the skill's
/// folder (`SKILL.md`, `scripts/check.sh`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkillFile {
    pub path: String,
    pub content: String,
}

/// A stored skill, without its files' contents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Skill {
    /// `None`: the gateway's own, seen by every tenant.
    pub tenant_id: Option<TenantId>,
    pub name: String,
    pub description: String,
    pub version: String,
    /// Tools the skill needs (from its front matter).
    pub tools: Vec<String>,
    pub status: SkillStatus,
    /// SHA-256 (hex) over the files' paths and contents, in path order.
    pub sha256: String,
    /// What the install checks warned about (empty for a clean skill).
    pub warnings: Vec<String>,
    /// Paths of its files, sorted.
    pub files: Vec<String>,
    /// Bytes of all its files.
    pub size: i64,
    /// The embedder of its vector, when it has one.
    pub embedder: Option<String>,
    pub installed_by: String,
    pub installed_at: UnixMillis,
    pub approved_by: Option<String>,
    pub approved_at: Option<UnixMillis>,
}

impl Skill {
    pub fn is_gateway(&self) -> bool {
        self.tenant_id.is_none()
    }
}

/// A skill to store (replacing one of the same name in its scope).
#[derive(Clone, Debug, PartialEq)]
pub struct NewSkill {
    pub name: String,
    pub description: String,
    pub version: String,
    pub tools: Vec<String>,
    pub status: SkillStatus,
    pub sha256: String,
    pub warnings: Vec<String>,
    /// Sorted by path, paths unique.
    pub files: Vec<SkillFile>,
    /// What full-text search indexes (name, description, `SKILL.md`).
    pub search_text: String,
    /// The vector of the name and description, when an embedder answered.
    pub embedding: Option<Embedding>,
    pub installed_by: String,
}

/// A search over the skills a tenant sees (active ones only).
#[derive(Clone, Debug, PartialEq)]
pub struct SkillQuery {
    pub text: String,
    pub embedding: Option<Embedding>,
    /// 1 to 100.
    pub limit: u32,
}

/// How many skills have a vector of an embedder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SkillStats {
    pub total: u64,
    /// With a vector of the embedder asked about.
    pub embedded: u64,
}

/// The text a skill's vector is of: its name and description.
pub fn vector_text(name: &str, description: &str) -> String {
    format!("{name}: {description}")
}

/// One search hit.
#[derive(Clone, Debug, PartialEq)]
pub struct SkillHit {
    pub skill: Skill,
    pub score: f64,
    pub text_rank: Option<u32>,
    pub vector_rank: Option<u32>,
}

/// The store of skills. `scope` `None` is the gateway's own skills; a
/// tenant's calls see its own and the gateway's, never another tenant's.
#[async_trait]
pub trait SkillStore: Send + Sync {
    /// Stores `new` in `scope`, replacing a skill of the same name there
    /// (files and all) in one transaction.
    async fn put_skill(
        &self,
        scope: Option<&TenantId>,
        new: &NewSkill,
        now: UnixMillis,
    ) -> StoreResult<Skill>;
    /// The skill `name` of `scope` exactly (no shadowing).
    async fn get_skill(&self, scope: Option<&TenantId>, name: &str) -> StoreResult<Option<Skill>>;
    /// The skills `tenant` sees: its own, then the gateway's it does not
    /// shadow, by name; `None`: the gateway's only.
    async fn list_skills(&self, tenant: Option<&TenantId>) -> StoreResult<Vec<Skill>>;
    /// The skill `name` as `tenant` sees it (its own first; `None`: the
    /// gateway's) with the content of `path`; `None` when either does not
    /// exist.
    async fn read_skill_file(
        &self,
        tenant: Option<&TenantId>,
        name: &str,
        path: &str,
    ) -> StoreResult<Option<(Skill, String)>>;
    /// The active skills `tenant` sees, best first (shadowed ones left out).
    async fn search_skills(
        &self,
        tenant: &TenantId,
        query: &SkillQuery,
    ) -> StoreResult<Vec<SkillHit>>;
    /// `NotFound` when `scope` has no such skill.
    async fn delete_skill(&self, scope: Option<&TenantId>, name: &str) -> StoreResult<()>;
    /// Skills of every scope (the gateway's and every tenant's, active or
    /// quarantined) without a vector of `model`, oldest installed first, at
    /// most `limit` (for re-embedding).
    async fn skills_to_embed(&self, model: &str, limit: u32) -> StoreResult<Vec<Skill>>;
    /// Stores the vector of `skill` if it is still that install (same
    /// scope, name, content and install time) and has no vector of
    /// `embedding.model` yet; `false` when it changed, went or was embedded
    /// meanwhile.
    async fn set_skill_embedding(&self, skill: &Skill, embedding: &Embedding) -> StoreResult<bool>;
    /// Skills with and without a vector of `model`: those `tenant` sees
    /// (its own and the gateway's), or with `None` every scope's.
    async fn skill_stats(
        &self,
        tenant: Option<&TenantId>,
        model: Option<&str>,
    ) -> StoreResult<SkillStats>;
    /// Makes a quarantined skill active, if its content is still `sha256`
    /// (`Conflict` otherwise: it was replaced since it was reviewed).
    async fn approve_skill(
        &self,
        scope: Option<&TenantId>,
        name: &str,
        sha256: &str,
        by: &str,
        now: UnixMillis,
    ) -> StoreResult<Skill>;
}
