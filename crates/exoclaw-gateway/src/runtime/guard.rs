//! Content security around the agent loop (exoclaw-guard wired in):
//!
//! - user input is scanned for prompt injection before a turn starts
//!   (`gateway.injection_action`: `warn` logs and audits, `block` refuses
//!   with `security.injection_blocked`, `off` skips);
//! - the secrets the gateway holds are registered with the scrubber (the
//!   gateway's own at start-up, each tenant's stored ones in its scope);
//! - stored traces' error texts are scrubbed.
//!
//! Tool output (scrubbing, untrusted markers, the run's taint) and the
//! provenance gate are layers of the tool policy path
//! (`exoclaw_tools::registry`), configured in `runtime::tools`.

use async_trait::async_trait;
use exoclaw_core::model::NewAuditEvent;
use exoclaw_core::store::{AuditStore, TenantStore};
use exoclaw_core::tool::ToolContext;
use exoclaw_guard::scrub;
use std::collections::HashSet;
use std::sync::Arc;

/// The rule ids of the injection patterns found in `text` (the same
/// scanner the tool policy path runs over untrusted output).
pub use exoclaw_tools::registry::injection_rules;

/// Log (`security.injection`, warn) and audit one scan's hits.
pub async fn report_injection(
    store: &(impl AuditStore + ?Sized),
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

/// The lowercase host of an http(s) URL.
fn host_of(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    u.host_str().map(str::to_ascii_lowercase)
}

/// Hosts of the URLs named in `text`: a run may fetch them even after
/// untrusted content entered it (the user asked for them).
pub fn hosts_in(text: &str) -> HashSet<String> {
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
    store: &(impl TenantStore + ?Sized),
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
