//! The tool port. A tool describes itself ([`Tool::spec`], what it may
//! change [`Tool::effect`] and where its output comes from
//! [`Tool::provenance`]), checks a call without acting ([`Tool::check`],
//! which may say an operator must approve it) and runs ([`Tool::call`]). It
//! is only ever called through the registry's one policy path (see
//! `exoclaw-tools`), never directly by a loop, job or endpoint.
//!
//! Three ports let tools reach what lives above them without depending on
//! it: [`Approvals`] (an operator's decision, stored by the gateway),
//! [`AgentCalls`] (a turn of another agent, for delegation and subagents),
//! [`TeamBoard`] (the task boards and mailboxes of the caller's teams),
//! [`Memories`] (the caller's long-term memory) and [`Skills`] (the skills
//! the caller's tenant sees).

use crate::provider::ToolSpec;
use crate::store::teams::{Mail, NewTask, Task, TaskFilter, TaskStatus, Team};
use crate::{AgentId, SessionId, TenantId, UserId};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// What a tool may change, as data: the policy path gates effects once
/// untrusted content has entered a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolEffect {
    /// Reads only, inside the gateway's reach (read_file, list_files, search).
    ReadOnly,
    /// Changes state (write_file, edit_file, exec).
    SideEffect,
    /// Reaches outside the gateway (web_fetch, web_search, messages,
    /// another agent): gated after taint unless its destination was already
    /// seen ([`Tool::destination`]).
    External,
}

/// Where a tool's output comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provenance {
    /// Produced by the gateway or under the operator's control.
    Trusted,
    /// Text from outside (web pages, files, MCP servers): scanned for
    /// prompt injection, wrapped in untrusted markers, and it taints the
    /// run.
    Untrusted,
}

/// What one run has let in: whether untrusted content entered its context
/// and which external destinations it may reach without counting as new
/// (those the user named, and those reached before the taint). Shared by
/// every call of the run.
#[derive(Debug, Default)]
pub struct RunState {
    tainted: AtomicBool,
    seen: Mutex<HashSet<String>>,
    /// The outputs go to a person (`/v1/tools/invoke`), not into a model's
    /// context: they are scrubbed but not marked, and taint nothing.
    direct: bool,
    /// The run's trace, once the loop started it (delegations link theirs
    /// to it).
    trace: std::sync::OnceLock<String>,
}

impl RunState {
    /// A run whose user named `destinations` (hosts of URLs in the input).
    pub fn with_seen(destinations: impl IntoIterator<Item = String>) -> Self {
        Self {
            tainted: AtomicBool::new(false),
            seen: Mutex::new(destinations.into_iter().collect()),
            direct: false,
            trace: std::sync::OnceLock::new(),
        }
    }

    /// A call whose output a person reads directly.
    pub fn direct() -> Self {
        Self {
            direct: true,
            ..Self::default()
        }
    }

    /// Whether the outputs enter a model's context.
    pub fn feeds_model(&self) -> bool {
        !self.direct
    }

    pub fn is_tainted(&self) -> bool {
        self.tainted.load(Ordering::SeqCst)
    }

    pub fn taint(&self) {
        self.tainted.store(true, Ordering::SeqCst);
    }

    pub fn has_seen(&self, destination: &str) -> bool {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(destination)
    }

    /// Record the run's trace (the first call wins).
    pub fn set_trace(&self, id: &str) {
        let _ = self.trace.set(id.to_owned());
    }

    pub fn trace_id(&self) -> Option<&str> {
        self.trace.get().map(String::as_str)
    }

    /// Count `destination` as seen (reached before the run was tainted).
    pub fn see(&self, destination: String) {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(destination);
    }
}

