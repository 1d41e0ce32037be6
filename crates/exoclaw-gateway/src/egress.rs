//! The one place the process builds outbound HTTP clients, all of them an
//! [`EgressClient`] (clippy's `disallowed-methods` refuses any other HTTP
//! client): the providers' client, which reaches only the providers' base
//! URLs ([`provider_client`]), and one client per configured endpoint (the
//! OTLP collector, the alert webhook: [`endpoint_client`]), the cron jobs' webhooks
//! ([`webhook_client`]) and each Discord channel's ([`discord_client`]). The web tools'
//! client is built beside the tools (`runtime/tools.rs`). Each starts from
//! [`builder`].

use crate::config::Settings;
use exoclaw_egress::{EgressClient, EgressClientBuilder};

/// Every client's start: `egress.allow_domains` and the keep-alive pool's
/// bounds (`egress.pool_max_idle_per_host`, `egress.pool_idle_timeout_sec`).
pub fn builder(settings: &Settings) -> anyhow::Result<EgressClientBuilder> {
    let egress = &settings.config.egress;
    Ok(EgressClient::builder()
        .allow_domains(&egress.allow_domains)
        .map_err(|e| anyhow::anyhow!("egress.allow_domains: {e}"))?
        .pool_max_idle_per_host(egress.pool_max_idle_per_host)
        .pool_idle_timeout(std::time::Duration::from_secs(egress.pool_idle_timeout_sec)))
}

/// The providers' client. It reaches only the providers' base URLs (the
/// provider profile): every preset's default, or the base URL configured
/// for it (`EXOCLAW_<NAME>_BASE_URL` or `providers.<name>.base_url`), and
/// every custom provider's. Configured base URLs are allowed explicitly, so
/// a loopback Ollama or vLLM works when the operator set it; a preset's
/// default must stay public (its name resolving to a private address is
/// refused). `egress.allow_domains` applies as everywhere. Every preset is
/// in the profile because a tenant may store a key for any of them later.
pub fn provider_client(settings: &Settings) -> anyhow::Result<EgressClient> {
    provider_client_builder(settings)?
        .build()
        .map_err(|e| anyhow::anyhow!("cannot build the providers' egress client: {e}"))
}

/// [`provider_client`] before `build` (tests inject a resolver).
pub(crate) fn provider_client_builder(settings: &Settings) -> anyhow::Result<EgressClientBuilder> {
    let mut profile: Vec<String> = Vec::new();
    let mut explicit: Vec<(String, String)> = Vec::new();
    for name in crate::config::providers::known_names(settings) {
        match crate::config::providers::configured_base_url(settings, &name) {
            Some(b) => {
                profile.push(b.url.clone());
                explicit.push((b.setting, b.url));
            }
            None => {
                if let Some(p) = exoclaw_providers::preset(&name).filter(|p| !p.base_url.is_empty())
                {
                    profile.push(p.base_url.to_owned());
                }
            }
        }
    }
    let mut builder = builder(settings)?;
    for (setting, url) in &explicit {
        // The reason names the host at most, never the URL (it may carry
        // credentials).
        builder = builder.allow_origin(url).map_err(|e| {
            anyhow::anyhow!("{setting} is not a usable provider base URL: {}", e.reason)
        })?;
    }
    builder
        .provider_profile(&profile)
        .map_err(|e| anyhow::anyhow!("a provider base URL is not usable: {}", e.reason))
}

/// A client that reaches exactly one configured endpoint (the OTLP
/// collector, the alert webhook): its origin is allowed explicitly (so a
/// collector on loopback works because it was configured), nothing else
/// is reachable, and `egress.allow_domains` deny rules still apply.
/// `setting` names the URL in errors; the URL itself (which may embed a
/// token) is never quoted.
pub fn endpoint_client(
    settings: &Settings,
    setting: &str,
    url: &str,
) -> anyhow::Result<EgressClient> {
    builder(settings)?
        .allow_origin(url)
        .and_then(|b| b.provider_profile(&[url]))
        .map_err(|e| anyhow::anyhow!("{setting} is not a usable URL: {}", e.reason))?
        .build()
        .map_err(|e| anyhow::anyhow!("cannot build the egress client: {e}"))
}

