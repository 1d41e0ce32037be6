//! The checks of `exoclaw security audit` (and the dashboard's security
//! page): one per hardening rule of the reference documents (GoClaw's
//! production checklist, the OpenClaw hardening guides). Every finding has a
//! stable id, a severity (`fail`/`warn`/`pass`), the reason and the fix. A
//! fresh default install has no `fail`. `deep` also probes the running
//! gateway from outside. What `--fix` repairs is in [`super::plan`].

use crate::config::Settings;
use crate::config::file::{ExecSecurity, InjectionAction, SandboxMode};
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::finding::{Finding, Severity, finding, pass};

/// The connection limits of issue 19: each must bound something (a
/// per-address, per-user or per-tenant limit as high as the total bounds
/// nothing the total does not), and the timeouts must be short enough to
/// bound what stalled clients hold. Zero is refused when the config loads.
fn connection_checks(g: &crate::config::file::GatewayConfig) -> Vec<Finding> {
    let total = g.max_connections;
    let unbounded: Vec<&str> = [
        ("gateway.max_connections_per_ip", g.max_connections_per_ip),
        ("gateway.max_unauthenticated", g.max_unauthenticated),
        (
            "gateway.max_unauthenticated_per_ip",
            g.max_unauthenticated_per_ip,
        ),
        ("gateway.max_ws_per_user", g.max_ws_per_user),
        ("gateway.max_ws_per_ip", g.max_ws_per_ip),
        ("gateway.max_requests_per_tenant", g.max_requests_per_tenant),
    ]
    .into_iter()
    .filter(|(_, v)| *v >= total)
    .map(|(k, _)| k)
    .collect();
    let limits = if unbounded.is_empty() {
        pass(
            "gateway.connection_limits",
            format!(
                "{total} connections; per address {}, unauthenticated {} ({} per address), \
                 WebSockets {} per user and {} per address, {} requests and {} runs per tenant",
                g.max_connections_per_ip,
                g.max_unauthenticated,
                g.max_unauthenticated_per_ip,
                g.max_ws_per_user,
                g.max_ws_per_ip,
                g.max_requests_per_tenant,
                g.max_runs_per_tenant
            ),
        )
    } else {
        finding(
            "gateway.connection_limits",
            Severity::Warn,
            format!(
                "{} at or above gateway.max_connections ({total}): one client, user or tenant can take every slot",
                unbounded.join(", ")
            ),
            "lower them below gateway.max_connections (defaults: docs/configuration.md)",
        )
    };
    let timeouts = if g.header_timeout_sec <= 60 && g.write_stall_timeout_sec <= 300 {
        pass(
            "gateway.connection_timeouts",
            format!(
                "request heads within {} s, blocked writes closed after {} s",
                g.header_timeout_sec, g.write_stall_timeout_sec
            ),
        )
    } else {
        finding(
            "gateway.connection_timeouts",
            Severity::Warn,
            format!(
                "gateway.header_timeout_sec {} (over 60) or gateway.write_stall_timeout_sec {} (over 300): stalled clients hold connections that long",
                g.header_timeout_sec, g.write_stall_timeout_sec
            ),
            "set gateway.header_timeout_sec to at most 60 (default 10) and gateway.write_stall_timeout_sec to at most 300 (default 30)",
        )
    };
    vec![limits, timeouts]
}

