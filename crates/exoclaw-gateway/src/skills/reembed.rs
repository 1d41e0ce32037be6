//! The skills' re-embedding job: skills of every scope without a vector of
//! the current embedder (installed while none was configured or while it
//! was down, or embedded by another model before the configuration
//! changed) get one, a batch at a time with a pause between batches,
//! oldest installed first; the same
//! pattern as memory's (`memory/reembed.rs`). One supervised, restarting
//! task (`skills.reembed`) per gateway, started only with an embedder;
//! its progress is what `exoclaw skills status` shows. Until a skill has
//! a vector of the current embedder, search finds it by full text alone
//! (the vector list reads only vectors of the query's embedder, never two
//! models' mixed). A skill replaced while its batch was embedded keeps its
//! new state: the store writes a vector only to the same install (scope,
//! name, content pin and install time) that still lacks one of this
//! embedder, so two gateways on one database at worst embed a skill twice,
//! never store a stale vector.

use super::SkillLibrary;
use crate::memory::reembed::{IDLE, Progress};
use exoclaw_core::store::memory::Embedding;
use exoclaw_core::store::skill::vector_text;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Skills embedded per batch.
pub const BATCH: u32 = 16;
/// The pause between two batches while there is work: the job shares the
/// embedder (a local model's CPU, a provider's rate limit) with turns.
pub const PAUSE: std::time::Duration = std::time::Duration::from_millis(250);

/// Starts the job under `supervisor` when an embedder is configured.
pub fn start(library: &Arc<SkillLibrary>, supervisor: &crate::supervisor::Supervisor) -> bool {
    if library.embedder.is_none() {
        return false;
    }
    let library = library.clone();
    let _task = supervisor.start_restarting("skills.reembed", move |stop| {
        let library = library.clone();
        async move {
            run(&library, &stop).await;
            Ok(())
        }
    });
    true
}

/// Passes until stopped.
async fn run(library: &SkillLibrary, stop: &CancellationToken) {
    while !stop.is_cancelled() {
        let wait = if pass(library).await { PAUSE } else { IDLE };
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// `exoclaw skills status`: the embedder, the skills a tenant sees with
/// and without its vector, and this process's job.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SkillsStatus {
    /// The embedder's identity; `None`: search by full text alone.
    pub embedder: Option<String>,
    pub total: u64,
    /// With a vector of the current embedder.
    pub embedded: u64,
    /// The re-embedding job, with an embedder.
    pub reembed: Option<Progress>,
}

impl SkillLibrary {
    /// The re-embedding job's progress; `None` without an embedder.
    pub fn reembed_progress(&self) -> Option<Progress> {
        self.embedder.as_ref().map(|_| self.progress.get())
    }

    /// Where the skills `tenant` sees (its own and the gateway's; `None`:
    /// every scope's) stand with the current embedder.
    pub async fn status(
        &self,
        tenant: Option<&exoclaw_core::TenantId>,
    ) -> Result<SkillsStatus, super::SkillError> {
        let model = self.embedder.as_ref().map(|e| e.id().to_owned());
        let stats = self.store.skill_stats(tenant, model.as_deref()).await?;
        Ok(SkillsStatus {
            embedder: model,
            total: stats.total,
            embedded: stats.embedded,
            reembed: self.reembed_progress(),
        })
    }
}

/// One batch; `true` when there may be more to do at once.
pub async fn pass(library: &SkillLibrary) -> bool {
    let Some(embedder) = library.embedder.clone() else {
        return false;
    };
    let model = embedder.id().to_owned();
    let todo = match library.store.skills_to_embed(&model, BATCH).await {
        Ok(todo) => todo,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the skills to re-embed");
            return false;
        }
    };
    if let Ok(stats) = library.store.skill_stats(None, Some(&model)).await {
        library.progress.update(|p| {
            p.remaining = stats.total.saturating_sub(stats.embedded);
            p.running = !todo.is_empty();
        });
    }
    if todo.is_empty() {
        return false;
    }
    let texts: Vec<String> = todo
        .iter()
        .map(|s| vector_text(&s.name, &s.description))
        .collect();
    let vectors = match embedder.embed(&texts).await {
        Ok(v) if v.len() == todo.len() => v,
        Ok(_) | Err(_) => {
            let why = "the embedder did not answer this batch".to_owned();
            tracing::warn!(embedder = %model, "skill re-embedding paused: {why}");
            library.progress.update(|p| p.last_error = Some(why));
            return false;
        }
    };
    let mut done = 0;
    for (s, vector) in todo.iter().zip(vectors) {
        let e = Embedding {
            model: model.clone(),
            vector,
        };
        match library.store.set_skill_embedding(s, &e).await {
            Ok(true) => done += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot store a skill's vector");
                return false;
            }
        }
    }
    library.progress.update(|p| {
        p.embedded += done;
        p.remaining = p.remaining.saturating_sub(done);
        p.last_error = None;
    });
    true
}
