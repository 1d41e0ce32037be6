//! An MCP server as a tenant defines it (`/v1/mcp/servers`, or for the
//! default tenant `tools.mcp.servers` in config.json): its name (the
//! prefix of its tools, `<server>__<tool>`), its transport and what the
//! transport needs. Secrets (environment values, header values such as a
//! bearer token) are named here and stored in the vault. Validated before
//! anything is stored.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Longest server name: `<server>__<tool>` must fit in 64.
pub const MAX_NAME: usize = 24;
/// Default and longest time one tool call may take.
pub const DEFAULT_CALL_TIMEOUT_SEC: u64 = 30;
pub const MAX_CALL_TIMEOUT_SEC: u64 = 600;

/// How the gateway reaches the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// A process the gateway starts in the sandbox, speaking JSON-RPC on
    /// its stdin and stdout.
    Stdio,
    /// Streamable HTTP, through the egress client.
    Http,
    /// The legacy HTTP+SSE transport (2024-11-05): `url` is the SSE
    /// endpoint; through the egress client.
    Sse,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServerDef {
    /// Lowercase letters, digits, `-` and `_` (at most 24, no `__`).
    pub name: String,
    pub transport: Transport,
    /// stdio: the program and its arguments (no shell).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// stdio: environment variables (not secrets).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// stdio: environment variables whose values are in the vault.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_env: Vec<String>,
    /// stdio: network through the egress proxy (when the sandbox has it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub network: bool,
    /// stdio: address-space limit of the server (default 4096).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
    /// http: the endpoint (`https://...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// http: request headers (not secrets).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// http: headers whose values are in the vault (`Authorization`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_headers: Vec<String>,
    /// Longest a tool call may take (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_sec: Option<u64>,
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit()
        && !matches!(
            name,
            "PATH" | "HOME" | "USER" | "TMPDIR" | "LANG" | "LC_ALL"
        )
        && !name.starts_with("LD_")
        && !name.starts_with("EXOCLAW_")
        && !name.ends_with("_PROXY")
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !matches!(
            name.to_ascii_lowercase().as_str(),
            "host" | "content-length" | "content-type" | "accept" | "mcp-session-id"
        )
}

impl McpServerDef {
    /// Every reason this definition cannot be a server, or `Ok`.
    pub fn validate(&self) -> Result<(), String> {
        let n = &self.name;
        if n.is_empty()
            || n.len() > MAX_NAME
            || !n
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
            || n.contains("__")
        {
            return Err(format!(
                "name: {n:?} must be 1-{MAX_NAME} lowercase letters, digits, '-' and '_' (no '__')"
            ));
        }
        if let Some(t) = self.timeout_sec
            && !(1..=MAX_CALL_TIMEOUT_SEC).contains(&t)
        {
            return Err(format!("timeout_sec: 1-{MAX_CALL_TIMEOUT_SEC}"));
        }
        match self.transport {
            Transport::Stdio => {
                if self.command.is_empty() || self.command.len() > 64 {
                    return Err("command: the program and its arguments (1-64 words)".into());
                }
                if self
                    .command
                    .iter()
                    .any(|w| w.contains('\0') || w.len() > 4096)
                {
                    return Err("command: a word has a NUL byte or is too long".into());
                }
                if self.url.is_some() || !self.headers.is_empty() || !self.secret_headers.is_empty()
                {
                    return Err(
                        "url, headers and secret_headers are for transports http and sse".into(),
                    );
                }
                for name in self.env.keys().chain(&self.secret_env) {
                    if !is_env_name(name) {
                        return Err(format!(
                            "env: {name:?} is not an environment name (A-Z, 0-9, _) or is reserved"
                        ));
                    }
                }
                if self.env.values().any(|v| v.contains('\0')) {
                    return Err("env: a value has a NUL byte".into());
                }
                if let Some(m) = self.memory_mb
                    && !(64..=65_536).contains(&m)
                {
                    return Err("memory_mb: 64-65536".into());
                }
            }
            Transport::Http | Transport::Sse => {
                let Some(url) = &self.url else {
                    return Err("url: required for transports http and sse".into());
                };
                let parsed = url::Url::parse(url).map_err(|e| format!("url: {e}"))?;
                if !matches!(parsed.scheme(), "http" | "https") || !parsed.username().is_empty() {
                    return Err("url: an http(s) URL without credentials".into());
                }
                if !self.command.is_empty()
                    || !self.env.is_empty()
                    || !self.secret_env.is_empty()
                    || self.network
                    || self.memory_mb.is_some()
                {
                    return Err(
                        "command, env, secret_env, network and memory_mb are for transport stdio"
                            .into(),
                    );
                }
                for name in self.headers.keys().chain(&self.secret_headers) {
                    if !is_header_name(name) {
                        return Err(format!("headers: {name:?} cannot be set"));
                    }
                }
                if self
                    .headers
                    .values()
                    .any(|v| v.bytes().any(|b| b < 0x20 || b == 0x7f))
                {
                    return Err("headers: a value has a control character".into());
                }
            }
        }
        let secrets: Vec<&String> = self.secret_env.iter().chain(&self.secret_headers).collect();
        for (i, s) in secrets.iter().enumerate() {
            if secrets[..i].contains(s)
                || self.env.contains_key(*s)
                || self.headers.contains_key(*s)
            {
                return Err(format!("{s:?} is set twice"));
            }
        }
        Ok(())
    }

    /// The names of the values kept in the vault.
    pub fn secret_names(&self) -> impl Iterator<Item = &String> {
        self.secret_env.iter().chain(&self.secret_headers)
    }
}

/// A server configured in `tools.mcp.servers` (the default tenant's):
/// stored and granted to `agents` at every start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfiguredServer {
    pub server: McpServerDef,
    /// The agents its tools are granted to (`*`: every agent).
    #[serde(default)]
    pub agents: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stdio(command: &[&str]) -> McpServerDef {
        McpServerDef {
            name: "files".into(),
            transport: Transport::Stdio,
            command: command.iter().map(|s| (*s).to_owned()).collect(),
            env: BTreeMap::new(),
            secret_env: Vec::new(),
            network: false,
            memory_mb: None,
            url: None,
            headers: BTreeMap::new(),
            secret_headers: Vec::new(),
            timeout_sec: None,
        }
    }

    #[test]
    fn definitions_are_checked() {
        assert!(stdio(&["node", "server.js"]).validate().is_ok());
        assert!(stdio(&[]).validate().unwrap_err().contains("command"));
        let mut d = stdio(&["x"]);
        d.name = "a__b".into();
        assert!(d.validate().unwrap_err().contains("name"));
        let mut d = stdio(&["x"]);
        d.env.insert("LD_PRELOAD".into(), "x".into());
        assert!(d.validate().unwrap_err().contains("env"));
        let mut d = stdio(&[]);
        d.transport = Transport::Http;
        assert!(d.validate().unwrap_err().contains("url"));
        d.url = Some("ftp://x".into());
        assert!(d.validate().unwrap_err().contains("url"));
        d.url = Some("https://mcp.example/mcp".into());
        d.secret_headers = vec!["Authorization".into()];
        assert!(d.validate().is_ok());
        d.headers.insert("Host".into(), "x".into());
        assert!(d.validate().unwrap_err().contains("Host"));
    }
}
