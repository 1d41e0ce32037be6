//! One delegation or spawn from the call to its recorded end (see the
//! module docs of `delegation`).

use super::super::agent_settings::AgentSettings;
use super::super::lanes::Lane;
use super::super::launch::{CloneOf, Launch};
use super::super::{Runtime, StartError, Turn, TurnEnd};
use super::limits::{Keyed, Slot, Wait};
use super::{announce, spawn};
use crate::access::Principal;
use exoclaw_core::agent::Finish;
use exoclaw_core::model::{Agent, Role, SessionScope};
use exoclaw_core::provider::Usage;
use exoclaw_core::store::StoreError;
use exoclaw_core::store::orchestration::{
    Delegation, DelegationEnd, DelegationKind, DelegationMode, DelegationStatus, NewDelegation,
};
use exoclaw_core::tool::{
    AgentAnswer, AgentCall, AgentTarget, CallMode, Lineage, ToolContext, ToolError,
};
use exoclaw_core::trace::{NewSpan, SpanKind};
use exoclaw_core::{AgentId, TenantId, now_ms};
use serde_json::json;
use sha2::Digest as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The slots delegations hold (see `limits.rs`).
#[derive(Default)]
pub(super) struct Limits {
    links: Keyed<SlotKey>,
    targets: Keyed<SlotKey>,
    parents: Keyed<SlotKey>,
}

/// What a call resolved to, before it runs.
struct Plan {
    kind: DelegationKind,
    target: Agent,
    clone: Option<CloneOf>,
    timeout: Duration,
    /// The tenant's directory the plan was checked against, handed to the
    /// launch so it does not read the version again.
    directory: Option<crate::runtime::directory::Directory>,
}

fn refuse(code: &str, message: impl Into<String>) -> ToolError {
    ToolError::new(code, message)
}

fn store_error(e: &StoreError) -> ToolError {
    tracing::error!(error = %e, "store failure in a delegation");
    ToolError::failed("the delegation could not be recorded; see the gateway log")
}

/// Check, record and run one call.
/// One call, with the caller's `delegation.completed` quality gates on a
/// sync answer: a blocking gate that fails sends the task back with its
/// feedback, up to its retries, then fails the call (`gate.failed`); a
/// non-blocking one passes the answer on with a warning.
pub(super) async fn call(
    rt: Arc<Runtime>,
    ctx: &ToolContext,
    call: AgentCall,
) -> Result<AgentAnswer, ToolError> {
    let gates = if call.mode == CallMode::Sync && !ctx.lineage.gate {
        match rt.store.get_agent(&ctx.tenant, &ctx.agent).await {
            Ok(Some(caller)) => super::super::gates::of(
                &caller,
                super::super::agent_settings::GateEvent::DelegationCompleted,
            ),
            _ => Vec::new(),
        }
    } else {
        Vec::new()
    };
    if gates.is_empty() {
        return call_once(rt, ctx, call).await;
    }
    let mut task = call.task.clone();
    let mut attempt = 0;
    loop {
        let asked = AgentCall {
            target: call.target.clone(),
            task: task.clone(),
            mode: call.mode,
        };
        let answer = call_once(rt.clone(), ctx, asked).await?;
        let AgentAnswer::Done {
            text,
            delegation_id,
            trace_id,
            tainted,
        } = answer
        else {
            return Ok(answer);
        };
        use super::super::gates::{Outcome, revise_with, warning};
        match rt
            .check_gates(&ctx.tenant, &ctx.user, &ctx.agent, &gates, &text)
            .await
        {
            Outcome::Passed => {
                return Ok(AgentAnswer::Done {
                    text,
                    delegation_id,
                    trace_id,
                    tainted,
                });
            }
            Outcome::Failed {
                gate,
                feedback,
                block: false,
                ..
            } => {
                return Ok(AgentAnswer::Done {
                    text: format!("{text}{}", warning(&gate, &feedback)),
                    delegation_id,
                    trace_id,
                    tainted,
                });
            }
            Outcome::Failed {
                gate,
                feedback,
                retries,
                ..
            } => {
                if attempt >= retries {
                    return Err(refuse(
                        "gate.failed",
                        format!(
                            "the answer did not pass the quality gate {gate} after {attempt} revision(s): {feedback}"
                        ),
                    ));
                }
                attempt += 1;
                task = format!("{}\n\n{}", call.task, revise_with(&gate, &feedback));
            }
        }
    }
}

