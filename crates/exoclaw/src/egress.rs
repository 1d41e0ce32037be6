//! The one place the process builds an outbound HTTP client. Providers (and
//! later web tools, channels, MCP, webhooks) receive this client; the
//! security issue turns it into the SSRF- and allowlist-enforcing egress
//! client.

use anyhow::Context as _;
use std::time::Duration;

pub fn http_client() -> anyhow::Result<reqwest::Client> {
    exoclaw_providers::install_crypto_provider();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(90))
        .user_agent(concat!("exoclaw/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot build the HTTP client")
}

/// A client that reaches exactly one configured endpoint (the OTLP
/// collector, the alert webhook): its origin is allowed explicitly (so a
/// collector on loopback works because it was configured), nothing else
/// is reachable, and `egress.allow_domains` deny rules still apply.
/// `setting` names the URL in errors; the URL itself (which may embed a
/// token) is never quoted.
pub fn endpoint_client(
    settings: &crate::config::Settings,
    setting: &str,
    url: &str,
) -> anyhow::Result<exoclaw_egress::EgressClient> {
    exoclaw_egress::EgressClient::builder()
        .allow_domains(&settings.config.egress.allow_domains)
        .map_err(|e| anyhow::anyhow!("egress.allow_domains: {e}"))?
        .allow_origin(url)
        .and_then(|b| b.provider_profile(&[url]))
        .map_err(|e| anyhow::anyhow!("{setting} is not a usable URL: {}", e.reason))?
        .build()
        .map_err(|e| anyhow::anyhow!("cannot build the egress client: {e}"))
}
