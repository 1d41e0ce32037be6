//! The command line: a closed set of subcommands, parsed by clap. Each
//! subcommand's work lives in `cmd/`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

mod memory;
mod orchestration;
mod serve;
pub mod skills;
pub use memory::MemoryCommand;
pub use orchestration::*;
pub use serve::{parse, parse_from};
pub use skills::SkillsCommand;

#[derive(Debug, Parser)]
#[command(
    name = "exoclaw",
    version,
    about = "exoclaw: a hardened multi-agent AI gateway",
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Path to config.json (default: $EXOCLAW_CONFIG, else <data dir>/config.json).
    #[arg(
        long,
        short = 'c',
        global = true,
        value_name = "FILE",
        help_heading = "Global options"
    )]
    pub config: Option<PathBuf>,
    /// Debug-level logs (overrides EXOCLAW_LOG).
    #[arg(long, short = 'v', global = true, help_heading = "Global options")]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The whole command tree, for tests and tools that walk it (the README
/// check, the help check).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (the default command).
    Serve,
    /// Print version, commit, protocol version and compiled features.
    Version(JsonFlag),
    /// Check config, permissions, store and schema; exit non-zero on failure.
    Doctor,
    /// Upgrade the database schema to this binary's version.
    Upgrade(UpgradeArgs),
    /// Low-level schema migrations.
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// Show and check configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage secrets in the encrypted vault.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Manage agents and chat with them.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// The gateway token.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Run exoclaw as a system service.
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Security checks.
    #[command(subcommand)]
    Security(SecurityCommand),
    /// The audit log: list events, verify the hash chain.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The exec sandbox.
    #[command(subcommand)]
    Sandbox(SandboxCommand),
    /// Exec approvals waiting for an operator (tools.exec_approval.security = ask).
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Browser and channel pairing: approve or deny codes, list and revoke
    /// paired devices.
    #[command(subcommand)]
    Pairing(PairingCommand),
    /// Set up a data dir: provider and model, bind address, database; writes
    /// config.json (no secrets) and .env (secrets, 0600).
    Onboard(OnboardArgs),
    /// Encrypted backups of the store, config, .env and workspace.
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Users of a tenant and their roles.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Tenants and their own limits (sandbox, egress, budgets), which can
    /// only narrow the gateway's configuration.
    #[command(subcommand)]
    Tenants(TenantsCommand),
    /// Users' API keys (stored as digests; shown once).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Every HTTP route and WebSocket method with the permission it requires.
    Routes(JsonFlag),
    /// The history of delegations between agents and subagent spawns.
    #[command(subcommand)]
    Delegations(DelegationsCommand),
    /// Bindings: which agent answers a conversation that names none.
    #[command(subcommand)]
    Bindings(BindingsCommand),
    /// Cron jobs: an agent's scheduled messages, and their runs.
    #[command(subcommand)]
    Cron(CronCommand),
    /// Long-term memory: list, search, forget, status.
    #[command(subcommand)]
    Memory(MemoryCommand),
    /// Skills: install (through the safety pipeline), list, show, remove,
    /// approve a quarantined one.
    #[command(subcommand)]
    Skills(SkillsCommand),
    /// Agent teams (a lead and members) and their task boards.
    #[command(subcommand)]
    Team(TeamCommand),
    /// Tools added at run time (custom tools).
    #[command(subcommand)]
    Tools(ToolsCommand),
    /// MCP servers as tool sources.
    #[command(subcommand)]
    Mcp(McpCommand),
    /// Messaging channels: the configured ones, and the running gateway's
    /// state of each.
    #[command(subcommand)]
    Channels(ChannelsCommand),
}

