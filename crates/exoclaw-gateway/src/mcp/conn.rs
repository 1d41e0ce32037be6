//! One live connection to an MCP server, through the official SDK (`rmcp`)
//! as a client: a stdio server is started in the sandbox (its own file
//! system view: its directory at `/workspace`; network only through the
//! egress proxy when allowed) and its stderr goes to the log, scrubbed, a
//! line at a time; the tools are listed (every page) and listed again when
//! the server says `tools/list_changed`.

use super::def::{McpServerDef, Transport};
use exoclaw_core::Secret;
use exoclaw_tools::sandbox::{AgentRole, Interactive, Sandbox, SandboxPolicy};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{NotificationContext, Peer, RoleClient, RunningService};
use rmcp::{ClientHandler, ServiceExt as _};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::sync::Notify;

/// Lines of a server's stderr logged per process (a chatty or hostile
/// server cannot flood the log; the rest is read and dropped).
const MAX_STDERR_LINES: usize = 1000;
/// Longest stderr line logged (the rest is cut).
const MAX_STDERR_LINE: usize = 2048;
/// How long the server has to answer `initialize`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// What the SDK calls back: only the tool list changing matters here.
#[derive(Clone)]
pub(super) struct Handler {
    pub(super) changed: Arc<Notify>,
}

impl ClientHandler for Handler {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.changed.notify_one();
    }
}

/// How servers are reached: stdio ones run in the sandbox under the policy
/// template, HTTP ones through the egress client.
#[derive(Clone)]
pub struct Launcher {
    pub sandbox: Arc<Sandbox>,
    pub policy: SandboxPolicy,
    pub egress: exoclaw_egress::EgressClient,
}

/// A connected server.
pub(super) struct Connection {
    pub(super) service: RunningService<RoleClient, Handler>,
    /// The stdio process, killed with its tree when dropped.
    _process: Option<exoclaw_tools::sandbox::Running>,
}

impl Connection {
    pub(super) fn peer(&self) -> &Peer<RoleClient> {
        self.service.peer()
    }

    /// Close the session and stop the process.
    pub(super) async fn close(self) {
        let _ = self.service.cancel().await;
    }
}

/// Why a connection could not be made or was lost (never a secret).
pub(super) fn describe(e: &impl std::fmt::Display) -> String {
    let text = e.to_string();
    exoclaw_guard::scrub::global().scrub(&text).into_owned()
}

/// Connect to `def`: start the process (stdio) and run `initialize`.
/// `secrets` are the vault's values of `secret_env` / `secret_headers`;
/// `dir` is the server's own directory (its `/workspace`).
pub(super) async fn connect(
    def: &McpServerDef,
    secrets: &[(String, Secret)],
    launcher: &Launcher,
    dir: &std::path::Path,
    changed: Arc<Notify>,
    log: &StderrLog,
) -> Result<Connection, String> {
    let handler = Handler { changed };
    match def.transport {
        Transport::Stdio => {
            let mut policy = launcher.policy.clone();
            policy.workspace = dir.to_path_buf();
            // A server lives as long as the gateway wants it.
            policy.timeout = Duration::from_secs(365 * 24 * 3600);
            policy.memory_mb = def.memory_mb.unwrap_or(4096);
            policy.network_enabled = def.network && policy.network_enabled;
            if !policy.network_enabled {
                policy.proxy = None;
            }
            let mut env: Vec<(String, String)> = def
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            env.extend(
                secrets
                    .iter()
                    .filter(|(k, _)| def.secret_env.contains(k))
                    .map(|(k, v)| (k.clone(), v.expose().to_owned())),
            );
            let Interactive {
                stdin,
                stdout,
                stderr,
                running,
            } = launcher
                .sandbox
                .spawn_interactive(&policy, AgentRole::NonMain, &def.command, &env)
                .await
                .map_err(|e| describe(&e))?;
            forward_stderr(stderr, log);
            let service = tokio::time::timeout(CONNECT_TIMEOUT, handler.serve((stdout, stdin)))
                .await
                .map_err(|_| "the server did not answer initialize in time".to_owned())?
                .map_err(|e| describe(&e))?;
            Ok(Connection {
                service,
                _process: Some(running),
            })
        }
        Transport::Http | Transport::Sse => {
            let url = def.url.clone().unwrap_or_default();
            let mut headers: Vec<(String, Secret)> = def
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), Secret::new(v.clone())))
                .collect();
            headers.extend(
                secrets
                    .iter()
                    .filter(|(k, _)| def.secret_headers.contains(k))
                    .cloned(),
            );
            let client = super::http::EgressMcpClient::new(launcher.egress.clone(), headers);
            if def.transport == Transport::Sse {
                let transport = super::http::LegacySse::connect(client, &url).await?;
                let service = tokio::time::timeout(CONNECT_TIMEOUT, handler.serve(transport))
                    .await
                    .map_err(|_| "the server did not answer initialize in time".to_owned())?
                    .map_err(|e| describe(&e))?;
                return Ok(Connection {
                    service,
                    _process: None,
                });
            }
            let config =
                rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
                    url,
                );
            let transport =
                rmcp::transport::StreamableHttpClientTransport::with_client(client, config);
            let service = tokio::time::timeout(CONNECT_TIMEOUT, handler.serve(transport))
                .await
                .map_err(|_| "the server did not answer initialize in time".to_owned())?
                .map_err(|e| describe(&e))?;
            Ok(Connection {
                service,
                _process: None,
            })
        }
    }
}