/// Who may message the agents through each channel: `open` (or an
/// `allow_from` of `"*"`) lets anyone on the channel in, each as a new user.
fn channel_checks(c: &crate::config::file::FileConfig) -> Vec<Finding> {
    use crate::config::file::DmPolicy;
    if c.channels.is_empty() {
        return vec![
            pass("channels.dm_policy", "no messaging channel is configured"),
            pass("channels.dm_open", "no messaging channel is configured"),
        ];
    }
    let summary = c
        .channels
        .iter()
        .map(|(name, ch)| format!("{name}: {}", ch.dm_policy.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let open: Vec<&str> = c
        .channels
        .iter()
        .filter(|(_, ch)| {
            ch.dm_policy == DmPolicy::Open
                || (ch.dm_policy != DmPolicy::Disabled && ch.allow_from.iter().any(|a| a == "*"))
        })
        .map(|(name, _)| name.as_str())
        .collect();
    vec![
        pass("channels.dm_policy", summary),
        if open.is_empty() {
            pass(
                "channels.dm_open",
                "no channel admits unknown senders without approval",
            )
        } else {
            finding(
                "channels.dm_open",
                Severity::Warn,
                format!(
                    "anyone can message the agents through {} (dm_policy open or allow_from \"*\")",
                    open.join(", ")
                ),
                "set channels.<name>.dm_policy to pairing (default) or allowlist with explicit sender ids",
            )
        },
    ]
}

/// The configuration checks (no IO beyond what `settings` holds).
pub fn config_checks(s: &Settings) -> Vec<Finding> {
    let c = &s.config;
    let g = &c.gateway;
    let d = &c.agents.defaults;
    let mut out = Vec::new();

    out.push(
        if s.secrets.gateway_token.is_some() || s.home.dotenv_path().exists() {
            pass(
                "gateway.auth",
                "every route but the probes needs the gateway token",
            )
        } else {
            finding(
                "gateway.auth",
                Severity::Warn,
                "no gateway token configured yet",
                "start `exoclaw serve` once (it generates one) or set EXOCLAW_GATEWAY_TOKEN",
            )
        },
    );
    out.push(match &s.secrets.gateway_token {
        Some(t) if is_weak_token(t.expose()) => finding(
            "gateway.token",
            Severity::Fail,
            "the gateway token looks weak (repeated, low-entropy or a common word)",
            "exoclaw security audit --fix (rotates it into .env) or `exoclaw token rotate`",
        ),
        _ => pass(
            "gateway.token",
            "the gateway token is not guessable by its shape",
        ),
    });
    out.push(if s.bind_ip.is_loopback() {
        pass("gateway.bind", format!("bound to loopback ({})", s.bind_ip))
    } else if !g.trusted_proxies.is_empty() {
        pass("gateway.bind", "bound beyond loopback behind configured trusted proxies")
    } else {
        finding("gateway.bind", Severity::Warn, format!("bound to {} without a trusted proxy in front", s.bind_ip), "bind 127.0.0.1 and terminate TLS in a reverse proxy (docs/deployment.md), then set gateway.trusted_proxies")
    });
    out.push(if g.allowed_origins.iter().any(|o| o.contains('*')) {
        finding(
            "gateway.origins",
            Severity::Fail,
            "gateway.allowed_origins contains a wildcard",
            "list each browser origin exactly",
        )
    } else {
        pass(
            "gateway.origins",
            if g.allowed_origins.is_empty() {
                "no browser origin is allowed".to_owned()
            } else {
                format!("{} explicit origin(s)", g.allowed_origins.len())
            },
        )
    });
    out.push(if g.rate_limit_rpm > 0 {
        pass(
            "gateway.rate_limit",
            format!(
                "{} requests per minute per user and per IP",
                g.rate_limit_rpm
            ),
        )
    } else {
        finding(
            "gateway.rate_limit",
            Severity::Fail,
            "gateway.rate_limit_rpm is 0 (no rate limit)",
            "set gateway.rate_limit_rpm (default 20)",
        )
    });
    out.push(match g.injection_action {
        InjectionAction::Off => finding(
            "gateway.injection",
            Severity::Fail,
            "the prompt-injection scanner is off",
            "set gateway.injection_action to warn or block",
        ),
        InjectionAction::Warn => pass(
            "gateway.injection",
            "prompt injection is detected and logged (warn)",
        ),
        InjectionAction::Block => pass("gateway.injection", "prompt injection is blocked"),
    });
    out.extend(connection_checks(g));
    out.extend(channel_checks(c));
    out.push(match c.tools.exec_approval.security {
        ExecSecurity::Full => pass("tools.exec_approval", "denied command groups are refused"),
        ExecSecurity::Ask => finding(
            "tools.exec_approval",
            Severity::Warn,
            "flagged commands wait for an operator (ask)",
            "set tools.exec_approval.security to full unless someone watches approvals",
        ),
        ExecSecurity::Off => finding(
            "tools.exec_approval",
            Severity::Fail,
            "shell commands are not checked (off)",
            "set tools.exec_approval.security to full",
        ),
    });
    out.push(if d.restrict_to_workspace {
        pass(
            "tools.workspace",
            "file tools are anchored at the workspace",
        )
    } else {
        finding(
            "tools.workspace",
            Severity::Fail,
            "agents.defaults.restrict_to_workspace is false",
            "set it to true",
        )
    });
    out.push(match d.sandbox.mode {
        SandboxMode::All => pass("sandbox.mode", "every agent's exec runs in the sandbox"),
        SandboxMode::NonMain => finding(
            "sandbox.mode",
            Severity::Warn,
            "the main agent's exec runs outside the sandbox",
            "set agents.defaults.sandbox.mode to all",
        ),
        SandboxMode::Off => finding(
            "sandbox.mode",
            Severity::Fail,
            "exec runs on the host (sandbox off)",
            "set agents.defaults.sandbox.mode to all",
        ),
    });
    out.push(if d.sandbox.network_enabled {
        finding(
            "sandbox.network",
            Severity::Warn,
            "sandboxed commands can reach the network (through the egress proxy)",
            "set agents.defaults.sandbox.network_enabled to false unless agents need it",
        )
    } else {
        pass("sandbox.network", "sandboxed commands have no network")
    });
    out.push(if g.tools.deny.is_empty() && d.tools.deny.is_empty() {
        finding("tools.deny", Severity::Warn, "no tool is denied", "deny the tools no agent needs (gateway.tools.deny or agents.defaults.tools.deny, e.g. [\"group:runtime\"])")
    } else {
        pass("tools.deny", "tool deny lists are set")
    });
    out.push(if c.tools.rate_limit_per_hour > 0 {
        pass(
            "tools.rate_limit",
            format!(
                "{} tool calls per session per hour",
                c.tools.rate_limit_per_hour
            ),
        )
    } else {
        finding(
            "tools.rate_limit",
            Severity::Warn,
            "tools.rate_limit_per_hour is 0 (no limit)",
            "set tools.rate_limit_per_hour (default 150)",
        )
    });
    // config.json cannot hold secrets: loading refuses them. Reaching here
    // means the file was checked.
    out.push(pass("config.secrets", "config.json holds no secrets"));
    out.push(match &s.secrets.encryption_key {
        None => finding("vault.key", Severity::Warn, "EXOCLAW_ENCRYPTION_KEY is not set yet", "start `exoclaw serve` once (it generates one) or set it (openssl rand -hex 32)"),
        Some(k) if is_weak_key(k.expose()) => finding("vault.key", Severity::Fail, "EXOCLAW_ENCRYPTION_KEY looks weak (repeated or low-entropy)", "generate a random key (openssl rand -hex 32) and run `exoclaw secrets rotate-key` with the old one as EXOCLAW_ENCRYPTION_KEY_OLD"),
        Some(_) => pass("vault.key", "the vault key is set"),
    });
    out.push(if c.backup.schedule.is_some() {
        pass(
            "backup.schedule",
            format!(
                "daily backups at {} UTC",
                c.backup.schedule.as_deref().unwrap_or_default()
            ),
        )
    } else {
        finding(
            "backup.schedule",
            Severity::Warn,
            "no scheduled backup",
            "set backup.schedule (e.g. \"03:30\")",
        )
    });
    let b = &c.budgets;
    out.push(
        if b.models.is_empty() && b.agents.is_empty() && b.users.is_empty() {
            finding(
                "budgets.set",
                Severity::Warn,
                "no spend budget is configured",
                "set budgets.models.\"*\".daily_usd (and per agent or user)",
            )
        } else {
            pass("budgets.set", "spend budgets are configured")
        },
    );
    let q = &c.tools.workspace_quota;
    let off: Vec<&str> = [
        ("user_mb", q.user_mb),
        ("user_files", q.user_files),
        ("tenant_mb", q.tenant_mb),
        ("tenant_files", q.tenant_files),
    ]
    .into_iter()
    .filter(|(_, v)| *v == 0)
    .map(|(k, _)| k)
    .collect();
    let unenforceable = exoclaw_gateway::runtime::llm::unenforceable_budgets(s);
    out.push(if unenforceable.is_empty() {
        pass(
            "budgets.priced",
            "every USD budget applies to priced models",
        )
    } else {
        finding(
            "budgets.priced",
            Severity::Warn,
            unenforceable.join("; "),
            "set a price under models.pricing for each model named, or give its budgets daily_tokens/monthly_tokens",
        )
    });
    out.push(if off.is_empty() {
        pass(
            "workspace.quota",
            format!(
                "workspaces are capped: {} MB and {} entries per user, {} MB and {} entries per tenant",
                q.user_mb, q.user_files, q.tenant_mb, q.tenant_files
            ),
        )
    } else {
        finding(
            "workspace.quota",
            Severity::Warn,
            format!(
                "no workspace limit for tools.workspace_quota.{}: one user can fill the disk",
                off.join(", ")
            ),
            "set tools.workspace_quota.* (defaults: 1024 MB and 100000 entries per user, 10240 MB and 1000000 per tenant)",
        )
    });
    out
}

/// The configuration checks that pass on a default install but not on this
/// one: the security defaults someone turned off (`exoclaw doctor` warns
/// about each). Computed against the defaults, so a new check joins by
/// itself.
pub fn defaults_turned_off(s: &Settings) -> Vec<Finding> {
    let mut defaults = s.clone();
    defaults.config = crate::config::file::FileConfig::default();
    defaults.bind_ip = std::net::Ipv4Addr::LOCALHOST.into();
    let on_by_default: std::collections::BTreeSet<&str> = config_checks(&defaults)
        .into_iter()
        .filter(|f| f.severity == Severity::Pass)
        .map(|f| f.id)
        .collect();
    config_checks(s)
        .into_iter()
        .filter(|f| f.severity != Severity::Pass && on_by_default.contains(f.id))
        .collect()
}

/// A token is weak when its characters barely vary or it fails the
/// scrubber's strength rules (repetition, common words).
fn is_weak_token(t: &str) -> bool {
    is_weak_key(t) || exoclaw_guard::scrub::check_strength(t).is_err()
}

/// A key whose bytes barely vary is weak even if it is 64 hex characters.
fn is_weak_key(hex: &str) -> bool {
    let distinct: std::collections::BTreeSet<u8> = hex.to_ascii_lowercase().bytes().collect();
    let halves_repeat =
        hex.len() >= 2 && hex[..hex.len() / 2].eq_ignore_ascii_case(&hex[hex.len() / 2..]);
    distinct.len() < 8 || halves_repeat
}

/// Permission checks, with the files they concern (for `--fix`).
pub fn permission_checks(s: &Settings) -> (Vec<Finding>, Vec<(PathBuf, u32)>) {
    let home = s.home.root();
    let mut wanted = vec![(home.to_path_buf(), 0o700)];
    wanted.extend(s.home.secret_files().into_iter().map(|p| (p, 0o600)));
    let mut wrong = Vec::new();
    for (path, mode) in &wanted {
        if let Ok(m) = std::fs::symlink_metadata(path)
            && !m.file_type().is_symlink()
            && m.permissions().mode() & 0o077 != 0
        {
            wrong.push((path.clone(), *mode));
        }
    }
    let f = if !home.exists() {
        pass(
            "fs.permissions",
            "the data dir does not exist yet (it is created 0700)",
        )
    } else if wrong.is_empty() {
        pass(
            "fs.permissions",
            "the data dir is 0700 and secret files are 0600",
        )
    } else {
        let list: Vec<String> = wrong
            .iter()
            .map(|(p, m)| format!("{} (want {m:04o})", p.display()))
            .collect();
        finding(
            "fs.permissions",
            Severity::Fail,
            format!("readable by group or others: {}", list.join(", ")),
            "exoclaw security audit --fix (or chmod 700 the data dir, 600 the files)",
        )
    };
    (vec![f], wrong)
}

/// Every check's finding.
pub async fn findings(settings: &Settings, deep: bool) -> Vec<Finding> {
    let mut findings = config_checks(settings);
    findings.extend(permission_checks(settings).0);
    findings.push(store_check(settings).await);
    findings.push(backup_recent_check(settings, std::time::SystemTime::now()));
    findings.push(chain_check(settings).await);
    findings.push(owner_ids_check(settings).await);
    if deep {
        findings.extend(deep_checks(settings));
    }
    findings
}

/// chmod without following a symlink: open the path with O_NOFOLLOW and
/// change the mode through the descriptor.
pub fn fix_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))
}

