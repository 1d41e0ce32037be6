//! `exoclaw serve`: start-up checks in an order that changes nothing on disk
//! until every check has passed, then the server, then a graceful shutdown.
//!
//! Order: config (already loaded) -> data dir permissions and writability ->
//! bind policy -> read-only store inspection (corrupt, newer, outdated, key
//! mismatch) -> bind the port -> create the data dir and first-start secrets
//! -> open and migrate the store -> vault check -> serve (and, with
//! `backup.schedule`, the daily backup task, stopped on shutdown; and a
//! task returning free heap memory to the OS every 30 s).

use crate::config::Settings;
use crate::http::{self, AppState, auth::GatewayTokens};
use anyhow::{Context as _, bail};
use exoclaw_core::Secret;
use exoclaw_gateway::db::{self, SchemaPlan};
use exoclaw_gateway::home::{self, Home};
use exoclaw_store::vault::{SecretVault, Vault, VaultKey};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let started = Instant::now();
    // Installed first, so a signal that arrives while starting is handled
    // (after start-up) rather than killing the process half-way.
    let mut signals = Signals::install()?;
    refuse_unsafe_home(&settings.home)?;
    settings.home.check_writable()?;

    let addr = SocketAddr::new(settings.bind_ip, settings.config.gateway.port);
    if !addr.ip().is_loopback() && settings.secrets.gateway_token.is_none() {
        bail!(
            "refusing to bind {addr}: a non-loopback address needs a gateway token; set EXOCLAW_GATEWAY_TOKEN (e.g. `openssl rand -hex 32`) in the environment or the data dir's .env, or bind 127.0.0.1"
        );
    }

    let inspection = db::inspect(&settings).await?;
    let plan = db::schema_plan(inspection.status, settings.auto_upgrade)?;
    let key_plan = plan_vault_key(&settings, inspection.vault_key_id.as_deref())?;

    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| bind_error(addr, &e))?;
    let local = listener.local_addr().context("listener has an address")?;

    // From here on we may write.
    settings.home.ensure_layout()?;
    let (token, key) = first_start_secrets(&settings, key_plan)?;

    let db = db::open(&settings).await?;
    let store = db.store();
    match plan {
        SchemaPlan::Ready => {}
        SchemaPlan::Initialize | SchemaPlan::AutoUpgrade => {
            db::migrate_latest(store.as_ref()).await?;
        }
    }
    let backup_key = scheduled_backup_key(&settings, &key)?;
    let vault = Vault::new(key, old_key(&settings)?);
    let vault = Arc::new(SecretVault::new(store.clone(), vault));
    vault
        .ensure_check()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    exoclaw_gateway::runtime::guard::register_stored_secrets(store.as_ref(), &vault).await?;
    ensure_default_agent(store.as_ref()).await?;
    install_gateway_token(store.as_ref(), &token).await?;
    let tokens = Arc::new(GatewayTokens::load(store.clone()).await?);
    let settings = Arc::new(settings);
    let (alerts, alert_task) = start_alerts(&settings, local)?;
    let runtime = Arc::new(
        exoclaw_gateway::runtime::Runtime::build(
            settings.clone(),
            store.clone(),
            Some(&vault),
            Arc::new(exoclaw_gateway::metrics::Metrics::new()),
            Some(alerts.clone()),
        )
        .await?,
    );
    raise_fd_limit(settings.config.gateway.max_connections);
    let conns = crate::http::conn::ConnTable::new(conn_limits(&settings));
    let state = AppState {
        store,
        vault,
        tokens,
        started,
        runtime: runtime.clone(),
        limits: Arc::new(crate::http::limit::RateLimits::new(
            settings.config.gateway.rate_limit_rpm,
            &settings.config.gateway.trusted_proxies,
        )),
        key_uses: Arc::default(),
        auth_seen: Arc::default(),
        pairing_limit: Arc::new(crate::http::pairing::RequestLimit::new()),
        revocations: Arc::default(),
        conns: conns.clone(),
    };
    if !settings.config_file_exists
        && let Some(p) = exoclaw_providers::detect_default(|v| settings.env.get(v).is_some())
    {
        tracing::info!(
            event = "auto_onboard",
            provider = p.name,
            model = p.default_model.unwrap_or("(none)"),
            "no config.json: using the provider found in the environment (run `exoclaw onboard` to choose)"
        );
    }
    let app = http::router(state, settings.config.gateway.max_body_bytes);
    let backups = backup_key.map(|(at, key)| {
        exoclaw_gateway::backup::schedule::ScheduledBackups::start(
            settings.clone(),
            db.clone(),
            key,
            at,
            alerts.clone(),
        )
    });
    tracing::info!(
        addr = %local,
        storage = db::backend_name(&settings),
        startup_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "listening"
    );

    let trim_task = tokio::spawn(trim_memory());
    let proxy_stop = tokio_util::sync::CancellationToken::new();
    let proxy_task = exoclaw_gateway::runtime::tools::bind_egress_proxy(&settings, db.store())?
        .map(|proxy| {
            let stop = proxy_stop.clone();
            tokio::spawn(async move {
                if let Err(e) = proxy.run(stop).await {
                    tracing::error!(error = %e, "the egress proxy failed");
                }
            })
        });

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let conn_config = crate::http::server::ConnConfig {
        header_timeout: Duration::from_secs(settings.config.gateway.header_timeout_sec),
        max_header_bytes: settings.config.gateway.max_header_bytes,
    };
    let server = crate::http::server::run(
        listener,
        app,
        conns,
        conn_config,
        runtime.metrics.clone(),
        async move {
            let _ = stop_rx.await;
        },
    );
    let mut server = tokio::spawn(server);

    tokio::select! {
        result = &mut server => {
            // The server stopped on its own: that is a failure.
            if let Some(b) = backups {
                b.stop(BACKUP_STOP_GRACE).await;
            }
            runtime.flush_queues(FLUSH_GRACE).await;
            stop_trimming(trim_task).await;
            exoclaw_gateway::alerts::watch_security(None);
            alert_task.stop(FLUSH_GRACE).await;
            db.close().await;
            return match result {
                Ok(()) => bail!("the server stopped unexpectedly"),
                Err(e) => Err(e).context("the server task panicked"),
            };
        }
        signal = signals.recv() => {
            tracing::info!(signal, "shutting down: no new connections, draining in-flight requests");
        }
    }
    let _ = stop_tx.send(());
    let grace = Duration::from_secs(settings.config.gateway.shutdown_grace_sec);
    let deadline = tokio::time::Instant::now() + grace;
    match tokio::time::timeout_at(deadline, &mut server).await {
        Ok(_) => tracing::info!("drained"),
        Err(_) => {
            tracing::warn!(
                grace_sec = grace.as_secs(),
                "grace period over; closing remaining connections"
            );
            server.abort();
        }
    }
    // Runs whose clients went away keep going until done or the deadline.
    runtime
        .drain(deadline.saturating_duration_since(tokio::time::Instant::now()))
        .await;
    proxy_stop.cancel();
    if let Some(task) = proxy_task {
        let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        let _ = std::fs::remove_file(exoclaw_gateway::runtime::tools::proxy_socket(&settings));
    }
    if let Some(b) = backups {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        b.stop(left.max(BACKUP_STOP_GRACE)).await;
    }
    // Spans and alerts still queued go out last, within what is left of the
    // grace period (at least FLUSH_GRACE).
    let left = || {
        deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .max(FLUSH_GRACE)
    };
    runtime.flush_queues(left()).await;
    stop_trimming(trim_task).await;
    exoclaw_gateway::alerts::watch_security(None);
    alert_task.stop(left()).await;
    db.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Raise the soft limit on open files to the hard one (services start with
/// 1,024), so `gateway.max_connections` can be reached; warn when even the
/// hard limit is lower (the kernel would refuse connections first).
fn raise_fd_limit(max_connections: usize) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
        }
    }
    let current = getrlimit(Resource::Nofile).current;
    // Connections plus the store, the logs and the sandboxes' pipes.
    let wanted = u64::try_from(max_connections)
        .unwrap_or(u64::MAX)
        .saturating_add(256);
    if current.is_some_and(|n| n < wanted) {
        tracing::warn!(
            open_files = current,
            max_connections,
            "the open-file limit is below gateway.max_connections; raise LimitNOFILE (systemd) or ulimit -n"
        );
    }
}