/// Where a server's stderr goes: the log, scrubbed for its tenant.
pub(super) struct StderrLog {
    pub(super) supervisor: crate::supervisor::Supervisor,
    pub(super) tenant: String,
    pub(super) server: String,
}

/// Log a server's stderr, scrubbed, line by line, until it closes (with
/// the process).
fn forward_stderr(stderr: tokio::process::ChildStderr, log: &StderrLog) {
    let (tenant, server) = (log.tenant.clone(), log.server.clone());
    log.supervisor.detach("mcp.stderr", async move {
        let mut lines = BufReader::new(stderr).lines();
        let mut logged = 0usize;
        while let Ok(Some(mut line)) = lines.next_line().await {
            logged += 1;
            if logged > MAX_STDERR_LINES {
                if logged == MAX_STDERR_LINES + 1 {
                    tracing::warn!(tenant = %tenant, server = %server, "mcp server stderr: more lines dropped until it restarts");
                }
                continue;
            }
            if line.len() > MAX_STDERR_LINE {
                let mut cut = MAX_STDERR_LINE;
                while !line.is_char_boundary(cut) {
                    cut -= 1;
                }
                line.truncate(cut);
            }
            let line = exoclaw_guard::scrub::global()
                .scrub_for(&tenant, &line)
                .into_owned();
            tracing::info!(tenant = %tenant, server = %server, line = %line, "mcp server stderr");
        }
        Ok(())
    });
}

/// Every tool the server offers (all pages).
pub(super) async fn list_tools(peer: &Peer<RoleClient>) -> Result<Vec<rmcp::model::Tool>, String> {
    tokio::time::timeout(CONNECT_TIMEOUT, peer.list_all_tools())
        .await
        .map_err(|_| "tools/list timed out".to_owned())?
        .map_err(|e| describe(&e))
}

/// One call, as text: text contents joined, other contents as JSON.
pub(super) async fn call_tool(
    peer: &Peer<RoleClient>,
    tool: &str,
    args: &serde_json::Value,
) -> Result<(String, bool), rmcp::ServiceError> {
    let mut params = CallToolRequestParams::new(tool.to_owned());
    if let serde_json::Value::Object(map) = args {
        params = params.with_arguments(map.clone());
    }
    let result: CallToolResult = peer.call_tool(params).await?;
    let mut parts = Vec::new();
    for block in &result.content {
        let v = serde_json::to_value(block).unwrap_or_default();
        match v.get("text").and_then(serde_json::Value::as_str) {
            Some(t) if v.get("type").and_then(serde_json::Value::as_str) == Some("text") => {
                parts.push(t.to_owned());
            }
            _ => parts.push(v.to_string()),
        }
    }
    if parts.is_empty()
        && let Some(s) = &result.structured_content
    {
        parts.push(s.to_string());
    }
    Ok((parts.join("\n"), result.is_error.unwrap_or(false)))
}
