//! The tools the gateway offers, wired from the configuration: the file
//! tools (anchored at the per-user workspace, within the workspace quotas),
//! `exec` and `process` (the native sandbox, behind the shell policy), and
//! `web_fetch` / `web_search` (through the SSRF-safe egress client), each
//! narrowed per call by its tenant's own settings (`crate::tenants`); and the
//! registry's guards (`gateway.injection_action`,
//! `tools.untrusted_content_policy`, approvals in the store). All of them
//! are reached only through the registry's policy path.

use crate::config::Settings;
use crate::config::file::{
    ExecSecurity, InjectionAction, SandboxMode as ConfigMode, UntrustedContentPolicy,
};
use anyhow::Context as _;
use exoclaw_core::Secret;
use exoclaw_core::store::Store;
use exoclaw_core::tool::{ChannelFile, ChannelFiles, Tool, ToolContext, ToolError};
use exoclaw_egress::DomainRules;
use exoclaw_tools::ToolRegistry;
use exoclaw_tools::exec::CommandRunner;
use exoclaw_tools::fs::FsOptions;
use exoclaw_tools::quota::{QuotaLedger, Quotas, WorkspaceQuota};
use exoclaw_tools::registry::{Guards, InjectionMode, UntrustedPolicy};
use exoclaw_tools::sandbox::{AgentRole, Sandbox, SandboxInit, SandboxMode, SandboxPolicy};
use exoclaw_tools::shell::gate::{ShellGate, ShellMode};
use exoclaw_tools::web::{WebFetch, WebSearch};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The hidden first argument that turns the `exoclaw` binary into the
/// sandbox's init (handled in `main` before anything else starts).
pub const SANDBOX_INIT_ARG: &str = "__sandbox-init";

/// Seconds a flagged command waits for an operator in `ask` mode.
pub const APPROVAL_WAIT: Duration = Duration::from_secs(300);

/// The sandbox and its base policy, as configured.
pub fn sandbox(settings: &Settings) -> anyhow::Result<(Sandbox, SandboxPolicy)> {
    let exe =
        std::env::current_exe().context("cannot find this executable for the sandbox init")?;
    let sandbox = Sandbox::new(SandboxInit::new(exe).arg(SANDBOX_INIT_ARG));
    let c = &settings.config.agents.defaults.sandbox;
    let mut policy =
        SandboxPolicy::new(settings.home.root().join("workspace"), settings.home.root());
    policy.mode = match c.mode {
        ConfigMode::All => SandboxMode::All,
        ConfigMode::NonMain => SandboxMode::NonMain,
        ConfigMode::Off => SandboxMode::Off,
    };
    policy.network_enabled = c.network_enabled;
    if c.network_enabled {
        policy.proxy = Some(exoclaw_tools::sandbox::EgressProxy::Unix(proxy_socket(
            settings,
        )));
    }
    policy.memory_mb = c.memory_mb.into();
    policy.cpus = c.cpus;
    policy.timeout = Duration::from_secs(c.timeout_sec);
    policy.max_pids = c.max_pids;
    policy.max_open_files = c.max_open_files;
    // stdout and stderr together must fit the registry's output cap.
    policy.max_output_bytes = 30 * 1024;
    Ok((sandbox, policy))
}

/// Where `serve` listens with the egress proxy for sandboxes that have
/// network (`agents.defaults.sandbox.network_enabled`). Outside the data dir
/// (the sandbox's unprivileged host uid must reach it) and per data dir.
pub fn proxy_socket(settings: &Settings) -> PathBuf {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(settings.home.root().as_os_str().as_encoded_bytes());
    std::env::temp_dir()
        .join(format!("exoclaw-egress-{}", &hex::encode(digest)[..12]))
        .join("proxy.sock")
}

/// The egress proxy for sandboxes with network: the same SSRF rules and
/// `egress.allow_domains` as every other outbound call, on a unix socket
/// that is bridged into each sandbox. Owned by `serve`, stopped on shutdown.
pub fn bind_egress_proxy(
    settings: &Settings,
    store: Arc<dyn Store>,
) -> anyhow::Result<Option<exoclaw_egress::EgressProxy>> {
    if !settings.config.agents.defaults.sandbox.network_enabled {
        return Ok(None);
    }
    let socket = proxy_socket(settings);
    let proxy = bind_proxy_at(settings, store, &socket, None)?;
    tracing::info!(socket = %socket.display(), "egress proxy for sandboxes listening");
    Ok(Some(proxy))
}

