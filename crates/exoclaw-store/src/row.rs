//! Row decoding shared by both dialects: the two backends select the same
//! column names with the same Rust types (JSON as text, times as `i64`), so
//! one set of functions turns a row into a record.

use crate::rule::orchestration::{parse_kind, parse_mode};
use exoclaw_core::model::{
    Agent, AuditEvent, ChannelSender, Device, Message, PairingKind, PairingRequest, PairingStatus,
    SecretMeta, SecretRecord, Session, Tenant, User, VaultCheck,
};
use exoclaw_core::provider::Usage;
use exoclaw_core::store::orchestration::{
    AgentLink, Binding, Delegation, DelegationStatus, LinkDirection, LinkUsers,
};
use exoclaw_core::store::teams::{Handoff, Mail, Task, TaskComment, TaskStatus, Team};
use exoclaw_core::store::{Approval, ApprovalStatus, JobRun, StoreError, StoreResult};
use exoclaw_core::trace::{Span, SpanKind, Trace};
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

/// Typed column access with errors mapped to `StoreError::Corrupt`.
pub(crate) trait Columns {
    fn text(&self, col: &'static str) -> StoreResult<String>;
    fn opt_text(&self, col: &'static str) -> StoreResult<Option<String>>;
    fn int(&self, col: &'static str) -> StoreResult<i64>;
    fn opt_int(&self, col: &'static str) -> StoreResult<Option<i64>>;
    fn flag(&self, col: &'static str) -> StoreResult<bool>;
    fn bytes(&self, col: &'static str) -> StoreResult<Vec<u8>>;

    /// A JSON column (stored as text, or selected as `col::text`).
    fn json(&self, col: &'static str) -> StoreResult<serde_json::Value> {
        let text = self.text(col)?;
        serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt(format!("column {col} holds invalid JSON: {e}")))
    }

    /// A column holding one of an enum's words.
    fn parsed<T: std::str::FromStr>(&self, col: &'static str) -> StoreResult<T>
    where
        T::Err: std::fmt::Display,
    {
        let text = self.text(col)?;
        text.parse()
            .map_err(|e| StoreError::Corrupt(format!("column {col}: {e}")))
    }
}

fn decode_error(col: &'static str, err: &sqlx::Error) -> StoreError {
    StoreError::Corrupt(format!("column {col} cannot be read: {err}"))
}

macro_rules! impl_columns {
    ($row:ty) => {
        impl Columns for $row {
            fn text(&self, col: &'static str) -> StoreResult<String> {
                self.try_get(col).map_err(|e| decode_error(col, &e))
            }
            fn opt_text(&self, col: &'static str) -> StoreResult<Option<String>> {
                self.try_get(col).map_err(|e| decode_error(col, &e))
            }
            fn int(&self, col: &'static str) -> StoreResult<i64> {
                self.try_get(col).map_err(|e| decode_error(col, &e))
            }
            fn opt_int(&self, col: &'static str) -> StoreResult<Option<i64>> {
                self.try_get(col).map_err(|e| decode_error(col, &e))
            }
            fn flag(&self, col: &'static str) -> StoreResult<bool> {
                self.try_get(col).map_err(|e| decode_error(col, &e))
            }
            fn bytes(&self, col: &'static str) -> StoreResult<Vec<u8>> {
                self.try_get(col).map_err(|e| decode_error(col, &e))
            }
        }
    };
}

impl_columns!(SqliteRow);
impl_columns!(PgRow);

pub(crate) fn tenant(r: &impl Columns) -> StoreResult<Tenant> {
    Ok(Tenant {
        id: r.text("id")?.into(),
        name: r.text("name")?,
        created_at: r.int("created_at")?,
        settings: r.json("settings")?,
        settings_version: r.int("settings_version")?,
    })
}

pub(crate) fn user(r: &impl Columns) -> StoreResult<User> {
    Ok(User {
        id: r.text("id")?.into(),
        tenant_id: r.text("tenant_id")?.into(),
        name: r.text("name")?,
        role: r.parsed("role")?,
        disabled: r.flag("disabled")?,
        created_at: r.int("created_at")?,
    })
}

pub(crate) fn agent(r: &impl Columns) -> StoreResult<Agent> {
    Ok(Agent {
        id: r.text("id")?.into(),
        tenant_id: r.text("tenant_id")?.into(),
        display_name: r.text("display_name")?,
        agent_type: r.parsed("agent_type")?,
        config: r.json("config")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
    })
}

pub(crate) fn session(r: &impl Columns) -> StoreResult<Session> {
    Ok(Session {
        id: r.text("id")?.into(),
        tenant_id: r.text("tenant_id")?.into(),
        agent_id: r.text("agent_id")?.into(),
        user_id: r.text("user_id")?.into(),
        channel: r.text("channel")?,
        peer: r.text("peer")?,
        title: r.opt_text("title")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
    })
}

pub(crate) fn message(r: &impl Columns) -> StoreResult<Message> {
    Ok(Message {
        id: r.text("id")?.into(),
        tenant_id: r.text("tenant_id")?.into(),
        session_id: r.text("session_id")?.into(),
        seq: r.int("seq")?,
        role: r.text("role")?,
        content: r.json("content")?,
        meta: r.json("meta")?,
        created_at: r.int("created_at")?,
    })
}

pub(crate) fn secret_record(r: &impl Columns) -> StoreResult<SecretRecord> {
    Ok(SecretRecord {
        tenant_id: r.text("tenant_id")?.into(),
        owner: r.text("owner")?,
        name: r.text("name")?,
        key_id: r.text("key_id")?,
        nonce: r.bytes("nonce")?,
        ciphertext: r.bytes("ciphertext")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
    })
}

pub(crate) fn secret_meta(r: &impl Columns) -> StoreResult<SecretMeta> {
    Ok(SecretMeta {
        tenant_id: r.text("tenant_id")?.into(),
        owner: r.text("owner")?,
        name: r.text("name")?,
        key_id: r.text("key_id")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
    })
}

pub(crate) fn vault_check(r: &impl Columns) -> StoreResult<VaultCheck> {
    Ok(VaultCheck {
        key_id: r.text("key_id")?,
        nonce: r.bytes("nonce")?,
        ciphertext: r.bytes("ciphertext")?,
    })
}

pub(crate) fn audit_event(r: &impl Columns) -> StoreResult<AuditEvent> {
    Ok(AuditEvent {
        id: r.text("id")?,
        seq: r.int("seq")?,
        tenant_id: r.text("tenant_id")?.into(),
        at: r.int("at")?,
        actor: r.text("actor")?,
        action: r.text("action")?,
        resource: r.text("resource")?,
        decision: r.text("decision")?,
        reason: r.text("reason")?,
        request_id: r.opt_text("request_id")?,
        agent_id: r.opt_text("agent_id")?.map(Into::into),
        session_id: r.opt_text("session_id")?.map(Into::into),
        detail: r.json("detail")?,
        tenant_seq: r.int("tenant_seq")?,
        prev_hash: r.opt_text("prev_hash")?,
        hash: r.opt_text("hash")?,
    })
}

/// A token count column (never negative).
fn tokens(r: &impl Columns, col: &'static str) -> StoreResult<u64> {
    let n = r.int(col)?;
    u64::try_from(n)
        .map_err(|_| StoreError::Corrupt(format!("column {col} holds a negative count ({n})")))
}

/// The four token count columns of a trace, span or ledger row.
fn usage(r: &impl Columns) -> StoreResult<Usage> {
    Ok(Usage {
        input_tokens: tokens(r, "input_tokens")?,
        output_tokens: tokens(r, "output_tokens")?,
        cache_read_tokens: tokens(r, "cache_read_tokens")?,
        cache_write_tokens: tokens(r, "cache_write_tokens")?,
        estimated: false,
    })
}

pub(crate) fn trace(r: &impl Columns) -> StoreResult<Trace> {
    Ok(Trace {
        id: r.text("id")?,
        tenant_id: r.text("tenant_id")?.into(),
        agent_id: r.opt_text("agent_id")?.map(Into::into),
        user_id: r.opt_text("user_id")?.map(Into::into),
        session_id: r.opt_text("session_id")?.map(Into::into),
        name: r.text("name")?,
        status: r.text("status")?,
        error: r.opt_text("error")?,
        started_at: r.int("started_at")?,
        ended_at: r.opt_int("ended_at")?,
        usage: usage(r)?,
        cost_micros: r.int("cost_micros")?,
        owner: r.opt_text("owner")?,
    })
}

fn span_kind(r: &impl Columns) -> StoreResult<SpanKind> {
    match r.text("kind")?.as_str() {
        "llm" => Ok(SpanKind::Llm),
        "tool" => Ok(SpanKind::Tool),
        "agent" => Ok(SpanKind::Agent),
        other => Err(StoreError::Corrupt(format!(
            "column kind: unknown span kind {other:?}"
        ))),
    }
}

pub(crate) fn span(r: &impl Columns) -> StoreResult<Span> {
    Ok(Span {
        id: r.text("id")?,
        trace_id: r.text("trace_id")?,
        tenant_id: r.text("tenant_id")?.into(),
        kind: span_kind(r)?,
        name: r.text("name")?,
        provider: r.opt_text("provider")?,
        status: r.text("status")?,
        error: r.opt_text("error")?,
        started_at: r.int("started_at")?,
        latency_ms: r.int("latency_ms")?,
        usage: usage(r)?,
        cost_micros: r.int("cost_micros")?,
        attributes: r.json("attributes")?,
    })
}

/// Maps every row, stopping at the first that cannot be read.
pub(crate) fn all<R, T>(rows: &[R], f: impl Fn(&R) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    rows.iter().map(f).collect()
}

/// An `api_keys` row joined with its user: key columns as selected by
/// `api_key_cols!` (`k_`-prefixed where they clash with `users`).
pub(crate) fn api_key(r: &impl Columns) -> StoreResult<exoclaw_core::store::ApiKey> {
    let scopes = match r.json("k_scopes")? {
        serde_json::Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Ok(s),
                other => Err(StoreError::Corrupt(format!(
                    "column api_keys.scopes holds a non-string scope {other}"
                ))),
            })
            .collect::<StoreResult<Vec<_>>>()?,
        other => {
            return Err(StoreError::Corrupt(format!(
                "column api_keys.scopes is not an array: {other}"
            )));
        }
    };
    Ok(exoclaw_core::store::ApiKey {
        id: r.text("k_id")?,
        tenant_id: r.text("k_tenant_id")?.into(),
        user_id: r.text("k_user_id")?.into(),
        name: r.text("k_name")?,
        prefix: r.text("k_prefix")?,
        scopes,
        created_at: r.int("k_created_at")?,
        expires_at: r.opt_int("k_expires_at")?,
        revoked_at: r.opt_int("k_revoked_at")?,
        last_used_at: r.opt_int("k_last_used_at")?,
    })
}

/// A column holding one of an enum's words, read with its `parse`.
fn word<T>(
    r: &impl Columns,
    col: &'static str,
    what: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> StoreResult<T> {
    let text = r.text(col)?;
    parse(&text).ok_or_else(|| StoreError::Corrupt(format!("unknown {what} {text:?}")))
}

pub(crate) fn approval(r: &impl Columns) -> StoreResult<Approval> {
    Ok(Approval {
        id: r.text("id")?,
        tenant_id: r.text("tenant_id")?.into(),
        agent_id: r.text("agent_id")?.into(),
        user_id: r.text("user_id")?.into(),
        session_id: r.opt_text("session_id")?.map(Into::into),
        command: r.text("command")?,
        cwd: r.text("cwd")?,
        command_hash: r.text("command_hash")?,
        rule: r.text("rule")?,
        status: word(r, "status", "approval status", ApprovalStatus::parse)?,
        requested_at: r.int("requested_at")?,
        decided_at: r.opt_int("decided_at")?,
        decided_by: r.opt_text("decided_by")?,
    })
}

pub(crate) fn pairing_request(r: &impl Columns) -> StoreResult<PairingRequest> {
    Ok(PairingRequest {
        id: r.text("id")?,
        tenant_id: r.text("tenant_id")?.into(),
        kind: word(r, "kind", "pairing kind", PairingKind::parse)?,
        user_id: r.opt_text("user_id")?.map(Into::into),
        channel: r.opt_text("channel")?,
        sender_id: r.opt_text("sender_id")?,
        code_hash: r.text("code_hash")?,
        status: word(r, "status", "pairing status", PairingStatus::parse)?,
        created_at: r.int("created_at")?,
        expires_at: r.int("expires_at")?,
        approved_by: r.opt_text("approved_by")?,
        approved_at: r.opt_int("approved_at")?,
    })
}

pub(crate) fn device(r: &impl Columns) -> StoreResult<Device> {
    Ok(Device {
        id: r.text("id")?,
        tenant_id: r.text("tenant_id")?.into(),
        user_id: r.text("user_id")?.into(),
        label: r.text("label")?,
        created_at: r.int("created_at")?,
        last_seen_at: r.opt_int("last_seen_at")?,
        revoked_at: r.opt_int("revoked_at")?,
    })
}

pub(crate) fn channel_sender(r: &impl Columns) -> StoreResult<ChannelSender> {
    Ok(ChannelSender {
        tenant_id: r.text("tenant_id")?.into(),
        channel: r.text("channel")?,
        sender_id: r.text("sender_id")?,
        user_id: r.text("user_id")?.into(),
        created_at: r.int("created_at")?,
    })
}

pub(crate) fn job_run(r: &impl Columns) -> StoreResult<JobRun> {
    Ok(JobRun {
        tenant_id: r.text("tenant_id")?.into(),
        job: r.text("job")?,
        due_at: r.int("due_at")?,
        owner: r.text("owner")?,
        started_at: r.int("started_at")?,
        status: r.text("status")?,
        detail: r.opt_text("detail")?,
        finished_at: r.opt_int("finished_at")?,
    })
}

pub(crate) fn cron_job(r: &impl Columns) -> StoreResult<exoclaw_core::store::cron::CronJob> {
    let target = r.opt_text("target")?;
    let (delivery, missed) =
        crate::rule::cron::parts(&r.text("delivery")?, target.as_deref(), &r.text("missed")?)?;
    Ok(exoclaw_core::store::cron::CronJob {
        tenant_id: r.text("tenant_id")?.into(),
        id: r.text("id")?,
        agent_id: r.text("agent_id")?.into(),
        user_id: r.text("user_id")?.into(),
        name: r.text("name")?,
        schedule: r.text("schedule")?,
        message: r.text("message")?,
        delivery,
        missed,
        jitter_ms: r.int("jitter_ms")?,
        enabled: r.flag("enabled")?,
        disabled_reason: r.opt_text("disabled_reason")?,
        next_run_at: r.opt_int("next_run_at")?,
        last_run_at: r.opt_int("last_run_at")?,
        created_by: r.text("created_by")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
    })
}

pub(crate) fn agent_link(r: &impl Columns) -> StoreResult<AgentLink> {
    let max_concurrent = r
        .opt_int("max_concurrent")?
        .map(|n| {
            u32::try_from(n).map_err(|_| {
                StoreError::Corrupt(format!("column max_concurrent holds {n}, not a u32"))
            })
        })
        .transpose()?;
    let users: LinkUsers = serde_json::from_value(r.json("users")?)
        .map_err(|e| StoreError::Corrupt(format!("column users is not a user list: {e}")))?;
    Ok(AgentLink {
        tenant_id: r.text("tenant_id")?.into(),
        source: r.text("source")?.into(),
        target: r.text("target")?.into(),
        direction: word(r, "direction", "link direction", LinkDirection::parse)?,
        max_concurrent,
        users,
        created_at: r.int("created_at")?,
    })
}

pub(crate) fn delegation(r: &impl Columns) -> StoreResult<Delegation> {
    Ok(Delegation {
        id: r.text("id")?,
        tenant_id: r.text("tenant_id")?.into(),
        kind: word(r, "kind", "delegation kind", parse_kind)?,
        mode: word(r, "mode", "delegation mode", parse_mode)?,
        caller_agent: r.text("caller_agent")?.into(),
        user_id: r.text("user_id")?.into(),
        caller_session: r.opt_text("caller_session")?.map(Into::into),
        target_agent: r.text("target_agent")?.into(),
        parent_id: r.opt_text("parent_id")?,
        task_digest: r.text("task_digest")?,
        status: word(r, "status", "delegation status", DelegationStatus::parse)?,
        parent_trace_id: r.opt_text("parent_trace_id")?,
        child_trace_id: r.opt_text("child_trace_id")?,
        child_session: r.opt_text("child_session")?.map(Into::into),
        owner: r.text("owner")?,
        started_at: r.int("started_at")?,
        finished_at: r.opt_int("finished_at")?,
        input_tokens: r.int("input_tokens")?,
        output_tokens: r.int("output_tokens")?,
        cost_micros: r.int("cost_micros")?,
        error_code: r.opt_text("error_code")?,
        announced: r.flag("announced")?,
    })
}

pub(crate) fn binding(r: &impl Columns) -> StoreResult<Binding> {
    Ok(Binding {
        id: r.text("id")?,
        tenant_id: r.text("tenant_id")?.into(),
        channel: r.opt_text("channel")?,
        account: r.opt_text("account")?,
        peer: r.opt_text("peer")?,
        user_id: r.opt_text("user_id")?.map(Into::into),
        agent: r.text("agent")?.into(),
        created_at: r.int("created_at")?,
    })
}

/// Rows of a record joined with its list (members, dependencies), ordered
/// by the record: one record per run of rows with the same `id`, the list
/// from the `item` column (NULL in the one row of a record without items).
fn folded<R: Columns, T>(
    rows: &[R],
    item: &'static str,
    record: impl Fn(&R) -> StoreResult<T>,
    push: impl Fn(&mut T, String),
) -> StoreResult<Vec<T>> {
    let mut out: Vec<(String, T)> = Vec::new();
    for r in rows {
        let id = r.text("id")?;
        if out.last().is_none_or(|(last, _)| *last != id) {
            out.push((id, record(r)?));
        }
        if let (Some(value), Some((_, current))) = (r.opt_text(item)?, out.last_mut()) {
            push(current, value);
        }
    }
    Ok(out.into_iter().map(|(_, t)| t).collect())
}

/// Teams from `teams` rows joined with their members (column `member`).
pub(crate) fn teams(rows: &[impl Columns]) -> StoreResult<Vec<Team>> {
    folded(
        rows,
        "member",
        |r| {
            Ok(Team {
                id: r.text("id")?,
                tenant_id: r.text("tenant_id")?.into(),
                name: r.text("name")?,
                lead: r.text("lead")?.into(),
                members: Vec::new(),
                created_at: r.int("created_at")?,
                updated_at: r.int("updated_at")?,
            })
        },
        |team, member| team.members.push(member.into()),
    )
}

/// Tasks (without comments) from `team_tasks` rows joined with their
/// dependencies (column `dep`).
pub(crate) fn tasks(rows: &[impl Columns]) -> StoreResult<Vec<Task>> {
    folded(
        rows,
        "dep",
        |r| {
            Ok(Task {
                id: r.text("id")?,
                tenant_id: r.text("tenant_id")?.into(),
                team_id: r.text("team_id")?,
                title: r.text("title")?,
                description: r.text("description")?,
                status: word(r, "status", "task status", TaskStatus::parse)?,
                owner: r.opt_text("owner")?.map(Into::into),
                blocked_by: Vec::new(),
                result: r.opt_text("result")?,
                created_by: r.text("created_by")?.into(),
                created_at: r.int("created_at")?,
                updated_at: r.int("updated_at")?,
                comments: Vec::new(),
            })
        },
        |task, dep| task.blocked_by.push(dep),
    )
}

pub(crate) fn task_comment(r: &impl Columns) -> StoreResult<TaskComment> {
    Ok(TaskComment {
        author: r.text("author")?.into(),
        text: r.text("text")?,
        at: r.int("at")?,
    })
}

pub(crate) fn mail(r: &impl Columns) -> StoreResult<Mail> {
    Ok(Mail {
        id: r.text("id")?,
        tenant_id: r.text("tenant_id")?.into(),
        team_id: r.text("team_id")?,
        from: r.text("from_agent")?.into(),
        to: r.opt_text("to_agent")?.map(Into::into),
        text: r.text("text")?,
        sent_at: r.int("sent_at")?,
    })
}

pub(crate) fn handoff(r: &impl Columns) -> StoreResult<Handoff> {
    Ok(Handoff {
        tenant_id: r.text("tenant_id")?.into(),
        channel: r.text("channel")?,
        peer: r.text("peer")?,
        user_id: r.text("user_id")?.into(),
        from_agent: r.text("from_agent")?.into(),
        to_agent: r.text("to_agent")?.into(),
        reason: r.text("reason")?,
        created_at: r.int("created_at")?,
        last_active_at: r.int("last_active_at")?,
    })
}

fn tool_source_kind(r: &impl Columns) -> StoreResult<exoclaw_core::store::ToolSourceKind> {
    let kind = r.text("kind")?;
    exoclaw_core::store::ToolSourceKind::parse(&kind)
        .ok_or_else(|| StoreError::Corrupt(format!("column kind holds {kind:?}")))
}

pub(crate) fn tool_source(r: &impl Columns) -> StoreResult<exoclaw_core::store::ToolSource> {
    Ok(exoclaw_core::store::ToolSource {
        tenant_id: r.text("tenant_id")?.into(),
        kind: tool_source_kind(r)?,
        name: r.text("name")?,
        spec: r.json("spec")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
    })
}

pub(crate) fn tool_grant(r: &impl Columns) -> StoreResult<exoclaw_core::store::ToolGrant> {
    let user = r.text("user_id")?;
    Ok(exoclaw_core::store::ToolGrant {
        tenant_id: r.text("tenant_id")?.into(),
        kind: tool_source_kind(r)?,
        source: r.text("source")?,
        agent: r.text("agent_id")?.into(),
        user: (!user.is_empty()).then(|| user.into()),
    })
}

pub(crate) fn outbox_message(
    r: &impl Columns,
) -> StoreResult<exoclaw_core::store::channel::OutboxMessage> {
    Ok(exoclaw_core::store::channel::OutboxMessage {
        tenant_id: r.text("tenant_id")?.into(),
        id: r.text("id")?,
        channel: r.text("channel")?,
        peer: r.text("peer")?,
        text: r.text("text")?,
        idempotency_key: r.text("idempotency_key")?,
        status: crate::rule::channel::status(&r.text("status")?)?,
        attempts: r.int("attempts")?,
        next_attempt_at: r.int("next_attempt_at")?,
        last_error: r.opt_text("last_error")?,
        platform_id: r.opt_text("platform_id")?,
        created_at: r.int("created_at")?,
        sent_at: r.opt_int("sent_at")?,
        file_name: r.opt_text("file_name")?,
        file_mime: r.opt_text("file_mime")?,
        claimed_by: r.opt_text("claimed_by")?,
        claimed_until: r.opt_int("claimed_until")?,
    })
}

pub(crate) fn memory(r: &impl Columns) -> StoreResult<exoclaw_core::store::memory::Memory> {
    Ok(exoclaw_core::store::memory::Memory {
        tenant_id: r.text("tenant_id")?.into(),
        id: r.text("id")?,
        agent_id: r.text("agent_id")?.into(),
        user_id: r.opt_text("user_id")?.map(Into::into),
        content: r.text("content")?,
        untrusted: r.flag("untrusted")?,
        importance: r.int("importance")?,
        embedder: r.opt_text("embedder")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
    })
}

/// A skill (its JSON list columns decoded; without its vector).
pub(crate) fn skill(r: &impl Columns) -> StoreResult<exoclaw_core::store::skill::Skill> {
    use exoclaw_core::store::skill::{Skill, SkillStatus};
    let list = |col: &'static str| -> StoreResult<Vec<String>> {
        serde_json::from_str(&r.text(col)?)
            .map_err(|e| StoreError::Other(format!("skills.{col} is not a JSON list: {e}")))
    };
    let status = r.text("status")?;
    Ok(Skill {
        tenant_id: r.opt_text("tenant_id")?.map(Into::into),
        name: r.text("name")?,
        description: r.text("description")?,
        version: r.text("version")?,
        tools: list("tools")?,
        status: SkillStatus::parse(&status)
            .ok_or_else(|| StoreError::Other(format!("unknown skill status {status:?}")))?,
        sha256: r.text("sha256")?,
        warnings: list("warnings")?,
        files: list("paths")?,
        size: r.int("size")?,
        embedder: r.opt_text("embedder")?,
        installed_by: r.text("installed_by")?,
        installed_at: r.int("installed_at")?,
        approved_by: r.opt_text("approved_by")?,
        approved_at: r.opt_int("approved_at")?,
    })
}