/// Where and for whom a tool runs. Built by the server, never by the model.
#[derive(Clone)]
pub struct ToolContext {
    pub tenant: TenantId,
    pub user: UserId,
    pub agent: AgentId,
    pub session: Option<SessionId>,
    /// The (per-user) workspace root every file access is anchored at.
    pub workspace: PathBuf,
    pub request_id: Option<String>,
    /// The run this call belongs to (taint, destinations seen).
    pub run: Arc<RunState>,
    /// The binding of an approval the policy path obtained for this very
    /// call ([`ApprovalNeed::binding`]): a tool that asked for approval in
    /// `check` acts only when it matches.
    pub approved: Option<String>,
    /// The model's id for this call (echoed in its result), set by the
    /// agent loop per call; `None` for calls made directly (`/v1/tools/invoke`).
    /// The audit event carries it, so a receipt can be matched to the call
    /// and the result stored in the session.
    pub call_id: Option<String>,
    /// Turns of other agents, for tools that delegate (absent where the
    /// caller offers none).
    pub agents: Option<Arc<dyn AgentCalls>>,
    /// Where this run sits in a chain of delegations and spawns.
    pub lineage: Lineage,
    /// The run's cancellation: a child run's token derives from it, so
    /// stopping a run stops what it waits for.
    pub cancel: tokio_util::sync::CancellationToken,
}

/// Where a run sits in a chain of delegations and spawns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lineage {
    /// 0 for a run a person or a job started; one more per hop.
    pub depth: u32,
    /// The agents up the chain, the first caller first (not this run's own
    /// agent).
    pub callers: Vec<AgentId>,
    /// The delegation or spawn this run answers, if any.
    pub delegation: Option<String>,
    /// How many of the hops were subagent spawns.
    pub spawn_depth: u32,
    /// The run reviews another's output for a quality gate: its own gates
    /// do not run (no recursion).
    pub gate: bool,
}

impl ToolContext {
    /// A context for `user` of `tenant` using `agent`, in a fresh run.
    pub fn new(tenant: TenantId, user: UserId, agent: AgentId, workspace: PathBuf) -> Self {
        Self {
            tenant,
            user,
            agent,
            session: None,
            workspace,
            request_id: None,
            run: Arc::new(RunState::default()),
            approved: None,
            call_id: None,
            agents: None,
            lineage: Lineage::default(),
            cancel: tokio_util::sync::CancellationToken::new(),
        }
    }
}

impl std::fmt::Debug for ToolContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolContext")
            .field("tenant", &self.tenant)
            .field("user", &self.user)
            .field("agent", &self.agent)
            .field("session", &self.session)
            .field("workspace", &self.workspace)
            .field("request_id", &self.request_id)
            .field("tainted", &self.run.is_tainted())
            .field("approved", &self.approved.is_some())
            .field("call_id", &self.call_id)
            .field("lineage", &self.lineage)
            .finish_non_exhaustive()
    }
}

/// What a tool's `check` decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// The call may run.
    Allow,
    /// The call may run once an operator approves it.
    NeedsApproval(ApprovalNeed),
}

/// What an operator is asked to approve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalNeed {
    /// The policy rule that asks (`shell.net_pipe_shell`,
    /// `security.untrusted_content`).
    pub rule: String,
    /// What the operator reads: the command or the call, scrubbed.
    pub shown: String,
    /// Where it runs (a working directory), for the operator.
    pub cwd: String,
    /// What an approval binds to (a digest of exactly what will run), so it
    /// never covers a different call.
    pub binding: String,
}

/// An operator's decisions, kept above the tools (the gateway's store).
#[async_trait]
pub trait Approvals: Send + Sync {
    /// Whether `need` is already approved for `ctx`'s tenant (an approval
    /// stays valid for a while and covers exactly its binding).
    async fn is_approved(&self, ctx: &ToolContext, need: &ApprovalNeed) -> Result<bool, ToolError>;
    /// Ask an operator and wait, at most `wait`, for the decision: `Ok` when
    /// approved, a `security.approval_*` error otherwise.
    async fn request(
        &self,
        ctx: &ToolContext,
        need: &ApprovalNeed,
        wait: Duration,
    ) -> Result<(), ToolError>;
}