/// One call (see the module docs of `delegation`).
async fn call_once(
    rt: Arc<Runtime>,
    ctx: &ToolContext,
    call: AgentCall,
) -> Result<AgentAnswer, ToolError> {
    let (plan, slots) = match &call.target {
        AgentTarget::Agent(id) => plan_delegation(&rt, ctx, id).await?,
        AgentTarget::Clone { model } => plan_spawn(&rt, ctx, model.clone()).await?,
    };
    let mode = match call.mode {
        CallMode::Sync => DelegationMode::Sync,
        CallMode::Async => DelegationMode::Async,
    };
    let d = rt
        .store
        .create_delegation(
            &ctx.tenant,
            &NewDelegation {
                kind: plan.kind,
                mode,
                caller_agent: ctx.agent.clone(),
                user_id: ctx.user.clone(),
                caller_session: ctx.session.clone(),
                target_agent: plan.target.id.clone(),
                parent_id: ctx.lineage.delegation.clone(),
                task_digest: hex::encode(sha2::Sha256::digest(call.task.as_bytes())),
                parent_trace_id: ctx.run.trace_id().map(str::to_owned),
                owner: rt.delegations.owner().to_owned(),
            },
            now_ms(),
        )
        .await
        .map_err(|e| store_error(&e))?;
    let kind_word = kind_str(plan.kind);
    let session = rt
        .store
        .get_or_create_session(
            &ctx.tenant,
            &SessionScope {
                agent_id: plan.target.id.clone(),
                user_id: ctx.user.clone(),
                channel: kind_word.to_owned(),
                peer: d.id.clone(),
            },
        )
        .await
        .map_err(|e| store_error(&e))?;
    // Sync: the caller's run is the parent. Async: a token of its own that
    // `/stopall` in the caller's session reaches.
    let parent_cancel = match call.mode {
        CallMode::Sync => ctx.cancel.clone(),
        CallMode::Async => {
            let token = CancellationToken::new();
            if let Some(s) = &ctx.session {
                rt.delegations.track(s, &d.id, token.clone());
            }
            token
        }
    };
    let lineage = Lineage {
        depth: ctx.lineage.depth + 1,
        callers: ctx
            .lineage
            .callers
            .iter()
            .cloned()
            .chain([ctx.agent.clone()])
            .collect(),
        delegation: Some(d.id.clone()),
        spawn_depth: ctx.lineage.spawn_depth + u32::from(plan.kind == DelegationKind::Spawn),
        gate: ctx.lineage.gate,
    };
    let who = Principal {
        actor: format!("agent:{}", ctx.agent),
        role: Role::User,
        tenant: ctx.tenant.clone(),
        user: ctx.user.clone(),
        scopes: None,
    };
    let input = match plan.kind {
        DelegationKind::Delegate => format!(
            "Task from agent {} (delegation {}), on behalf of user {}:\n\n{}",
            ctx.agent, d.id, ctx.user, call.task
        ),
        DelegationKind::Spawn => call.task.clone(),
    };
    let started = (now_ms(), Instant::now());
    let launched = rt
        .launch(Launch {
            who,
            agent: plan.target.clone(),
            session,
            input,
            input_meta: json!({"delegation": d.id, "from": ctx.agent}),
            request_id: ctx.request_id.clone(),
            lineage,
            parent_cancel: Some(parent_cancel),
            tainted: ctx.run.is_tainted(),
            trace_name: kind_word,
            clone: plan.clone,
            lane: match plan.kind {
                DelegationKind::Delegate => Lane::Delegate,
                DelegationKind::Spawn => Lane::Subagent,
            },
            handed_over: super::super::launch::HandedOver::Known(None),
            directory: plan.directory.clone(),
        })
        .await;
    let turn = match launched {
        Ok(t) => t,
        Err(e) => {
            let end = Ended::refused(&e);
            if let Some(s) = &ctx.session {
                rt.delegations.untrack(s, &d.id);
            }
            record(&rt, &d, &end, started, None).await;
            return Err(refuse(
                "delegation.failed",
                format!("{} could not start: {e}", plan.target.id),
            ));
        }
    };
    let timeout = plan.timeout;
    match call.mode {
        CallMode::Sync => {
            let end = drive(turn, timeout).await;
            drop(slots);
            if rt.delegations.is_stopping() && end.stopped() {
                // Left running: the next start marks it interrupted.
                return Err(refuse("delegation.cancelled", "the gateway is stopping"));
            }
            let child_session = end.session.clone();
            record(&rt, &d, &end, started, Some(child_session)).await;
            end.answer(&d, &plan.target.id, timeout)
        }
        CallMode::Async => {
            let id = d.id.clone();
            let waiter = rt.clone();
            let caller_session = ctx.session.clone();
            rt.supervisor.detach("delegation.async", async move {
                let end = drive(turn, timeout).await;
                drop(slots);
                if let Some(s) = &caller_session {
                    waiter.delegations.untrack(s, &d.id);
                }
                if waiter.delegations.is_stopping() && end.stopped() {
                    return Ok(());
                }
                let child_session = end.session.clone();
                let finished = record(&waiter, &d, &end, started, Some(child_session)).await;
                // Stopped by `/stopall`: the person asked for silence, not
                // for a turn about it. Everything else is told.
                if let Some(finished) = finished.filter(|_| !end.stopped()) {
                    announce::announce(&waiter, &finished, end.text_for_caller(), end.tainted)
                        .await;
                }
                Ok(())
            });
            Ok(AgentAnswer::Started { delegation_id: id })
        }
    }
}