/// The connection limits of `gateway.*`; trusted proxies carry many clients
/// and are exempt from the per-address ones.
fn conn_limits(settings: &Settings) -> crate::http::conn::ConnLimits {
    let g = &settings.config.gateway;
    crate::http::conn::ConnLimits {
        max_total: g.max_connections,
        max_per_ip: g.max_connections_per_ip,
        max_unauthenticated: g.max_unauthenticated,
        max_unauthenticated_per_ip: g.max_unauthenticated_per_ip,
        exempt: g
            .trusted_proxies
            .iter()
            .filter_map(|p| p.parse().ok())
            .collect(),
    }
}

/// How long shutdown waits at least for a scheduled backup in progress.
const BACKUP_STOP_GRACE: Duration = Duration::from_secs(5);
/// How long shutdown waits at least to send queued spans and alerts.
const FLUSH_GRACE: Duration = Duration::from_secs(2);
/// How often free heap memory goes back to the OS (see `crate::alloc`).
const TRIM_EVERY: Duration = Duration::from_secs(30);

/// Every [`TRIM_EVERY`], `malloc_trim` on a blocking thread; runs until
/// [`stop_trimming`].
async fn trim_memory() {
    let mut tick = tokio::time::interval(TRIM_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = tokio::task::spawn_blocking(crate::alloc::trim).await {
            tracing::warn!(error = %e, "malloc_trim failed");
        }
    }
}