async fn store_check(settings: &Settings) -> Finding {
    if !settings.home.exists() && settings.secrets.postgres_dsn.is_none() {
        return pass("store.schema", "no store yet");
    }
    match exoclaw_gateway::db::inspect(settings).await {
        Ok(i) if i.status.is_current() || !i.exists => {
            pass("store.schema", "the store schema is current")
        }
        Ok(i) => finding(
            "store.schema",
            Severity::Fail,
            format!("schema version {} of {}", i.status.current, i.status.latest),
            "run `exoclaw upgrade`",
        ),
        Err(e) => finding(
            "store.schema",
            Severity::Fail,
            format!("{e:#}"),
            "see `exoclaw doctor`",
        ),
    }
}

/// `backup.recent`: backups are configured and recent. Without
/// `backup.schedule` it warns; with one, the newest backup in
/// `<data dir>/backups` must be younger than twice the interval (a day), and
/// when there is none yet, the data dir (its `.env`, written on first start)
/// must be younger than a day.
fn backup_recent_check(s: &Settings, now: std::time::SystemTime) -> Finding {
    const ID: &str = "backup.recent";
    const DAY: Duration = Duration::from_secs(86_400);
    let Some(at) = &s.config.backup.schedule else {
        return finding(
            ID,
            Severity::Warn,
            "no backup.schedule: nothing keeps backups recent",
            "set backup.schedule (e.g. \"03:30\") or back up with cron and `exoclaw backup create`",
        );
    };
    let dir = exoclaw_gateway::backup::default_dir(&s.home);
    let newest = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(exoclaw_gateway::backup::is_backup_name)
        })
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .max();
    let age = |t: std::time::SystemTime| now.duration_since(t).unwrap_or_default();
    let hours = |d: Duration| d.as_secs() / 3600;
    match newest {
        Some(t) if age(t) <= 2 * DAY => pass(
            ID,
            format!(
                "the newest backup is {} h old (daily at {at} UTC)",
                hours(age(t))
            ),
        ),
        Some(t) => finding(
            ID,
            Severity::Fail,
            format!(
                "the newest backup in {} is {} h old, more than twice the daily interval",
                dir.display(),
                hours(age(t))
            ),
            "check the gateway's log for alert.backup_failed and that `exoclaw serve` runs; `exoclaw backup create` takes one now",
        ),
        None => {
            let since = std::fs::metadata(s.home.dotenv_path())
                .or_else(|_| std::fs::metadata(s.home.root()))
                .and_then(|m| m.modified())
                .map(age)
                .unwrap_or_default();
            if since > DAY {
                finding(
                    ID,
                    Severity::Fail,
                    format!(
                        "no backup in {} although the data dir is over a day old",
                        dir.display()
                    ),
                    "check the gateway's log for alert.backup_failed and that `exoclaw serve` runs; `exoclaw backup create` takes one now",
                )
            } else {
                pass(ID, format!("no backup yet; the first is due at {at} UTC"))
            }
        }
    }
}

