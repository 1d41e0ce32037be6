//! Long-term memory as the gateway runs it ([`MemoryBank`]): what the
//! memory tools (through the [`Memories`] port, `port.rs`), `/v1/memory`
//! and `exoclaw memory` all call. It scrubs secrets from a memory before
//! it is stored (the guard's scrubber, with the tenant's registered
//! values), embeds it when an embedder is configured, and applies the
//! configured retention; a search embeds the query and lets the store fuse
//! full-text and vector ranking.
//!
//! An embedder that fails never fails a save or a search: the memory is
//! stored without a vector (the re-embedding job, `reembed.rs`, gives it
//! one later) and the search ranks by full text alone, with a warning in
//! the log and `full_text_only` in the answer.

mod port;
pub mod recall;
pub mod reembed;

use crate::config::memory::MemoryConfig;
use exoclaw_core::embed::Embedder;
use exoclaw_core::store::memory::{
    Embedding, MAX_CONTENT_BYTES, Memory, MemoryFilter, MemoryQuery, NewMemory, Retention,
    SavedMemory,
};
use exoclaw_core::store::{Store, StoreError};
use exoclaw_core::tool::{Memories, MemorySearch};
use exoclaw_core::{AgentId, TenantId, UserId};
use std::sync::Arc;

/// Why a memory operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// Bad input: empty, oversized (the limit named), out of range.
    #[error("{0}")]
    Invalid(String),
    /// No such memory, or not one the caller may see.
    #[error("no memory {0:?}")]
    NotFound(String),
    #[error(transparent)]
    Store(StoreError),
}

impl MemoryError {
    /// The stable code (`/v1/memory`, the tools, the CLI).
    pub fn code(&self) -> &'static str {
        match self {
            MemoryError::Invalid(_) => "request.invalid",
            MemoryError::NotFound(_) => "memory.not_found",
            MemoryError::Store(StoreError::Unavailable(_)) => "store.unavailable",
            MemoryError::Store(_) => "internal",
        }
    }
}

impl From<StoreError> for MemoryError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(m) => MemoryError::Invalid(m),
            e => MemoryError::Store(e),
        }
    }
}

/// Who asks: a tenant's user of an agent (or an administrator, `user`
/// `None`, who sees every user's memories).
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    pub tenant: &'a TenantId,
    pub agent: &'a AgentId,
    pub user: Option<&'a UserId>,
}

/// What `memory status` shows.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MemoryStatus {
    /// The embedder's identity; `None`: full-text search alone.
    pub embedder: Option<String>,
    pub total: u64,
    /// Memories with a vector of the current embedder.
    pub embedded: u64,
    /// The re-embedding job, when one is configured.
    pub reembed: Option<reembed::Progress>,
}

/// Long-term memory over the store and the configured embedder.
pub struct MemoryBank {
    store: Arc<dyn Store>,
    embedder: Option<Arc<dyn Embedder>>,
    config: MemoryConfig,
    progress: reembed::Tracker,
}

