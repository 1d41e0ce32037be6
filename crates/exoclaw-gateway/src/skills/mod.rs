//! Skills as the gateway runs them ([`SkillLibrary`]): what `/v1/skills`,
//! `exoclaw skills`, the skill tools (through the [`Skills`] port,
//! `port.rs`) and the prompt's "Skills available" section (`offer.rs`)
//! all call.
//!
//! The install pipeline, before a skill is usable: the files are read
//! whole into memory with the caps and path and kind checks (`archive.rs`;
//! nothing touches the disk), `SKILL.md`'s front matter is parsed
//! (`manifest.rs`), the injection scanner and the shell policy run over the
//! content (`check.rs`), the content is pinned (SHA-256), the name and
//! description are embedded when an embedder answers, and the skill is
//! stored in one transaction: active when clean, quarantined (listed, never
//! offered, searched or read) when any check warned, until an
//! administrator approves that pin. A refused skill changes nothing. Every
//! install, refusal, quarantine, approval and removal is audited.
//!
//! The gateway's own skills are the folders of `skills/` in the data dir,
//! installed at start-up through the same pipeline for every tenant to see;
//! gone folders are removed from the store.

mod archive;
mod check;
pub mod manifest;
pub mod offer;
mod port;
pub mod reembed;

pub use archive::Limits;

use crate::config::skills::SkillsConfig;
use exoclaw_core::embed::Embedder;
use exoclaw_core::model::NewAuditEvent;
use exoclaw_core::store::memory::Embedding;
use exoclaw_core::store::skill::{NewSkill, Skill, SkillFile, SkillQuery, SkillStatus};
use exoclaw_core::store::{Store, StoreError};
use exoclaw_core::tool::{SkillSearch, Skills};
use exoclaw_core::{DEFAULT_TENANT, TenantId};
use std::path::Path;
use std::sync::Arc;

/// Why a skill operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum SkillError {
    /// Bad input: a hostile or corrupt archive, a bad `SKILL.md`.
    #[error("{0}")]
    Invalid(String),
    /// Over a cap (the limit named).
    #[error("{0}")]
    TooLarge(String),
    #[error("no skill {0:?}")]
    NotFound(String),
    /// Its content changed since it was reviewed.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(StoreError),
}

impl SkillError {
    /// The stable code (`/v1/skills`, the tools, the CLI).
    pub fn code(&self) -> &'static str {
        match self {
            SkillError::Invalid(_) => "skill.invalid",
            SkillError::TooLarge(_) => "skill.too_large",
            SkillError::NotFound(_) => "skill.not_found",
            SkillError::Conflict(_) => "skill.conflict",
            SkillError::Store(StoreError::Unavailable(_)) => "store.unavailable",
            SkillError::Store(_) => "internal",
        }
    }
}

impl From<StoreError> for SkillError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(m) => SkillError::Invalid(m),
            StoreError::Conflict(m) => SkillError::Conflict(m),
            e => SkillError::Store(e),
        }
    }
}

/// What an install is given.
pub enum Source<'a> {
    /// An upload as sent: a `.tar.gz` or a `.zip` (told by its first bytes).
    Archive(&'a [u8]),
    /// A skill folder on disk.
    Folder(&'a Path),
}

/// Who installs or approves, for the store and the audit log.
#[derive(Clone, Debug)]
pub struct Actor<'a> {
    /// `user:<id>`, `gateway-token`, `cli`, `gateway`.
    pub name: &'a str,
    pub request_id: Option<&'a str>,
}

/// One audit event of the library.
struct Audit<'a> {
    action: &'a str,
    name: &'a str,
    decision: &'a str,
    reason: &'a str,
    detail: serde_json::Value,
}

/// Skills over the store and the configured embedder.
pub struct SkillLibrary {
    store: Arc<dyn Store>,
    embedder: Option<Arc<dyn Embedder>>,
    config: SkillsConfig,
    /// Per tenant, whether it sees any active skill, and when that was
    /// read: a turn's offer searches only when there is something to find
    /// (see [`SkillLibrary::has_active`]).
    active: std::sync::Mutex<std::collections::HashMap<TenantId, (bool, std::time::Instant)>>,
    /// The re-embedding job's progress (`reembed.rs`).
    progress: crate::memory::reembed::Tracker,
}