/// Bind a proxy at `socket` (in the proxy directory, made private to
/// everyone but its listing first) with `egress.allow_domains` and, for a
/// tenant's own proxy, the tenant's rules as a second layer.
fn bind_proxy_at(
    settings: &Settings,
    store: Arc<dyn Store>,
    socket: &std::path::Path,
    tenant_rules: Option<DomainRules>,
) -> anyhow::Result<exoclaw_egress::EgressProxy> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    let dir = socket
        .parent()
        .context("the proxy socket has a directory")?;
    match std::fs::DirBuilder::new().mode(0o711).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
    }
    if std::fs::symlink_metadata(dir)?.file_type().is_symlink() {
        anyhow::bail!(
            "{} is a symlink; refusing to put the egress proxy there",
            dir.display()
        );
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))?;
    let _ = std::fs::remove_file(socket);
    let rules = DomainRules::new(
        "egress",
        &settings.config.egress.allow_domains,
        &[] as &[String],
    )
    .map_err(|e| anyhow::anyhow!("egress.allow_domains: {e}"))?;
    let mut policy = exoclaw_egress::EgressPolicy::new().with_rules(rules);
    if let Some(own) = tenant_rules {
        policy = policy.with_rules(own);
    }
    let proxy = exoclaw_egress::EgressProxy::bind_unix(
        socket,
        exoclaw_egress::ProxyConfig::new(policy)
            .on_refusal(Arc::new(crate::audit::EgressRefusals(store))),
    )
    .with_context(|| format!("cannot listen on {}", socket.display()))?;
    // The sandbox's host uid is unprivileged; what it reaches is policed.
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o666))?;
    Ok(proxy)
}

/// Tenants' own egress proxies (see `crate::tenants`): one per tenant with
/// egress lists, for its current settings version, started under the
/// supervisor on the tenant's first command with network and replaced
/// (the old one stopped) when its settings change.
pub fn tenant_proxies(
    settings: Arc<Settings>,
    store: Arc<dyn Store>,
    supervisor: crate::supervisor::Supervisor,
) -> crate::tenants::ProxyFor {
    type Running = (i64, PathBuf, crate::supervisor::Task);
    let running: Arc<std::sync::Mutex<std::collections::HashMap<exoclaw_core::TenantId, Running>>> =
        Arc::default();
    Arc::new(move |tenant, version, rules| {
        use sha2::Digest as _;
        let mut map = running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((v, socket, _)) = map.get(tenant)
            && *v == version
        {
            return Some(socket.clone());
        }
        // Short (a socket path has at most 107 bytes) and not the id itself.
        let digest = sha2::Sha256::digest(tenant.as_str().as_bytes());
        let socket = proxy_socket(&settings)
            .with_file_name(format!("t-{}-{version}.sock", &hex::encode(digest)[..16]));
        let proxy = match bind_proxy_at(&settings, store.clone(), &socket, Some(rules.clone())) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(tenant = %tenant, error = %e, "cannot start the tenant's egress proxy; its commands run without network");
                return None;
            }
        };
        let task = supervisor.start(
            "egress.proxy.tenant",
            crate::supervisor::Policy::Background,
            |stop| async move {
                proxy
                    .run(stop)
                    .await
                    .context("a tenant's egress proxy failed")
            },
        );
        tracing::info!(tenant = %tenant, version, socket = %socket.display(), "tenant egress proxy listening");
        if let Some((_, _, old)) = map.insert(tenant.clone(), (version, socket.clone(), task)) {
            old.stop_token().cancel();
        }
        Some(socket)
    })
}

/// `default` is the main agent (`sandbox.mode = non-main` spares it).
pub fn role_of(ctx: &ToolContext) -> AgentRole {
    if ctx.agent.as_str() == "default" {
        AgentRole::Main
    } else {
        AgentRole::NonMain
    }
}

/// The workspace quotas of `tools.workspace_quota` (`0` = no limit), over
/// the layout of `context::user_workspace`: a tenant's users below
/// `workspace/<tenant>`.
fn quota_ledger(settings: &Settings) -> Arc<QuotaLedger> {
    let q = &settings.config.tools.workspace_quota;
    let limit = |n: u64| (n > 0).then_some(n);
    let mb = |n: u64| limit(n).map(|n| n.saturating_mul(1 << 20));
    let home = settings.home.root().to_path_buf();
    Arc::new(QuotaLedger::new(
        Quotas {
            user: WorkspaceQuota {
                max_bytes: mb(q.user_mb),
                max_files: limit(q.user_files),
            },
            tenant: WorkspaceQuota {
                max_bytes: mb(q.tenant_mb),
                max_files: limit(q.tenant_files),
            },
        },
        move |tenant: &str| home.join("workspace").join(tenant),
    ))
}

/// `channel_send_file`'s port before the channels exist: forwards to them
/// once `Channels::build` filled the cell.
struct LateChannelFiles(super::LateChannels);

impl LateChannelFiles {
    fn port(&self) -> Result<Arc<dyn ChannelFiles>, ToolError> {
        self.0
            .get()
            .and_then(std::sync::Weak::upgrade)
            .ok_or_else(|| {
                ToolError::new(
                    "channel.no_channel",
                    "this conversation is not on a messaging channel: there is no one to send a \
                     file to",
                )
            })
    }
}