fn kind_str(kind: DelegationKind) -> &'static str {
    match kind {
        DelegationKind::Delegate => "delegate",
        DelegationKind::Spawn => "spawn",
    }
}

/// A named agent: exists, enabled, linked for this user, within depth;
/// then its slots.
async fn plan_delegation(
    rt: &Runtime,
    ctx: &ToolContext,
    target: &AgentId,
) -> Result<(Plan, Vec<Slot<SlotKey>>), ToolError> {
    let cfg = &rt.settings.config.agents.defaults.delegation;
    if *target == ctx.agent {
        return Err(refuse(
            "delegation.self",
            "an agent cannot delegate to itself; use `spawn` to run a copy of yourself",
        ));
    }
    let chain = || {
        ctx.lineage
            .callers
            .iter()
            .chain([&ctx.agent, target])
            .map(AgentId::as_str)
            .collect::<Vec<_>>()
            .join(" → ")
    };
    if ctx.lineage.depth >= cfg.max_depth {
        let cycle = ctx.lineage.callers.contains(target);
        return Err(refuse(
            "delegation.depth",
            format!(
                "{} would be {} hops deep{}; the limit is {} (agents.defaults.delegation.max_depth)",
                chain(),
                ctx.lineage.depth + 1,
                if cycle {
                    ", going round in a cycle"
                } else {
                    ""
                },
                cfg.max_depth
            ),
        ));
    }
    let no_agent = || {
        refuse(
            "delegation.no_agent",
            format!(
                "there is no agent {target}; `delegate_search` or the agents listed in your instructions are the ones you can reach"
            ),
        )
    };
    let dir = rt
        .directory(&ctx.tenant)
        .await
        .map_err(|e| store_error(&e))?;
    let agent = dir
        .agent(target)
        .await
        .map_err(|e| store_error(&e))?
        .ok_or_else(no_agent)?;
    let settings = AgentSettings::from_stored(agent.id.as_str(), &agent.config);
    if settings.disabled {
        return Err(refuse(
            "delegation.disabled",
            format!("agent {target} is disabled"),
        ));
    }
    let reach = super::directory::reach(&dir, &ctx.agent, target, &ctx.user)
        .await
        .map_err(|e| store_error(&e))?;
    let link = match reach {
        Ok(super::directory::Reach::Link(l)) => Some(l),
        Ok(super::directory::Reach::Team(_)) => None,
        Err(super::directory::Refusal::NoLink) => {
            return Err(refuse(
                "delegation.no_link",
                format!(
                    "no permission link lets {} delegate to {target}; an operator adds one with `exoclaw agent link {} {target}` (or puts both in a team)",
                    ctx.agent, ctx.agent
                ),
            ));
        }
        Err(super::directory::Refusal::UserDenied) => {
            return Err(refuse(
                "delegation.user_denied",
                format!(
                    "the link between {} and {target} is not open to user {}",
                    ctx.agent, ctx.user
                ),
            ));
        }
    };
    let wait = Duration::from_secs(cfg.wait_sec);
    let mut slots = Vec::new();
    if let Some(link) = &link
        && let Some(max) = link.max_concurrent
    {
        let key = SlotKey::Link((
            ctx.tenant.clone(),
            link.source.clone(),
            link.target.clone(),
            max,
        ));
        slots.push(take(&rt.delegations.limits, key, max, wait, ctx, || {
            format!(
                "the link {} → {target} already runs its maximum of {max} delegations (max_concurrent)",
                ctx.agent
            )
        })
        .await?);
    }
    if let Some(max) = settings.max_delegation_load {
        let key = SlotKey::Target((ctx.tenant.clone(), target.clone(), max));
        slots.push(take(&rt.delegations.limits, key, max, wait, ctx, || {
            format!("agent {target} already handles its maximum of {max} delegations (max_delegation_load)")
        })
        .await?);
    }
    Ok((
        Plan {
            kind: DelegationKind::Delegate,
            target: agent,
            clone: None,
            timeout: Duration::from_secs(cfg.timeout_sec),
            directory: Some(dir),
        },
        slots,
    ))
}

