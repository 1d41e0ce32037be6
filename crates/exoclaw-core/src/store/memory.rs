//! Long-term memory ([`MemoryStore`]): short texts an agent keeps across
//! sessions, namespaced by tenant, agent and user. A memory with a user is
//! that user's alone (never returned to another user); one without is the
//! agent's shared memory, seen by every user of the agent and marked as
//! such ([`Memory::is_shared`]).
//!
//! Search is hybrid: the store ranks by full text (SQLite FTS5, PostgreSQL
//! `tsvector`) and, where the memory and the query have vectors of the same
//! embedder, by cosine distance; [`fuse`] merges the two lists by
//! reciprocal-rank fusion with importance and recency as tie-breakers.
//! Saving merges exact and near duplicates in the namespace and applies the
//! namespace's retention ([`Retention`]). Content is scrubbed of secrets by
//! the caller before it reaches the store.

use super::error::StoreResult;
use crate::{AgentId, TenantId, UnixMillis, UserId};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// The longest memory, in bytes: longer ones are refused with this limit
/// named.
pub const MAX_CONTENT_BYTES: usize = 4 * 1024;
/// Importance runs from 0 (trivia) to this (never forget first).
pub const MAX_IMPORTANCE: i64 = 10;
/// The RRF constant `k` (the usual 60): a rank `r` adds `1 / (k + r)`.
pub const RRF_K: f64 = 60.0;

/// One stored memory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    pub id: String,
    pub tenant_id: TenantId,
    pub agent_id: AgentId,
    /// Whose memory it is; `None` for the agent's shared memory.
    pub user_id: Option<UserId>,
    pub content: String,
    /// It came from untrusted sources (a run that read web pages, files,
    /// MCP output): recalled inside untrusted markers.
    pub untrusted: bool,
    /// 0 to [`MAX_IMPORTANCE`].
    pub importance: i64,
    /// The embedder whose vector the memory has (`None`: none yet).
    pub embedder: Option<String>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

impl Memory {
    /// Every user of the agent sees it.
    pub fn is_shared(&self) -> bool {
        self.user_id.is_none()
    }

    /// Whether `user` may read (and forget) it: their own or shared.
    pub fn is_visible_to(&self, user: &UserId) -> bool {
        self.user_id.as_ref().is_none_or(|u| u == user)
    }
}

/// A vector and the embedder that made it.
#[derive(Clone, Debug, PartialEq)]
pub struct Embedding {
    /// The embedder's identity ([`crate::embed::Embedder::id`]).
    pub model: String,
    /// L2-normalised.
    pub vector: Vec<f32>,
}

/// A memory to save.
#[derive(Clone, Debug, PartialEq)]
pub struct NewMemory {
    pub agent_id: AgentId,
    /// `None`: the agent's shared memory.
    pub user_id: Option<UserId>,
    /// Already scrubbed; at most [`MAX_CONTENT_BYTES`].
    pub content: String,
    pub untrusted: bool,
    pub importance: i64,
    /// The content's vector, when an embedder answered.
    pub embedding: Option<Embedding>,
}

/// How long and how many memories a namespace (agent and user, or agent
/// shared) keeps; `None` = no limit. Applied on every save: the oldest
/// beyond the age, then the least important and oldest beyond the count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    pub max_age_ms: Option<i64>,
    pub max_count: Option<u32>,
}

/// What a save did.
#[derive(Clone, Debug, PartialEq)]
pub struct SavedMemory {
    pub memory: Memory,
    /// It was an exact or near duplicate of this (now updated) memory.
    pub merged: bool,
    /// Memories of the namespace removed by its retention.
    pub pruned: u64,
}

/// Which memories to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryFilter {
    /// Only this agent's.
    pub agent: Option<AgentId>,
    /// What this user sees (their own and shared); `None` lists every
    /// user's (for an administrator).
    pub user: Option<UserId>,
    /// Newest first, at most this many (0 = 100).
    pub limit: u32,
}

/// A search inside one agent's memories, as `user` sees them.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryQuery {
    pub agent: AgentId,
    /// Own and shared memories; `None`: shared only.
    pub user: Option<UserId>,
    pub text: String,
    /// The query's vector (same embedder as the memories it ranks).
    pub embedding: Option<Embedding>,
    /// At most this many hits (1 to 100).
    pub limit: u32,
}

/// One search hit.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryHit {
    pub memory: Memory,
    /// The fused score (higher is better).
    pub score: f64,
    /// 1-based ranks in the full-text and vector lists, where it appeared.
    pub text_rank: Option<u32>,
    pub vector_rank: Option<u32>,
}

/// Counts for `memory status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryStats {
    pub total: u64,
    /// With a vector of the current embedder.
    pub embedded: u64,
}

