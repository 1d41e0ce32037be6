//! How every run starts: [`Launch`] says who, which agent, in which session,
//! with what input and where in a chain of delegations; [`Runtime::launch`]
//! resolves the provider, assembles the system prompt (context files, the
//! agents it may delegate to, its teams and unread team messages) and the
//! tool policy, and hands the run to the
//! run owner. A person's message ([`Runtime::start_turn`]), a delegation, a
//! subagent and an announcement all take this one path.

use super::agent_settings::AgentSettings;
use super::lanes::{Admission, Lane, SessionKind};
use super::{Runtime, StartError, Turn, context, delegation, guard};
use crate::access::Principal;
use exoclaw_core::agent::{AgentDeps, RunSpec, run_turn};
use exoclaw_core::model::{Agent, Session, SessionScope};
use exoclaw_core::tool::{Lineage, RunState};
use exoclaw_tools::BoundTools;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One run to start (see the module docs).
pub(crate) struct Launch {
    /// On whose behalf: the user the session, workspace and budgets are of.
    pub who: Principal,
    /// The agent that answers.
    pub agent: Agent,
    pub session: Session,
    pub input: String,
    /// Stored with the input message.
    pub input_meta: serde_json::Value,
    pub request_id: Option<String>,
    pub lineage: Lineage,
    /// The run this one serves: stopping it stops this one.
    pub parent_cancel: Option<CancellationToken>,
    /// The run that asked had read untrusted content: this one starts
    /// tainted, so its side effects are gated too.
    pub tainted: bool,
    pub trace_name: &'static str,
    /// A subagent: an anonymous clone of `agent`.
    pub clone: Option<CloneOf>,
    /// The scheduler lane the run waits in.
    pub lane: Lane,
}

/// What makes a subagent differ from its parent.
pub(crate) struct CloneOf {
    /// Another model of the parent's provider.
    pub model: Option<String>,
    /// The parent's conversation, as context.
    pub context: String,
    /// Tools the clone may not use (on top of the parent's policy).
    pub deny: Vec<String>,
}

/// What an inbound message became.
pub enum Inbound {
    /// A turn of the agent.
    Turn(Turn),
    /// A chat command (`/stop`, `/stopall`) that stopped runs.
    Stopped(Stopped),
    /// Another chat command (`/handoff clear`), answered in words.
    Replied(String),
}

/// What `/stop` or `/stopall` stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stopped {
    pub session: exoclaw_core::SessionId,
    /// `/stopall`: async delegations and spawns too.
    pub all: bool,
    /// Runs of the session (queued or going; their sync delegations and
    /// subagents stop with them).
    pub runs: usize,
    /// Async delegations and spawns the session started.
    pub delegations: usize,
}

impl Stopped {
    /// What the person who typed the command reads.
    pub fn message(&self) -> String {
        match (self.runs, self.delegations) {
            (0, 0) => "Nothing was running.".to_owned(),
            (r, 0) => format!("Stopped {r} run(s)."),
            (r, d) => format!("Stopped {r} run(s) and {d} delegation(s) or subagent(s)."),
        }
    }
}

/// A chat command: a whole message that is a command, not a turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatCommand {
    /// `/stop`.
    Stop,
    /// `/stopall`.
    StopAll,
    /// `/handoff clear`.
    HandoffClear,
}

/// The chat command `input` is, if any; a Telegram-style `/stop@bot`
/// counts.
pub fn chat_command(input: &str) -> Option<ChatCommand> {
    let mut words = input.split_whitespace();
    let first = words.next()?;
    let first = first.split_once('@').map_or(first, |(w, _)| w);
    let rest: Vec<&str> = words.collect();
    match (first, rest.as_slice()) {
        ("/stop", []) => Some(ChatCommand::Stop),
        ("/stopall", []) => Some(ChatCommand::StopAll),
        ("/handoff", ["clear"]) => Some(ChatCommand::HandoffClear),
        _ => None,
    }
}

impl Runtime {
    /// An inbound message of `who` to `agent` on (`channel`, `peer`): a
    /// chat command, or a turn. Every inbound path (HTTP, WebSocket, the
    /// terminal, channels) takes this one.
    pub async fn receive(
        &self,
        who: &Principal,
        agent_id: &str,
        channel: &str,
        peer: &str,
        input: String,
        request_id: Option<String>,
    ) -> Result<Inbound, StartError> {
        let command = chat_command(&input);
        if command == Some(ChatCommand::HandoffClear) {
            let back = super::handoff::clear(self, who, channel, peer).await?;
            return Ok(Inbound::Replied(match back {
                Some(agent) => format!("Handed back: your messages go to {agent} again."),
                None => "This conversation was not handed over.".to_owned(),
            }));
        }
        // A handed-over conversation goes to the agent it was handed to.
        let routed = super::handoff::route(self, who, agent_id, channel, peer).await?;
        let agent_id = routed.as_str();
        let Some(command) = command else {
            return self
                .start_turn(who, agent_id, channel, peer, input, request_id)
                .await
                .map(Inbound::Turn);
        };
        let all = command == ChatCommand::StopAll;
        let agent = self.agent(who, agent_id).await?;
        let session = self
            .store
            .get_or_create_session(
                &who.tenant,
                &SessionScope {
                    agent_id: agent.id.clone(),
                    user_id: who.user.clone(),
                    channel: channel.to_owned(),
                    peer: peer.to_owned(),
                },
            )
            .await?;
        Ok(Inbound::Stopped(self.stop(&session.id, all)))
    }

