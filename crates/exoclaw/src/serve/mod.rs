//! `exoclaw serve`: start-up checks in an order that changes nothing on disk
//! until every check has passed, then the [`Gateway`], then a graceful
//! shutdown.
//!
//! Order: config (already loaded) -> data dir permissions and writability ->
//! bind policy -> read-only store inspection (corrupt, newer, outdated, key
//! mismatch) -> bind the port -> create the data dir and first-start secrets
//! -> open and migrate the store -> vault check -> serve.
//!
//! A [`Gateway`] is everything but the listener, so tests drive it either
//! in-process (`Gateway::router` and `tower::ServiceExt::oneshot`) or on a
//! socket (`Gateway::serve(listener, shutdown)`, mini-redis style), and
//! `exoclaw serve` is the latter with the process's signals. Every
//! background task (the server, the write-behind flusher, alert delivery,
//! the OTLP export, the daily backup, the egress proxy, memory trimming)
//! belongs to the gateway's [`Supervisor`]; a critical one failing stops the
//! gateway with a non-zero exit.

mod startup;

pub use startup::{KeyPlan, old_key, plan_vault_key, refuse_unsafe_home};

use crate::config::Settings;
use crate::http::{self, AppState, auth::GatewayTokens};
use anyhow::{Context as _, bail};
use exoclaw_gateway::db::{self, Db, SchemaPlan};
use exoclaw_gateway::supervisor::{Policy, Supervisor, Task};
use exoclaw_store::vault::{SecretVault, Vault};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// How long shutdown waits at least for a scheduled backup in progress.
const BACKUP_STOP_GRACE: Duration = Duration::from_secs(5);
/// How long shutdown waits at least to send queued spans and alerts.
const FLUSH_GRACE: Duration = Duration::from_secs(2);
/// How often free heap memory goes back to the OS (see `crate::alloc`).
const TRIM_EVERY: Duration = Duration::from_secs(30);
/// Empty tasks spawned after a trim so that idle workers wake, park again
/// and collect their heaps (more than the runtime's workers, at most 4).
const WAKE_WORKERS: usize = 8;
/// The first trim, this long after start-up: what start-up's loads used
/// (extra database connections, page caches, parse buffers) goes back
/// before the gateway sits idle.
const FIRST_TRIM_AFTER: Duration = Duration::from_secs(1);

/// `exoclaw serve`: check, bind, open, serve until SIGTERM or SIGINT.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let started = Instant::now();
    // Installed first, so a signal that arrives while starting is handled
    // (after start-up) rather than killing the process half-way.
    let mut signals = Signals::install()?;
    let checked = check(&settings).await?;
    let addr = SocketAddr::new(settings.bind_ip, settings.config.gateway.port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| startup::bind_error(addr, &e))?;
    let local = listener.local_addr().context("listener has an address")?;
    let gateway = Gateway::open(settings, checked, local.port(), started).await?;
    tracing::info!(
        addr = %local,
        storage = db::backend_name(&gateway.settings),
        startup_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "listening"
    );
    gateway
        .serve(listener, async move {
            let signal = signals.recv().await;
            tracing::info!(
                signal,
                "shutting down: no new connections, draining in-flight requests"
            );
        })
        .await
}

/// What the read-only checks decided, before anything is written.
pub struct Checked {
    plan: SchemaPlan,
    key_plan: KeyPlan,
}

/// The checks that change nothing: data dir permissions and writability,
/// the bind policy, the store's schema and the vault key.
pub async fn check(settings: &Settings) -> anyhow::Result<Checked> {
    refuse_unsafe_home(&settings.home)?;
    settings.home.check_writable()?;
    let addr = SocketAddr::new(settings.bind_ip, settings.config.gateway.port);
    if !addr.ip().is_loopback() && settings.secrets.gateway_token.is_none() {
        bail!(
            "refusing to bind {addr}: a non-loopback address needs a gateway token; set EXOCLAW_GATEWAY_TOKEN (e.g. `openssl rand -hex 32`) in the environment or the data dir's .env, or bind 127.0.0.1"
        );
    }
    let inspection = db::inspect(settings).await?;
    let plan = db::schema_plan(inspection.status, settings.auto_upgrade)?;
    let key_plan = plan_vault_key(settings, inspection.vault_key_id.as_deref())?;
    Ok(Checked { plan, key_plan })
}

/// A running gateway without its listener: the store, the vault, the
/// runtime, the HTTP state, and the background tasks.
pub struct Gateway {
    settings: Arc<Settings>,
    state: AppState,
    db: Db,
    supervisor: Supervisor,
    alert_task: exoclaw_gateway::alerts::AlertTask,
    backups: Option<exoclaw_gateway::backup::schedule::ScheduledBackups>,
    trim: Task,
    proxy: Option<Task>,
    cron: Task,
}

