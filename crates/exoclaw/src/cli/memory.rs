//! The `memory` subcommands: long-term memory as `/v1/memory` shows it.

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum MemoryCommand {
    /// The tenant's memories, newest first (every user's).
    List {
        /// Only this agent's.
        #[arg(long)]
        agent: Option<String>,
        /// The most memories (default 20, at most 100).
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Print `GET /v1/memory`'s document: `{"memories": [...]}`.
        #[arg(long)]
        json: bool,
        /// The tenant (id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Search an agent's memories as a user sees them (hybrid: full text
    /// and, with an embedder, vectors).
    Search {
        /// What to look for.
        query: String,
        /// The agent whose memories to search.
        #[arg(long)]
        agent: String,
        /// Whose view: their own memories and the agent's shared ones
        /// (default: shared ones only, and the owner's).
        #[arg(long)]
        user: Option<String>,
        /// The most hits (default 10, at most 100).
        #[arg(long, default_value_t = 10)]
        limit: u32,
        /// Print `GET /v1/memory?q=...`'s document.
        #[arg(long)]
        json: bool,
        /// The tenant (id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Forget a memory.
    Forget {
        /// The memory's id (from `memory list` or `memory search`).
        id: String,
        /// The tenant (id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Counts, the embedder (or that search is full-text only) and the
    /// re-embedding job.
    Status {
        /// Print `GET /v1/memory/status`'s document.
        #[arg(long)]
        json: bool,
        /// The tenant (id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
}
