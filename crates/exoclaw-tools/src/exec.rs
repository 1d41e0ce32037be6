//! `exec` (run a shell command, wait for it) and `process` (background jobs:
//! start, poll, kill, list), both through the [`crate::sandbox`]. Before
//! anything spawns, a [`CommandCheck`] hook decides (the shell policy); both
//! tools' `check` runs argument validation and the hook without spawning
//! (the dry run). Jobs belong to one session, are bounded in number, their
//! unread output is capped, and each is killed with its whole process tree
//! on `kill`, on timeout, or when the tool set is dropped. With a
//! [`QuotaLedger`] ([`CommandRunner::with_quota`]) a command is refused
//! while the workspace is full or over quota, may write no file larger
//! than what is left (`RLIMIT_FSIZE`), and the workspace is measured again
//! when it ends (the result says if it is now over quota).

use crate::args::parse;
use crate::quota::{CommandGuard, QuotaLedger, human_bytes};
use crate::sandbox::{
    AgentRole, ExitStatus, Finished, OutputSink, Placement, Sandbox, SandboxPolicy, command_env,
};
use async_trait::async_trait;
use exoclaw_core::provider::ToolSpec;
use exoclaw_core::tool::{Check, Tool, ToolContext, ToolEffect, ToolError, ToolOutput};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest command accepted, in bytes.
const MAX_COMMAND_BYTES: usize = 16 * 1024;
/// Running background jobs per session.
pub const MAX_JOBS_PER_SESSION: usize = 4;
/// Finished jobs kept per session until polled.
const MAX_FINISHED_PER_SESSION: usize = 8;

/// When a [`CommandCheck`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckStage {
    /// `check()`: the dry run; nothing will spawn.
    DryRun,
    /// `call()`: the command spawns if this passes.
    BeforeSpawn,
}

/// What the pre-spawn policy sees: the command exactly as it will run.
#[derive(Clone, Copy, Debug)]
pub struct CommandRequest<'a> {
    pub command: &'a str,
    /// Working directory as the command sees it (`/workspace` when sandboxed).
    pub cwd: &'a str,
    /// The command's complete environment.
    pub env: &'a [(String, String)],
    pub stage: CheckStage,
}

/// The policy hook run before any command spawns (the shell policy): it
/// allows, refuses, or asks for an operator's approval (which the policy
/// path obtains; the command then spawns only with that approval's binding
/// in the context). Any `Fn(&str) -> Result<(), ToolError>` is one that
/// never asks.
#[async_trait]
pub trait CommandCheck: Send + Sync {
    async fn check(
        &self,
        ctx: &ToolContext,
        request: &CommandRequest<'_>,
    ) -> Result<Check, ToolError>;
}

#[async_trait]
impl<F> CommandCheck for F
where
    F: Fn(&str) -> Result<(), ToolError> + Send + Sync,
{
    async fn check(
        &self,
        _ctx: &ToolContext,
        request: &CommandRequest<'_>,
    ) -> Result<Check, ToolError> {
        self(request.command).map(|()| Check::Allow)
    }
}

/// Which agents count as the main one (for mode `non-main`).
pub type RoleOf = Arc<dyn Fn(&ToolContext) -> AgentRole + Send + Sync>;

/// What `exec` and `process` share: the sandbox, the policy template (its
/// `workspace` is replaced by each call's), the hook and the job table.
pub struct CommandRunner {
    sandbox: Sandbox,
    policy: SandboxPolicy,
    check: Arc<dyn CommandCheck>,
    role_of: RoleOf,
    jobs: Mutex<HashMap<String, Vec<Job>>>,
    next_job: std::sync::atomic::AtomicU64,
    quota: Option<Arc<QuotaLedger>>,
    narrow: Option<Narrowing>,
}

/// Narrows the sandbox policy of one call (a tenant's own sandbox
/// settings), without IO. It may only make the policy stricter.
pub type Narrowing = Arc<dyn Fn(&ToolContext, &mut SandboxPolicy) + Send + Sync>;