/// Who answers an [`AgentCall`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentTarget {
    /// An anonymous clone of the calling agent (a subagent): the caller's
    /// provider, its model unless another of the same provider is named,
    /// its tools minus the subagent deny list, in the caller's session
    /// context.
    Clone { model: Option<String> },
    /// A named agent of the caller's tenant, with its own identity,
    /// provider, model, tools and context files, in a fresh session.
    Agent(AgentId),
}

/// Whether the caller waits for the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallMode {
    /// Wait: the answer is the tool's result.
    Sync,
    /// Do not wait: the answer is announced into the caller's session as a
    /// new turn of the caller when it is ready.
    Async,
}

/// A turn of another agent, asked for by a tool (delegation, subagents).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentCall {
    pub target: AgentTarget,
    /// What it is asked.
    pub task: String,
    pub mode: CallMode,
}

/// The answer of an [`AgentCall`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentAnswer {
    /// A sync call finished.
    Done {
        text: String,
        /// The delegation as the history records it.
        delegation_id: String,
        /// The trace of the called turn (linked from the caller's).
        trace_id: Option<String>,
        /// The called run read untrusted content: its answer is screened
        /// as untrusted, and the caller's run is tainted.
        tainted: bool,
    },
    /// An async call started; its result comes back later.
    Started { delegation_id: String },
}

/// An agent another agent may delegate to, as the caller's model sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentCard {
    pub id: AgentId,
    pub name: String,
    /// What it is for, in a sentence or two (the agent's `description`).
    pub description: String,
}

/// Start another agent's turn, for tools that delegate, without the tools
/// depending on the gateway that runs turns.
#[async_trait]
pub trait AgentCalls: Send + Sync {
    async fn call_agent(
        &self,
        ctx: &ToolContext,
        call: AgentCall,
    ) -> Result<AgentAnswer, ToolError>;
    /// The agents `ctx`'s agent may delegate to for `ctx`'s user (links,
    /// their direction and user lists), ordered by id.
    async fn reachable(&self, ctx: &ToolContext) -> Result<Vec<AgentCard>, ToolError>;
    /// `cards` ranked for `query` by the gateway's hybrid search (keywords
    /// and meaning, fused), at most `limit`, when it has an embedder that
    /// answers; `None`: the caller ranks by keywords.
    async fn rank(
        &self,
        _ctx: &ToolContext,
        _query: &str,
        _cards: &[AgentCard],
        _limit: usize,
    ) -> Option<Vec<AgentCard>> {
        None
    }
}

/// The boards and mailboxes of the teams an agent belongs to, for the team
/// tools, without the tools depending on the gateway. Every call acts as
/// `ctx.agent`, and only on a team it leads or is a member of: another
/// team is `team.not_member`, an unknown one `team.not_found`. Nothing is
/// written when a call is refused.
#[async_trait]
pub trait TeamBoard: Send + Sync {
    /// The teams `ctx`'s agent leads or is a member of, by id.
    async fn teams_of(&self, ctx: &ToolContext) -> Result<Vec<Team>, ToolError>;
    async fn create_task(
        &self,
        ctx: &ToolContext,
        team: &str,
        task: NewTask,
    ) -> Result<Task, ToolError>;
    async fn list_tasks(
        &self,
        ctx: &ToolContext,
        team: &str,
        filter: TaskFilter,
    ) -> Result<Vec<Task>, ToolError>;
    async fn get_task(&self, ctx: &ToolContext, team: &str, id: &str) -> Result<Task, ToolError>;
    /// Atomic: of concurrent claimers exactly one wins.
    async fn claim_task(&self, ctx: &ToolContext, team: &str, id: &str) -> Result<Task, ToolError>;
    /// `status` is `Done` or `Failed`; only the owner finishes, once.
    async fn finish_task(
        &self,
        ctx: &ToolContext,
        team: &str,
        id: &str,
        status: TaskStatus,
        result: String,
    ) -> Result<Task, ToolError>;
    async fn comment_task(
        &self,
        ctx: &ToolContext,
        team: &str,
        id: &str,
        text: String,
    ) -> Result<(), ToolError>;
    /// To one member (`to`), or to every member but the sender (`None`).
    async fn send_mail(
        &self,
        ctx: &ToolContext,
        team: &str,
        to: Option<AgentId>,
        text: String,
    ) -> Result<Mail, ToolError>;
    /// The caller's unread messages of the team, oldest first, at most
    /// `limit`; they are read from then on.
    async fn read_mail(
        &self,
        ctx: &ToolContext,
        team: &str,
        limit: u32,
    ) -> Result<Vec<Mail>, ToolError>;
}