/// A clone of the caller: within the spawn depth; then the parent run's
/// slot.
async fn plan_spawn(
    rt: &Runtime,
    ctx: &ToolContext,
    model: Option<String>,
) -> Result<(Plan, Vec<Slot<SlotKey>>), ToolError> {
    let cfg = &rt.settings.config.agents.defaults.subagents;
    if ctx.lineage.spawn_depth >= cfg.max_depth {
        return Err(refuse(
            "spawn.depth",
            format!(
                "a subagent cannot spawn another here: the limit is {} level(s) (agents.defaults.subagents.max_depth)",
                cfg.max_depth
            ),
        ));
    }
    let agent = rt
        .store
        .get_agent(&ctx.tenant, &ctx.agent)
        .await
        .map_err(|e| store_error(&e))?
        .ok_or_else(|| {
            refuse(
                "delegation.no_agent",
                format!("agent {} is gone", ctx.agent),
            )
        })?;
    let context = spawn::parent_context(rt.store.as_ref(), &ctx.tenant, ctx.session.as_ref())
        .await
        .map_err(|e| store_error(&e))?;
    let wait = Duration::from_secs(rt.settings.config.agents.defaults.delegation.wait_sec);
    let max = cfg.max_concurrent;
    // One parent run: its trace (every agent run has one).
    let parent = ctx
        .run
        .trace_id()
        .map_or_else(|| format!("ctx:{:p}", Arc::as_ptr(&ctx.run)), str::to_owned);
    let slot = take(
        &rt.delegations.limits,
        SlotKey::Parent((parent, max)),
        max,
        wait,
        ctx,
        || {
            format!(
                "this run already has {max} subagents working (agents.defaults.subagents.max_concurrent)"
            )
        },
    )
    .await?;
    Ok((
        Plan {
            kind: DelegationKind::Spawn,
            target: agent,
            clone: Some(CloneOf {
                model,
                context,
                deny: cfg.deny.clone(),
            }),
            timeout: Duration::from_secs(cfg.timeout_sec),
            directory: None,
        },
        vec![slot],
    ))
}