impl CommandRunner {
    /// Every agent is treated as non-main (sandboxed unless mode is `off`)
    /// until [`CommandRunner::with_roles`] says otherwise.
    pub fn new(sandbox: Sandbox, policy: SandboxPolicy, check: Arc<dyn CommandCheck>) -> Self {
        Self {
            sandbox,
            policy,
            check,
            role_of: Arc::new(|_: &ToolContext| AgentRole::NonMain),
            jobs: Mutex::new(HashMap::new()),
            next_job: std::sync::atomic::AtomicU64::new(1),
            quota: None,
            narrow: None,
        }
    }

    /// Narrow each call's sandbox policy (per tenant).
    pub fn with_narrowing(mut self, narrow: Narrowing) -> Self {
        self.narrow = Some(narrow);
        self
    }

    pub fn with_roles(mut self, role_of: RoleOf) -> Self {
        self.role_of = role_of;
        self
    }

    /// Hold commands to the workspace quotas of `ledger` (the one the file
    /// tools were given, see [`crate::fs::builtin_with_quota`]).
    pub fn with_quota(mut self, ledger: Arc<QuotaLedger>) -> Self {
        self.quota = Some(ledger);
        self
    }

    fn ledger(&self) -> Option<Arc<QuotaLedger>> {
        self.quota.clone().filter(|q| q.is_active())
    }

    /// Refused while the workspace is full or over quota; else the bytes
    /// left, if a byte quota is set (measuring may walk the workspace).
    async fn admit(&self, ctx: &ToolContext) -> Result<Option<u64>, ToolError> {
        let Some(q) = self.ledger() else {
            return Ok(None);
        };
        let ctx = ctx.clone();
        tokio::task::spawn_blocking(move || q.admit_command(&ctx))
            .await
            .map_err(|_| ToolError::failed("the workspace quota check did not complete"))?
    }

    /// Marks the workspace as being written by a command until dropped.
    fn started(&self, ctx: &ToolContext) -> Option<CommandGuard> {
        self.ledger().map(|q| q.command_started(ctx))
    }

    fn policy_for(&self, ctx: &ToolContext) -> SandboxPolicy {
        let mut p = self.policy.clone();
        p.workspace.clone_from(&ctx.workspace);
        if let Some(narrow) = &self.narrow {
            narrow(ctx, &mut p);
        }
        p
    }

    async fn validate(
        &self,
        ctx: &ToolContext,
        command: &str,
        timeout_sec: Option<u64>,
        stage: CheckStage,
    ) -> Result<(SandboxPolicy, AgentRole, Duration, Check), ToolError> {
        if command.trim().is_empty() {
            return Err(ToolError::invalid_args("command: must not be empty"));
        }
        if command.len() > MAX_COMMAND_BYTES {
            return Err(ToolError::invalid_args(format!(
                "command: longer than {MAX_COMMAND_BYTES} bytes"
            )));
        }
        if command.contains('\0') {
            return Err(ToolError::invalid_args("command: contains a NUL byte"));
        }
        let policy = self.policy_for(ctx);
        let max = policy.timeout.as_secs().max(1);
        let timeout = match timeout_sec {
            Some(0) => return Err(ToolError::invalid_args("timeout_sec: must be at least 1")),
            Some(t) if t > max => {
                return Err(ToolError::invalid_args(format!(
                    "timeout_sec: at most {max} (sandbox.timeout_sec)"
                )));
            }
            Some(t) => Duration::from_secs(t),
            None => policy.timeout,
        };
        let role = (self.role_of)(ctx);
        let placement = Placement::of(&policy, role);
        let sandboxed = placement == Placement::Sandbox;
        let env = command_env(&policy, placement);
        let cwd = if sandboxed {
            "/workspace".to_owned()
        } else {
            policy.workspace.to_string_lossy().into_owned()
        };
        let request = CommandRequest {
            command,
            cwd: &cwd,
            env: &env,
            stage,
        };
        let check = self.check.check(ctx, &request).await?;
        if stage == CheckStage::BeforeSpawn
            && let Check::NeedsApproval(need) = &check
            && ctx.approved.as_deref() != Some(need.binding.as_str())
        {
            // Only the policy path obtains approvals; a call that reaches
            // here without one for exactly this command does not spawn.
            return Err(ToolError::new(
                "security.approval_required",
                format!("{}: an operator must approve this command", need.rule),
            ));
        }
        let mut policy = policy;
        policy.max_file_bytes = self.admit(ctx).await?;
        Ok((policy, role, timeout, check))
    }