/// The public names a Discord channel may reach: its REST API, Gateway
/// (including the `resume_gateway_url` READY names) and attachment CDN.
pub const DISCORD_DOMAINS: &[&str] = &[
    "discord.com",
    "*.discord.com",
    "discord.gg",
    "*.discord.gg",
    "discordapp.com",
    "*.discordapp.com",
    "discordapp.net",
    "*.discordapp.net",
];

/// A Discord channel's client: its configured `api_base` and
/// `gateway_url` origins are allowed explicitly (so a test server on
/// loopback works because it was configured); anything else must be a
/// public address of a Discord name ([`DISCORD_DOMAINS`]: the Gateway's
/// resume URL, the attachment CDN); `egress.allow_domains` applies too.
/// The Gateway's WebSocket is an HTTP/1.1 upgrade through this client, so
/// its name is resolved, pinned and checked like any request's.
/// `setting` names the channel's section in errors; URLs are never quoted.
pub fn discord_client(
    settings: &Settings,
    setting: &str,
    api_base: &str,
    gateway_url: Option<&str>,
) -> anyhow::Result<EgressClient> {
    let mut builder = builder(settings)?
        .allow_origin(api_base)
        .map_err(|e| anyhow::anyhow!("{setting}.api_base is not a usable URL: {}", e.reason))?;
    if let Some(url) = gateway_url {
        builder = builder.allow_origin(&http_form(url)).map_err(|e| {
            anyhow::anyhow!("{setting}.gateway_url is not a usable URL: {}", e.reason)
        })?;
    }
    let rules = exoclaw_egress::DomainRules::allow_only("discord", DISCORD_DOMAINS)
        .map_err(|e| anyhow::anyhow!("the Discord domains: {e}"))?;
    Ok(builder
        .build()
        .map_err(|e| anyhow::anyhow!("cannot build the egress client: {e}"))?
        .with_rules(rules))
}

/// A WebSocket URL in the form the egress client checks and requests it:
/// `wss://` as `https://`, `ws://` as `http://` (the upgrade is an HTTP
/// request); anything else unchanged.
pub fn http_form(url: &str) -> String {
    if let Some(rest) = url.strip_prefix("wss://") {
        format!("https://{rest}")
    } else if let Some(rest) = url.strip_prefix("ws://") {
        format!("http://{rest}")
    } else {
        url.to_owned()
    }
}

/// The client of cron jobs' webhooks (`runtime::cron`): the URLs come from
/// users and agents, so it reaches public addresses only (no explicit
/// origins), under `egress.allow_domains`, like the web tools.
pub fn webhook_client(settings: &Settings) -> anyhow::Result<EgressClient> {
    builder(settings)?
        .build()
        .map_err(|e| anyhow::anyhow!("cannot build the webhook egress client: {e}"))
}

/// The client of MCP servers over HTTP: public addresses within
/// `egress.allow_domains`, and the private origins listed in
/// `tools.mcp.allow_private_origins`.
pub fn mcp_client(settings: &Settings) -> anyhow::Result<EgressClient> {
    let mut builder = builder(settings)?;
    for origin in &settings.config.tools.mcp.allow_private_origins {
        builder = builder.allow_origin(origin).map_err(|e| {
            anyhow::anyhow!(
                "tools.mcp.allow_private_origins: {origin:?} is not a usable origin: {}",
                e.reason
            )
        })?;
    }
    builder
        .build()
        .map_err(|e| anyhow::anyhow!("cannot build the MCP egress client: {e}"))
}

#[cfg(test)]
mod tests {
    //! The providers' client as the settings build it: configured base URLs
    //! (loopback included) are reachable, preset defaults only while they
    //! resolve to public addresses, nothing else at all.

    use super::*;
    use crate::config::env::Env;
    use exoclaw_core::Secret;
    use exoclaw_core::provider::{ChatMessage, ChatRequest, EgressRefusal, ProviderError};
    use exoclaw_egress::testing::{Canary, StaticResolver};
    use exoclaw_egress::{Admission, EgressError};
    use std::sync::Arc;

    fn settings(config: &serde_json::Value, env: &[(&str, &str)]) -> Settings {
        let home = crate::home::Home::new("/tmp/exoclaw-test-home");
        let config = serde_json::from_value(config.clone()).expect("a valid config");
        Settings::from_config(home, config, Env::from_pairs(env.iter().copied()))
    }

    fn client(settings: &Settings, dns: StaticResolver) -> EgressClient {
        provider_client_builder(settings)
            .unwrap()
            .resolver(Arc::new(dns))
            .build()
            .unwrap()
    }