async fn stop_trimming(task: tokio::task::JoinHandle<()>) {
    task.abort();
    if let Err(e) = task.await
        && e.is_panic()
    {
        tracing::error!(error = %e, "the memory trim task panicked");
    }
}

/// The alerts of this instance (`alerts.*`): a webhook client when
/// `alerts.webhook_url` is set, and the `security.*` burst watch.
fn start_alerts(
    settings: &Settings,
    local: SocketAddr,
) -> anyhow::Result<(
    exoclaw_gateway::alerts::Alerts,
    exoclaw_gateway::alerts::AlertTask,
)> {
    let webhook = settings
        .config
        .alerts
        .webhook_url
        .as_deref()
        .map(|u| exoclaw_gateway::egress::endpoint_client(settings, "alerts.webhook_url", u))
        .transpose()?;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "exoclaw".to_owned());
    let (alerts, task) = exoclaw_gateway::alerts::Alerts::start(
        &settings.config.alerts,
        webhook,
        format!("{host}:{}", local.port()),
    );
    exoclaw_gateway::alerts::watch_security(Some(alerts.clone()));
    Ok((alerts, task))
}

/// When `backup.schedule` is set: the time of day and the backup key
/// (`EXOCLAW_BACKUP_KEY`, else derived from the vault key in use, which may
/// have just been generated).
fn scheduled_backup_key(
    settings: &Settings,
    vault_key: &VaultKey,
) -> anyhow::Result<
    Option<(
        exoclaw_gateway::backup::schedule::DailyAt,
        exoclaw_gateway::backup::BackupKey,
    )>,
> {
    let Some(schedule) = &settings.config.backup.schedule else {
        return Ok(None);
    };
    let at = exoclaw_gateway::backup::schedule::DailyAt::parse(schedule)
        .context("backup.schedule must be HH:MM (UTC)")?;
    let key = match &settings.secrets.backup_key {
        Some(k) => exoclaw_gateway::backup::BackupKey::from_hex(k.expose())?,
        None => {
            exoclaw_gateway::backup::BackupKey::derive_from_vault_hex(vault_key.to_hex().expose())?
        }
    };
    Ok(Some((at, key)))
}

