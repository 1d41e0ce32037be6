//! The subcommands of agents working together: teams and their boards,
//! delegations, bindings, cron jobs.

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum TeamCommand {
    /// The tenant's teams, by id.
    List {
        /// Print `GET /v1/teams`'s document: `{"teams": [...]}`.
        #[arg(long)]
        json: bool,
        /// The tenant (id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// One team.
    Show {
        /// The team's id.
        id: String,
        /// Print `GET /v1/teams/{id}`'s document.
        #[arg(long)]
        json: bool,
        /// The tenant (id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Create a team: a lead agent and member agents.
    Create {
        /// The team's id (a slug, unique in the tenant).
        id: String,
        /// The lead agent.
        #[arg(long)]
        lead: String,
        /// The member agents besides the lead, comma-separated.
        #[arg(long, value_delimiter = ',')]
        members: Vec<String>,
        /// A name for people (default: the id).
        #[arg(long)]
        name: Option<String>,
        /// The tenant (id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Change a team's name, lead or members.
    Update {
        /// The team's id.
        id: String,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// A new lead agent.
        #[arg(long)]
        lead: Option<String>,
        /// The whole new member list, comma-separated (`--members ""`: none).
        #[arg(long, value_delimiter = ',')]
        members: Option<Vec<String>>,
        /// The tenant (id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Delete a team with its task board and mailbox.
    Delete {
        /// The team's id.
        id: String,
        /// The tenant (id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// A team's task board, oldest first (a full page ends with the
    /// `--cursor` that lists the next one).
    Tasks {
        /// The team's id.
        team: String,
        /// Only tasks in this state.
        #[arg(long, value_parser = ["pending", "blocked", "in_progress", "done", "failed"])]
        status: Option<String>,
        /// Only tasks this agent claimed.
        #[arg(long, value_name = "AGENT")]
        owner: Option<String>,
        /// Words that must all occur in the title or description.
        #[arg(long)]
        query: Option<String>,
        /// The previous page's cursor (`next_cursor`).
        #[arg(long)]
        cursor: Option<String>,
        /// At most this many (1-1000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        /// Print `GET /v1/teams/{id}/tasks`'s document: `{"tasks", "next_cursor"}`.
        #[arg(long)]
        json: bool,
        /// The tenant (id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// One task of a team's board: add, show, claim or comment.
    #[command(subcommand)]
    Task(TaskCommand),
}

#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Put a task on a team's board (`blocked` until its `--blocked-by`
    /// tasks are done).
    Add {
        /// The team's id.
        team: String,
        /// A short title.
        title: String,
        /// Everything the task needs.
        #[arg(long, default_value = "")]
        description: String,
        /// Ids of tasks of the board that must be done first, comma-separated.
        #[arg(long, value_delimiter = ',')]
        blocked_by: Vec<String>,
        /// The member it is created for (default: the team's lead).
        #[arg(long, value_name = "AGENT")]
        created_by: Option<String>,
        /// The tenant (id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// One task with its comments.
    Show {
        /// The team's id.
        team: String,
        /// The task's id.
        id: String,
        /// Print `GET /v1/teams/{id}/tasks/{task}`'s document.
        #[arg(long)]
        json: bool,
        /// The tenant (id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Claim a pending task for a member (atomic: one claimer wins).
    Claim {
        /// The team's id.
        team: String,
        /// The task's id.
        id: String,
        /// The member that takes it.
        #[arg(long)]
        agent: String,
        /// The tenant (id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Comment on a task for a member.
    Comment {
        /// The team's id.
        team: String,
        /// The task's id.
        id: String,
        /// The comment.
        text: String,
        /// The member that writes it.
        #[arg(long, value_name = "AGENT")]
        author: String,
        /// The tenant (id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
}

/// The words of a link's direction.
pub(super) const DIRECTIONS: [&str; 3] = ["outbound", "inbound", "bidirectional"];

#[derive(Debug, Subcommand)]
pub enum DelegationsCommand {
    /// Delegations and spawns, newest first (a full page ends with the
    /// `--cursor` that lists the next one).
    List {
        /// Only those this agent asked for.
        #[arg(long, value_name = "AGENT")]
        caller: Option<String>,
        /// Only those this agent answered.
        #[arg(long, value_name = "AGENT")]
        target: Option<String>,
        /// Only this user's conversations (a user id).
        #[arg(long)]
        user: Option<String>,
        /// Only those in this state.
        #[arg(long, value_parser = ["running", "done", "failed", "cancelled", "interrupted"])]
        status: Option<String>,
        /// Only delegations to named agents, or only subagent spawns.
        #[arg(long, value_parser = ["delegate", "spawn"])]
        kind: Option<String>,
        /// Only those started before this (Unix milliseconds).
        #[arg(long, value_name = "MS")]
        before: Option<i64>,
        /// The previous page's cursor (`next_cursor`; wins over `--before`).
        #[arg(long)]
        cursor: Option<String>,
        /// At most this many (1-1000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        /// Print `GET /v1/delegations`'s document: `{"delegations", "next_cursor"}`.
        #[arg(long)]
        json: bool,
        /// The tenant (id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// One delegation, every field.
    Show {
        /// The delegation's id (from `delegations list`).
        id: String,
        /// Print `GET /v1/delegations/{id}`'s document.
        #[arg(long)]
        json: bool,
        /// The tenant (id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum BindingsCommand {
    /// The tenant's bindings, oldest first.
    List {
        /// Print `GET /v1/bindings`'s document: `{"bindings": [...]}`.
        #[arg(long)]
        json: bool,
        /// The tenant (id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Bind conversations to an agent: those matching every given field
    /// (a field left out matches anything) go to AGENT; the most specific
    /// binding wins (peer, then user, then account, then channel).
    Add {
        /// The agent that answers.
        #[arg(long)]
        agent: String,
        /// A channel name (`ws`, `api`, `telegram`, ...).
        #[arg(long)]
        channel: Option<String>,
        /// A channel account (one bot of several).
        #[arg(long)]
        account: Option<String>,
        /// A peer or group id on the channel (for `ws`: `chat.send`'s `peer`).
        #[arg(long)]
        peer: Option<String>,
        /// A user id.
        #[arg(long)]
        user: Option<String>,
        /// The tenant (id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Delete a binding.
    Remove {
        /// The binding's id (from `bindings list`).
        id: String,
        /// The tenant (id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum CronCommand {
    /// The tenant's cron jobs, oldest first.
    List {
        /// Only this agent's jobs.
        #[arg(long)]
        agent: Option<String>,
        /// Print `GET /v1/cron`'s document: `{"jobs": [...]}`.
        #[arg(long)]
        json: bool,
        /// The tenant (id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Schedule a message to an agent. Its answer goes to the job's own
    /// session unless --session, --channel with --peer, or --webhook says
    /// otherwise.
    Add(Box<CronAdd>),
    /// Delete a cron job (its run history stays).
    Remove {
        /// The job's id (from `cron list`).
        id: String,
        /// The tenant (id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Enable a job again; it continues from its next occurrence.
    Enable {
        /// The job's id.
        id: String,
        /// The tenant (id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Disable a job: it does not run until enabled.
    Disable {
        /// The job's id.
        id: String,
        /// The tenant (id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Run a job now, in this process, and print how the run ended.
    Run {
        /// The job's id.
        id: String,
        /// Print the run as `POST /v1/cron/{id}/run` answers it.
        #[arg(long)]
        json: bool,
        /// The tenant (id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// A job's runs, newest first: status and trace id per occurrence.
    Runs {
        /// The job's id.
        id: String,
        /// The most runs to print (default 100, at most 1000).
        #[arg(long, default_value_t = 0)]
        limit: u32,
        /// Print `GET /v1/cron/{id}/runs`'s document: `{"runs": [...]}`.
        #[arg(long)]
        json: bool,
        /// The tenant (id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
}

/// `exoclaw cron add`.
#[derive(Debug, Args)]
pub struct CronAdd {
    /// The agent the message goes to.
    #[arg(long)]
    pub agent: String,
    /// When: `at 2026-05-01T09:00:00Z`, `at 2026-05-01T09:00 in
    /// Europe/Berlin`, `every 15m`, `cron 0 9 * * MON-FRI in
    /// Europe/Berlin` (5 or 6 fields), `@daily`.
    #[arg(long)]
    pub schedule: String,
    /// What the agent is told at each run.
    #[arg(long)]
    pub message: String,
    /// A short name (default: the start of the message).
    #[arg(long)]
    pub name: Option<String>,
    /// Answer into this session of the agent and user (an id from
    /// `GET /v1/sessions`).
    #[arg(long, conflicts_with_all = ["channel", "webhook"])]
    pub session: Option<String>,
    /// Answer into the session of a channel peer (`telegram`, ...);
    /// needs --peer.
    #[arg(long, requires = "peer", conflicts_with = "webhook")]
    pub channel: Option<String>,
    /// The channel's chat id, with --channel.
    #[arg(long, requires = "channel")]
    pub peer: Option<String>,
    /// POST the answer to this URL (public addresses only).
    #[arg(long)]
    pub webhook: Option<String>,
    /// Runs missed while no gateway ran: skip or run_once.
    #[arg(long, default_value = "skip")]
    pub missed: String,
    /// Delay each run by up to this many seconds (0 to 3600).
    #[arg(long, default_value_t = 0)]
    pub jitter_sec: u64,
    /// The user the job runs for (default: the owner).
    #[arg(long)]
    pub user: Option<String>,
    /// Print the new job as `POST /v1/cron` answers it.
    #[arg(long)]
    pub json: bool,
    /// The tenant (id).
    #[arg(long, default_value = "default")]
    pub tenant: String,
}