/// The key of a held slot: which of the three limits.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(super) enum SlotKey {
    Link((TenantId, AgentId, AgentId, u32)),
    Target((TenantId, AgentId, u32)),
    Parent((String, u32)),
}

impl Limits {
    fn of(&self, key: &SlotKey) -> &Keyed<SlotKey> {
        // One map per kind keeps each small; the key carries its kind.
        match key {
            SlotKey::Link(_) => &self.links,
            SlotKey::Target(_) => &self.targets,
            SlotKey::Parent(_) => &self.parents,
        }
    }
}

async fn take(
    limits: &Limits,
    key: SlotKey,
    max: u32,
    wait: Duration,
    ctx: &ToolContext,
    busy: impl FnOnce() -> String,
) -> Result<Slot<SlotKey>, ToolError> {
    match limits.of(&key).acquire(key, max, wait, &ctx.cancel).await {
        Ok(slot) => Ok(slot),
        Err(Wait::Busy) => Err(refuse(
            "delegation.busy",
            format!(
                "{}; waited {}s (agents.defaults.delegation.wait_sec), try again later",
                busy(),
                wait.as_secs()
            ),
        )),
        Err(Wait::Stopped) => Err(refuse("delegation.cancelled", "the run was stopped")),
    }
}

/// How a child run ended.
pub(super) struct Ended {
    finish: Result<Finish, String>,
    timed_out: bool,
    text: String,
    usage: Usage,
    cost_micros: i64,
    trace_id: Option<String>,
    pub(super) session: exoclaw_core::SessionId,
    pub(super) tainted: bool,
}

/// Drain the child's events and wait for its end, stopping it after
/// `timeout`.
async fn drive(mut turn: Turn, timeout: Duration) -> Ended {
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut timed_out = false;
    loop {
        tokio::select! {
            ev = turn.events.recv() => if ev.is_none() { break },
            () = &mut deadline, if !timed_out => {
                timed_out = true;
                turn.cancel.cancel();
            }
        }
    }
    let tainted = turn.run.is_tainted();
    let session = turn.session.id.clone();
    match turn.end().await {
        TurnEnd::Ran(o) => Ended {
            finish: Ok(o.finish),
            timed_out,
            text: o.text,
            usage: o.usage,
            cost_micros: o.cost_micros,
            trace_id: Some(o.trace_id),
            session,
            tainted,
        },
        TurnEnd::Broken { message, .. } => Ended {
            finish: Err(message),
            timed_out,
            text: String::new(),
            usage: Usage::default(),
            cost_micros: 0,
            trace_id: None,
            session,
            tainted,
        },
    }
}

impl Ended {
    fn refused(e: &StartError) -> Self {
        Self {
            finish: Err(e.to_string()),
            timed_out: false,
            text: String::new(),
            usage: Usage::default(),
            cost_micros: 0,
            trace_id: None,
            session: exoclaw_core::SessionId::new(""),
            tainted: false,
        }
    }

    /// Stopped from outside (not by its own timeout).
    fn stopped(&self) -> bool {
        !self.timed_out && matches!(self.finish, Ok(Finish::Cancelled))
    }

    fn status(&self) -> (DelegationStatus, Option<String>) {
        match &self.finish {
            _ if self.timed_out => (DelegationStatus::Failed, Some("delegation.timeout".into())),
            Ok(Finish::Complete) => (DelegationStatus::Done, None),
            Ok(Finish::Cancelled) => (DelegationStatus::Cancelled, None),
            Ok(Finish::Failed { code, .. }) => (DelegationStatus::Failed, Some(code.clone())),
            Err(_) => (DelegationStatus::Failed, Some("internal".into())),
        }
    }