/// Held while a skill is installed, approved or removed here: when it goes
/// (whichever way the change ended), what [`SkillLibrary::has_active`] read
/// is forgotten, for every tenant (the gateway's own skills concern all).
struct Changed<'a>(&'a SkillLibrary);

impl Drop for Changed<'_> {
    fn drop(&mut self) {
        self.0
            .active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

/// How long [`SkillLibrary::has_active`] trusts what it read: a skill
/// installed through another gateway on the same database is offered here
/// at most this much later (at once when installed through this one).
const ACTIVE_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// The audit tenant of a scope: the gateway's skills are audited under the
/// default tenant.
fn audit_tenant(scope: Option<&TenantId>) -> TenantId {
    scope
        .cloned()
        .unwrap_or_else(|| TenantId::new(DEFAULT_TENANT))
}

fn resource(scope: Option<&TenantId>, name: &str) -> String {
    match scope {
        Some(_) => format!("skill:{name}"),
        None => format!("skill:gateway/{name}"),
    }
}

impl SkillLibrary {
    pub fn new(
        store: Arc<dyn Store>,
        embedder: Option<Arc<dyn Embedder>>,
        config: SkillsConfig,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            embedder,
            config,
            active: std::sync::Mutex::default(),
            progress: crate::memory::reembed::Tracker::default(),
        })
    }

    /// Whether `tenant` sees any active skill (its own or the gateway's),
    /// read at most once per [`ACTIVE_TTL`]: the prompt's offer skips its
    /// search (and embedding) on every turn of a tenant without skills. A
    /// failed read counts as yes (the search then reports it).
    pub async fn has_active(&self, tenant: &TenantId) -> bool {
        let now = std::time::Instant::now();
        if let Some((known, at)) = self
            .active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(tenant)
            && now.duration_since(*at) < ACTIVE_TTL
        {
            return *known;
        }
        let Ok(list) = self.list(Some(tenant)).await else {
            return true;
        };
        let any = list.iter().any(|s| s.status == SkillStatus::Active);
        self.active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(tenant.clone(), (any, now));
        any
    }

    pub fn config(&self) -> &SkillsConfig {
        &self.config
    }

    /// The tools' port over this library.
    pub fn port(self: &Arc<Self>) -> Arc<dyn Skills> {
        Arc::new(port::Port(self.clone()))
    }

    async fn embed_one(&self, text: &str) -> Option<Embedding> {
        crate::memory::embedding_of(self.embedder.as_ref(), text, "skills").await
    }

    async fn audit(&self, scope: Option<&TenantId>, actor: &Actor<'_>, what: Audit<'_>) {
        let mut event = NewAuditEvent::new(
            audit_tenant(scope),
            actor.name,
            what.action,
            resource(scope, what.name),
            what.decision,
        );
        event.reason = crate::audit::bounded(what.reason, 512).to_owned();
        event.request_id = actor.request_id.map(str::to_owned);
        event.detail = what.detail;
        crate::audit::record(self.store.as_ref(), &event).await;
    }

    /// Runs the install pipeline over `source` and stores the skill in
    /// `scope` (`None`: the gateway's own). A refusal stores nothing and
    /// is audited.
    pub async fn install(
        &self,
        scope: Option<&TenantId>,
        source: Source<'_>,
        actor: &Actor<'_>,
    ) -> Result<Skill, SkillError> {
        let _changed = Changed(self);
        match self.install_checked(scope, source, actor).await {
            Ok(skill) => Ok(skill),
            Err(e) => {
                if !matches!(e, SkillError::Store(_)) {
                    self.audit(
                        scope,
                        actor,
                        Audit {
                            action: "skill.install",
                            name: "-",
                            decision: "deny",
                            reason: &e.to_string(),
                            detail: serde_json::json!({"code": e.code()}),
                        },
                    )
                    .await;
                }
                Err(e)
            }
        }
    }

    async fn install_checked(
        &self,
        scope: Option<&TenantId>,
        source: Source<'_>,
        actor: &Actor<'_>,
    ) -> Result<Skill, SkillError> {
        let limits = Limits::from_config(&self.config);
        let files = match source {
            Source::Archive(bytes) => archive::unpack(bytes, &limits)?,
            Source::Folder(dir) => archive::read_folder(dir, &limits)?,
        }
        .files;
        let skill_md = files
            .get("SKILL.md")
            .ok_or_else(|| SkillError::Invalid("no SKILL.md".to_owned()))?;
        let m = manifest::parse(skill_md)?;
        let sha256 = check::pin(&files);
        // The gateway's own skills are loaded at every start: one already
        // stored with this content (and a vector of this embedder, if any)
        // is left as it is, approval and all, and not audited again.
        if scope.is_none()
            && let Some(stored) = self.store.get_skill(None, &m.name).await?
            && stored.sha256 == sha256
            && stored.embedder.as_deref() == self.embedder.as_ref().map(|e| e.id())
        {
            return Ok(stored);
        }
        let warnings = check::warnings(&files);
        let status = if warnings.is_empty() {
            SkillStatus::Active
        } else {
            SkillStatus::Quarantined
        };
        let embedding = self
            .embed_one(&exoclaw_core::store::skill::vector_text(
                &m.name,
                &m.description,
            ))
            .await;
        let new = NewSkill {
            search_text: format!(
                "{}\n{}\n{}",
                m.name.replace(['-', '_'], " "),
                m.description,
                m.body
            ),
            name: m.name,
            description: m.description,
            version: m.version,
            tools: m.tools,
            status,
            sha256,
            warnings,
            files: files
                .into_iter()
                .map(|(path, content)| SkillFile { path, content })
                .collect(),
            embedding,
            installed_by: actor.name.to_owned(),
        };
        let skill = self
            .store
            .put_skill(scope, &new, exoclaw_core::now_ms())
            .await?;
        let quarantined = skill.status == SkillStatus::Quarantined;
        self.audit(
            scope,
            actor,
            Audit {
                action: if quarantined {
                    "skill.quarantine"
                } else {
                    "skill.install"
                },
                name: &skill.name,
                decision: if quarantined { "info" } else { "allow" },
                reason: &skill.warnings.join("; "),
                detail: serde_json::json!({
                    "sha256": skill.sha256,
                    "version": skill.version,
                    "files": skill.files.len(),
                    "size": skill.size,
                    "warnings": skill.warnings.len(),
                }),
            },
        )
        .await;
        Ok(skill)
    }

    /// The skills `tenant` sees (`None`: the gateway's own).
    pub async fn list(&self, tenant: Option<&TenantId>) -> Result<Vec<Skill>, SkillError> {
        Ok(self.store.list_skills(tenant).await?)
    }

    /// The skill `name` as `tenant` sees it (its own, else the gateway's),
    /// whatever its status, with the content of its `SKILL.md`.
    pub async fn show(
        &self,
        tenant: Option<&TenantId>,
        name: &str,
    ) -> Result<(Skill, String), SkillError> {
        let not_found = || SkillError::NotFound(name.to_owned());
        let skill = match tenant {
            Some(t) => match self.store.get_skill(Some(t), name).await? {
                Some(s) => s,
                None => self
                    .store
                    .get_skill(None, name)
                    .await?
                    .ok_or_else(not_found)?,
            },
            None => self
                .store
                .get_skill(None, name)
                .await?
                .ok_or_else(not_found)?,
        };
        let text = self
            .store
            .read_skill_file(skill.tenant_id.as_ref(), name, "SKILL.md")
            .await?;
        Ok((skill, text.map(|(_, c)| c).unwrap_or_default()))
    }

    /// Removes `scope`'s skill `name`.
    pub async fn remove(
        &self,
        scope: Option<&TenantId>,
        name: &str,
        actor: &Actor<'_>,
    ) -> Result<(), SkillError> {
        let _changed = Changed(self);
        match self.store.delete_skill(scope, name).await {
            Ok(()) => {}
            Err(StoreError::NotFound) => return Err(SkillError::NotFound(name.to_owned())),
            Err(e) => return Err(e.into()),
        }
        self.audit(
            scope,
            actor,
            Audit {
                action: "skill.remove",
                name,
                decision: "allow",
                reason: "",
                detail: serde_json::Value::Null,
            },
        )
        .await;
        Ok(())
    }

    /// Approves `scope`'s quarantined skill `name`, if its content is still
    /// `sha256` (when given; else the content it has now).
    pub async fn approve(
        &self,
        scope: Option<&TenantId>,
        name: &str,
        sha256: Option<&str>,
        actor: &Actor<'_>,
    ) -> Result<Skill, SkillError> {
        let _changed = Changed(self);
        let current = self
            .store
            .get_skill(scope, name)
            .await?
            .ok_or_else(|| SkillError::NotFound(name.to_owned()))?;
        let pin = sha256.unwrap_or(&current.sha256);
        let skill = match self
            .store
            .approve_skill(scope, name, pin, actor.name, exoclaw_core::now_ms())
            .await
        {
            Ok(s) => s,
            Err(StoreError::NotFound) => return Err(SkillError::NotFound(name.to_owned())),
            Err(e) => return Err(e.into()),
        };
        self.audit(
            scope,
            actor,
            Audit {
                action: "skill.approve",
                name,
                decision: "allow",
                reason: &current.warnings.join("; "),
                detail: serde_json::json!({"sha256": skill.sha256}),
            },
        )
        .await;
        Ok(skill)
    }

    /// The best `limit` active skills for `text`, as `tenant` sees them;
    /// full text alone when the embedder is missing or fails.
    pub async fn search(
        &self,
        tenant: &TenantId,
        text: &str,
        limit: u32,
    ) -> Result<SkillSearch, SkillError> {
        let embedding = self.embed_one(text).await;
        let full_text_only = embedding.is_none();
        let q = SkillQuery {
            text: text.to_owned(),
            embedding,
            limit,
        };
        let hits = self.store.search_skills(tenant, &q).await?;
        Ok(SkillSearch {
            hits,
            full_text_only,
        })
    }

    /// A file of an active skill `tenant` sees.
    pub async fn read(
        &self,
        tenant: &TenantId,
        name: &str,
        path: &str,
    ) -> Result<(Skill, String), SkillError> {
        let path = archive::checked_path(path)?;
        match self
            .store
            .read_skill_file(Some(tenant), name, &path)
            .await?
        {
            Some((s, content)) if s.status == SkillStatus::Active => Ok((s, content)),
            Some(_) => Err(SkillError::NotFound(format!(
                "{name} (it is quarantined until an administrator approves it)"
            ))),
            None => Err(SkillError::NotFound(format!("{name}/{path}"))),
        }
    }

    /// Installs the gateway's own skills from `dir` (each folder one skill)
    /// and removes the gateway's skills whose folder is gone. A skill that
    /// is refused is logged and skipped; the others load.
    pub async fn load_gateway_skills(&self, dir: &Path) -> usize {
        let actor = Actor {
            name: "gateway",
            request_id: None,
        };
        let mut folders: Vec<std::path::PathBuf> = match std::fs::read_dir(dir) {
            Ok(rd) => rd
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot read the skills folder");
                return 0;
            }
        };
        folders.sort();
        let mut loaded = Vec::new();
        for f in &folders {
            match self.install(None, Source::Folder(f), &actor).await {
                Ok(s) => {
                    if s.status == SkillStatus::Quarantined {
                        tracing::warn!(skill = %s.name, warnings = ?s.warnings, "gateway skill quarantined until approved (exoclaw skills approve --gateway)");
                    }
                    loaded.push(s.name);
                }
                Err(e) => {
                    tracing::warn!(folder = %f.display(), error = %e, "gateway skill refused");
                }
            }
        }
        match self.store.list_skills(None).await {
            Ok(all) => {
                for s in all.into_iter().filter(|s| !loaded.contains(&s.name)) {
                    if let Err(e) = self.remove(None, &s.name, &actor).await {
                        tracing::warn!(skill = %s.name, error = %e, "cannot remove a gone gateway skill");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list the gateway's skills"),
        }
        loaded.len()
    }
}

#[cfg(test)]
mod tests;
