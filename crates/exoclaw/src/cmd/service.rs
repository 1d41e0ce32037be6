//! `exoclaw service install`: a hardened systemd unit. The gateway needs no
//! capability at all (the exec sandbox uses unprivileged user namespaces),
//! writes only its data dir, and gets a private /tmp; see docs/deployment.md.

use crate::cli::ServiceCommand;
use crate::config::Settings;
use anyhow::{Context as _, bail};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

pub fn unit(exe: &Path, home: &Path, config: Option<&Path>, user: &str, grace_sec: u64) -> String {
    let config_line = config
        .map(|c| format!("Environment=EXOCLAW_CONFIG={}\n", c.display()))
        .unwrap_or_default();
    format!(
        "# Written by `exoclaw service install`. Secrets stay in {home}/.env (0600),
# never in this file.
[Unit]
Description=exoclaw AI gateway
After=network-online.target
Wants=network-online.target

[Service]
Type=exec
User={user}
Group={user}
Environment=EXOCLAW_HOME={home}
{config_line}ExecStart={exe} serve
Restart=on-failure
RestartSec=2
KillSignal=SIGTERM
# The drain grace period (gateway.shutdown_grace_sec) plus a margin.
TimeoutStopSec={stop}
UMask=0077
# Room for gateway.max_connections (10,000 by default) and the store.
LimitNOFILE=65536

# Hardening. The exec sandbox needs unprivileged user, mount, pid, net, ipc
# and uts namespaces and no capability.
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
ProtectSystem=strict
ReadWritePaths={home}
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
LockPersonality=yes
RestrictNamespaces=user mnt pid net ipc uts
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
SystemCallArchitectures=native
SystemCallFilter=@system-service @mount
SystemCallErrorNumber=EPERM

[Install]
WantedBy=multi-user.target
",
        home = home.display(),
        exe = exe.display(),
        stop = grace_sec + 10,
    )
}

pub fn run(cmd: &ServiceCommand, settings: &Settings) -> anyhow::Result<()> {
    let ServiceCommand::Install {
        unit_dir,
        user,
        print,
        force,
    } = cmd;
    if user.is_empty()
        || !user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        bail!("--user: a system user name (letters, digits, '-', '_')");
    }
    let exe = std::env::current_exe().context("cannot find this executable's path")?;
    let config = settings
        .config_file_exists
        .then_some(settings.config_path.as_path());
    let text = unit(
        &exe,
        settings.home.root(),
        config,
        user,
        settings.config.gateway.shutdown_grace_sec,
    );
    if *print {
        crate::out!("{text}");
        return Ok(());
    }
    let path = unit_dir.join("exoclaw.service");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).mode(0o644);
    if *force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    let mut f = opts.open(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            anyhow::anyhow!("{} exists; pass --force to replace it", path.display())
        }
        _ => anyhow::anyhow!("cannot write {}: {e}", path.display()),
    })?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    crate::outln!(
        "wrote {}\nnext:\n  useradd --system --home-dir {home} --shell /usr/sbin/nologin {user}\n  install -d -m 0700 -o {user} -g {user} {home}\n  systemctl daemon-reload && systemctl enable --now exoclaw",
        path.display(),
        home = settings.home.root().display(),
    );
    Ok(())
}