#[async_trait::async_trait]
impl ChannelFiles for LateChannelFiles {
    async fn file_cap(&self, ctx: &ToolContext) -> Result<u64, ToolError> {
        self.port()?.file_cap(ctx).await
    }

    async fn send_file(&self, ctx: &ToolContext, file: ChannelFile) -> Result<String, ToolError> {
        self.port()?.send_file(ctx, file).await
    }
}

/// Every built-in tool, wired from the settings, the command runner `exec`
/// uses (custom tools run through it too), and the workspace quota ledger
/// they share (files a channel saves into a workspace count on it too).
pub fn registry(
    settings: &Settings,
    store: Arc<dyn Store>,
    late: &super::Late,
    memory: &Arc<crate::memory::MemoryBank>,
    tenant_limits: &Arc<crate::tenants::TenantLimits>,
    skills: &Arc<crate::skills::SkillLibrary>,
    channel_files: &super::LateChannels,
) -> anyhow::Result<(Arc<ToolRegistry>, Arc<CommandRunner>, Arc<QuotaLedger>)> {
    let d = &settings.config.agents.defaults;
    let quota = quota_ledger(settings);
    let ledger = quota.clone();
    let mut tools: Vec<Arc<dyn Tool>> = exoclaw_tools::fs::builtin_with_quota(
        FsOptions {
            restrict_to_workspace: d.restrict_to_workspace,
        },
        quota.clone(),
    );

    let (sandbox, policy) = sandbox(settings)?;
    let gate = Arc::new(ShellGate {
        mode: match settings.config.tools.exec_approval.security {
            ExecSecurity::Full => ShellMode::Full,
            ExecSecurity::Ask => ShellMode::Ask,
            ExecSecurity::Off => ShellMode::Off,
        },
        data_dir: settings.home.root().to_path_buf(),
        gateway_port: Some(settings.config.gateway.port),
    });
    let runner = Arc::new(
        CommandRunner::new(sandbox, policy, gate)
            .with_roles(Arc::new(role_of))
            .with_quota(quota)
            .with_narrowing(tenant_limits.sandbox_narrowing()),
    );
    tools.extend(exoclaw_tools::exec::tools(&runner));

    let client = crate::egress::builder(settings)?
        .build()
        .map_err(|e| anyhow::anyhow!("cannot build the egress client: {e}"))?;
    let wf = &settings.config.tools.web_fetch;
    let rules = DomainRules::new("tools.web_fetch", &wf.allow_domains, &wf.deny_domains)
        .map_err(|e| anyhow::anyhow!("tools.web_fetch: {e}"))?;
    tools.push(Arc::new(
        WebFetch::new(client.with_rules(rules)).with_tenant_rules(tenant_limits.egress_rules()),
    ));
    let brave = settings.env.get("EXOCLAW_BRAVE_API_KEY").map(Secret::new);
    tools.push(Arc::new(
        WebSearch::new(client, brave).with_tenant_rules(tenant_limits.egress_rules()),
    ));
    tools.extend(exoclaw_tools::orchestrate::tools());
    tools.push(Arc::new(super::handoff::HandoffTool(late.clone())));
    let board: Arc<dyn exoclaw_core::tool::TeamBoard> = Arc::new(super::teams::Board(late.clone()));
    tools.extend(exoclaw_tools::team::tools(&board));
    tools.push(Arc::new(super::cron::tool::CronTool(late.clone())));
    tools.extend(exoclaw_tools::memory::tools(&memory.port()));
    tools.extend(exoclaw_tools::skill::tools(&skills.port()));
    let files: Arc<dyn ChannelFiles> = Arc::new(LateChannelFiles(channel_files.clone()));
    tools.push(exoclaw_tools::channel::tool(&files));
    tools.push(Arc::new(super::delegation::evaluate::EvaluateLoop(
        late.clone(),
    )));

    let audit: Arc<dyn exoclaw_core::store::AuditStore> =
        Arc::new(crate::audit::Alerting(store.clone()));
    let guards = Guards {
        injection: match settings.config.gateway.injection_action {
            InjectionAction::Warn => InjectionMode::Warn,
            InjectionAction::Block => InjectionMode::Block,
            InjectionAction::Off => InjectionMode::Off,
        },
        untrusted: match settings.config.tools.untrusted_content_policy {
            UntrustedContentPolicy::Ask => UntrustedPolicy::Ask,
            UntrustedContentPolicy::Deny => UntrustedPolicy::Deny,
            UntrustedContentPolicy::Allow => UntrustedPolicy::Allow,
        },
        approvals: Some(Arc::new(super::approval::StoreApprovals(store))),
        approval_wait: APPROVAL_WAIT,
    };
    Ok((
        Arc::new(ToolRegistry::new(tools, Some(audit)).with_guards(guards)),
        runner,
        ledger,
    ))
}