use exoclaw_core::now_ms;

/// `EXOCLAW_GATEWAY_TOKEN` seeds the stored (hashed) tokens: a new value
/// replaces the stored one at once; a value that was rotated out is never
/// brought back.
async fn install_gateway_token(
    store: &dyn exoclaw_core::store::Store,
    token: &Secret,
) -> anyhow::Result<()> {
    let hash = crate::http::auth::digest_hex(token);
    let now = now_ms();
    let all = store.gateway_tokens().await?;
    let live = |t: &exoclaw_core::store::GatewayToken| t.expires_at.is_none_or(|u| u > now);
    match all.iter().find(|t| t.token_hash == hash) {
        Some(t) if !live(t) => {
            if all.iter().any(live) {
                tracing::warn!(
                    event = "security.stale_token",
                    "EXOCLAW_GATEWAY_TOKEN holds a token that was rotated out; it is not accepted (use the current one, and update the variable)"
                );
                Ok(())
            } else {
                bail!(
                    "the token in EXOCLAW_GATEWAY_TOKEN was rotated out and no other gateway token is live; issue a new one with `exoclaw token rotate --grace 0`"
                )
            }
        }
        Some(_) => Ok(()),
        None if all.iter().any(live) => {
            if let Err(e) = store.rotate_gateway_token(&hash, now, now).await {
                // Another instance may have installed the same token first.
                let again = store.gateway_tokens().await?;
                if !again.iter().any(|t| t.token_hash == hash) {
                    return Err(e).context("cannot install the new gateway token");
                }
            }
            tracing::info!("a new EXOCLAW_GATEWAY_TOKEN replaced the stored gateway token");
            Ok(())
        }
        None => {
            store.seed_gateway_token(&hash, now).await?;
            Ok(())
        }
    }
}

/// The `default` agent exists after the first start (recreated if deleted),
/// in every tenant.
async fn ensure_default_agent(store: &dyn exoclaw_core::store::Store) -> anyhow::Result<()> {
    for tenant in store.list_tenants().await? {
        ensure_default_agent_of(store, &tenant.id).await?;
    }
    Ok(())
}

/// The `default` agent of `tenant` (created with the tenant).
pub async fn ensure_default_agent_of(
    store: &dyn exoclaw_core::store::Store,
    tenant: &exoclaw_core::TenantId,
) -> anyhow::Result<()> {
    use exoclaw_core::model::{AgentType, NewAgent};
    use exoclaw_core::store::StoreError;
    let id = exoclaw_core::AgentId::new("default");
    if store.get_agent(tenant, &id).await?.is_some() {
        return Ok(());
    }
    let agent = NewAgent {
        id,
        display_name: "exoclaw".to_owned(),
        agent_type: AgentType::Open,
        config: serde_json::json!({}),
    };
    match store.create_agent(tenant, &agent).await {
        Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e).context("cannot create the default agent"),
    }
}

/// Refuse a data dir or secret file that others can read.
pub fn refuse_unsafe_home(home: &Home) -> anyhow::Result<()> {
    let problems = home.permission_problems();
    if problems.is_empty() {
        Ok(())
    } else {
        bail!("{}", problems.join("; "))
    }
}

fn bind_error(addr: SocketAddr, e: &std::io::Error) -> anyhow::Error {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => anyhow::anyhow!(
            "port {} on {} is already in use; stop the other process or choose another port with EXOCLAW_PORT or gateway.port",
            addr.port(),
            addr.ip()
        ),
        std::io::ErrorKind::PermissionDenied => anyhow::anyhow!(
            "not allowed to bind {addr} ({e}); use a port above 1023 with EXOCLAW_PORT"
        ),
        std::io::ErrorKind::AddrNotAvailable => anyhow::anyhow!(
            "cannot bind {addr}: no such address on this machine; fix EXOCLAW_HOST or gateway.host"
        ),
        _ => anyhow::anyhow!("cannot bind {addr}: {e}"),
    }
}