    fn rule(d: exoclaw_egress::Decision) -> &'static str {
        match d {
            Err(EgressError::Refused(r)) => r.rule,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn configured_base_urls_are_explicit_and_presets_must_stay_public() {
        let canary = Canary::start().await;
        let ollama = format!("http://127.0.0.1:{}/v1", canary.port());
        let s = settings(
            &serde_json::json!({"providers": {"ollama": {"base_url": ollama}}}),
            &[("EXOCLAW_GROQ_BASE_URL", "http://localhost:8000/openai/v1")],
        );
        let dns = StaticResolver::new()
            .with("api.openai.com", &["104.18.6.192"])
            .with("api.anthropic.com", &["127.0.0.1"])
            .with("localhost", &["127.0.0.1"]);
        let c = client(&s, dns);
        // The configured ones, loopback included, exactly.
        let ok = c
            .dry_run(&format!("{ollama}/chat/completions"))
            .await
            .unwrap();
        assert_eq!(ok.admission, Admission::Explicit);
        let ok = c
            .dry_run("http://localhost:8000/openai/v1/chat/completions")
            .await
            .unwrap();
        assert_eq!(ok.admission, Admission::Explicit);
        let other_port = format!("http://127.0.0.1:{}/v1", canary.port().wrapping_add(1));
        assert_eq!(rule(c.dry_run(&other_port).await), "addr.loopback");
        // A preset's default: public answers only.
        let ok = c
            .dry_run("https://api.openai.com/v1/chat/completions")
            .await;
        assert_eq!(ok.unwrap().admission, Admission::Public);
        assert_eq!(
            rule(c.dry_run("https://api.anthropic.com/v1/messages").await),
            "addr.loopback"
        );
        // Groq's default is replaced by the configured URL.
        assert_eq!(
            rule(c.dry_run("https://api.groq.com/openai/v1").await),
            "origin.not_allowed"
        );
        // Nothing beyond the providers' origins.
        assert_eq!(
            rule(c.dry_run("https://example.com/").await),
            "origin.not_allowed"
        );
        assert_eq!(
            rule(c.dry_run("http://169.254.169.254/latest/meta-data").await),
            "addr.metadata"
        );
        assert_eq!(canary.connections(), 0);
    }

    #[tokio::test]
    async fn a_preset_whose_name_resolves_privately_is_refused_before_connecting() {
        let s = settings(&serde_json::json!({}), &[]);
        let dns = StaticResolver::new().with("api.openai.com", &["169.254.169.254"]);
        let c = client(&s, dns);
        let p = exoclaw_providers::preset("openai")
            .unwrap()
            .provider(c, None, Some(Secret::new("sk-test-key")))
            .unwrap();
        let err = p
            .complete(ChatRequest::new("gpt-5", vec![ChatMessage::user("x")]))
            .await
            .unwrap_err();
        let ProviderError::EgressRefused { kind, rule, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(*kind, EgressRefusal::SsrfBlocked);
        assert!(rule.starts_with("addr."), "{rule}");
        assert_eq!(err.code(), "security.ssrf_blocked");
        assert!(!err.is_retryable());
    }

    #[tokio::test]
    async fn egress_allow_domains_applies_to_presets() {
        let s = settings(
            &serde_json::json!({"egress": {"allow_domains": ["api.anthropic.com"]}}),
            &[],
        );
        let dns = StaticResolver::new()
            .with("api.openai.com", &["104.18.6.192"])
            .with("api.anthropic.com", &["160.79.104.10"]);
        let c = client(&s, dns);
        assert!(
            c.dry_run("https://api.anthropic.com/v1/messages")
                .await
                .is_ok()
        );
        assert_eq!(
            rule(
                c.dry_run("https://api.openai.com/v1/chat/completions")
                    .await
            ),
            "domain.not_allowed"
        );
    }

    #[test]
    fn an_unusable_configured_base_url_names_the_setting_not_the_url() {
        let s = settings(
            &serde_json::json!({}),
            &[("EXOCLAW_OPENAI_BASE_URL", "http://user:hunter2@10.0.0.1/v1")],
        );
        let err = provider_client(&s).unwrap_err().to_string();
        assert!(
            err.starts_with("EXOCLAW_OPENAI_BASE_URL is not a usable"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }
}