    /// Stop `session`'s runs (and, with `all`, the async delegations and
    /// subagents it started). Partial answers stay in the sessions,
    /// marked.
    pub fn stop(&self, session: &exoclaw_core::SessionId, all: bool) -> Stopped {
        let runs = self.runs.stop(session);
        let delegations = if all {
            self.delegations.stop_pending(session)
        } else {
            0
        };
        Stopped {
            session: session.clone(),
            all,
            runs,
            delegations,
        }
    }

    /// Start one turn of `agent` for `who` on (`channel`, `peer`).
    pub async fn start_turn(
        &self,
        who: &Principal,
        agent_id: &str,
        channel: &str,
        peer: &str,
        input: String,
        request_id: Option<String>,
    ) -> Result<Turn, StartError> {
        let agent = self.agent(who, agent_id).await?;
        let session = self
            .store
            .get_or_create_session(
                &who.tenant,
                &SessionScope {
                    agent_id: agent.id.clone(),
                    user_id: who.user.clone(),
                    channel: channel.to_owned(),
                    peer: peer.to_owned(),
                },
            )
            .await?;
        let mut ctx = self.tool_context(who, &agent, Some(session.id.clone()), None)?;
        ctx.request_id.clone_from(&request_id);
        self.screen_input(&ctx, &input).await?;
        self.launch(Launch {
            who: who.clone(),
            agent,
            session,
            input,
            input_meta: serde_json::Value::Null,
            request_id,
            lineage: Lineage::default(),
            parent_cancel: None,
            tainted: false,
            trace_name: "chat",
            clone: None,
            lane: Lane::Main,
        })
        .await
    }

    /// Start a run (see the module docs).
    pub(crate) async fn launch(&self, l: Launch) -> Result<Turn, StartError> {
        let mut agent_settings = AgentSettings::from_stored(l.agent.id.as_str(), &l.agent.config);
        if agent_settings.disabled {
            return Err(StartError::Disabled(l.agent.id.to_string()));
        }
        if let Some(model) = l.clone.as_ref().and_then(|c| c.model.clone()) {
            agent_settings.model = Some(model);
        }
        let resolved = self
            .llm_for(&l.who.tenant)
            .resolve(&agent_settings)
            .map_err(StartError::NoProvider)?;
        let mut tool_ctx =
            self.tool_context(&l.who, &l.agent, Some(l.session.id.clone()), l.request_id)?;
        // The hosts the user named may be fetched even after untrusted
        // content entered the run.
        let run = RunState::with_seen(guard::hosts_in(&l.input));
        if l.tainted {
            run.taint();
        }
        tool_ctx.run = Arc::new(run);
        let cancel = l
            .parent_cancel
            .map_or_else(CancellationToken::new, |p| p.child_token());
        tool_ctx.cancel = cancel.clone();
        tool_ctx.lineage = l.lineage;
        tool_ctx.agents = Some(self.agent_calls());

        let defaults = &self.settings.config.agents.defaults;
        let reachable = delegation::directory::reachable(
            self.store.as_ref(),
            &l.who.tenant,
            &l.agent.id,
            &l.who.user,
        )
        .await?;
        let mut policy = self.tool_policy(&l.agent);
        policy.deny.extend(delegation::directory::tools_to_hide(
            reachable.len(),
            &tool_ctx.lineage,
            &defaults.subagents,
        ));
        let base = match &l.clone {
            Some(c) => {
                policy.deny.extend(c.deny.iter().cloned());
                delegation::spawn::system_prompt(&l.agent, &c.context)
            }
            None => format!(
                "{}{}{}",
                context::system_prompt(&self.home, &l.agent, l.who.user.as_str()),
                super::handoff::context_for(self, &l.who.tenant, &l.session).await,
                super::teams::inbox::section(self.store.as_ref(), &l.who.tenant, &l.agent.id).await
            ),
        };
        let system_prompt = format!(
            "{base}{}\n\n{}",
            delegation::directory::prompt_section(&reachable),
            exoclaw_guard::markers::SYSTEM_PROMPT_NOTE
        );
        let limits = agent_settings.limits(defaults);
        let spec = RunSpec {
            tenant: l.who.tenant.clone(),
            agent: l.agent.id.clone(),
            user: l.who.user.clone(),
            session: l.session.id.clone(),
            provider_name: resolved.provider_name.clone(),
            model: resolved.model.clone(),
            system_prompt,
            max_iterations: limits.max_iterations,
            max_history_tokens: limits.max_history_tokens,
            keep_recent_messages: limits.keep_recent_messages,
            max_tokens: defaults.max_tokens,
            tool_ctx,
            trace_name: l.trace_name.to_owned(),
            input_meta: l.input_meta,
            owner: Some(self.delegations.owner().to_owned()),
        };
        let deps = AgentDeps {
            provider: resolved.provider,
            tools: Arc::new(BoundTools {
                registry: self.tools.clone(),
                policy,
                tenant: l.who.tenant.clone(),
                agent: l.agent.id.clone(),
            }),
            sessions: self.store.clone(),
            traces: self.traces.clone(),
            pricing: self.pricing.clone(),
        };
        let (tx, rx) = mpsc::channel(256);
        let token = cancel.clone();
        let run = spec.tool_ctx.run.clone();
        let input = l.input;
        let admission = Admission {
            lane: l.lane,
            tenant: l.who.tenant.clone(),
            session: l.session.id.clone(),
            kind: SessionKind::Direct,
        };
        let outcome = self.runs.spawn(admission, cancel.clone(), async move {
            run_turn(&deps, &spec, &input, &tx, &token).await
        });
        Ok(Turn {
            session: l.session,
            events: rx,
            outcome,
            cancel,
            run,
        })
    }
}
