//! How every run starts: [`Launch`] says who, which agent, in which session,
//! with what input and where in a chain of delegations; [`Runtime::launch`]
//! resolves the provider, assembles the system prompt (context files, the
//! agents it may delegate to, its teams and unread team messages) and the
//! tool policy, and hands the run to the
//! run owner. A person's message ([`Runtime::start_turn`]), a delegation, a
//! subagent and an announcement all take this one path.

use super::agent_settings::AgentSettings;
use super::lanes::{Admission, Lane, SessionKind};
use super::launch::{HandedOver, Launch};
use super::{Runtime, StartError, Turn, context, delegation, guard};
use crate::access::Principal;
use exoclaw_core::agent::{AgentDeps, RunSpec, run_turn};
use exoclaw_core::model::SessionScope;
use exoclaw_core::tool::{Lineage, RunState};
use exoclaw_tools::BoundTools;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A person's message as a turn takes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Input {
    /// What the person wrote: screened for prompt injection, and a chat
    /// command when it is one.
    pub text: String,
    /// Content the gateway attaches after the screening (a channel's notes
    /// of received files), already inside untrusted-content markers: the
    /// markers are the gateway's own, not a forgery.
    pub attached: String,
}

impl From<String> for Input {
    fn from(text: String) -> Self {
        Self {
            text,
            attached: String::new(),
        }
    }
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
        input: impl Into<Input>,
        request_id: Option<String>,
    ) -> Result<Inbound, StartError> {
        let input = input.into();
        let command = chat_command(&input.text);
        if command == Some(ChatCommand::HandoffClear) {
            let back = super::handoff::clear(self, who, channel, peer).await?;
            return Ok(Inbound::Replied(match back {
                Some(agent) => format!("Handed back: your messages go to {agent} again."),
                None => "This conversation was not handed over.".to_owned(),
            }));
        }
        let dir = self.directory(&who.tenant).await?;
        // A handed-over conversation goes to the agent it was handed to.
        let (routed, handoff) =
            super::handoff::route(self, &dir, who, agent_id, channel, peer).await?;
        let agent_id = routed.as_str();
        let agent = dir
            .agent(&exoclaw_core::AgentId::new(agent_id))
            .await?
            .ok_or_else(|| StartError::NoAgent(agent_id.to_owned()))?;
        let Some(command) = command else {
            return self
                .start_turn(dir, who, agent, (channel, peer), input, request_id, handoff)
                .await
                .map(Inbound::Turn);
        };
        let all = command == ChatCommand::StopAll;
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

    /// Start one turn of `agent` for `who` on (`channel`, `peer`), whose
    /// conversation is `handoff` (the live one it was routed by) or none.
    #[expect(clippy::too_many_arguments, reason = "one call site, receive")]
    async fn start_turn(
        &self,
        dir: super::directory::Directory,
        who: &Principal,
        agent: exoclaw_core::model::Agent,
        (channel, peer): (&str, &str),
        input: Input,
        request_id: Option<String>,
        handoff: Option<exoclaw_core::store::teams::Handoff>,
    ) -> Result<Turn, StartError> {
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
        self.screen_input(&ctx, &input.text).await?;
        self.launch(Launch {
            who: who.clone(),
            agent,
            session,
            input: input.text + &input.attached,
            input_meta: serde_json::Value::Null,
            request_id,
            lineage: Lineage::default(),
            parent_cancel: None,
            tainted: false,
            trace_name: "chat",
            clone: None,
            lane: Lane::Main,
            handed_over: HandedOver::Known(handoff),
            directory: Some(dir),
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
        // The tenant's teams, read once: who the agent reaches, and its
        // teams' inboxes.
        let dir = match l.directory {
            Some(dir) => dir,
            None => self.directory(&l.who.tenant).await?,
        };
        let (links, teams) = tokio::join!(dir.links(&l.agent.id), dir.teams());
        let teams = teams?;
        let reachable = delegation::directory::reachable_from(
            self.store.as_ref(),
            &l.who.tenant,
            &l.agent.id,
            &l.who.user,
            (&links?, &teams),
        )
        .await?;
        let mut policy = self.tool_policy(&l.agent);
        policy.deny.extend(delegation::directory::tools_to_hide(
            reachable.len(),
            &tool_ctx.lineage,
            &defaults.subagents,
        ));
        // The team tools, only to an agent in a team: a schema fewer in
        // every other agent's requests.
        if !teams.iter().any(|t| t.includes(&l.agent.id)) {
            policy
                .deny
                .extend(exoclaw_tools::team::TOOL_NAMES.map(str::to_owned));
        }
        // `channel_send_file`, only in a conversation on a channel adapter
        // (elsewhere it could only say there is no one to send to).
        let on_channel = self
            .settings
            .config
            .channels
            .get(&l.session.channel)
            .is_some_and(|c| c.kind.is_some());
        if !on_channel {
            policy
                .deny
                .push(exoclaw_tools::channel::TOOL_NAME.to_owned());
        }
        let base = match &l.clone {
            Some(c) => {
                policy.deny.extend(c.deny.iter().cloned());
                delegation::spawn::system_prompt(&l.agent, &c.context)
            }
            None => format!(
                "{}{}{}{}{}",
                context::system_prompt(&self.home, &l.agent, l.who.user.as_str()),
                self.recall(&l.who, &l.agent.id, &agent_settings, &l.input)
                    .await,
                // Skills are offered only to an agent that may read them.
                if policy.permits("skill_read") {
                    crate::skills::offer::section(&self.skills, &l.who.tenant, &l.input).await
                } else {
                    String::new()
                },
                super::handoff::context_for(self, &dir, &l.who.tenant, &l.session, l.handed_over)
                    .await,
                super::teams::inbox::section(
                    self.store.as_ref(),
                    &l.who.tenant,
                    &l.agent.id,
                    &teams
                )
                .await
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
            windows: self.windows.clone(),
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
        let gates = if spec.tool_ctx.lineage.gate {
            Vec::new()
        } else {
            super::gates::of(&l.agent, super::agent_settings::GateEvent::RunCompleted)
        };
        let outcome = if gates.is_empty() {
            self.runs.spawn(admission, cancel.clone(), async move {
                run_turn(&deps, &spec, &input, &tx, &token).await
            })
        } else {
            let rt = self.me.clone();
            self.runs.spawn(admission, cancel.clone(), async move {
                gated_turn(rt, &deps, &spec, input, &tx, &token, &gates).await
            })
        };
        Ok(Turn {
            session: l.session,
            events: rx,
            outcome,
            cancel,
            run,
        })
    }
}

/// A turn of an agent with `run.completed` quality gates (`gates.rs`): with
/// a blocking gate its text is held back until the gates pass, and a
/// failing answer is revised in the same session with the feedback, up to
/// the gate's retries; then the turn fails (`gate.failed`). A failing
/// non-blocking gate passes the answer on with a warning.
async fn gated_turn(
    rt: std::sync::Weak<Runtime>,
    deps: &AgentDeps,
    spec: &RunSpec,
    first_input: String,
    tx: &mpsc::Sender<exoclaw_core::agent::AgentEvent>,
    token: &CancellationToken,
    gates: &[super::agent_settings::GateSpec],
) -> Result<exoclaw_core::agent::RunOutcome, exoclaw_core::store::StoreError> {
    use super::gates::{Outcome, revise_with, warning};
    use exoclaw_core::agent::{AgentEvent, Finish};
    let hold = gates.iter().any(|g| g.block_on_failure);
    let mut input = first_input;
    let mut attempt = 0;
    loop {
        let (inner_tx, mut inner_rx) = mpsc::channel(256);
        let forward = async {
            while let Some(e) = inner_rx.recv().await {
                if hold && matches!(e, AgentEvent::TextDelta(_)) {
                    continue;
                }
                let _ = tx.send(e).await;
            }
        };
        let (outcome, ()) = tokio::join!(
            async {
                let o = run_turn(deps, spec, &input, &inner_tx, token).await;
                drop(inner_tx);
                o
            },
            forward
        );
        let mut outcome = outcome?;
        if outcome.finish != Finish::Complete {
            return Ok(outcome);
        }
        let Some(rt) = rt.upgrade() else {
            return Ok(outcome);
        };
        let verdict = rt
            .check_gates(&spec.tenant, &spec.user, &spec.agent, gates, &outcome.text)
            .await;
        match verdict {
            Outcome::Passed => {
                if hold {
                    let _ = tx.send(AgentEvent::TextDelta(outcome.text.clone())).await;
                }
                return Ok(outcome);
            }
            Outcome::Failed {
                gate,
                feedback,
                block: false,
                ..
            } => {
                let note = warning(&gate, &feedback);
                if hold {
                    let _ = tx.send(AgentEvent::TextDelta(outcome.text.clone())).await;
                }
                let _ = tx.send(AgentEvent::TextDelta(note.clone())).await;
                outcome.text.push_str(&note);
                return Ok(outcome);
            }
            Outcome::Failed {
                gate,
                feedback,
                retries,
                ..
            } => {
                if attempt >= retries {
                    outcome.finish = Finish::Failed {
                        code: "gate.failed".into(),
                        message: format!(
                            "the answer did not pass the quality gate {gate} after {attempt} revision(s): {feedback}"
                        ),
                    };
                    return Ok(outcome);
                }
                attempt += 1;
                let _ = tx
                    .send(AgentEvent::Notice {
                        code: "gate.revising".into(),
                        message: format!("the answer is being revised (quality gate {gate})"),
                    })
                    .await;
                input = revise_with(&gate, &feedback);
            }
        }
    }
}
