//! A throwaway PostgreSQL cluster on a free loopback port, deleted when dropped.
//!
//! Life of a cluster:
//! - a fresh directory `/var/tmp/exoclaw-pg-<xtask pid>` holds the data dir, the socket and the logs;
//!   leftovers of dead runs are removed first (unless a postgres still runs in them);
//! - as root, everything runs as the system user `exoclaw-pg` (created if missing, `nobody` as a
//!   fallback) because PostgreSQL refuses to run as root;
//! - `initdb` with trust auth, then `postgres` tuned for throwaway speed (fsync off), started as our
//!   child in its own process group, retried on a new port if the one we picked was taken;
//! - ready means a TCP connect plus `pg_isready`, bounded; then pgvector is exercised through `psql`
//!   inside a rolled-back transaction, so every database stays pristine;
//! - on drop: fast shutdown (SIGINT), directory deleted. A watchdog `sh` in its own process group does
//!   the same if xtask dies first (Ctrl-C, SIGKILL): it waits for EOF on a pipe only we hold.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::user::{RunAs, ensure_user, is_root};
use super::{Install, pg_command};
use crate::command::{command, output, send_signal, succeeds};
use crate::error::{Context, Result, bail};

/// Where cluster directories are made: on disk rather than a size-limited tmpfs, same path everywhere.
const ROOT: &str = "/var/tmp";
const DIR_PREFIX: &str = "exoclaw-pg-";
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
const START_ATTEMPTS: u32 = 3;

/// Settings for a disposable cluster: no durability, enough connections for parallel tests.
const SERVER_SETTINGS: &[&str] = &[
    "listen_addresses=127.0.0.1",
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=200",
];

/// Stops postgres and deletes the cluster directory if xtask dies without doing it; `$1` is the directory.
const WATCHDOG_SCRIPT: &str = r#"read -r line
[ "$line" = done ] && exit 0
pid=$(head -n 1 "$1/data/postmaster.pid" 2>/dev/null)
if [ -n "$pid" ]; then
  kill -s INT "$pid" 2>/dev/null
  i=0
  while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
  kill -s KILL "$pid" 2>/dev/null
fi
rm -rf "$1""#;

/// A running throwaway cluster; dropping it stops postgres and deletes its directory.
pub struct Cluster {
    dir: PathBuf,
    bindir: PathBuf,
    source: String,
    user: Option<RunAs>,
    port: u16,
    version: String,
    pgvector: String,
    ready_in: Duration,
    postgres: Option<Child>,
    watchdog: Option<Child>,
}