    /// The answer of a sync call.
    fn answer(
        self,
        d: &Delegation,
        target: &AgentId,
        timeout: Duration,
    ) -> Result<AgentAnswer, ToolError> {
        if self.timed_out {
            return Err(refuse(
                "delegation.timeout",
                format!(
                    "{target} did not answer within {}s (the delegation timeout); delegation {} holds what it did",
                    timeout.as_secs(),
                    d.id
                ),
            ));
        }
        match self.finish {
            Ok(Finish::Complete) => Ok(AgentAnswer::Done {
                text: self.text,
                delegation_id: d.id.clone(),
                trace_id: self.trace_id,
                tainted: self.tainted,
            }),
            Ok(Finish::Cancelled) => Err(refuse(
                "delegation.cancelled",
                format!("the run of {target} was stopped"),
            )),
            Ok(Finish::Failed { code, message }) => Err(refuse(
                "delegation.failed",
                format!("{target} could not finish the task: [{code}] {message}"),
            )),
            Err(message) => Err(refuse(
                "delegation.failed",
                format!("{target} could not finish the task: {message}"),
            )),
        }
    }

    /// What the caller is told when an async call ends.
    fn text_for_caller(&self) -> announce::Result {
        let (status, code) = self.status();
        match &self.finish {
            Ok(Finish::Complete) if !self.timed_out => announce::Result::Answer(self.text.clone()),
            Ok(Finish::Failed { message, .. }) => announce::Result::Failure {
                status,
                detail: format!("[{}] {message}", code.unwrap_or_default()),
            },
            Err(m) => announce::Result::Failure {
                status,
                detail: m.clone(),
            },
            _ if self.timed_out => announce::Result::Failure {
                status,
                detail: "it did not finish in time (delegation timeout)".into(),
            },
            _ => announce::Result::Failure {
                status,
                detail: "it was stopped".into(),
            },
        }
    }
}

/// Record the end in the history and a span in the parent trace; the
/// finished record, or `None` when it had ended already (or the store
/// failed, logged).
async fn record(
    rt: &Runtime,
    d: &Delegation,
    end: &Ended,
    started: (i64, Instant),
    child_session: Option<exoclaw_core::SessionId>,
) -> Option<Delegation> {
    let (status, error_code) = end.status();
    let finished = match rt
        .store
        .finish_delegation(
            &d.tenant_id,
            &d.id,
            &DelegationEnd {
                status,
                child_trace_id: end.trace_id.clone(),
                child_session: child_session.filter(|s| !s.as_str().is_empty()),
                input_tokens: i64::try_from(end.usage.input_tokens).unwrap_or(i64::MAX),
                output_tokens: i64::try_from(end.usage.output_tokens).unwrap_or(i64::MAX),
                cost_micros: end.cost_micros,
                error_code: error_code.clone(),
            },
            now_ms(),
        )
        .await
    {
        Ok(f) => Some(f),
        Err(StoreError::Conflict(_)) => None,
        Err(e) => {
            tracing::error!(error = %e, delegation = %d.id, "cannot record the end of a delegation");
            None
        }
    };
    if let Some(parent) = &d.parent_trace_id {
        let span = NewSpan {
            trace_id: parent.clone(),
            tenant_id: d.tenant_id.clone(),
            kind: SpanKind::Agent,
            name: d.target_agent.to_string(),
            provider: None,
            status: match status {
                DelegationStatus::Done => "ok",
                DelegationStatus::Cancelled | DelegationStatus::Interrupted => "cancelled",
                DelegationStatus::Failed | DelegationStatus::Running => "error",
            }
            .to_owned(),
            error: error_code,
            started_at: started.0,
            latency_ms: i64::try_from(started.1.elapsed().as_millis()).unwrap_or(i64::MAX),
            usage: end.usage,
            cost_micros: end.cost_micros,
            attributes: json!({
                "kind": kind_str(d.kind),
                "mode": if d.mode == DelegationMode::Sync { "sync" } else { "async" },
                "delegation_id": d.id,
                "child_trace_id": end.trace_id,
            }),
        };
        if let Err(e) = rt.traces().add_span(&span).await {
            tracing::warn!(error = %e, "cannot record a delegation span");
        }
    }
    finished
}