/// What a memory search found.
#[derive(Clone, Debug, PartialEq)]
pub struct MemorySearch {
    pub hits: Vec<crate::store::memory::MemoryHit>,
    /// Ranked by full text alone: no embedder is configured, or it did not
    /// answer (a warning is logged; the search still answers).
    pub full_text_only: bool,
}

/// The long-term memory of `ctx`'s agent as `ctx`'s user sees it (their
/// own memories and the agent's shared ones), for the memory tools, without
/// the tools depending on the gateway. Content is scrubbed of secrets
/// before it is stored; a memory saved by a run that read untrusted content
/// is stored as untrusted.
#[async_trait]
pub trait Memories: Send + Sync {
    /// Saves (or merges into a duplicate); `shared` makes it the agent's,
    /// seen by every user. Oversized content is `tool.invalid_args` with
    /// the limit named.
    async fn save(
        &self,
        ctx: &ToolContext,
        content: String,
        shared: bool,
        importance: i64,
    ) -> Result<crate::store::memory::SavedMemory, ToolError>;
    async fn search(
        &self,
        ctx: &ToolContext,
        query: String,
        limit: u32,
    ) -> Result<MemorySearch, ToolError>;
    /// `memory.not_found` for a memory the user cannot see.
    async fn get(
        &self,
        ctx: &ToolContext,
        id: &str,
    ) -> Result<crate::store::memory::Memory, ToolError>;
    /// `memory.not_found` for a memory the user cannot see.
    async fn forget(&self, ctx: &ToolContext, id: &str) -> Result<(), ToolError>;
}

/// What a skill search found.
#[derive(Clone, Debug, PartialEq)]
pub struct SkillSearch {
    pub hits: Vec<crate::store::skill::SkillHit>,
    /// Ranked by full text alone (no embedder, or it did not answer).
    pub full_text_only: bool,
}

/// One file of a skill, read.
#[derive(Clone, Debug, PartialEq)]
pub struct SkillDoc {
    pub skill: crate::store::skill::Skill,
    pub path: String,
    pub content: String,
}

/// The active skills of `ctx`'s tenant (its own and the gateway's), for
/// `skill_search` and `skill_read`, without the tools depending on the
/// gateway. A quarantined skill is neither found nor read.
#[async_trait]
pub trait Skills: Send + Sync {
    async fn search(
        &self,
        ctx: &ToolContext,
        query: String,
        limit: u32,
    ) -> Result<SkillSearch, ToolError>;
    /// `skill.not_found` for a skill (or file) the tenant does not have,
    /// or one in quarantine.
    async fn read(&self, ctx: &ToolContext, name: &str, path: &str) -> Result<SkillDoc, ToolError>;
}

/// A file an agent sends to the person it talks to on a channel.
#[derive(Clone, PartialEq, Eq)]
pub struct ChannelFile {
    /// The name the recipient sees (the workspace file's own name).
    pub name: String,
    pub mime: Option<String>,
    pub bytes: Vec<u8>,
    pub caption: Option<String>,
}

