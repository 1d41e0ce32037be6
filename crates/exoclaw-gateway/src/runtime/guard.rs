//! Content security in the agent loop (exoclaw-guard wired in):
//!
//! - user input is scanned for prompt injection before a turn starts
//!   (`gateway.injection_action`: `warn` logs and audits, `block` refuses
//!   with `security.injection_blocked`, `off` skips);
//! - every tool's output is scrubbed of credentials before the model sees
//!   it; output of tools that bring in outside text (`web_fetch`,
//!   `web_search`, file reads) is scanned, wrapped in untrusted-content
//!   markers (forged markers neutralised) and marks the run as tainted;
//! - provenance gating: once a run is tainted, side-effecting tools
//!   (`exec`, `process`, `write_file`, `edit_file`, later `message` and
//!   `delegate`, and a `web_fetch` to a domain the run has not seen) need an
//!   operator's approval, are refused, or run, per
//!   `tools.untrusted_content_policy` (`ask` / `deny` / `allow`). The gate
//!   is the policy, not the model's good behaviour.

use crate::config::file::{InjectionAction, UntrustedContentPolicy};
use async_trait::async_trait;
use exoclaw_core::model::NewAuditEvent;
use exoclaw_core::provider::ToolSpec;
use exoclaw_core::store::{NewApproval, Store};
use exoclaw_core::tool::{ToolContext, ToolError, ToolOutput, ToolRunner};
use exoclaw_guard::inject::Scanner;
use exoclaw_guard::{markers, scrub};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

static SCANNER: LazyLock<Scanner> = LazyLock::new(Scanner::new);

/// Tools whose output is text from outside the gateway's control.
const UNTRUSTED_SOURCES: &[&str] = &["web_fetch", "web_search", "read_file", "search"];

/// Tools with effects outside the conversation.
const SIDE_EFFECTING: &[&str] = &[
    "exec",
    "process",
    "write_file",
    "edit_file",
    "message",
    "delegate",
    "spawn",
];

/// The rule ids of the injection patterns found in `text`.
pub fn injection_rules(text: &str) -> Vec<&'static str> {
    SCANNER.scan(text).into_iter().map(|h| h.rule).collect()
}