impl MemoryBank {
    pub fn new(
        store: Arc<dyn Store>,
        embedder: Option<Arc<dyn Embedder>>,
        config: MemoryConfig,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            embedder,
            config,
            progress: reembed::Tracker::default(),
        })
    }

    pub fn embedder(&self) -> Option<&Arc<dyn Embedder>> {
        self.embedder.as_ref()
    }

    pub fn config(&self) -> &MemoryConfig {
        &self.config
    }

    /// The tools' port over this bank.
    pub fn port(self: &Arc<Self>) -> Arc<dyn Memories> {
        Arc::new(port::Port(self.clone()))
    }

    fn retention(&self) -> Retention {
        let r = &self.config.retention;
        Retention {
            max_age_ms: (r.max_age_days > 0).then(|| i64::from(r.max_age_days) * 86_400_000),
            max_count: Some(r.max_per_namespace),
        }
    }

    /// `text`'s vector, or `None` (and a warning) when the embedder fails.
    async fn embed_one(&self, text: &str) -> Option<Embedding> {
        embedding_of(self.embedder.as_ref(), text, "memories").await
    }

    /// Saves `content` for `who` (shared when `who.user` is `None`),
    /// scrubbed of secrets first.
    pub async fn save(
        &self,
        who: &Reader<'_>,
        content: &str,
        untrusted: bool,
        importance: i64,
    ) -> Result<SavedMemory, MemoryError> {
        if content.len() > MAX_CONTENT_BYTES {
            return Err(MemoryError::Invalid(format!(
                "a memory is at most {MAX_CONTENT_BYTES} bytes (this one is {})",
                content.len()
            )));
        }
        let content = exoclaw_guard::scrub::global()
            .scrub_for(who.tenant.as_str(), content)
            .into_owned();
        let embedding = self.embed_one(&content).await;
        let new = NewMemory {
            agent_id: who.agent.clone(),
            user_id: who.user.cloned(),
            content,
            untrusted,
            importance,
            embedding,
        };
        Ok(self
            .store
            .save_memory(who.tenant, &new, &self.retention(), exoclaw_core::now_ms())
            .await?)
    }

    /// The best `limit` memories for `text`, as `who` sees them.
    pub async fn search(
        &self,
        who: &Reader<'_>,
        text: &str,
        limit: u32,
    ) -> Result<MemorySearch, MemoryError> {
        let embedding = self.embed_one(text).await;
        let full_text_only = embedding.is_none();
        let q = MemoryQuery {
            agent: who.agent.clone(),
            user: who.user.cloned(),
            text: text.to_owned(),
            embedding,
            limit,
        };
        let hits = self.store.search_memories(who.tenant, &q).await?;
        Ok(MemorySearch {
            hits,
            full_text_only,
        })
    }

    /// The memory `id` if `user` may see it (`None`: an administrator).
    pub async fn get(
        &self,
        tenant: &TenantId,
        user: Option<&UserId>,
        id: &str,
    ) -> Result<Memory, MemoryError> {
        match self.store.get_memory(tenant, id).await? {
            Some(m) if user.is_none_or(|u| m.is_visible_to(u)) => Ok(m),
            _ => Err(MemoryError::NotFound(id.to_owned())),
        }
    }

    /// Forgets `id` if `user` may see it (`None`: an administrator).
    pub async fn forget(
        &self,
        tenant: &TenantId,
        user: Option<&UserId>,
        id: &str,
    ) -> Result<Memory, MemoryError> {
        let m = self.get(tenant, user, id).await?;
        match self.store.delete_memory(tenant, id).await {
            Ok(()) => Ok(m),
            Err(StoreError::NotFound) => Err(MemoryError::NotFound(id.to_owned())),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn list(
        &self,
        tenant: &TenantId,
        filter: &MemoryFilter,
    ) -> Result<Vec<Memory>, MemoryError> {
        Ok(self.store.list_memories(tenant, filter).await?)
    }

    /// Counts (of one tenant, or every tenant's) and the re-embedding job.
    pub async fn status(&self, tenant: Option<&TenantId>) -> Result<MemoryStatus, MemoryError> {
        let model = self.embedder.as_ref().map(|e| e.id().to_owned());
        let stats = self.store.memory_stats(tenant, model.as_deref()).await?;
        Ok(MemoryStatus {
            embedder: model,
            total: stats.total,
            embedded: stats.embedded,
            reembed: self.embedder.as_ref().map(|_| self.progress.get()),
        })
    }
}

/// `text`'s vector from `embedder`, or `None`: no embedder, or it failed
/// (with a warning that `what` are searched by full text only). Memories and
/// skills both embed this way: an embedder that is down never fails a save
/// or a search.
pub(crate) async fn embedding_of(
    embedder: Option<&Arc<dyn Embedder>>,
    text: &str,
    what: &str,
) -> Option<Embedding> {
    let embedder = embedder?;
    match embedder.embed(&[text.to_owned()]).await {
        Ok(mut v) if v.len() == 1 => Some(Embedding {
            model: embedder.id().to_owned(),
            vector: v.remove(0),
        }),
        Ok(v) => {
            tracing::warn!(
                embedder = embedder.id(),
                vectors = v.len(),
                "the embedder answered with the wrong number of vectors; {what} by full text only"
            );
            None
        }
        Err(e) => {
            tracing::warn!(embedder = embedder.id(), error = %e, "the embedder failed; {what} by full text only");
            None
        }
    }
}

/// The embedder `memory.embedder` names, built over the providers' egress
/// client; `None` for `none` (full-text search alone), and for `local` in
/// a build without the `local-embedder` feature (with a warning).
pub fn embedder(
    settings: &crate::config::Settings,
    client: &exoclaw_egress::EgressClient,
) -> anyhow::Result<Option<Arc<dyn Embedder>>> {
    use crate::config::memory::EmbedderConfig;
    match settings.config.memory.embedder.resolve() {
        EmbedderConfig::None => Ok(None),
        #[cfg(feature = "local-embedder")]
        EmbedderConfig::Local { model_dir } => {
            let e = exoclaw_embed::LocalEmbedder::new(&model_dir)
                .map_err(|e| anyhow::anyhow!("memory.embedder.model_dir: {e}"))?;
            Ok(Some(Arc::new(e)))
        }
        #[cfg(not(feature = "local-embedder"))]
        EmbedderConfig::Local { .. } => {
            tracing::warn!(
                "memory.embedder is local but this build has no local embedder (feature \
                 local-embedder); memory search uses full text alone"
            );
            Ok(None)
        }
        EmbedderConfig::Openai { provider, model } => {
            let base = crate::config::providers::configured_base_url(settings, &provider)
                .map(|b| b.url)
                .or_else(|| {
                    exoclaw_providers::PRESETS
                        .iter()
                        .find(|p| p.name == provider.as_str())
                        .map(|p| p.base_url.to_owned())
                })
                .filter(|u| !u.is_empty())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "memory.embedder.provider {provider:?} has no base URL: set \
                         providers.{provider}.base_url"
                    )
                })?;
            let key = settings
                .env
                .get(&format!(
                    "EXOCLAW_{}_API_KEY",
                    crate::config::providers::env_name(&provider)
                ))
                .map(exoclaw_core::Secret::new);
            Ok(Some(Arc::new(exoclaw_embed::OpenAiEmbedder::new(
                client.clone(),
                &provider,
                &base,
                key,
                &model,
            ))))
        }
    }
}