    fn session_key(ctx: &ToolContext) -> String {
        match &ctx.session {
            Some(s) => format!("{}/{s}", ctx.tenant),
            None => format!("{}/user:{}", ctx.tenant, ctx.user),
        }
    }

    fn lock_jobs(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, Vec<Job>>>, ToolError> {
        self.jobs
            .lock()
            .map_err(|_| ToolError::failed("job table unavailable"))
    }

    async fn start_job(
        &self,
        ctx: &ToolContext,
        command: &str,
        timeout_sec: Option<u64>,
    ) -> Result<ToolOutput, ToolError> {
        let key = Self::session_key(ctx);
        let running_now = |jobs: &HashMap<String, Vec<Job>>| {
            jobs.get(&key)
                .map_or(0, |v| v.iter().filter(|j| j.is_running()).count())
        };
        if running_now(&*self.lock_jobs()?) >= MAX_JOBS_PER_SESSION {
            return Err(too_many_jobs());
        }
        let (policy, role, timeout, _) = self
            .validate(ctx, command, timeout_sec, CheckStage::BeforeSpawn)
            .await?;
        let guard = self.started(ctx);
        let running = self
            .sandbox
            .spawn(&policy, role, command, timeout)
            .await
            .map_err(|e| e.to_tool_error())?;
        let sink = Arc::new(OutputSink::new(policy.max_output_bytes));
        let state = Arc::new(Mutex::new(JobState::Running));
        let task = {
            let (sink, state) = (Arc::clone(&sink), Arc::clone(&state));
            let (ledger, ctx) = (self.ledger(), ctx.clone());
            let fsize = quota_fsize(&policy);
            // Owned by the job table: aborted (killing the tree) on kill and
            // on drop; its result is read by `poll`. The quota guard goes
            // with it, so an aborted job still leaves its workspace to be
            // measured.
            #[expect(
                clippy::disallowed_methods,
                reason = "owned by the job table (see above)"
            )]
            tokio::spawn(async move {
                let result = running.finish(&sink).await;
                drop(guard);
                let mut note = settle(ledger, &ctx).await;
                if let Ok(f) = &result {
                    note = note.or_else(|| file_size_note(f.status, fsize));
                }
                if let Ok(mut s) = state.lock() {
                    *s = JobState::Done(
                        result
                            .map(|f| f.status)
                            .map_err(|e| e.to_tool_error().message),
                        note,
                    );
                }
            })
        };
        let id = format!(
            "job-{}",
            self.next_job
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut jobs = self.lock_jobs()?;
        if running_now(&jobs) >= MAX_JOBS_PER_SESSION {
            task.abort();
            return Err(too_many_jobs());
        }
        let list = jobs.entry(key).or_default();
        list.push(Job {
            id: id.clone(),
            command: command.to_owned(),
            started: Instant::now(),
            sink,
            state,
            task,
        });
        let finished: Vec<usize> = (0..list.len()).filter(|i| !list[*i].is_running()).collect();
        if finished.len() > MAX_FINISHED_PER_SESSION {
            list.remove(finished[0]);
        }
        Ok(ToolOutput::text(
            json!({"id": id, "status": "running"}).to_string(),
        ))
    }

    fn poll_job(&self, ctx: &ToolContext, id: &str) -> Result<ToolOutput, ToolError> {
        let mut jobs = self.lock_jobs()?;
        let list = jobs
            .get_mut(&Self::session_key(ctx))
            .ok_or_else(|| no_job(id))?;
        let index = list
            .iter()
            .position(|j| j.id == id)
            .ok_or_else(|| no_job(id))?;
        let job = &list[index];
        // Read the state first: output taken after it is complete for an exited job.
        let state = job.state();
        let (stdout, stdout_truncated) = take(&job.sink.stdout);
        let (stderr, stderr_truncated) = take(&job.sink.stderr);
        let mut out = json!({
            "id": id,
            "stdout": stdout,
            "stderr": stderr,
            "stdout_truncated": stdout_truncated,
            "stderr_truncated": stderr_truncated,
        });
        state.describe(&mut out);
        if !matches!(state, JobState::Running) {
            list.remove(index);
        }
        Ok(ToolOutput::text(out.to_string()))
    }