#[derive(Debug, Subcommand)]
pub enum McpCommand {
    /// Create or replace an MCP server from the JSON document
    /// `POST /v1/mcp/servers` takes. A running gateway starts it after its
    /// next start; its tools are offered once granted (`/v1/mcp/grants`).
    Add {
        /// The document's file, or `-` for standard input (keeps secret
        /// values out of argv and of files).
        #[arg(long)]
        file: String,
        /// The tenant it belongs to.
        #[arg(long, default_value = exoclaw_core::DEFAULT_TENANT)]
        tenant: String,
    },
    /// List the MCP servers (never secret values).
    List {
        /// Machine-readable output (JSON): `GET /v1/mcp/servers`'s document.
        #[arg(long)]
        json: bool,
        /// The tenant whose servers to list.
        #[arg(long, default_value = exoclaw_core::DEFAULT_TENANT)]
        tenant: String,
    },
    /// Delete an MCP server, its grants and its secret values.
    Remove {
        /// The server's name.
        name: String,
        /// The tenant it belongs to.
        #[arg(long, default_value = exoclaw_core::DEFAULT_TENANT)]
        tenant: String,
    },
    /// Connect to a stored server once and list its tools.
    Test {
        /// The server's name.
        name: String,
        /// The tenant it belongs to.
        #[arg(long, default_value = exoclaw_core::DEFAULT_TENANT)]
        tenant: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    /// Custom tools: a command template run in the sandbox.
    #[command(subcommand)]
    Custom(CustomToolsCommand),
}

#[derive(Debug, Subcommand)]
pub enum CustomToolsCommand {
    /// Create or replace a custom tool from the JSON document
    /// `POST /v1/tools/custom` takes (name, description, parameters,
    /// command, env, secret_env, timeout_sec, agents). A running gateway
    /// offers it after its next start.
    Add {
        /// The document's file, or `-` for standard input (keeps secret
        /// values out of argv and of files).
        #[arg(long)]
        file: String,
        /// The tenant it belongs to.
        #[arg(long, default_value = exoclaw_core::DEFAULT_TENANT)]
        tenant: String,
    },
    /// List the custom tools (never secret values).
    List {
        /// Machine-readable output (JSON): `GET /v1/tools/custom`'s document.
        #[arg(long)]
        json: bool,
        /// The tenant whose tools to list.
        #[arg(long, default_value = exoclaw_core::DEFAULT_TENANT)]
        tenant: String,
    },
    /// Delete a custom tool, its grants and its secret values.
    Remove {
        /// The tool's name.
        name: String,
        /// The tenant it belongs to.
        #[arg(long, default_value = exoclaw_core::DEFAULT_TENANT)]
        tenant: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ChannelsCommand {
    /// The configured channels: type, direct-message policy, queued
    /// outbound messages.
    List {
        /// Print `{"channels": [{"name", "kind", "dm_policy", "queued"}]}`.
        #[arg(long)]
        json: bool,
    },
    /// The running gateway's channels: running, last inbound and outbound,
    /// queue depth, restarts, counters (`GET /v1/channels`).
    Status {
        /// Print the `GET /v1/channels` JSON.
        #[arg(long)]
        json: bool,
    },
    /// Send a test message through a running channel (its outbox, like any
    /// reply) and wait up to 15 s for the outcome; non-zero unless sent.
    Test {
        /// The channel (`channels.<name>`).
        name: String,
        /// The chat to send to (a Telegram chat id; `chat:topic` for a
        /// forum topic; a Discord channel or thread id).
        #[arg(long)]
        to: String,
        /// The text (default "exoclaw test message").
        #[arg(long)]
        text: Option<String>,
        /// Print `{"status", "platform_id", "attempts", "last_error"}`.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user and print their first API key once.
    Add {
        /// The user's name, unique within the tenant.
        name: String,
        /// owner, admin, operator or user.
        #[arg(long, default_value = "user")]
        role: String,
        /// The tenant (name or id).
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Print `{"id", "name", "role", "tenant", "api_key"}`.
        #[arg(long)]
        json: bool,
    },
    /// List a tenant's users.
    List {
        /// The tenant (name or id).
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Machine-readable output (JSON).
        #[arg(long)]
        json: bool,
    },
    /// Refuse the user's credentials until enabled again.
    Disable {
        /// The user (name or id).
        name: String,
        /// The tenant (name or id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Accept the user's credentials again.
    Enable {
        /// The user (name or id).
        name: String,
        /// The tenant (name or id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Delete the user with their keys, sessions and secrets.
    Delete {
        /// The user (name or id).
        name: String,
        /// The tenant (name or id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
}

#[derive(Debug, Subcommand)]
#[expect(
    clippy::large_enum_variant,
    reason = "parsed once per process; `set` carries every settings flag"
)]
pub enum TenantsCommand {
    /// List the tenants.
    List(JsonFlag),
    /// Create a tenant (with its `default` agent).
    Create {
        /// Lowercase letters, digits, `-` and `_`.
        id: String,
        /// Default: the id.
        #[arg(long)]
        name: Option<String>,
    },
    /// A tenant's own settings and the effective limits after narrowing.
    Show {
        /// The tenant's id.
        id: String,
        /// Print the `GET /v1/tenants/{id}` JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change a tenant's settings (merged into what is stored; the result
    /// may only narrow the gateway's configuration).
    Set(TenantSetArgs),
}

#[derive(Debug, Args)]
pub struct TenantSetArgs {
    /// The tenant's id.
    pub id: String,
    /// A JSON merge patch of the settings (`null` resets a field), applied
    /// before the flags below.
    #[arg(long, value_name = "FILE")]
    pub file: Option<std::path::PathBuf>,
    /// Hosts the tenant's web tools may reach (comma-separated patterns,
    /// `*.example.com` for subdomains).
    #[arg(long, value_delimiter = ',', value_name = "HOSTS")]
    pub egress_allow: Option<Vec<String>>,
    /// Hosts the tenant may never reach.
    #[arg(long, value_delimiter = ',', value_name = "HOSTS")]
    pub egress_deny: Option<Vec<String>>,
    /// all, non-main or off (never less strict than the gateway's).
    #[arg(long, value_name = "MODE")]
    pub sandbox_mode: Option<String>,
    /// on or off (on only where the gateway's sandbox has network).
    #[arg(long, value_name = "ON|OFF")]
    pub sandbox_network: Option<String>,
    /// Address-space limit of a command, at most the gateway's.
    #[arg(long)]
    pub memory_mb: Option<u32>,
    /// Longest a command may run, at most the gateway's.
    #[arg(long)]
    pub timeout_sec: Option<u64>,
    /// Processes a command may have, at most the gateway's.
    #[arg(long)]
    pub max_pids: Option<u32>,
    /// Spend per UTC day, at most `budgets.tenants.<id>.daily_usd`.
    #[arg(long, value_name = "USD")]
    pub daily_usd: Option<f64>,
    /// Spend per calendar month, at most the configured one.
    #[arg(long, value_name = "USD")]
    pub monthly_usd: Option<f64>,
    /// Tokens per UTC day, at most the configured ones.
    #[arg(long)]
    pub daily_tokens: Option<u64>,
    /// Tokens per calendar month, at most the configured ones.
    #[arg(long)]
    pub monthly_tokens: Option<u64>,
    /// Reset a field to the gateway's value (`egress.allow_domains`,
    /// `budgets`, `sandbox.mode`, ...); repeatable.
    #[arg(long, value_name = "FIELD")]
    pub reset: Vec<String>,
    /// Print the tenant as `GET /v1/tenants/{id}` does.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key for a user and print it once.
    Create {
        /// The user (name or id).
        #[arg(long)]
        user: String,
        /// The tenant (name or id).
        #[arg(long, default_value = "default")]
        tenant: String,
        /// A label for the key.
        #[arg(long, default_value = "")]
        name: String,
        /// Days until the key expires (default: never).
        #[arg(long, value_name = "DAYS")]
        expires: Option<u32>,
        /// Limit the key to these permissions (repeatable; see `exoclaw routes`).
        #[arg(long = "scope", value_name = "PERMISSION")]
        scopes: Vec<String>,
        /// Machine-readable output (JSON).
        #[arg(long)]
        json: bool,
    },
    /// List keys (never the keys themselves).
    List {
        /// Only this user's keys.
        #[arg(long)]
        user: Option<String>,
        /// The tenant (name or id).
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Machine-readable output (JSON).
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: it is refused from now on.
    Revoke {
        /// The key's id (from `keys list`).
        id: String,
        /// The tenant (name or id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Take a consistent backup now (the gateway may be running), encrypted
    /// with EXOCLAW_BACKUP_KEY or a key derived from EXOCLAW_ENCRYPTION_KEY;
    /// then prune backups older than backup.keep_days in the same directory.
    Create {
        /// Directory for the backup (default: <data dir>/backups).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Decrypt a backup, check every checksum and the store copy; change
    /// nothing.
    Verify {
        /// The backup file (`.exoclaw-backup`).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Restore a backup into a new data dir (missing or empty; anything else
    /// is refused). A PostgreSQL backup goes into the empty database named by
    /// EXOCLAW_POSTGRES_DSN.
    Restore {
        /// The backup file (`.exoclaw-backup`).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The data dir to create.
        #[arg(long, value_name = "DIR")]
        home: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Print the effective sandbox for an agent and probe it (network,
    /// writes outside the workspace, secret visibility, limits), one line per
    /// guarantee; non-zero exit when one does not hold.
    Explain {
        /// The agent whose sandbox to explain.
        #[arg(default_value = "default")]
        agent: String,
        /// Instead of probing, list the shell policy's rules: id, group, why
        /// it refuses and an example it refuses.
        #[arg(long, conflicts_with = "rule")]
        rules: bool,
        /// Instead of probing, explain one shell-policy rule by its id
        /// (`exfiltration.upload`).
        #[arg(long)]
        rule: Option<String>,
        /// With `--rules` or `--rule`: print JSON (`{"rules": [...]}`).
        #[arg(long)]
        json: bool,
    },
    /// Dry run of the shell policy: whether the exec tools would run
    /// COMMAND, and every rule it breaks with its explanation; non-zero
    /// exit when it is refused. Nothing runs.
    Check {
        /// The command, as the agent would send it (quote it).
        command: String,
        /// Print the decision as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// List approvals (pending unless --all).
    List {
        /// Every approval, decided and expired ones too.
        #[arg(long)]
        all: bool,
        /// Machine-readable output (JSON): `GET /v1/approvals`'s document.
        #[arg(long)]
        json: bool,
    },
    /// Let the command run (this exact command, for a day).
    Approve {
        /// The approval's id (from `approvals list`).
        id: String,
    },
    /// Refuse the command.
    Deny {
        /// The approval's id (from `approvals list`).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PairingCommand {
    /// Approve the pending request with this code (a browser gets its
    /// credential on its next poll; a channel sender is mapped to the user
    /// `<channel>:<sender_id>`).
    Approve {
        /// The pairing code the browser or the channel showed.
        code: String,
        /// Machine-readable output (JSON).
        #[arg(long)]
        json: bool,
    },
    /// Refuse the pending request with this code.
    Deny {
        /// The pairing code the browser or the channel showed.
        code: String,
    },
    /// Pending requests and paired devices.
    List {
        /// Machine-readable output (JSON).
        #[arg(long)]
        json: bool,
    },
    /// Revoke a paired device by id (its browser pairs again).
    Revoke {
        /// The device's id (from `pairing list`).
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct OnboardArgs {
    /// Ask nothing: take the answers from the flags and the environment.
    #[arg(long)]
    pub non_interactive: bool,
    /// Provider preset (openai, anthropic, openrouter, ...) or a custom name.
    #[arg(long)]
    pub provider: Option<String>,
    /// Default model (default: the preset's model).
    #[arg(long)]
    pub model: Option<String>,
    /// Base URL (required for a custom provider such as a local Ollama).
    #[arg(long)]
    pub base_url: Option<String>,
    /// Address the gateway binds to (default 127.0.0.1; anything else needs
    /// TLS or a proxy in front, see SECURITY.md).
    #[arg(long)]
    pub host: Option<String>,
    /// Port the gateway listens on (default 18790).
    #[arg(long)]
    pub port: Option<u16>,
    /// Read the provider API key from standard input (one line).
    #[arg(long)]
    pub api_key_stdin: bool,
    /// `sqlite` (embedded, the default) or `postgres` (DSN from
    /// EXOCLAW_POSTGRES_DSN, or asked for).
    #[arg(long)]
    pub database: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SecurityCommand {
    /// One check per hardening rule; non-zero exit on any failure.
    Audit {
        /// Also probe the running gateway from outside.
        #[arg(long)]
        deep: bool,
        /// Repair file permissions (never following symlinks), then what a
        /// safe value repairs (configuration, a missing or weak gateway
        /// token), each after a confirmation in a terminal; lists what it
        /// changed and what it left.
        #[arg(long)]
        fix: bool,
        /// With --fix: apply every repair without asking.
        #[arg(long, requires = "fix")]
        yes: bool,
        /// `{"findings": [{"id", "severity", "reason", "fix"}], "result"}`.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Audit events, newest first.
    List {
        /// Only this tenant's events (default: every tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// Actions starting with this prefix (`auth.`, `security.`, `tool.call`).
        #[arg(long, value_name = "PREFIX")]
        action: Option<String>,
        /// Exactly this actor (`gateway-token`, `cli`, `user:<id>`, `anonymous`).
        #[arg(long)]
        actor: Option<String>,
        /// Exactly this decision (`allow`, `deny`, `info`).
        #[arg(long)]
        decision: Option<String>,
        /// From this time: a duration back (`30m`, `2h`, `7d`), a date
        /// (`2026-05-01`) or a UTC date-time (`2026-05-01T12:00:00Z`).
        #[arg(long, value_name = "DURATION|TIME")]
        since: Option<String>,
        /// Before this time (same forms as --since).
        #[arg(long, value_name = "DURATION|TIME")]
        until: Option<String>,
        /// Only events with a global seq below this (paging backwards).
        #[arg(long, value_name = "SEQ")]
        before_seq: Option<i64>,
        /// At most this many events.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Machine-readable output (JSON): `GET /v1/audit`'s document,
        /// `{"events", "next_before_seq"}`.
        #[arg(long)]
        json: bool,
    },
    /// Recompute every tenant's hash chain; non-zero exit naming the first
    /// broken event when an event was edited, deleted or reordered. With
    /// `--bundle`, check an exported bundle offline instead (no store, no
    /// config needed).
    Verify {
        /// Only this tenant's chain.
        #[arg(long, conflicts_with = "bundle")]
        tenant: Option<String>,
        /// A bundle written by `exoclaw audit export`: its chains, its
        /// receipts' digests and its signature.
        #[arg(long, value_name = "FILE")]
        bundle: Option<std::path::PathBuf>,
        /// With --bundle: the Ed25519 public key (hex, from `exoclaw audit
        /// key`) the bundle must be signed with.
        #[arg(long, value_name = "HEX", requires = "bundle")]
        public_key: Option<String>,
        /// `{"intact", "chains": [{"tenant_id", "checked", "unchained",
        /// "head_seq", "head_hash", "broken"}]}`; with --bundle the report
        /// `{"ok", "chains", "tool_calls", "receipts_matched", "signature",
        /// "public_key", "key_fingerprint", "problems"}`.
        #[arg(long)]
        json: bool,
    },
    /// Write a verifiable bundle of the audit log (0600): each tenant's
    /// chained events in the range, the chain head, and receipts of tool
    /// calls (their arguments and outputs, digested in the events).
    Export {
        /// Only this tenant (default: every tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// From this time (same forms as `audit list --since`).
        #[arg(long, value_name = "DURATION|TIME")]
        since: Option<String>,
        /// Before this time.
        #[arg(long, value_name = "DURATION|TIME")]
        until: Option<String>,
        /// The file to write (refused when it exists, unless --force).
        #[arg(long, value_name = "FILE")]
        out: std::path::PathBuf,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
        /// Sign with the gateway's Ed25519 key in the vault (created on
        /// first use).
        #[arg(long)]
        sign: bool,
        /// Leave out the receipts' contents (tool arguments and outputs):
        /// the digests stay chained but cannot be checked against them.
        #[arg(long)]
        no_contents: bool,
    },
    /// Print the public key audit bundles are signed with (hex).
    Key {
        /// Create the signing key in the vault when there is none.
        #[arg(long)]
        create: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Write a hardened systemd unit for `exoclaw serve`.
    Install {
        /// Directory the unit goes to.
        #[arg(long, default_value = "/etc/systemd/system")]
        unit_dir: std::path::PathBuf,
        /// The system user the service runs as.
        #[arg(long, default_value = "exoclaw")]
        user: String,
        /// Print the unit instead of writing it.
        #[arg(long)]
        print: bool,
        /// Replace an existing unit file.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a new gateway token (printed once); the old one keeps working
    /// for the grace period, then running gateways refuse it.
    Rotate {
        /// How long the old token stays valid: `0`, `30s`, `10m`, `2h`.
        #[arg(long, default_value = "10m")]
        grace: String,
        /// Print `{"token", "old_valid_until"}`.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// List agents.
    List {
        /// Machine-readable output (JSON): `GET /v1/agents`'s document.
        #[arg(long)]
        json: bool,
    },
    /// Add an agent.
    Add {
        /// The agent's id: 1-64 lowercase letters, digits, '-' or '_'.
        id: String,
        /// Display name (default: the id).
        #[arg(long)]
        name: Option<String>,
        /// `open` (per-user workspace and context) or `predefined`.
        #[arg(long, default_value = "open")]
        r#type: String,
        /// Provider name (default: the gateway's default provider).
        #[arg(long)]
        provider: Option<String>,
        /// Model (default: the provider's default model).
        #[arg(long)]
        model: Option<String>,
    },
    /// Delete an agent and its sessions.
    Delete {
        /// The agent's id.
        id: String,
    },
    /// Chat with an agent in the terminal (streamed). `/reset` starts a new
    /// session, `/exit` or Ctrl-D leaves.
    Chat {
        /// The agent (default: `default`).
        #[arg(default_value = "default")]
        agent: String,
    },
    /// Link two agents so that one may delegate to the other (a permission
    /// link from SOURCE to TARGET).
    Link {
        /// The link's source agent.
        source: String,
        /// The link's target agent.
        target: String,
        /// `outbound`: SOURCE may delegate to TARGET; `inbound`: TARGET to
        /// SOURCE; `bidirectional`: both.
        #[arg(long, default_value = "outbound", value_parser = DIRECTIONS)]
        direction: String,
        /// At most this many delegations over the link at once (1-10000;
        /// default: no limit of its own).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..=10_000))]
        max_concurrent: Option<i64>,
        /// Only this user's conversations may use the link (repeatable; a
        /// user id; default: everyone).
        #[arg(long = "allow-user", value_name = "USER")]
        allow_users: Vec<String>,
        /// This user's conversations may not use the link (repeatable; a
        /// user id).
        #[arg(long = "deny-user", value_name = "USER")]
        deny_users: Vec<String>,
        /// The tenant (id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Permission links: those an agent is the source or target of, or every
    /// link of the tenant.
    Links {
        /// Only this agent's links.
        id: Option<String>,
        /// Print `GET /v1/agents/{id}/links`'s document: `{"links": [...]}`.
        #[arg(long)]
        json: bool,
        /// The tenant (id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Delete the link from SOURCE to TARGET.
    Unlink {
        /// The link's source agent.
        source: String,
        /// The link's target agent.
        target: String,
        /// The tenant (id).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
}

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// Show current and required schema versions; change nothing.
    #[arg(long, conflicts_with = "dry_run")]
    pub status: bool,
    /// Print the migrations that would run; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Apply all pending migrations.
    Up,
    /// Roll back N migrations (default 1).
    Down {
        /// How many migrations to roll back.
        #[arg(default_value_t = 1)]
        steps: i64,
    },
    /// Show the current schema version.
    Version,
    /// Record version N without running anything and clear the dirty flag
    /// (after repairing a failed migration by hand).
    Force { version: i64 },
    /// Migrate up or down to version N.
    Goto { version: i64 },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (secrets as ***).
    Show,
    /// Print the config file path.
    Path,
    /// Validate the configuration; list every problem with its path.
    Validate,
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Store a secret; the value is read from standard input, never argv.
    Set {
        /// The secret's name.
        name: String,
        /// Owner scope (default `tenant`).
        #[arg(long, default_value = "tenant")]
        owner: String,
    },
    /// List secret names (never values).
    List {
        /// Machine-readable output (JSON): `GET /v1/secrets`'s document.
        #[arg(long)]
        json: bool,
    },
    /// Delete a secret.
    Delete {
        /// The secret's name.
        name: String,
        /// Owner scope (default `tenant`).
        #[arg(long, default_value = "tenant")]
        owner: String,
    },
    /// Re-encrypt every secret under a new key (old key from
    /// EXOCLAW_ENCRYPTION_KEY_OLD, or generate one into .env).
    RotateKey,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    /// Every command, argument and flag of the tree says what it is for, in
    /// `--help`: a flag without a description is a question for the user.
    #[test]
    fn every_command_and_argument_is_described() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", cmd.get_name());
            if cmd.get_about().is_none() && path != " exoclaw" {
                missing.push(format!("{path}: no description"));
            }
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} <{id}>: no description"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "undocumented:\n{}", missing.join("\n"));
    }

    /// A subcommand's own flags come first in its help; the global ones
    /// (`--config`, `--verbose`) follow under their own heading.
    #[test]
    fn global_flags_come_after_a_commands_own() {
        let mut root = Cli::command();
        root.build();
        let onboard = root.find_subcommand_mut("onboard").expect("onboard exists");
        let help = onboard.render_help().to_string();
        let own = help.find("--database").expect("own flag in help");
        let global = help.find("Global options").expect("a global heading");
        let verbose = help.find("--verbose").expect("--verbose in help");
        assert!(own < global && global < verbose, "{help}");
    }
}
