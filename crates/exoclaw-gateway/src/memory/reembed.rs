//! The re-embedding job: memories without a vector of the current embedder
//! (saved while no embedder was configured or while it was down, or
//! embedded by another model before the configuration changed) get one, a
//! batch at a time, oldest first. One supervised, restarting task
//! (`memory.reembed`) per gateway; its progress is what `exoclaw memory
//! status` shows. A memory changed while its batch was embedded keeps its
//! new state (the store compares `updated_at`).

use super::MemoryBank;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Memories embedded per batch.
pub const BATCH: u32 = 32;
/// The wait after a pass found nothing to do, or after the embedder failed.
pub const IDLE: Duration = Duration::from_secs(30);

/// Where the job stands.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Progress {
    /// Memories this gateway embedded since it started.
    pub embedded: u64,
    /// Memories still without a vector of the current embedder, at the
    /// last look.
    pub remaining: u64,
    /// Whether the last look found work.
    pub running: bool,
    /// The embedder's last failure, if the last batch failed.
    pub last_error: Option<String>,
}

/// `running (3 embedded by this process, 10 remaining); last error: ...`,
/// as `exoclaw memory status` and `exoclaw skills status` print it.
impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({} embedded by this process, {} remaining)",
            if self.running { "running" } else { "idle" },
            self.embedded,
            self.remaining
        )?;
        match &self.last_error {
            Some(e) => write!(f, "; last error: {e}"),
            None => Ok(()),
        }
    }
}

/// The shared progress (also of the skills' job, `skills/reembed.rs`).
#[derive(Clone, Default)]
pub struct Tracker(Arc<Mutex<Progress>>);

impl Tracker {
    pub fn get(&self) -> Progress {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut Progress)) {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

/// Starts the job under `supervisor` when an embedder is configured.
pub fn start(bank: &Arc<MemoryBank>, supervisor: &crate::supervisor::Supervisor) -> bool {
    if bank.embedder.is_none() {
        return false;
    }
    let bank = bank.clone();
    let _task = supervisor.start_restarting("memory.reembed", move |stop| {
        let bank = bank.clone();
        async move {
            run(&bank, &stop).await;
            Ok(())
        }
    });
    true
}

/// Passes until stopped.
async fn run(bank: &MemoryBank, stop: &CancellationToken) {
    while !stop.is_cancelled() {
        let busy = pass(bank).await;
        if !busy {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(IDLE) => {}
            }
        }
    }
}

/// One batch; `true` when there may be more to do at once.
pub async fn pass(bank: &MemoryBank) -> bool {
    let Some(embedder) = bank.embedder.clone() else {
        return false;
    };
    let model = embedder.id().to_owned();
    let todo = match bank.store.memories_to_embed(&model, BATCH).await {
        Ok(todo) => todo,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the memories to re-embed");
            return false;
        }
    };
    if let Ok(stats) = bank.store.memory_stats(None, Some(&model)).await {
        bank.progress.update(|p| {
            p.remaining = stats.total.saturating_sub(stats.embedded);
            p.running = !todo.is_empty();
        });
    }
    if todo.is_empty() {
        return false;
    }
    let texts: Vec<String> = todo.iter().map(|m| m.content.clone()).collect();
    let vectors = match embedder.embed(&texts).await {
        Ok(v) if v.len() == todo.len() => v,
        Ok(_) | Err(_) => {
            let why = "the embedder did not answer this batch".to_owned();
            tracing::warn!(embedder = %model, "re-embedding paused: {why}");
            bank.progress.update(|p| p.last_error = Some(why));
            return false;
        }
    };
    let mut done = 0;
    for (m, vector) in todo.iter().zip(vectors) {
        let e = exoclaw_core::store::memory::Embedding {
            model: model.clone(),
            vector,
        };
        match bank.store.set_memory_embedding(m, &e).await {
            Ok(true) => done += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot store a memory's vector");
                return false;
            }
        }
    }
    bank.progress.update(|p| {
        p.embedded += done;
        p.remaining = p.remaining.saturating_sub(done);
        p.last_error = None;
    });
    true
}
