//! The steps of start-up that `serve` (and the CLI commands that share them)
//! take before anything runs: the vault key plan, first-start secrets, the
//! gateway token in the store, the open-file limit, the connection limits,
//! refusing an unsafe data dir, and readable bind errors.

use crate::config::Settings;
use anyhow::{Context as _, bail};
use exoclaw_core::Secret;
use exoclaw_gateway::home::{self, Home};
use exoclaw_store::vault::VaultKey;
use std::net::SocketAddr;

/// Raise the soft limit on open files to the hard one (services start with
/// 1,024), so `gateway.max_connections` can be reached; warn when even the
/// hard limit is lower (the kernel would refuse connections first).
pub(super) fn raise_fd_limit(max_connections: usize) {
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
pub(super) fn conn_limits(settings: &Settings) -> crate::http::conn::ConnLimits {
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

/// When `backup.schedule` is set: the schedule and the backup key
/// (`EXOCLAW_BACKUP_KEY`, else derived from the vault key in use, which may
/// have just been generated).
pub(super) fn scheduled_backup_key(
    settings: &Settings,
    vault_key: &VaultKey,
) -> anyhow::Result<
    Option<(
        exoclaw_core::schedule::Schedule,
        exoclaw_gateway::backup::BackupKey,
    )>,
> {
    let Some(schedule) = &settings.config.backup.schedule else {
        return Ok(None);
    };
    let at = exoclaw_gateway::backup::schedule::parse_schedule(schedule)
        .map_err(|e| anyhow::anyhow!("backup.schedule: {e}"))?;
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
pub(super) async fn install_gateway_token(
    store: &dyn exoclaw_core::store::Store,
    token: &Secret,
) -> anyhow::Result<()> {
    let hash = exoclaw_gateway::access::digest_hex(token);
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

/// Refuse a data dir or secret file that others can read.
pub fn refuse_unsafe_home(home: &Home) -> anyhow::Result<()> {
    let problems = home.permission_problems();
    if problems.is_empty() {
        Ok(())
    } else {
        bail!("{}", problems.join("; "))
    }
}

pub(super) fn bind_error(addr: SocketAddr, e: &std::io::Error) -> anyhow::Error {
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
pub(super) fn first_start_secrets(
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
    crate::outln!(
        "exoclaw: generated a gateway token. It is shown only this once:\n\n    {}\n\n\
         Clients send it as `Authorization: Bearer <token>`.\n\
         It is stored in {p} (mode 0600); read it again with: grep EXOCLAW_GATEWAY_TOKEN {p}\n\
         To rotate it: exoclaw token rotate --grace 10m (running gateways follow without a restart).\n",
        token.expose()
    );
}