impl std::fmt::Debug for ChannelFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelFile")
            .field("name", &self.name)
            .field("mime", &self.mime)
            .field("bytes", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

/// The messaging channel of `ctx`'s session, for `channel_send_file`,
/// without the tools depending on the gateway. A session that is not a
/// channel's, or a channel that cannot send files, is a clear tool error
/// (`channel.no_channel`, `channel.files_disabled`).
#[async_trait]
pub trait ChannelFiles: Send + Sync {
    /// The largest file the session's channel sends (checked before the
    /// file is read).
    async fn file_cap(&self, ctx: &ToolContext) -> Result<u64, ToolError>;
    /// Queue `file` to the session's peer through the durable outbox (once
    /// per call); what to tell the model.
    async fn send_file(&self, ctx: &ToolContext, file: ChannelFile) -> Result<String, ToolError>;
}

/// A tool's successful result, as the model will read it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolOutput {
    pub content: String,
    /// This output may carry injected instructions although its tool is
    /// trusted in general (the answer of a delegated run that read
    /// untrusted content): the policy path screens it as untrusted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub untrusted: bool,
}

impl ToolOutput {
    pub fn text(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            untrusted: false,
        }
    }

    /// An output to screen as untrusted (see [`ToolOutput::untrusted`]).
    pub fn untrusted(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            untrusted: true,
        }
    }
}

/// A refused or failed tool call: a stable code and a message that reveals no
/// host detail (no absolute paths, no secrets).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{code}: {message}")]
pub struct ToolError {
    /// `tool.not_found`, `tool.invalid_args`, `tool.timeout`, `tool.failed`,
    /// `security.*`, ...
    pub code: String,
    pub message: String,
}

impl ToolError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
        }
    }

    pub fn invalid_args(message: impl Into<String>) -> Self {
        Self::new("tool.invalid_args", message)
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Self::new("tool.failed", message)
    }
}

#[async_trait]
pub trait Tool: Send + Sync {
    /// What the model is told of the tool. Read once, when the tool is
    /// registered: a tool whose spec changes is registered again.
    fn spec(&self) -> ToolSpec;

    fn effect(&self) -> ToolEffect;

    /// Where the output comes from; untrusted output is scanned, marked and
    /// taints the run.
    fn provenance(&self) -> Provenance {
        Provenance::Trusted
    }

    /// For [`ToolEffect::External`] tools: the destination a call reaches
    /// (a lowercase host). A destination the run has already seen is not
    /// gated after taint; `None` is always gated.
    fn destination(&self, _args: &serde_json::Value) -> Option<String> {
        None
    }

    /// A short label of where an untrusted output came from
    /// (`web_fetch:https://...`, `file:notes.md`), for its markers and the
    /// audit log.
    fn source(&self, _args: &serde_json::Value) -> String {
        self.spec().name
    }

    /// Whether `check` may ask for an operator's approval
    /// ([`Check::NeedsApproval`]): the policy path then runs `check` before
    /// every call, not only in a dry run.
    fn asks_approval(&self) -> bool {
        false
    }

    /// Everything `call` checks before acting (argument validation, path
    /// resolution, the shell policy), without acting: the `dry_run` of
    /// `/v1/tools/invoke`, and the policy path's approval step.
    async fn check(&self, ctx: &ToolContext, args: &serde_json::Value) -> Result<Check, ToolError>;

    async fn call(
        &self,
        ctx: &ToolContext,
        args: &serde_json::Value,
    ) -> Result<ToolOutput, ToolError>;
}

/// How the agent loop reaches tools: the registry bound to one run's policy.
/// Implemented by `exoclaw-tools`; the loop never holds a `Tool` directly.
#[async_trait]
pub trait ToolRunner: Send + Sync {
    /// The tools this run may offer the model (shared: every iteration and
    /// every request points at one list).
    fn specs(&self) -> std::sync::Arc<[ToolSpec]>;
    /// One call through the policy path.
    async fn run(
        &self,
        ctx: &ToolContext,
        name: &str,
        args: &serde_json::Value,
    ) -> Result<ToolOutput, ToolError>;
}