impl Cluster {
    /// Creates, starts and checks a cluster from `install`.
    pub fn start(install: &Install) -> Result<Self> {
        let started = Instant::now();
        remove_stale_dirs();
        let dir = Path::new(ROOT).join(format!("{DIR_PREFIX}{}", std::process::id()));
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("chmod {}", dir.display()))?;
        let watchdog = match spawn_watchdog(&dir) {
            Ok(watchdog) => watchdog,
            Err(err) => {
                let _ = fs::remove_dir_all(&dir);
                return Err(err);
            }
        };
        // From here on, errors drop `cluster`, which cleans up.
        let mut cluster = Cluster {
            watchdog: Some(watchdog),
            dir,
            bindir: install.bindir.clone(),
            source: install.source.clone(),
            user: None,
            port: 0,
            version: String::new(),
            pgvector: String::new(),
            ready_in: Duration::ZERO,
            postgres: None,
        };
        if is_root()? {
            let user = ensure_user()?;
            std::os::unix::fs::chown(&cluster.dir, Some(user.uid), Some(user.gid))
                .with_context(|| format!("chown {} {}", user.name, cluster.dir.display()))?;
            cluster.user = Some(user);
        }
        cluster.version = cluster.server_version()?;
        cluster.initdb()?;
        cluster.launch()?;
        cluster.pgvector = cluster.verify_pgvector()?;
        cluster.ready_in = started.elapsed();
        Ok(cluster)
    }

    pub fn dsn(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// What was provisioned, in one line.
    pub fn summary(&self) -> String {
        let user = self
            .user
            .as_ref()
            .map(|user| format!(" as user {}", user.name))
            .unwrap_or_default();
        format!(
            "PostgreSQL {} with pgvector {} on 127.0.0.1:{} from {}{user}, initdb to ready in {:.1} s",
            self.version,
            self.pgvector,
            self.port,
            self.source,
            self.ready_in.as_secs_f64()
        )
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = pg_command(&self.bindir, program, self.user.as_ref());
        cmd.current_dir(&self.dir).stdin(Stdio::null());
        cmd
    }

    /// `postgres --version` as the user that will run it: proves it can reach and run the binaries.
    fn server_version(&self) -> Result<String> {
        let version = output(self.command("postgres").arg("--version")).with_context(|| {
            let who = self.user.as_ref().map_or("we", |user| user.name.as_str());
            format!(
                "{who} cannot run PostgreSQL from {} (its directories must be readable by others: chmod -R o+rX)",
                self.bindir.display()
            )
        })?;
        Ok(version.rsplit(' ').next().unwrap_or(&version).to_owned())
    }

    fn initdb(&self) -> Result<()> {
        let log_path = self.dir.join("initdb.log");
        let log =
            File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let mut cmd = self.command("initdb");
        cmd.arg("-D")
            .arg(self.dir.join("data"))
            .args([
                "--auth=trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "--no-locale",
            ])
            .stdout(log.try_clone().context("duplicating the log handle")?)
            .stderr(log);
        let status = cmd.status().context("cannot run initdb")?;
        if !status.success() {
            bail!("initdb failed ({status}):\n{}", tail(&log_path));
        }
        Ok(())
    }

    /// Starts postgres on a free port and waits until it accepts connections.
    fn launch(&mut self) -> Result<()> {
        let log_path = self.dir.join("postgres.log");
        for attempt in 1..=START_ATTEMPTS {
            let port = free_port()?;
            let log = File::options()
                .create(true)
                .append(true)
                .open(&log_path)
                .with_context(|| format!("opening {}", log_path.display()))?;
            let mut cmd = self.command("postgres");
            cmd.arg("-D").arg(self.dir.join("data"));
            cmd.arg("-p").arg(port.to_string());
            cmd.arg("-k").arg(&self.dir);
            for setting in SERVER_SETTINGS {
                cmd.args(["-c", setting]);
            }
            cmd.stdout(log.try_clone().context("duplicating the log handle")?)
                .stderr(log)
                // Not in the terminal's process group: Ctrl-C stops xtask, the watchdog stops us.
                .process_group(0);
            self.postgres = Some(cmd.spawn().context("cannot start postgres")?);
            self.port = port;
            match self.wait_ready()? {
                None => return Ok(()),
                Some(_) if attempt < START_ATTEMPTS && is_port_clash(&log_path) => {
                    eprintln!("xtask: port {port} was taken, retrying on another");
                    self.postgres = None;
                }
                Some(status) => {
                    self.postgres = None;
                    bail!(
                        "postgres exited ({status}) while starting:\n{}",
                        tail(&log_path)
                    );
                }
            }
        }
        bail!("postgres could not start after {START_ATTEMPTS} attempts")
    }

    /// `None` once ready; `Some(status)` if postgres exited first.
    fn wait_ready(&mut self) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let pg_isready = self.bindir.join("pg_isready");
        let port = self.port.to_string();
        loop {
            let child = self.postgres.as_mut().context("postgres is not running")?;
            if let Some(status) = child.try_wait().context("waiting for postgres")? {
                return Ok(Some(status));
            }
            let accepting = TcpStream::connect_timeout(&addr, Duration::from_millis(250)).is_ok()
                && (!pg_isready.is_file()
                    || succeeds(&mut command(
                        &pg_isready,
                        [
                            "-q",
                            "-h",
                            "127.0.0.1",
                            "-p",
                            &port,
                            "-U",
                            "postgres",
                            "-t",
                            "2",
                        ],
                    )));
            if accepting {
                return Ok(None);
            }
            if Instant::now() > deadline {
                bail!(
                    "postgres was not ready on {addr} after {} s:\n{}",
                    READY_TIMEOUT.as_secs(),
                    tail(&self.dir.join("postgres.log"))
                );
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// Creates pgvector and computes a distance in a rolled-back transaction; returns its version.
    fn verify_pgvector(&self) -> Result<String> {
        let psql = self.bindir.join("psql");
        if !psql.is_file() {
            return Ok("(files present; not exercised: no psql beside postgres)".to_owned());
        }
        let port = self.port.to_string();
        let mut cmd = command(
            &psql,
            [
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                "postgres",
            ],
        );
        cmd.args(["-c", "BEGIN", "-c", "CREATE EXTENSION IF NOT EXISTS vector"])
            .args(["-c", "SELECT extversion, '[1,2,3]'::vector <-> '[1,2,5]'::vector FROM pg_extension WHERE extname = 'vector'"])
            .args(["-c", "ROLLBACK"])
            .env("PGCONNECT_TIMEOUT", "10");
        let out = output(&mut cmd).context("pgvector does not work in this PostgreSQL")?;
        match out.trim().split_once('|') {
            Some((version, "2")) => Ok(version.to_owned()),
            _ => bail!("pgvector does not work in this PostgreSQL: unexpected answer {out:?}"),
        }
    }

    fn stop(&mut self) {
        if let Some(mut postgres) = self.postgres.take()
            && matches!(postgres.try_wait(), Ok(None))
        {
            // SIGINT is PostgreSQL's "fast" shutdown: disconnect clients, exit cleanly.
            let stopped =
                send_signal(postgres.id(), "INT").is_ok() && wait_exit(&mut postgres, STOP_TIMEOUT);
            if !stopped {
                eprintln!("xtask: postgres did not stop in time, killing it");
                let _ = postgres.kill();
                let _ = postgres.wait();
            }
        }
        if let Err(err) = fs::remove_dir_all(&self.dir)
            && self.dir.exists()
        {
            eprintln!(
                "xtask: warning: could not delete {}: {err}",
                self.dir.display()
            );
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            if let Some(mut stdin) = watchdog.stdin.take() {
                let _ = stdin.write_all(b"done\n");
            }
            let _ = watchdog.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn_watchdog(dir: &Path) -> Result<Child> {
    let mut cmd = command("sh", ["-c", WATCHDOG_SCRIPT, "sh"]);
    cmd.arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    cmd.spawn()
        .context("cannot start the cleanup watchdog (sh)")
}

/// Waits up to `timeout` for `child` to exit; whether it did.
fn wait_exit(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return true,
            Ok(None) => sleep(Duration::from_millis(50)),
        }
    }
    false
}

/// Removes cluster directories of dead xtask runs; leaves any in which a postgres still runs.
fn remove_stale_dirs() {
    let Ok(entries) = fs::read_dir(ROOT) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name
            .to_str()
            .and_then(|name| name.strip_prefix(DIR_PREFIX))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if owner == std::process::id() || is_alive(owner) {
            continue;
        }
        let path = entry.path();
        let postmaster = fs::read_to_string(path.join("data/postmaster.pid")).unwrap_or_default();
        let server = postmaster
            .lines()
            .next()
            .and_then(|pid| pid.trim().parse().ok());
        if server.is_some_and(is_alive) {
            continue;
        }
        if fs::remove_dir_all(&path).is_ok() {
            eprintln!("xtask: removed {} left by a dead run", path.display());
        }
    }
}

fn is_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// A loopback port that was free a moment ago (postgres binds it right after; clashes are retried).
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(listener.local_addr().context("finding a free port")?.port())
}

fn is_port_clash(log: &Path) -> bool {
    let text = fs::read_to_string(log).unwrap_or_default();
    text.contains("could not bind") || text.contains("already in use")
}

/// The last lines of a log file, for error messages.
fn tail(path: &Path) -> String {
    const MAX_BYTES: u64 = 4096;
    let mut text = String::new();
    if let Ok(mut file) = File::open(path) {
        let len = file.metadata().map(|meta| meta.len()).unwrap_or(0);
        let _ = file.seek(SeekFrom::Start(len.saturating_sub(MAX_BYTES)));
        let mut bytes = Vec::new();
        let _ = file.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(20);
    format!("--- {} ---\n{}", path.display(), lines[start..].join("\n"))
}