/// `audit.chain`: every tenant's audit hash chain recomputes and matches
/// its head (`exoclaw audit verify`).
async fn chain_check(settings: &Settings) -> Finding {
    match verify_chain(settings).await {
        Ok(None) => pass(
            "audit.chain",
            "no audit log to verify yet (no store, or its schema is not current)",
        ),
        Ok(Some(v)) => match v.first_break() {
            None => pass(
                "audit.chain",
                format!("the audit chain is intact ({} events)", v.checked()),
            ),
            Some((tenant, b)) => finding(
                "audit.chain",
                Severity::Fail,
                format!(
                    "the audit chain of tenant {tenant} is broken at seq {} ({}): {}",
                    b.seq,
                    b.kind.as_str(),
                    b.reason
                ),
                "the audit log was tampered with: treat it as a security incident, compare \
                 with a backup (`exoclaw backup verify`) and the head hashes you recorded, \
                 and keep the database as evidence; `exoclaw audit verify` names every break",
            ),
        },
        Err(e) => finding(
            "audit.chain",
            Severity::Fail,
            format!("the audit log cannot be verified: {e:#}"),
            "see `exoclaw doctor`",
        ),
    }
}

/// `access.owner_ids`: every `EXOCLAW_OWNER_IDS` entry names exactly one
/// user: an id, or a name in the default tenant. Entries that match nobody,
/// or whose name also exists in other tenants (where it confers nothing, but
/// reads as if it did), are flagged.
async fn owner_ids_check(settings: &Settings) -> Finding {
    const ID: &str = "access.owner_ids";
    if settings.owner_ids.is_empty() {
        return pass(ID, "EXOCLAW_OWNER_IDS is not set");
    }
    let users = match all_users(settings).await {
        Ok(Some(u)) => u,
        Ok(None) => return pass(ID, "no store to check EXOCLAW_OWNER_IDS against yet"),
        Err(e) => {
            return finding(
                ID,
                Severity::Warn,
                format!("EXOCLAW_OWNER_IDS cannot be checked: {e:#}"),
                "see `exoclaw doctor`",
            );
        }
    };
    let mut problems = Vec::new();
    for entry in &settings.owner_ids {
        let by_id = users.iter().filter(|u| u.id.as_str() == entry).count();
        let by_name: Vec<&exoclaw_core::model::User> =
            users.iter().filter(|u| &u.name == entry).collect();
        let in_default = by_name
            .iter()
            .filter(|u| u.tenant_id.as_str() == exoclaw_core::DEFAULT_TENANT)
            .count();
        let elsewhere = by_name.len() - in_default;
        if by_id + in_default == 0 {
            problems.push(format!(
                "{entry:?} matches no user (an id, or a name in the default tenant)"
            ));
        } else if by_id > 0 && in_default > 0 {
            problems.push(format!(
                "{entry:?} is both a user id and another user's name"
            ));
        }
        if elsewhere > 0 {
            problems.push(format!(
                "{entry:?} is also a user name in {elsewhere} other tenant(s), where it makes no owner"
            ));
        }
    }
    if problems.is_empty() {
        pass(
            ID,
            format!(
                "each of the {} EXOCLAW_OWNER_IDS entries names exactly one user",
                settings.owner_ids.len()
            ),
        )
    } else {
        finding(
            ID,
            Severity::Warn,
            problems.join("; "),
            "list owners by user id (`exoclaw users list --json`) in EXOCLAW_OWNER_IDS",
        )
    }
}