impl Gateway {
    /// Write what the first start needs (the data dir, `.env` secrets), open
    /// and migrate the store, check the vault and start the background
    /// tasks. `port` names this instance in alerts.
    pub async fn open(
        settings: Settings,
        checked: Checked,
        port: u16,
        started: Instant,
    ) -> anyhow::Result<Self> {
        settings.home.ensure_layout()?;
        let (token, key) = startup::first_start_secrets(&settings, checked.key_plan)?;
        // What was just generated is the running gateway's too (the
        // scrubber knows it, the security audit sees it set).
        let mut settings = settings;
        if settings.secrets.gateway_token.is_none() {
            settings.secrets.gateway_token = Some(token.clone());
        }
        if settings.secrets.encryption_key.is_none() {
            settings.secrets.encryption_key = Some(key.to_hex());
        }
        let db = db::open(&settings).await?;
        let store = db.store();
        match checked.plan {
            SchemaPlan::Ready => {}
            SchemaPlan::Initialize | SchemaPlan::AutoUpgrade => {
                db::migrate_latest(store.as_ref()).await?;
            }
        }
        let backup_key = startup::scheduled_backup_key(&settings, &key)?;
        let vault = Vault::new(key, old_key(&settings)?);
        let vault = Arc::new(SecretVault::new(store.clone(), vault));
        vault
            .ensure_check()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        exoclaw_gateway::runtime::guard::register_stored_secrets(store.as_ref(), &vault).await?;
        exoclaw_gateway::runtime::ensure_default_agents(store.as_ref())
            .await
            .context("cannot create the default agents")?;
        startup::install_gateway_token(store.as_ref(), &token).await?;
        let tokens = Arc::new(GatewayTokens::load(store.clone()).await?);
        let settings = Arc::new(settings);
        let supervisor = Supervisor::new();
        let (alerts, alert_task) = start_alerts(&settings, port, &supervisor)?;
        let owner = settings.home.instance_id()?;
        let runtime = exoclaw_gateway::runtime::Runtime::build(
            settings.clone(),
            store.clone(),
            Some(&vault),
            Arc::new(exoclaw_gateway::metrics::Metrics::new()),
            Some(alerts.clone()),
            supervisor.clone(),
            owner,
        )
        .await?;
        runtime
            .recover_interrupted()
            .await
            .context("cannot mark the delegations of the last run interrupted")?;
        startup::raise_fd_limit(settings.config.gateway.max_connections);
        let channels = exoclaw_gateway::channels::Channels::build(
            runtime.clone(),
            Some(&vault),
            Some(alerts.clone()),
        )
        .context("cannot set up the channels")?;
        channels.start();
        let state = AppState {
            channels,
            store,
            vault,
            tokens,
            started,
            runtime,
            limits: Arc::new(crate::http::limit::RateLimits::new(
                settings.config.gateway.rate_limit_rpm,
                &settings.config.gateway.trusted_proxies,
            )),
            key_uses: Arc::default(),
            auth_seen: Arc::default(),
            pairing_limit: Arc::new(crate::http::limit::RequestLimit::new()),
            revocations: Arc::default(),
            conns: crate::http::conn::ConnTable::new(startup::conn_limits(&settings)),
            quotas: Arc::new(crate::http::quota::Quotas::new(&settings.config.gateway)),
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
        let backups = backup_key.map(|(schedule, key)| {
            exoclaw_gateway::backup::schedule::ScheduledBackups::start(
                settings.clone(),
                db.clone(),
                key,
                schedule,
                instance_name(port),
                alerts.clone(),
                &supervisor,
            )
        });
        let cron = exoclaw_gateway::runtime::cron::scheduler::start(&state.runtime);
        let windows = state.runtime.windows.clone();
        let trim_db = db.clone();
        let trim = supervisor.start("memory.trim", Policy::Background, move |stop| {
            trim_memory(windows, trim_db, stop)
        });
        let proxy = exoclaw_gateway::runtime::tools::bind_egress_proxy(&settings, db.store())?.map(
            |proxy| {
                supervisor.start("egress.proxy", Policy::Background, |stop| async move {
                    proxy.run(stop).await.context("the egress proxy failed")
                })
            },
        );
        Ok(Self {
            settings,
            state,
            db,
            supervisor,
            alert_task,
            backups,
            trim,
            proxy,
            cron,
        })
    }

    /// [`check`] and [`Gateway::open`] without a listener: for tests and
    /// tools that drive the router in-process.
    pub async fn open_checked(settings: Settings) -> anyhow::Result<Self> {
        let checked = check(&settings).await?;
        let port = settings.config.gateway.port;
        Self::open(settings, checked, port, Instant::now()).await
    }

    /// The router, for in-process requests (`tower::ServiceExt::oneshot`).
    pub fn router(&self) -> axum::Router {
        http::router(
            self.state.clone(),
            self.settings.config.gateway.max_body_bytes,
        )
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serve on `listener` until `shutdown` resolves (or a critical task
    /// fails: then the error), then shut down gracefully within
    /// `gateway.shutdown_grace_sec`.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let conn_config = crate::http::server::ConnConfig {
            header_timeout: Duration::from_secs(self.settings.config.gateway.header_timeout_sec),
            max_header_bytes: self.settings.config.gateway.max_header_bytes,
            write_stall_timeout: Duration::from_secs(
                self.settings.config.gateway.write_stall_timeout_sec,
            ),
        };
        let app = self.router();
        let conns = self.state.conns.clone();
        let metrics = self.state.runtime.metrics.clone();
        let server =
            self.supervisor
                .start("http.server", Policy::Critical, move |stop| async move {
                    crate::http::server::run(
                        listener,
                        app,
                        conns,
                        conn_config,
                        metrics,
                        async move {
                            stop.cancelled().await;
                        },
                    )
                    .await;
                    Ok(())
                });
        let failure = tokio::select! {
            reason = self.supervisor.failed() => Some(reason),
            () = shutdown => None,
        };
        let grace = Duration::from_secs(self.settings.config.gateway.shutdown_grace_sec);
        let deadline = tokio::time::Instant::now() + grace;
        if failure.is_none() {
            if server.stop(grace).await {
                tracing::info!("drained");
            } else {
                tracing::warn!(
                    grace_sec = grace.as_secs(),
                    "grace period over; closing remaining connections"
                );
            }
        } else {
            server.stop(FLUSH_GRACE).await;
        }
        self.close(deadline).await;
        match failure {
            Some(reason) => bail!("{reason}"),
            None => {
                tracing::info!("stopped");
                Ok(())
            }
        }
    }

    /// Stop what runs, in order, within what is left until `deadline`: the
    /// agent runs drain, the egress proxy and the backup schedule stop,
    /// queued trace rows, spans and alerts go out last (at least
    /// [`FLUSH_GRACE`] each), then the store closes.
    pub async fn close(self, deadline: tokio::time::Instant) {
        let left = || deadline.saturating_duration_since(tokio::time::Instant::now());
        // Runs whose clients went away keep going until done or the
        // deadline; the cron scheduler starts no more and records the ends
        // of its runs as they drain.
        tokio::join!(
            self.state.runtime.drain(left()),
            self.cron.stop(left().max(FLUSH_GRACE)),
            self.state.channels.stop(FLUSH_GRACE)
        );
        if let Some(proxy) = self.proxy {
            proxy.stop(Duration::from_secs(2)).await;
            let _ = std::fs::remove_file(exoclaw_gateway::runtime::tools::proxy_socket(
                &self.settings,
            ));
        }
        if let Some(b) = self.backups {
            b.stop(left().max(BACKUP_STOP_GRACE)).await;
        }
        self.state
            .runtime
            .flush_queues(left().max(FLUSH_GRACE))
            .await;
        self.trim.stop(Duration::from_millis(100)).await;
        exoclaw_gateway::alerts::watch_security(None);
        self.alert_task.stop(left().max(FLUSH_GRACE)).await;
        self.supervisor.shutdown(Duration::from_millis(500)).await;
        self.db.close().await;
    }
}

/// [`FIRST_TRIM_AFTER`] start-up and then every [`TRIM_EVERY`]: drop idle
/// sessions' windows, have the store give back what its idle connections
/// hold, then `malloc_trim` and `mi_collect` on a blocking thread, until
/// stopped.
async fn trim_memory(
    windows: Arc<exoclaw_core::agent::window::Windows>,
    db: Db,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + FIRST_TRIM_AFTER, TRIM_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return Ok(()),
        }
        windows.expire();
        db.release_memory().await;
        let trim = || {
            crate::alloc::trim();
            crate::alloc::collect(true);
        };
        if let Err(e) = tokio::task::spawn_blocking(trim).await {
            tracing::warn!(error = %e, "malloc_trim failed");
        }
        // The workers' own heaps: each collects when it next parks; a few
        // empty tasks wake the idle ones so that they do.
        crate::alloc::request_collect();
        let mut wake = tokio::task::JoinSet::new();
        for _ in 0..WAKE_WORKERS {
            wake.spawn(async {});
        }
        while wake.join_next().await.is_some() {}
    }
}

/// The alerts of this instance (`alerts.*`): a webhook client when
/// `alerts.webhook_url` is set, and the `security.*` burst watch.
fn start_alerts(
    settings: &Settings,
    port: u16,
    supervisor: &Supervisor,
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
    let (alerts, task) = exoclaw_gateway::alerts::Alerts::start(
        &settings.config.alerts,
        webhook,
        instance_name(port),
        supervisor,
    );
    exoclaw_gateway::alerts::watch_security(Some(alerts.clone()));
    Ok((alerts, task))
}

/// This gateway among others: `<hostname>:<port>` (alerts, job claims).
fn instance_name(port: u16) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "exoclaw".to_owned());
    format!("{host}:{port}")
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
