//! The shape of `config.json`: non-secret settings only. Field doc comments are
//! the reference; key names follow the GoClaw/OpenClaw documents. Every field
//! has a default, so an absent or empty file is a valid configuration.
//!
//! These structs are the first (raw) stage; `super::validate` checks ranges and
//! cross-field rules and produces the [`super::Config`] the process runs on.

pub use super::agents::{
    AgentDefaults, AgentsConfig, DelegationConfig, HandoffConfig, SandboxConfig, SandboxMode,
    SubagentConfig, ToolListConfig,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FileConfig {
    pub gateway: GatewayConfig,
    pub database: DatabaseConfig,
    pub agents: AgentsConfig,
    pub tools: ToolsConfig,
    /// Per-provider settings keyed by provider name (`openai`, `anthropic`, ...).
    pub providers: BTreeMap<String, ProviderConfig>,
    pub egress: EgressConfig,
    pub backup: BackupConfig,
    pub models: ModelsConfig,
    /// Daily and monthly USD limits per model, agent and user (`"*"` for
    /// every one without its own entry); checked before every LLM call.
    pub budgets: exoclaw_providers::BudgetConfig,
    pub retry: RetryConfig,
    /// OpenTelemetry (OTLP) export of traces; needs a build with the `otel`
    /// feature.
    pub telemetry: TelemetryConfig,
    /// Operational alerts: logged at warn, and POSTed to a webhook.
    pub alerts: AlertsConfig,
    /// Messaging channels keyed by name (`telegram`, `discord`, ...): who may
    /// reach the agents through them (the adapters come later; the sender
    /// policy is enforced by `channels::ChannelGate`).
    pub channels: BTreeMap<String, ChannelConfig>,
    /// The lane scheduler: how many agent runs go at once, and how long a
    /// run waits for its turn.
    pub scheduler: SchedulerConfig,
    /// Cron jobs: an agent's scheduled messages.
    pub cron: CronConfig,
    /// Long-term memory: embedder, retention, recall.
    pub memory: super::memory::MemoryConfig,
    /// Skills: the install pipeline's caps, skills offered per turn.
    pub skills: super::skills::SkillsConfig,
}

/// The top-level sections, in the order `config validate` reports them.
pub const SECTIONS: &[&str] = &[
    "gateway",
    "database",
    "agents",
    "tools",
    "providers",
    "egress",
    "backup",
    "models",
    "budgets",
    "retry",
    "telemetry",
    "alerts",
    "channels",
    "scheduler",
    "cron",
    "memory",
    "skills",
];

/// Model aliases (fallback chains), per-model rate limits and prices.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelsConfig {
    /// An alias used as a model name tries these routes in order, falling
    /// back on rate limits, timeouts and outages.
    pub aliases: BTreeMap<String, Vec<RouteConfig>>,
    /// Requests and tokens per minute per model.
    pub limits: BTreeMap<String, exoclaw_providers::ModelRate>,
    /// Price overrides by model-name prefix (USD per million tokens).
    pub pricing: BTreeMap<String, exoclaw_providers::PriceConfig>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteConfig {
    pub provider: String,
    pub model: String,
}

/// Retries of failed LLM calls (429, 5xx, timeouts) before a fallback.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetryConfig {
    /// Attempts in total per route, the first included.
    pub max_attempts: u32,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
    /// A `retry-after` longer than this is not waited for; the fallback
    /// takes over.
    pub max_retry_after_sec: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay_ms: 500,
            max_delay_ms: 20_000,
            max_retry_after_sec: 60,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GatewayConfig {
    /// Bind address (an IP literal or `localhost`). Env: `EXOCLAW_HOST`.
    /// Non-loopback addresses require a configured gateway token.
    pub host: String,
    /// Bind port. Env: `EXOCLAW_PORT`.
    pub port: u16,
    /// Browser origins allowed on the WebSocket and CORS (exact
    /// `scheme://host[:port]`, no wildcard).
    pub allowed_origins: Vec<String>,
    /// Requests per minute per user and per IP; 0 turns the limit off.
    pub rate_limit_rpm: u32,
    /// Proxies whose `X-Forwarded-For` is trusted (IP addresses).
    pub trusted_proxies: Vec<String>,
    /// Seconds to drain in-flight work after SIGTERM/SIGINT.
    pub shutdown_grace_sec: u64,
    /// Largest accepted HTTP request body, in bytes.
    pub max_body_bytes: usize,
    /// What the prompt-injection scanner does on a hit.
    pub injection_action: InjectionAction,
    /// Cancel an agent run when its streaming client disconnects; by default
    /// the run finishes and its answer is persisted in the session.
    pub cancel_on_disconnect: bool,
    pub tools: ToolListConfig,
    /// Seconds a pairing code (browser or channel) stays valid; 1 to 3600.
    /// Values under a minute are for tests.
    pub pairing_ttl_sec: u64,
    /// Seconds between the re-checks of an open WebSocket's credential
    /// (1 to 3600). Revocations through this gateway's API close affected
    /// sockets at once; this bounds how long one made elsewhere (the CLI,
    /// another instance, a rotated gateway token's grace ending) takes.
    pub credential_recheck_sec: u64,
    /// Open client connections in all (`503 server.busy` beyond, once only
    /// authenticated connections are left to make room).
    pub max_connections: usize,
    /// Open connections per client address (a trusted proxy is exempt).
    pub max_connections_per_ip: usize,
    /// Connections that have not authenticated yet, in all; past it the
    /// oldest such connection is closed to make room.
    pub max_unauthenticated: usize,
    /// The same per client address.
    pub max_unauthenticated_per_ip: usize,
    /// Seconds a connection has to send a complete request head; it bounds
    /// stalled, half-sent and idle keep-alive connections alike.
    pub header_timeout_sec: u64,
    /// Largest request head (request line and headers), in bytes; `431`
    /// beyond it.
    pub max_header_bytes: usize,
    /// Seconds a write to a client may stay blocked (the client stopped
    /// reading) before the connection is closed; bounds what a streamed
    /// answer or a WebSocket holds for a client that does not read.
    pub write_stall_timeout_sec: u64,
    /// Open WebSocket connections per user (counted from `connect`).
    pub max_ws_per_user: usize,
    /// Open WebSocket connections per client address (a trusted proxy is
    /// exempt).
    pub max_ws_per_ip: usize,
    /// Authenticated HTTP requests and WebSocket method calls in progress
    /// per tenant.
    pub max_requests_per_tenant: usize,
    /// Agent runs in progress per tenant that HTTP and WebSocket clients
    /// started (a streamed run counts until its stream ends).
    pub max_runs_per_tenant: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 18790,
            allowed_origins: Vec::new(),
            rate_limit_rpm: 20,
            trusted_proxies: Vec::new(),
            shutdown_grace_sec: 30,
            max_body_bytes: 1024 * 1024,
            injection_action: InjectionAction::Warn,
            cancel_on_disconnect: false,
            tools: ToolListConfig::default(),
            pairing_ttl_sec: 600,
            credential_recheck_sec: 30,
            max_connections: 10_000,
            max_connections_per_ip: 1_000,
            max_unauthenticated: 2_000,
            max_unauthenticated_per_ip: 100,
            header_timeout_sec: 10,
            max_header_bytes: 32 * 1024,
            write_stall_timeout_sec: 30,
            max_ws_per_user: 100,
            max_ws_per_ip: 500,
            max_requests_per_tenant: 500,
            max_runs_per_tenant: 200,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InjectionAction {
    Warn,
    Block,
    Off,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseConfig {
    /// Connection pool size (PostgreSQL; SQLite uses at most 4 for reading
    /// and one more for writing).
    pub max_connections: u32,
    /// SQLite durability: `normal` (WAL; survives process crashes, may lose
    /// the last transactions on power loss) or `full` (survives power loss).
    pub sqlite_synchronous: SqliteSynchronous,
    /// How long a writer waits for a lock before giving up.
    pub busy_timeout_ms: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            max_connections: 10,
            sqlite_synchronous: SqliteSynchronous::Normal,
            busy_timeout_ms: 5000,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSynchronous {
    Normal,
    Full,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ToolsConfig {
    /// Tool calls per session per hour; 0 turns the limit off.
    pub rate_limit_per_hour: u32,
    pub exec_approval: ExecApprovalConfig,
    /// Side-effecting tools after untrusted content entered a run.
    pub untrusted_content_policy: UntrustedContentPolicy,
    pub web_fetch: DomainListConfig,
    pub workspace_quota: WorkspaceQuotaConfig,
    pub mcp: McpConfig,
}

/// MCP servers over HTTP go through the egress client: public addresses
/// only, unless their origin is listed here.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct McpConfig {
    /// Origins (`scheme://host[:port]`) of MCP servers on loopback or a
    /// private network that tenants may connect to.
    pub allow_private_origins: Vec<String>,
    /// MCP servers of the default tenant, stored and granted at every
    /// start (secret values go in the vault: owner `mcp:<server>`).
    pub servers: Vec<super::mcp_server::ConfiguredServer>,
}

/// How much the workspaces may hold, enforced by the file tools and for
/// commands (`RLIMIT_FSIZE` is what is left; the workspace is measured
/// after each command). `0` turns a limit off. Files count every entry:
/// regular files, directories and symlinks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkspaceQuotaConfig {
    /// Megabytes one user's workspace may hold.
    pub user_mb: u64,
    /// Entries one user's workspace may hold.
    pub user_files: u64,
    /// Megabytes all workspaces of one tenant may hold together.
    pub tenant_mb: u64,
    /// Entries all workspaces of one tenant may hold together.
    pub tenant_files: u64,
}

impl Default for WorkspaceQuotaConfig {
    fn default() -> Self {
        Self {
            user_mb: 1024,
            user_files: 100_000,
            tenant_mb: 10 * 1024,
            tenant_files: 1_000_000,
        }
    }
}

impl Default for ToolsConfig {
    fn default() -> Self {
        Self {
            rate_limit_per_hour: 150,
            exec_approval: ExecApprovalConfig::default(),
            untrusted_content_policy: UntrustedContentPolicy::Ask,
            web_fetch: DomainListConfig::default(),
            workspace_quota: WorkspaceQuotaConfig::default(),
            mcp: McpConfig::default(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecApprovalConfig {
    /// `full` refuses denied command groups, `ask` waits for an operator,
    /// `off` runs everything (inside the sandbox).
    pub security: ExecSecurity,
    /// Who may decide an approval (exec `ask` and untrusted-content `ask`):
    /// `operator` (the default: an operator, admin or owner of the tenant,
    /// which may be the person whose run asked), `another_operator` (the
    /// same, never the person whose run asked: four eyes), or `requester`
    /// (also a plain user, for their own runs).
    pub deciders: ApprovalDeciders,
}

impl Default for ExecApprovalConfig {
    fn default() -> Self {
        Self {
            security: ExecSecurity::Full,
            deciders: ApprovalDeciders::Operator,
        }
    }
}

/// See [`ExecApprovalConfig::deciders`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalDeciders {
    Operator,
    AnotherOperator,
    Requester,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecSecurity {
    Full,
    Ask,
    Off,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UntrustedContentPolicy {
    Ask,
    Deny,
    Allow,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DomainListConfig {
    pub allow_domains: Vec<String>,
    pub deny_domains: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProviderConfig {
    /// Overrides the preset base URL. Env: `EXOCLAW_<PROVIDER>_BASE_URL`.
    /// A name that is not a preset is an OpenAI-compatible server at this
    /// URL (key, if any, from `EXOCLAW_<NAME>_API_KEY`).
    pub base_url: Option<String>,
    /// Seconds until the first response event (default 120).
    pub timeout_sec: Option<u64>,
    /// Longest silence inside a stream, in seconds (default 60).
    pub stall_timeout_sec: Option<u64>,
    /// How to speak to an OpenAI-compatible server that implements the
    /// format partly (local servers); the defaults suit every known one.
    pub compat: CompatConfig,
}

/// `providers.<name>.compat`: settings for OpenAI-compatible servers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompatConfig {
    /// `auto` (default): send `tool_choice: "auto"` when tools are offered
    /// (llama-cpp-python ignores tools without it); `omit`: never send it.
    pub tool_choice: ToolChoiceSetting,
    /// How turns that offer tools are sent: `auto` (default) streams and,
    /// when the server rejects streamed tool use, sends them unstreamed from
    /// then on (logged once); `always` streams; `never` sends them
    /// unstreamed (the answer still streams to the client).
    pub stream_tools: StreamToolsSetting,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolChoiceSetting {
    #[default]
    Auto,
    Omit,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamToolsSetting {
    #[default]
    Auto,
    Always,
    Never,
}

impl CompatConfig {
    /// The provider crate's settings.
    pub fn settings(self) -> exoclaw_providers::openai::Compat {
        use exoclaw_providers::openai::{Compat, ToolStreaming};
        Compat {
            tool_choice_auto: self.tool_choice == ToolChoiceSetting::Auto,
            tool_streaming: match self.stream_tools {
                StreamToolsSetting::Auto => ToolStreaming::Auto,
                StreamToolsSetting::Always => ToolStreaming::Always,
                StreamToolsSetting::Never => ToolStreaming::Never,
            },
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EgressConfig {
    /// Domains any outbound call may reach; empty means no domain allowlist
    /// (SSRF rules still apply).
    pub allow_domains: Vec<String>,
    /// Idle keep-alive connections each client keeps per host for the next
    /// request. A burst of concurrent calls opens one connection each; past
    /// this many, a connection is closed when its call ends instead of
    /// being kept (each kept one holds about 12 KiB of buffers).
    pub pool_max_idle_per_host: usize,
    /// Seconds an idle keep-alive connection is kept before it is closed.
    pub pool_idle_timeout_sec: u64,
}

impl Default for EgressConfig {
    fn default() -> Self {
        Self {
            allow_domains: Vec::new(),
            pool_max_idle_per_host: exoclaw_egress::DEFAULT_POOL_MAX_IDLE_PER_HOST,
            pool_idle_timeout_sec: exoclaw_egress::DEFAULT_POOL_IDLE_TIMEOUT.as_secs(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BackupConfig {
    /// Days a backup is kept before pruning.
    pub keep_days: u32,
    /// When `serve` takes a daily backup, `HH:MM` in UTC; unset = never.
    pub schedule: Option<String>,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            keep_days: 14,
            schedule: None,
        }
    }
}

/// OTLP export of the gateway's traces (agent turns, LLM calls, tool calls)
/// to an OpenTelemetry collector. Env: `EXOCLAW_TELEMETRY_*`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TelemetryConfig {
    /// Export traces. Env: `EXOCLAW_TELEMETRY_ENABLED`.
    pub enabled: bool,
    /// The collector: `http(s)://host:4318` (`/v1/traces` is appended when
    /// the URL has no path) or the full traces URL. Env:
    /// `EXOCLAW_TELEMETRY_ENDPOINT`.
    pub endpoint: Option<String>,
    /// `http` (OTLP/HTTP protobuf); `grpc` is refused. Env:
    /// `EXOCLAW_TELEMETRY_PROTOCOL`.
    pub protocol: TelemetryProtocol,
    /// Allow a plain `http://` collector beyond loopback (certificates of
    /// `https://` collectors are always verified). Env:
    /// `EXOCLAW_TELEMETRY_INSECURE`.
    pub insecure: bool,
    /// `service.name` of the exported resource. Env:
    /// `EXOCLAW_TELEMETRY_SERVICE_NAME`.
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            endpoint: None,
            protocol: TelemetryProtocol::Http,
            insecure: false,
            service_name: "exoclaw-gateway".to_owned(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TelemetryProtocol {
    Http,
    Grpc,
}

/// Alerts (`alert.*` events): budget thresholds, bursts of security
/// warnings, provider, channel and backup failures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AlertsConfig {
    /// Where alerts are POSTed as JSON; unset = log only. Env:
    /// `EXOCLAW_ALERTS_WEBHOOK_URL` (use it for a URL that embeds a token).
    pub webhook_url: Option<String>,
    /// Budget usage ratio (spent / limit) that raises
    /// `alert.budget_threshold`.
    pub budget_threshold: f64,
    /// `security.*` warnings within a window that raise
    /// `alert.security_burst`.
    pub security_burst: SecurityBurstConfig,
    /// Consecutive failed LLM calls (after retries and fallbacks) of one
    /// provider that raise `alert.provider_failure`.
    pub provider_failures: u32,
    /// The same alert (kind and subject) is sent at most once per this many
    /// seconds; repeats are counted and reported with the next one.
    pub throttle_sec: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            webhook_url: None,
            budget_threshold: 0.8,
            security_burst: SecurityBurstConfig::default(),
            provider_failures: 3,
            throttle_sec: 900,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SecurityBurstConfig {
    pub count: u32,
    pub window_sec: u64,
}

impl Default for SecurityBurstConfig {
    fn default() -> Self {
        Self {
            count: 5,
            window_sec: 300,
        }
    }
}

/// One messaging channel's sender policy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChannelConfig {
    /// Direct messages: `pairing` (default; an unknown sender gets a code
    /// and waits until an admin runs `exoclaw pairing approve CODE`),
    /// `allowlist` (only `allow_from`), `open` (anyone; each sender becomes
    /// a user `<channel>:<sender_id>`) or `disabled`.
    pub dm_policy: DmPolicy,
    /// Sender ids admitted without pairing (the only ones under
    /// `allowlist`); `"*"` admits everyone.
    pub allow_from: Vec<String>,
    pub groups: GroupsConfig,
    /// The adapter that runs it (`webhook`, `telegram`, `discord`); none: the sender policy only.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<super::channels::ChannelKind>,
    pub webhook: super::channels::WebhookChannelConfig,
    pub telegram: super::channels::TelegramChannelConfig,
    pub discord: super::channels::DiscordChannelConfig,
    pub outbox: super::channels::OutboxConfig,
    pub progress: super::channels::ProgressConfig,
    pub files: super::channels::FilesConfig,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DmPolicy {
    #[default]
    Pairing,
    Allowlist,
    Open,
    Disabled,
}

impl DmPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            DmPolicy::Pairing => "pairing",
            DmPolicy::Allowlist => "allowlist",
            DmPolicy::Open => "open",
            DmPolicy::Disabled => "disabled",
        }
    }
}

/// Group chats: only listed groups, and only messages that mention the bot
/// unless `require_mention` is off. The sender must still be admitted by
/// the policy (paired, in `allow_from`, or any under `open`); an unknown
/// sender in a group is never sent a pairing code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GroupsConfig {
    pub require_mention: bool,
    /// Group ids admitted; `"*"` admits every group; empty (default) none.
    pub allow: Vec<String>,
}

impl Default for GroupsConfig {
    fn default() -> Self {
        Self {
            require_mention: true,
            allow: Vec::new(),
        }
    }
}

/// Cron jobs (`runtime::cron`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CronConfig {
    /// Jobs one agent may have, however they were created (API, CLI, the
    /// `cron` tool); 1 to 10000, default 50.
    pub max_jobs_per_agent: u32,
    /// Seconds between two looks of the scheduler at the stored jobs when
    /// nothing is due sooner (1 to 3600, default 30): how soon a gateway
    /// notices a job another gateway on the same database created or
    /// changed. Jobs created or changed on this gateway wake it at once.
    pub rescan_sec: u64,
}

impl Default for CronConfig {
    fn default() -> Self {
        Self {
            max_jobs_per_agent: 50,
            rescan_sec: 30,
        }
    }
}

impl CronConfig {
    /// Range problems, each as (JSON path, what to do).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        let n = self.max_jobs_per_agent;
        if !(1..=10_000).contains(&n) {
            p.push((
                "cron.max_jobs_per_agent".to_owned(),
                format!("must be between 1 and 10000 (got {n})"),
            ));
        }
        let r = self.rescan_sec;
        if !(1..=3600).contains(&r) {
            p.push((
                "cron.rescan_sec".to_owned(),
                format!("must be between 1 and 3600 (got {r})"),
            ));
        }
        p
    }
}

/// The lane scheduler (`runtime::lanes`): every agent run waits for a slot
/// of its lane and of its session before it starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SchedulerConfig {
    pub lanes: LanesConfig,
    /// Agent runs one group-chat session may have going at once (1 to 64);
    /// a provider answering 429 or "overloaded" halves it for that session,
    /// successes give it back. Direct sessions run one at a time, in order.
    pub group_concurrency: u32,
    /// Seconds a run waits for its slots before it is refused (1 to 3600;
    /// a run never waits forever).
    pub queue_timeout_sec: u64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            lanes: LanesConfig::default(),
            group_concurrency: 3,
            queue_timeout_sec: 120,
        }
    }
}

/// Agent runs at once per lane (each 1 to 10000). A lane left out, or
/// given without `concurrency`, keeps its own default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "RawLanes")]
pub struct LanesConfig {
    /// Runs a person started (HTTP, WebSocket, terminal, channels); 30.
    pub main: LaneConfig,
    /// Runs an agent started as its sub-agent; 50.
    pub subagent: LaneConfig,
    /// Runs one agent delegated to another; 100.
    pub delegate: LaneConfig,
    /// Scheduled runs; 30.
    pub cron: LaneConfig,
}

impl Default for LanesConfig {
    fn default() -> Self {
        RawLanes::default().into()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneConfig {
    /// Runs of the lane at once; past it a run waits, tenants served in turn.
    pub concurrency: u32,
}

/// [`LanesConfig`] as written: each lane's default is its own.
#[derive(Default, Deserialize)]
#[serde(default)]
struct RawLanes {
    main: RawLane,
    subagent: RawLane,
    delegate: RawLane,
    cron: RawLane,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawLane {
    concurrency: Option<u32>,
}

impl From<RawLanes> for LanesConfig {
    fn from(raw: RawLanes) -> Self {
        let lane = |l: RawLane, default: u32| LaneConfig {
            concurrency: l.concurrency.unwrap_or(default),
        };
        Self {
            main: lane(raw.main, 30),
            subagent: lane(raw.subagent, 50),
            delegate: lane(raw.delegate, 100),
            cron: lane(raw.cron, 30),
        }
    }
}

impl SchedulerConfig {
    /// Range problems, each as (JSON path, what to do), all at once.
    pub fn problems(&self) -> Vec<(String, String)> {
        let l = &self.lanes;
        let mut p = Vec::new();
        let mut range = |path: &str, v: u64, min: u64, max: u64| {
            if !(min..=max).contains(&v) {
                p.push((
                    path.to_owned(),
                    format!("must be between {min} and {max} (got {v})"),
                ));
            }
        };
        for (name, lane) in [
            ("main", l.main),
            ("subagent", l.subagent),
            ("delegate", l.delegate),
            ("cron", l.cron),
        ] {
            range(
                &format!("scheduler.lanes.{name}.concurrency"),
                lane.concurrency.into(),
                1,
                10_000,
            );
        }
        range(
            "scheduler.group_concurrency",
            self.group_concurrency.into(),
            1,
            64,
        );
        range(
            "scheduler.queue_timeout_sec",
            self.queue_timeout_sec,
            1,
            3600,
        );
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheduler(json: &str) -> SchedulerConfig {
        serde_json::from_str(json).expect("a scheduler section")
    }

    #[test]
    fn cron_defaults_and_ranges() {
        let d = FileConfig::default().cron;
        assert_eq!((d.max_jobs_per_agent, d.rescan_sec), (50, 30));
        assert!(d.problems().is_empty());
        assert!(SECTIONS.contains(&"cron"));
        let c: CronConfig =
            serde_json::from_str(r#"{"max_jobs_per_agent": 0, "rescan_sec": 3601}"#).unwrap();
        let paths: Vec<String> = c.problems().into_iter().map(|(p, _)| p).collect();
        assert_eq!(paths, ["cron.max_jobs_per_agent", "cron.rescan_sec"]);
    }

    #[test]
    fn scheduler_defaults_are_goclaws() {
        let d = FileConfig::default().scheduler;
        assert_eq!(d, scheduler("{}"));
        let c: Vec<u32> = [
            d.lanes.main,
            d.lanes.subagent,
            d.lanes.delegate,
            d.lanes.cron,
        ]
        .iter()
        .map(|l| l.concurrency)
        .collect();
        assert_eq!(c, [30, 50, 100, 30]);
        assert_eq!((d.group_concurrency, d.queue_timeout_sec), (3, 120));
        assert!(d.problems().is_empty());
        let whole: FileConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(whole.scheduler, d);
        assert!(SECTIONS.contains(&"scheduler"));
    }

    #[test]
    fn a_lane_written_in_part_keeps_its_own_default() {
        let c = scheduler(r#"{"lanes": {"subagent": {}, "cron": {"concurrency": 5}}}"#);
        assert_eq!(c.lanes.main.concurrency, 30);
        assert_eq!(c.lanes.subagent.concurrency, 50, "not main's 30");
        assert_eq!(c.lanes.delegate.concurrency, 100);
        assert_eq!(c.lanes.cron.concurrency, 5);
        assert_eq!(c.group_concurrency, 3);
        // What `config show` prints reads back the same.
        let shown = serde_json::to_value(&c).unwrap();
        assert_eq!(shown["lanes"]["delegate"]["concurrency"], 100);
        assert_eq!(serde_json::from_value::<SchedulerConfig>(shown).unwrap(), c);
    }

    #[test]
    fn scheduler_problems_name_their_paths() {
        let c = scheduler(
            r#"{"lanes": {"main": {"concurrency": 0}, "delegate": {"concurrency": 10001}},
                "group_concurrency": 65, "queue_timeout_sec": 0}"#,
        );
        let got = c.problems();
        let want = [
            (
                "scheduler.lanes.main.concurrency",
                "must be between 1 and 10000 (got 0)",
            ),
            (
                "scheduler.lanes.delegate.concurrency",
                "must be between 1 and 10000 (got 10001)",
            ),
            (
                "scheduler.group_concurrency",
                "must be between 1 and 64 (got 65)",
            ),
            (
                "scheduler.queue_timeout_sec",
                "must be between 1 and 3600 (got 0)",
            ),
        ];
        let got: Vec<(&str, &str)> = got.iter().map(|(p, m)| (p.as_str(), m.as_str())).collect();
        assert_eq!(got, want);

        let edges = scheduler(
            r#"{"lanes": {"main": {"concurrency": 1}, "cron": {"concurrency": 10000}},
                "group_concurrency": 64, "queue_timeout_sec": 3600}"#,
        );
        assert!(edges.problems().is_empty(), "{:?}", edges.problems());
        let low = scheduler(r#"{"group_concurrency": 0, "queue_timeout_sec": 3601}"#);
        assert_eq!(
            low.problems()
                .into_iter()
                .map(|(p, _)| p)
                .collect::<Vec<_>>(),
            ["scheduler.group_concurrency", "scheduler.queue_timeout_sec"]
        );
    }
}