/// Every user of every tenant, read-only; `None` without a current store.
async fn all_users(settings: &Settings) -> anyhow::Result<Option<Vec<exoclaw_core::model::User>>> {
    if !settings.home.exists() && settings.secrets.postgres_dsn.is_none() {
        return Ok(None);
    }
    let inspection = exoclaw_gateway::db::inspect(settings).await?;
    if !inspection.exists || !inspection.status.is_current() {
        return Ok(None);
    }
    let db = exoclaw_gateway::db::open_read_only(settings).await?;
    let store = db.store();
    let result = async {
        let mut users = Vec::new();
        for tenant in store.list_tenants().await? {
            users.extend(store.list_users(&tenant.id).await?);
        }
        anyhow::Ok(users)
    }
    .await;
    db.close().await;
    result.map(Some)
}

/// Probe the running gateway from outside: an unauthenticated request and a
/// WebSocket upgrade from a foreign Origin must both be refused.
fn deep_checks(s: &Settings) -> Vec<Finding> {
    let ip = if s.bind_ip.is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        s.bind_ip
    };
    let addr = SocketAddr::new(ip, s.config.gateway.port);
    let unauth = probe(
        addr,
        "GET /v1/status HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n",
    );
    let origin = probe(
        addr,
        "GET /ws HTTP/1.1\r\nHost: probe\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: https://evil.example\r\n\r\n",
    );
    let reach = |r: &Result<u16, String>| r.as_ref().err().cloned();
    if let Some(e) = reach(&unauth) {
        return vec![finding(
            "deep.reachable",
            Severity::Warn,
            format!("cannot reach the gateway at {addr}: {e}"),
            "start `exoclaw serve` and run the audit again",
        )];
    }
    vec![
        match unauth {
            Ok(401) => pass("deep.auth", "an unauthenticated request is refused (401)"),
            Ok(code) => finding(
                "deep.auth",
                Severity::Fail,
                format!("an unauthenticated request got {code}"),
                "check the gateway's authentication",
            ),
            Err(e) => finding("deep.auth", Severity::Warn, e, ""),
        },
        match origin {
            Ok(403) => pass("deep.origin", "a foreign Origin is refused (403)"),
            Ok(code) => finding(
                "deep.origin",
                Severity::Fail,
                format!("a WebSocket from a foreign Origin got {code}"),
                "set gateway.allowed_origins to the exact origins",
            ),
            Err(e) => finding("deep.origin", Severity::Warn, e, ""),
        },
    ]
}

fn probe(addr: SocketAddr, request: &str) -> Result<u16, String> {
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(3)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    s.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).map_err(|e| e.to_string())?;
    String::from_utf8_lossy(&buf[..n])
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| "no HTTP status in the answer".to_owned())
}

/// The audit log's hash chain verified from a read-only store; `None`
/// when there is no current store to verify.
pub async fn verify_chain(
    settings: &Settings,
) -> anyhow::Result<Option<exoclaw_core::model::AuditVerify>> {
    use exoclaw_gateway::db;
    if !settings.home.exists() && settings.secrets.postgres_dsn.is_none() {
        return Ok(None);
    }
    let inspection = db::inspect(settings).await?;
    if !inspection.exists || !inspection.status.is_current() {
        return Ok(None);
    }
    let db = db::open_read_only(settings).await?;
    let result = db.store().verify_audit(None).await;
    db.close().await;
    Ok(Some(result?))
}