/// What to do about the vault key, decided before anything is written.
#[derive(Debug)]
pub enum KeyPlan {
    Use(VaultKey),
    Generate,
}

pub fn plan_vault_key(settings: &Settings, store_key_id: Option<&str>) -> anyhow::Result<KeyPlan> {
    let Some(hex_key) = &settings.secrets.encryption_key else {
        return match store_key_id {
            None => Ok(KeyPlan::Generate),
            Some(id) => bail!(
                "EXOCLAW_ENCRYPTION_KEY is not set, but the store holds secrets sealed with key id {id}; restore that key in the data dir's .env or the environment"
            ),
        };
    };
    let key = VaultKey::from_hex(hex_key.expose()).map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(stored) = store_key_id {
        let old_matches = old_key(settings)?.is_some_and(|k| k.key_id() == stored);
        if key.key_id() != stored && !old_matches {
            bail!(
                "EXOCLAW_ENCRYPTION_KEY (key id {}) is not the key this store was sealed with (key id {stored}); restore the original key in the data dir's .env, or set it as EXOCLAW_ENCRYPTION_KEY_OLD and run `exoclaw secrets rotate-key`",
                key.key_id()
            );
        }
    }
    Ok(KeyPlan::Use(key))
}

pub fn old_key(settings: &Settings) -> anyhow::Result<Option<VaultKey>> {
    settings
        .secrets
        .encryption_key_old
        .as_ref()
        .map(|k| {
            VaultKey::from_hex(k.expose())
                .map_err(|e| anyhow::anyhow!("EXOCLAW_ENCRYPTION_KEY_OLD: {e}"))
        })
        .transpose()
}

/// On first start, generate the gateway token and the vault key into the data
/// dir's `.env` (0600) and print the token once.
fn first_start_secrets(
    settings: &Settings,
    key_plan: KeyPlan,
) -> anyhow::Result<(Secret, VaultKey)> {
    let mut updates: Vec<(&str, String)> = Vec::new();
    let token = match &settings.secrets.gateway_token {
        Some(t) => t.clone(),
        None => {
            let t = home::random_hex_32()?;
            updates.push(("EXOCLAW_GATEWAY_TOKEN", t.clone()));
            Secret::new(t)
        }
    };
    let key = match key_plan {
        KeyPlan::Use(k) => k,
        KeyPlan::Generate => {
            let k = VaultKey::generate().map_err(|e| anyhow::anyhow!("{e}"))?;
            updates.push(("EXOCLAW_ENCRYPTION_KEY", k.to_hex().expose().to_owned()));
            k
        }
    };
    if !updates.is_empty() {
        let path = settings.home.dotenv_path();
        let pairs: Vec<(&str, Option<&str>)> = updates
            .iter()
            .map(|(k, v)| (*k, Some(v.as_str())))
            .collect();
        home::update_dotenv(&path, &pairs)?;
        let names: Vec<&str> = updates.iter().map(|(k, _)| *k).collect();
        tracing::info!(file = %path.display(), generated = ?names, "wrote first-start secrets");
        if settings.secrets.gateway_token.is_none() {
            print_new_token(&token, &path);
        }
    }
    Ok((token, key))
}

fn print_new_token(token: &Secret, dotenv: &std::path::Path) {
    let p = dotenv.display();
    println!(
        "exoclaw: generated a gateway token. It is shown only this once:\n\n    {}\n\n\
         Clients send it as `Authorization: Bearer <token>`.\n\
         It is stored in {p} (mode 0600); read it again with: grep EXOCLAW_GATEWAY_TOKEN {p}\n\
         To rotate it: exoclaw token rotate --grace 10m (running gateways follow without a restart).\n",
        token.expose()
    );
}

/// SIGTERM and SIGINT, both meaning "shut down gracefully".
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot install a SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("cannot install a SIGINT handler")?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}