/// The store of long-term memories. Every call is tenant-scoped; another
/// tenant's memory reads as not found.
#[async_trait]
pub trait MemoryStore: Send + Sync {
    /// Saves `new`, or merges it into an exact or near duplicate of its
    /// namespace (the newer text wins, the higher importance stays), then
    /// applies `retention` to the namespace. `Invalid` when the content is
    /// empty or longer than [`MAX_CONTENT_BYTES`] (the limit named).
    async fn save_memory(
        &self,
        tenant: &TenantId,
        new: &NewMemory,
        retention: &Retention,
        now: UnixMillis,
    ) -> StoreResult<SavedMemory>;
    async fn get_memory(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<Memory>>;
    /// Newest first.
    async fn list_memories(
        &self,
        tenant: &TenantId,
        filter: &MemoryFilter,
    ) -> StoreResult<Vec<Memory>>;
    /// Full-text and (with a query vector) vector ranking, fused.
    async fn search_memories(
        &self,
        tenant: &TenantId,
        query: &MemoryQuery,
    ) -> StoreResult<Vec<MemoryHit>>;
    /// `NotFound` when it is not the tenant's.
    async fn delete_memory(&self, tenant: &TenantId, id: &str) -> StoreResult<()>;
    /// Every tenant's counts (or one tenant's); `embedded` counts vectors of
    /// `model`.
    async fn memory_stats(
        &self,
        tenant: Option<&TenantId>,
        model: Option<&str>,
    ) -> StoreResult<MemoryStats>;
    /// Memories of any tenant without a vector of `model`, oldest first,
    /// at most `limit` (for re-embedding).
    async fn memories_to_embed(&self, model: &str, limit: u32) -> StoreResult<Vec<Memory>>;
    /// Stores the vector of a memory (whose content has not changed since
    /// it was read: `updated_at` matches). `false` when it changed or went.
    async fn set_memory_embedding(
        &self,
        memory: &Memory,
        embedding: &Embedding,
    ) -> StoreResult<bool>;
}

/// Reciprocal-rank fusion of the full-text and vector lists (each best
/// first): a memory's score is the sum of `1 / (RRF_K + rank)` over the
/// lists it is in; ties go to the more important, then the newer. At most
/// `limit` hits.
pub fn fuse(text: Vec<Memory>, vector: Vec<Memory>, limit: usize) -> Vec<MemoryHit> {
    fuse_by(
        text,
        vector,
        |m| m.id.as_str(),
        |a, b| {
            b.importance
                .cmp(&a.importance)
                .then(b.updated_at.cmp(&a.updated_at))
                .then(a.id.cmp(&b.id))
        },
        limit,
    )
    .into_iter()
    .map(|f| MemoryHit {
        memory: f.item,
        score: f.score,
        text_rank: f.text_rank,
        vector_rank: f.vector_rank,
    })
    .collect()
}

/// One item of a [`fuse_by`] ranking.
#[derive(Clone, Debug, PartialEq)]
pub struct Fused<T> {
    pub item: T,
    /// The fused score (higher is better).
    pub score: f64,
    /// 1-based ranks in the full-text and vector lists, where it appeared.
    pub text_rank: Option<u32>,
    pub vector_rank: Option<u32>,
}

/// Reciprocal-rank fusion of any two rankings (each best first), items
/// told apart by `key`: the score is the sum of `1 / (RRF_K + rank)` over
/// the lists an item is in; equal scores are ordered by `tie`. At most
/// `limit` items. Memories ([`fuse`]), skills and the delegation directory
/// rank with it.
pub fn fuse_by<T>(
    text: Vec<T>,
    vector: Vec<T>,
    key: impl Fn(&T) -> &str,
    tie: impl Fn(&T, &T) -> std::cmp::Ordering,
    limit: usize,
) -> Vec<Fused<T>> {
    let mut hits: Vec<Fused<T>> = Vec::with_capacity(text.len() + vector.len());
    let rank = |i: usize| u32::try_from(i + 1).unwrap_or(u32::MAX);
    for (i, m) in text.into_iter().enumerate() {
        hits.push(Fused {
            item: m,
            score: 1.0 / (RRF_K + f64::from(rank(i))),
            text_rank: Some(rank(i)),
            vector_rank: None,
        });
    }
    for (i, m) in vector.into_iter().enumerate() {
        let add = 1.0 / (RRF_K + f64::from(rank(i)));
        match hits.iter_mut().find(|h| key(&h.item) == key(&m)) {
            Some(h) => {
                h.score += add;
                h.vector_rank = Some(rank(i));
            }
            None => hits.push(Fused {
                item: m,
                score: add,
                text_rank: None,
                vector_rank: Some(rank(i)),
            }),
        }
    }
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(tie(&a.item, &b.item)));
    hits.truncate(limit);
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: &str, importance: i64, updated_at: i64) -> Memory {
        Memory {
            id: id.to_owned(),
            tenant_id: TenantId::new("t"),
            agent_id: AgentId::new("a"),
            user_id: None,
            content: id.to_owned(),
            untrusted: false,
            importance,
            embedder: None,
            created_at: 0,
            updated_at,
        }
    }

    fn ids(hits: &[MemoryHit]) -> Vec<&str> {
        hits.iter().map(|h| h.memory.id.as_str()).collect()
    }

    #[test]
    fn a_memory_in_both_lists_beats_one_in_either() {
        let hits = fuse(
            vec![m("a", 0, 0), m("b", 0, 0)],
            vec![m("c", 0, 0), m("b", 0, 0)],
            10,
        );
        assert_eq!(ids(&hits), ["b", "a", "c"]);
        assert_eq!((hits[0].text_rank, hits[0].vector_rank), (Some(2), Some(2)));
    }

    #[test]
    fn ties_go_to_importance_then_recency() {
        let hits = fuse(vec![m("a", 1, 5)], vec![m("b", 3, 1)], 10);
        assert_eq!(ids(&hits), ["b", "a"]);
        let hits = fuse(vec![m("a", 1, 5)], vec![m("b", 1, 9)], 10);
        assert_eq!(ids(&hits), ["b", "a"]);
        assert_eq!(fuse(vec![m("a", 1, 5)], vec![m("b", 1, 9)], 1).len(), 1);
    }
}