/// Log (`security.injection`, warn) and audit one scan's hits.
pub async fn report_injection(
    store: &dyn Store,
    ctx: &ToolContext,
    source: &str,
    rules: &[&'static str],
    blocked: bool,
) {
    tracing::warn!(
        event = "security.injection",
        source,
        rules = %rules.join(","),
        blocked,
        "prompt-injection patterns found"
    );
    let mut event = NewAuditEvent::new(
        ctx.tenant.clone(),
        format!("user:{}", ctx.user),
        "security.injection",
        format!("content:{}", crate::audit::bounded(source, 200)),
        if blocked { "deny" } else { "allow" },
    );
    event.reason = rules.join(",");
    event.agent_id = Some(ctx.agent.clone());
    event.session_id = ctx.session.clone();
    event.request_id = ctx.request_id.clone();
    crate::audit::record_logged(store, &event).await;
}

/// The untrusted-content gate around one run's tools.
pub struct GuardedTools {
    pub inner: Arc<dyn ToolRunner>,
    pub store: Arc<dyn Store>,
    pub injection: InjectionAction,
    pub policy: UntrustedContentPolicy,
    pub approval_wait: Duration,
    /// Untrusted content has entered this run's context.
    tainted: AtomicBool,
    /// Hosts the run may fetch without counting as new: those named in the
    /// user's message and those fetched before the run was tainted.
    seen_hosts: Mutex<HashSet<String>>,
}

impl GuardedTools {
    pub fn new(
        inner: Arc<dyn ToolRunner>,
        store: Arc<dyn Store>,
        injection: InjectionAction,
        policy: UntrustedContentPolicy,
        user_input: &str,
    ) -> Self {
        Self {
            inner,
            store,
            injection,
            policy,
            approval_wait: super::tools::APPROVAL_WAIT,
            tainted: AtomicBool::new(false),
            seen_hosts: Mutex::new(hosts_in(user_input)),
        }
    }

    pub fn is_tainted(&self) -> bool {
        self.tainted.load(Ordering::SeqCst)
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.seen_hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether this call has effects that untrusted content must not steer.
    fn is_side_effecting(&self, name: &str, args: &Value) -> bool {
        if SIDE_EFFECTING.contains(&name) {
            return true;
        }
        if name == "web_fetch" {
            let host = args
                .get("url")
                .and_then(Value::as_str)
                .and_then(host_of)
                .unwrap_or_default();
            return !self.seen().contains(&host);
        }
        false
    }

    /// The provenance gate: `Ok` when the call may run.
    async fn gate(&self, ctx: &ToolContext, name: &str, args: &Value) -> Result<(), ToolError> {
        if !self.is_tainted() || !self.is_side_effecting(name, args) {
            return Ok(());
        }
        match self.policy {
            UntrustedContentPolicy::Allow => Ok(()),
            UntrustedContentPolicy::Deny => {
                tracing::warn!(
                    event = "security.untrusted_content_denied",
                    tool = name,
                    "a side-effecting tool was refused after untrusted content entered the run"
                );
                let mut event = NewAuditEvent::new(
                    ctx.tenant.clone(),
                    format!("user:{}", ctx.user),
                    "security.untrusted_content",
                    format!("tool:{name}"),
                    "deny",
                );
                "tools.untrusted_content_policy = deny".clone_into(&mut event.reason);
                event.agent_id = Some(ctx.agent.clone());
                event.session_id = ctx.session.clone();
                crate::audit::record(self.store.as_ref(), &event).await;
                Err(ToolError::new(
                    "security.untrusted_content",
                    format!(
                        "{name} is refused: untrusted content entered this run and \
                         tools.untrusted_content_policy is deny"
                    ),
                ))
            }
            UntrustedContentPolicy::Ask => {
                let rendered = format!("{name} {args}");
                let hash = hex::encode(Sha256::digest(
                    format!(
                        "untrusted\0{}\0{}\0{rendered}",
                        ctx.tenant,
                        ctx.session.as_ref().map_or("", |s| s.as_str())
                    )
                    .as_bytes(),
                ));
                let request = NewApproval {
                    tenant_id: ctx.tenant.clone(),
                    agent_id: ctx.agent.clone(),
                    user_id: ctx.user.clone(),
                    session_id: ctx.session.clone(),
                    command: scrub::global()
                        .scrub_for(ctx.tenant.as_str(), &rendered)
                        .into_owned(),
                    cwd: ctx.workspace.display().to_string(),
                    command_hash: hash,
                    rule: "security.untrusted_content".to_owned(),
                };
                super::approval::await_approval(self.store.as_ref(), request, self.approval_wait)
                    .await
            }
        }
    }

    /// Scrub, and for untrusted sources scan, wrap and taint.
    async fn screen(
        &self,
        ctx: &ToolContext,
        name: &str,
        args: &Value,
        out: ToolOutput,
    ) -> Result<ToolOutput, ToolError> {
        let content = scrub::global()
            .scrub_for(ctx.tenant.as_str(), &out.content)
            .into_owned();
        if !UNTRUSTED_SOURCES.contains(&name) {
            return Ok(ToolOutput { content });
        }
        let source = match name {
            "web_fetch" => format!(
                "web_fetch:{}",
                args.get("url").and_then(Value::as_str).unwrap_or("")
            ),
            "read_file" => format!(
                "file:{}",
                args.get("path").and_then(Value::as_str).unwrap_or("")
            ),
            other => other.to_owned(),
        };
        if name == "web_fetch"
            && !self.is_tainted()
            && let Some(host) = args.get("url").and_then(Value::as_str).and_then(host_of)
        {
            self.seen().insert(host);
        }
        self.tainted.store(true, Ordering::SeqCst);
        if self.injection != InjectionAction::Off {
            let rules = injection_rules(&content);
            if !rules.is_empty() {
                let block = self.injection == InjectionAction::Block;
                report_injection(self.store.as_ref(), ctx, &source, &rules, block).await;
                if block {
                    return Err(ToolError::new(
                        "security.injection_blocked",
                        format!(
                            "the output of {name} was withheld: it contains prompt-injection \
                             patterns ({})",
                            rules.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(ToolOutput {
            content: markers::wrap(&source, &content),
        })
    }
}

#[async_trait]
impl ToolRunner for GuardedTools {
    fn specs(&self) -> Vec<ToolSpec> {
        self.inner.specs()
    }

    async fn run(
        &self,
        ctx: &ToolContext,
        name: &str,
        args: &Value,
    ) -> Result<ToolOutput, ToolError> {
        self.gate(ctx, name, args).await?;
        match self.inner.run(ctx, name, args).await {
            Ok(out) => self.screen(ctx, name, args, out).await,
            Err(mut e) => {
                e.message = scrub::global()
                    .scrub_for(ctx.tenant.as_str(), &e.message)
                    .into_owned();
                Err(e)
            }
        }
    }
}

/// The lowercase host of an http(s) URL.
fn host_of(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    u.host_str().map(str::to_ascii_lowercase)
}

/// Hosts of the URLs named in `text`.
fn hosts_in(text: &str) -> HashSet<String> {
    text.split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\'' | '(' | ')'))
        .filter(|w| w.starts_with("http://") || w.starts_with("https://"))
        .filter_map(host_of)
        .collect()
}

/// Register every secret the gateway holds with the process-wide scrubber
/// (the gateway scope), so it never appears in logs, traces, errors or tool
/// output (URL-encoded and other forms included). Tenants' stored secrets
/// are registered per tenant by [`register_stored_secrets`].
pub fn register_settings_secrets(settings: &crate::config::Settings) {
    let s = &settings.secrets;
    let scrubber = scrub::global();
    for secret in [
        &s.gateway_token,
        &s.encryption_key,
        &s.encryption_key_old,
        &s.backup_key,
    ]
    .into_iter()
    .flatten()
    {
        scrubber.register(secret.expose());
    }
    if let Some(dsn) = &s.postgres_dsn {
        scrubber.register(dsn.expose());
        if let Ok(u) = url::Url::parse(dsn.expose())
            && let Some(p) = u.password()
        {
            scrubber.register(p);
            if let Ok(decoded) = percent_encoding::percent_decode_str(p).decode_utf8() {
                scrubber.register(&decoded);
            }
        }
    }
    for name in settings.env.names() {
        if (name.ends_with("_API_KEY") || name.ends_with("_TOKEN") || name.ends_with("_SECRET"))
            && let Some(value) = settings.env.get(name)
        {
            scrubber.register(value);
        }
    }
}

/// The name a stored secret is registered under with the scrubber.
pub fn scrub_name(owner: &str, name: &str) -> String {
    format!("{owner}/{name}")
}

/// Register every tenant's stored secrets with the scrubber, each in its
/// tenant's scope (at start-up: the registry lives in memory). Values too
/// weak to scrub safely are left out with a warning naming the secret, never
/// the value; a secret that cannot be read is logged and skipped.
pub async fn register_stored_secrets(
    store: &dyn Store,
    vault: &exoclaw_store::vault::SecretVault,
) -> Result<(), exoclaw_core::store::StoreError> {
    let scrubber = scrub::global();
    for tenant in store.list_tenants().await? {
        let metas = match vault.list(&tenant.id, None).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(tenant = %tenant.id, error = %e, "cannot list stored secrets");
                continue;
            }
        };
        let mut values = Vec::with_capacity(metas.len());
        for meta in metas {
            match vault.get(&tenant.id, &meta.owner, &meta.name).await {
                Ok(Some(v)) => {
                    if tenant.id.as_str() == exoclaw_core::DEFAULT_TENANT
                        && meta.owner.starts_with("provider:")
                    {
                        // The gateway's providers serve every tenant.
                        scrubber.register(v.expose());
                    }
                    values.push((scrub_name(&meta.owner, &meta.name), v));
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(
                    tenant = %tenant.id,
                    owner = %meta.owner,
                    name = %meta.name,
                    error = %e,
                    "cannot read a stored secret to register it for scrubbing"
                ),
            }
        }
        let refused = scrubber.replace_tenant(
            tenant.id.as_str(),
            values.iter().map(|(n, v)| (n.as_str(), v.expose())),
        );
        for (name, reason) in refused {
            tracing::warn!(
                tenant = %tenant.id,
                secret = name,
                reason = %reason,
                "a stored secret is too weak to scrub safely; it is not redacted from outputs"
            );
        }
    }
    Ok(())
}

/// Traces as stored: error texts (provider bodies, tool errors) scrubbed of
/// credentials on the way in.
pub struct ScrubbedTraces(pub Arc<dyn exoclaw_core::store::TraceStore>);

#[async_trait]
impl exoclaw_core::store::TraceStore for ScrubbedTraces {
    async fn create_trace(
        &self,
        trace: &exoclaw_core::trace::NewTrace,
    ) -> exoclaw_core::store::StoreResult<exoclaw_core::trace::Trace> {
        self.0.create_trace(trace).await
    }
    async fn finish_trace(
        &self,
        tenant: &exoclaw_core::TenantId,
        id: &str,
        end: &exoclaw_core::trace::TraceEnd,
    ) -> exoclaw_core::store::StoreResult<()> {
        let mut end = end.clone();
        end.error = end
            .error
            .map(|e| scrub::global().scrub_for(tenant.as_str(), &e).into_owned());
        self.0.finish_trace(tenant, id, &end).await
    }
    async fn add_span(
        &self,
        span: &exoclaw_core::trace::NewSpan,
    ) -> exoclaw_core::store::StoreResult<exoclaw_core::trace::Span> {
        let mut span = span.clone();
        let tenant = span.tenant_id.as_str();
        span.error = span
            .error
            .map(|e| scrub::global().scrub_for(tenant, &e).into_owned());
        self.0.add_span(&span).await
    }
    async fn list_traces(
        &self,
        tenant: &exoclaw_core::TenantId,
        filter: &exoclaw_core::trace::TraceFilter,
    ) -> exoclaw_core::store::StoreResult<Vec<exoclaw_core::trace::Trace>> {
        self.0.list_traces(tenant, filter).await
    }
    async fn get_trace(
        &self,
        tenant: &exoclaw_core::TenantId,
        id: &str,
    ) -> exoclaw_core::store::StoreResult<
        Option<(exoclaw_core::trace::Trace, Vec<exoclaw_core::trace::Span>)>,
    > {
        self.0.get_trace(tenant, id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_named_by_the_user_are_seen() {
        let h = hosts_in("read https://Docs.Example.com/a and (http://x.org/b)");
        assert!(
            h.contains("docs.example.com") && h.contains("x.org"),
            "{h:?}"
        );
        assert_eq!(host_of("not a url"), None);
    }
}
