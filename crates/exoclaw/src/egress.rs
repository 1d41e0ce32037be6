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