    fn kill_job(&self, ctx: &ToolContext, id: &str) -> Result<ToolOutput, ToolError> {
        let mut jobs = self.lock_jobs()?;
        let list = jobs
            .get_mut(&Self::session_key(ctx))
            .ok_or_else(|| no_job(id))?;
        let job = list.iter().find(|j| j.id == id).ok_or_else(|| no_job(id))?;
        let was_running = job.is_running();
        if was_running {
            job.task.abort();
            if let Ok(mut s) = job.state.lock() {
                *s = JobState::Killed;
            }
        }
        Ok(ToolOutput::text(
            json!({"id": id, "killed": was_running, "status": job.state().name()}).to_string(),
        ))
    }

    fn list_jobs(&self, ctx: &ToolContext) -> Result<ToolOutput, ToolError> {
        let jobs = self.lock_jobs()?;
        let list: Vec<Value> = jobs
            .get(&Self::session_key(ctx))
            .map(|v| {
                v.iter()
                    .map(|j| {
                        let mut o = json!({"id": j.id, "command": j.command, "running_for_ms": millis(j.started.elapsed())});
                        j.state().describe(&mut o);
                        o
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(ToolOutput::text(json!({"jobs": list}).to_string()))
    }
}

impl Drop for CommandRunner {
    fn drop(&mut self) {
        if let Ok(jobs) = self.jobs.lock() {
            for job in jobs.values().flatten() {
                job.task.abort();
            }
        }
    }
}

fn too_many_jobs() -> ToolError {
    ToolError::new(
        "tool.limit",
        format!(
            "this session already runs {MAX_JOBS_PER_SESSION} background jobs; poll or kill one first"
        ),
    )
}

fn no_job(id: &str) -> ToolError {
    ToolError::invalid_args(format!("id: no job {id:?} in this session"))
}

fn take(m: &Mutex<crate::sandbox::Capture>) -> (String, bool) {
    m.lock().map(|mut c| c.take()).unwrap_or_default()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

struct Job {
    id: String,
    command: String,
    started: Instant,
    sink: Arc<OutputSink>,
    state: Arc<Mutex<JobState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Job {
    fn state(&self) -> JobState {
        self.state
            .lock()
            .map(|s| s.clone())
            .unwrap_or(JobState::Done(Err("job state unavailable".into()), None))
    }

    fn is_running(&self) -> bool {
        matches!(self.state(), JobState::Running)
    }
}

#[derive(Clone, Debug)]
enum JobState {
    Running,
    /// The exit, and a note about the workspace quota (now over it, or a
    /// file stopped at the size limit).
    Done(Result<ExitStatus, String>, Option<String>),
    Killed,
}

impl JobState {
    fn name(&self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Done(Ok(ExitStatus::TimedOut), _) => "timed_out",
            Self::Done(Ok(_), _) => "exited",
            Self::Done(Err(_), _) => "failed",
            Self::Killed => "killed",
        }
    }

    fn describe(&self, out: &mut Value) {
        out["status"] = json!(self.name());
        match self {
            Self::Done(Ok(ExitStatus::Exited(code)), _) => out["exit_code"] = json!(code),
            Self::Done(Ok(ExitStatus::Signaled(sig)), _) => out["signal"] = json!(sig),
            Self::Done(Err(e), _) => out["error"] = json!(e),
            _ => {}
        }
        if let Self::Done(_, Some(note)) = self {
            out["quota"] = json!(note);
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecArgs {
    command: String,
    timeout_sec: Option<u64>,
    #[serde(default)]
    background: bool,
}

/// `exec`: run a shell command in the sandbox and wait for it.
pub struct Exec(pub Arc<CommandRunner>);

/// `process`: background jobs of this session.
pub struct Process(pub Arc<CommandRunner>);

/// Both tools over one runner.
pub fn tools(runner: &Arc<CommandRunner>) -> Vec<Arc<dyn Tool>> {
    vec![
        Arc::new(Exec(Arc::clone(runner))),
        Arc::new(Process(Arc::clone(runner))),
    ]
}

fn finished_json(f: &Finished) -> Value {
    let mut out = json!({
        "stdout": f.stdout.text(),
        "stderr": f.stderr.text(),
        "stdout_truncated": f.stdout.is_truncated(),
        "stderr_truncated": f.stderr.is_truncated(),
        "duration_ms": millis(f.duration),
        "sandboxed": matches!(f.isolation, crate::sandbox::Isolation::Sandboxed { .. }),
    });
    match f.status {
        ExitStatus::Exited(code) => out["exit_code"] = json!(code),
        ExitStatus::Signaled(sig) => out["signal"] = json!(sig),
        ExitStatus::TimedOut => out["timed_out"] = json!(true),
    }
    out
}

/// After a command: measure its workspace again; a note if it is now full
/// or over quota.
async fn settle(ledger: Option<Arc<QuotaLedger>>, ctx: &ToolContext) -> Option<String> {
    let ledger = ledger?;
    let ctx = ctx.clone();
    tokio::task::spawn_blocking(move || ledger.settle(&ctx))
        .await
        .unwrap_or_else(|_| {
            Some(
                "workspace quota: the workspace could not be measured after the command".to_owned(),
            )
        })
}

/// The file-size limit the quota set for a command, when lower than `max_file_mb`.
fn quota_fsize(policy: &SandboxPolicy) -> Option<u64> {
    policy
        .max_file_bytes
        .filter(|b| *b < policy.max_file_mb.saturating_mul(1 << 20))
}

/// A command killed by `SIGXFSZ` (or a shell reporting it) while the quota
/// lowered its file-size limit: say why.
fn file_size_note(status: ExitStatus, quota_fsize: Option<u64>) -> Option<String> {
    let limit = quota_fsize?;
    let xfsz = libc::SIGXFSZ;
    let hit = matches!(status, ExitStatus::Signaled(s) if s == xfsz)
        || matches!(status, ExitStatus::Exited(c) if c == 128 + xfsz);
    hit.then(|| {
        format!(
            "a file reached the size limit of {} (what was left of the workspace quota); delete or truncate files first",
            human_bytes(limit)
        )
    })
}

fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[async_trait]
impl Tool for Exec {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "exec".into(),
            description: "Run a shell command (sh -c) in the sandbox with cwd /workspace and wait for it; returns stdout, stderr, exit code and duration. background=true starts it as a process job instead.".into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "command": {"type": "string", "description": "shell command line"},
                    "timeout_sec": {"type": "integer", "minimum": 1},
                    "background": {"type": "boolean", "default": false}
                },
                "required": ["command"],
                "additionalProperties": false
            }),
        }
    }

    fn effect(&self) -> ToolEffect {
        ToolEffect::SideEffect
    }

    fn asks_approval(&self) -> bool {
        true
    }

    async fn check(&self, ctx: &ToolContext, args: &Value) -> Result<Check, ToolError> {
        let a: ExecArgs = parse(args)?;
        self.0
            .validate(ctx, &a.command, a.timeout_sec, CheckStage::DryRun)
            .await
            .map(|(_, _, _, check)| check)
    }

    async fn call(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let a: ExecArgs = parse(args)?;
        if a.background {
            return self.0.start_job(ctx, &a.command, a.timeout_sec).await;
        }
        let (policy, role, timeout, _) = self
            .0
            .validate(ctx, &a.command, a.timeout_sec, CheckStage::BeforeSpawn)
            .await?;
        let guard = self.0.started(ctx);
        let finished = self
            .0
            .sandbox
            .run(&policy, role, &a.command, timeout)
            .await
            .map_err(|e| e.to_tool_error())?;
        drop(guard);
        self.0.report(ctx, &policy, &finished, timeout).await
    }
}

impl CommandRunner {
    /// What a finished command answers: its output as JSON, or
    /// `tool.timeout` with the last output; with a quota note.
    async fn report(
        &self,
        ctx: &ToolContext,
        policy: &SandboxPolicy,
        finished: &Finished,
        timeout: Duration,
    ) -> Result<ToolOutput, ToolError> {
        let note = settle(self.ledger(), ctx)
            .await
            .or_else(|| file_size_note(finished.status, quota_fsize(policy)));
        if finished.status == ExitStatus::TimedOut {
            let note = note.map(|n| format!("\n{n}")).unwrap_or_default();
            return Err(ToolError::new(
                "tool.timeout",
                format!(
                    "the command did not finish within {}s and was killed with all its processes; last output:\n{}{}{note}",
                    timeout.as_secs(),
                    tail(&finished.stdout.text(), 2048),
                    tail(&finished.stderr.text(), 2048),
                ),
            ));
        }
        let mut out = finished_json(finished);
        if let Some(note) = note {
            out["quota"] = json!(note);
        }
        Ok(ToolOutput::text(out.to_string()))
    }

    /// The policy decision on a command run as an argv (no shell): the
    /// shell policy sees `shown`, the argv quoted as a shell would need it,
    /// so its rules apply to the program and each word as they will run.
    pub async fn check_argv(
        &self,
        ctx: &ToolContext,
        shown: &str,
        timeout_sec: Option<u64>,
    ) -> Result<Check, ToolError> {
        self.validate(ctx, shown, timeout_sec, CheckStage::DryRun)
            .await
            .map(|(_, _, _, check)| check)
    }

    /// Run `argv` without a shell, in the sandbox as `exec` would (the
    /// shell policy on `shown`, the quotas, the output caps), with
    /// `extra_env` added to the allowlisted environment.
    pub async fn run_argv(
        &self,
        ctx: &ToolContext,
        argv: &[String],
        extra_env: &[(String, String)],
        shown: &str,
        timeout_sec: Option<u64>,
    ) -> Result<ToolOutput, ToolError> {
        let (policy, role, timeout, _) = self
            .validate(ctx, shown, timeout_sec, CheckStage::BeforeSpawn)
            .await?;
        let guard = self.started(ctx);
        let finished = self
            .sandbox
            .run_argv(&policy, role, argv, extra_env, timeout)
            .await
            .map_err(|e| e.to_tool_error())?;
        drop(guard);
        self.report(ctx, &policy, &finished, timeout).await
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
enum Action {
    Start,
    Poll,
    Kill,
    List,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcessArgs {
    action: Action,
    command: Option<String>,
    id: Option<String>,
    timeout_sec: Option<u64>,
}

impl ProcessArgs {
    fn command(&self) -> Result<&str, ToolError> {
        self.command
            .as_deref()
            .ok_or_else(|| ToolError::invalid_args("command: required for action start"))
    }

    fn id(&self) -> Result<&str, ToolError> {
        self.id
            .as_deref()
            .ok_or_else(|| ToolError::invalid_args("id: required for actions poll and kill"))
    }
}

#[async_trait]
impl Tool for Process {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "process".into(),
            description: format!(
                "Background shell jobs of this session, in the sandbox: start (returns an id), poll (new output since the last poll and the status), kill (the whole process tree), list. At most {MAX_JOBS_PER_SESSION} run at once."
            ),
            parameters: json!({
                "type": "object",
                "properties": {
                    "action": {"type": "string", "enum": ["start", "poll", "kill", "list"]},
                    "command": {"type": "string", "description": "for start"},
                    "id": {"type": "string", "description": "for poll and kill"},
                    "timeout_sec": {"type": "integer", "minimum": 1}
                },
                "required": ["action"],
                "additionalProperties": false
            }),
        }
    }

    fn effect(&self) -> ToolEffect {
        ToolEffect::SideEffect
    }

    fn asks_approval(&self) -> bool {
        true
    }

    async fn check(&self, ctx: &ToolContext, args: &Value) -> Result<Check, ToolError> {
        let a: ProcessArgs = parse(args)?;
        match a.action {
            Action::Start => self
                .0
                .validate(ctx, a.command()?, a.timeout_sec, CheckStage::DryRun)
                .await
                .map(|(_, _, _, check)| check),
            Action::Poll | Action::Kill => a.id().map(|_| Check::Allow),
            Action::List => Ok(Check::Allow),
        }
    }

    async fn call(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let a: ProcessArgs = parse(args)?;
        match a.action {
            Action::Start => self.0.start_job(ctx, a.command()?, a.timeout_sec).await,
            Action::Poll => self.0.poll_job(ctx, a.id()?),
            Action::Kill => self.0.kill_job(ctx, a.id()?),
            Action::List => self.0.list_jobs(ctx),
        }
    }
}
