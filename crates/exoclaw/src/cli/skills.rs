//! The `skills` subcommands: skills as `/v1/skills` shows them.

use clap::{Args, Subcommand};
use std::path::PathBuf;

/// Whose skills: a tenant's, or the gateway's own (`--gateway`).
#[derive(Debug, Args)]
pub struct SkillScope {
    /// The tenant (id).
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// The gateway's own skills (from `skills/` in the data dir) instead
    /// of a tenant's.
    #[arg(long, conflicts_with = "tenant")]
    pub gateway: bool,
}

#[derive(Debug, Subcommand)]
pub enum SkillsCommand {
    /// Install a skill for a tenant from a folder or a `.tar.gz` or `.zip` of one,
    /// through the install pipeline (caps, paths, injection scanner, shell
    /// policy); a skill they warn about is quarantined until approved.
    /// (The gateway's own skills are folders in `skills/` of the data dir,
    /// loaded at start-up.)
    Install {
        /// A skill folder (with `SKILL.md`) or a `.tar.gz` or `.zip` of one
        /// (told apart by its first bytes, not its name).
        path: PathBuf,
        /// Print `POST /v1/skills`'s document.
        #[arg(long)]
        json: bool,
        /// The tenant (id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// The skills a tenant sees (its own and the gateway's), with their
    /// status.
    List {
        /// Print `GET /v1/skills`'s document.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        scope: SkillScope,
    },
    /// One skill, its checks' warnings and its `SKILL.md`.
    Show {
        /// The skill's name.
        name: String,
        /// Print `GET /v1/skills/{name}`'s document.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        scope: SkillScope,
    },
    /// Remove a tenant's skill.
    Remove {
        /// The skill's name.
        name: String,
        /// The tenant (id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// The embedder skills are ranked with, how many of the skills the
    /// tenant sees (its own and the gateway's) have its vector, and the
    /// re-embedding job (`--gateway`: every scope's skills).
    Status {
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        scope: SkillScope,
    },
    /// Approve a quarantined skill: it becomes active.
    Approve {
        /// The skill's name.
        name: String,
        /// Only if its content is still this pin (from `skills show`).
        #[arg(long)]
        sha256: Option<String>,
        #[command(flatten)]
        scope: SkillScope,
    },
}
