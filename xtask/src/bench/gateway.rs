//! The gateway under benchmark: `exoclaw serve` on a free loopback port with a given data dir,
//! ready when `GET /readyz` answers 200, stopped with SIGTERM (after which it must exit 0).
//!
//! The contract with the binary (crates/exoclaw): `EXOCLAW_HOME` (created 0700 by the binary if
//! missing), `EXOCLAW_HOST`, `EXOCLAW_PORT`, `EXOCLAW_GATEWAY_TOKEN` and `EXOCLAW_ENCRYPTION_KEY`
//! (64 hex chars each), `EXOCLAW_LOG`; `/readyz` needs no auth.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::{proc_kib, random_hex};
use crate::command::send_signal;
use crate::error::{Context, Result, bail};

/// How long a start may take before the benchmark gives up.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const READYZ_REQUEST: &[u8] =
    b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";

/// The release binary plus the secrets every start uses (the same ones, so an existing data dir
/// stays readable with the same encryption key).
pub struct GatewayBinary {
    path: PathBuf,
    token: String,
    encryption_key: String,
    /// A program (and its arguments) the binary runs under, e.g. valgrind for `xtask layout`.
    wrapper: Vec<std::ffi::OsString>,
}

impl GatewayBinary {
    pub fn new(path: PathBuf) -> Result<Self> {
        Ok(Self {
            path,
            token: random_hex(32)?,
            encryption_key: random_hex(32)?,
            wrapper: Vec::new(),
        })
    }

    /// The same binary and secrets, every start running `wrapper... BINARY serve`.
    pub fn wrapped(&self, wrapper: Vec<std::ffi::OsString>) -> Self {
        Self {
            path: self.path.clone(),
            token: self.token.clone(),
            encryption_key: self.encryption_key.clone(),
            wrapper,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `EXOCLAW_GATEWAY_TOKEN` every start gets (the bearer token of API requests).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Spawns `exoclaw serve` with `home` as its data dir. The binary's stderr goes to
    /// `gateway.log` beside `home` (empty at `EXOCLAW_LOG=warn` unless something is wrong),
    /// so a failed start can be explained.
    pub fn start(&self, home: &Path) -> Result<Gateway> {
        self.start_with(home, &[])
    }

    /// [`Self::start`] with more environment variables (set after the contract's, so they win:
    /// `EXOCLAW_LOG` can be overridden).
    pub fn start_with(&self, home: &Path, extra_env: &[(&str, &str)]) -> Result<Gateway> {
        let port = free_port()?;
        let workdir = home.parent().context("the data dir needs a parent")?;
        let log_path = workdir.join("gateway.log");
        let log =
            File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let mut cmd = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(&self.path);
                cmd
            }
            None => Command::new(&self.path),
        };
        // Only the contract's variables (like the end-to-end tests): nothing from the developer's
        // environment or a stray `.env` (the working directory is the scratch dir) leaks in.
        cmd.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        cmd.arg("serve")
            .current_dir(workdir)
            .env("EXOCLAW_HOME", home)
            .env("EXOCLAW_HOST", "127.0.0.1")
            .env("EXOCLAW_PORT", port.to_string())
            .env("EXOCLAW_GATEWAY_TOKEN", &self.token)
            .env("EXOCLAW_ENCRYPTION_KEY", &self.encryption_key)
            .env("EXOCLAW_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        cmd.envs(extra_env.iter().copied());
        let spawned_at = Instant::now();
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", self.path.display()))?;
        Ok(Gateway {
            child: Some(child),
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            spawned_at,
            log_path,
        })
    }
}

/// A running gateway; dropping it without [`Gateway::stop`] kills it.
pub struct Gateway {
    child: Option<Child>,
    addr: SocketAddr,
    spawned_at: Instant,
    log_path: PathBuf,
}

impl Gateway {
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `VmRSS` from `/proc/PID/status`, in KiB; an error once the process is gone.
    pub fn rss_kib(&self) -> Result<u64> {
        self.status_kib("VmRSS")
    }

    /// A `Key: N kB` line of `/proc/PID/status` (`VmRSS`, `VmHWM`, `RssAnon`, …), in KiB.
    pub fn status_kib(&self, key: &str) -> Result<u64> {
        let pid = self.pid().context("the gateway is not running")?;
        let path = format!("/proc/{pid}/status");
        let status = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        proc_kib(&status, key).with_context(|| format!("no {key} in {path}"))
    }

    /// Whether the process is still running (an exit is reaped and reported as `false`).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Polls `/readyz` in a tight loop until it answers 200; returns the time since spawn.
    pub fn wait_ready(&mut self) -> Result<Duration> {
        let deadline = self.spawned_at + READY_TIMEOUT;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if matches!(readyz_status(self.addr, remaining), Ok(200)) {
                return Ok(self.spawned_at.elapsed());
            }
            let child = self.child.as_mut().context("the gateway was stopped")?;
            if let Some(status) = child.try_wait().context("waiting for the gateway")? {
                bail!(
                    "exoclaw exited ({status}) before it was ready{}",
                    self.log_tail()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "exoclaw was not ready on {} within {} s{}",
                    self.addr,
                    READY_TIMEOUT.as_secs(),
                    self.log_tail()
                );
            }
            std::thread::yield_now();
        }
    }

    /// SIGTERM, then waits; anything but a clean exit 0 within the bound is an error.
    pub fn stop(mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        send_signal(child.id(), "TERM")?;
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().context("waiting for the gateway")? {
                if !status.success() {
                    bail!(
                        "exoclaw exited with {status} on SIGTERM, expected 0{}",
                        self.log_tail()
                    );
                }
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "exoclaw did not exit within {} s of SIGTERM{}",
                    STOP_TIMEOUT.as_secs(),
                    self.log_tail()
                );
            }
            sleep(Duration::from_millis(5));
        }
    }

    pub fn log_tail(&self) -> String {
        let lines = self.log_lines(20);
        if lines.is_empty() {
            return String::new();
        }
        format!("; its stderr ends with:\n{lines}")
    }

    /// The last `n` lines the gateway wrote to stderr (empty when it wrote nothing).
    pub fn log_lines(&self, n: usize) -> String {
        let text = fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The status code `GET /readyz` answers with, waiting at most `timeout` for the answer
/// (a listener bound before the server accepts holds the connection in its backlog).
/// The lines of the gateway's `/metrics` that start with one of `prefixes`.
pub fn metric_lines(addr: SocketAddr, token: &str, prefixes: &[&str]) -> Result<Vec<String>> {
    let mut stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .context("read timeout")?;
    let request = format!(
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .context("GET /metrics")?;
    let mut all = Vec::new();
    stream.read_to_end(&mut all).context("reading /metrics")?;
    let text = String::from_utf8_lossy(&all);
    Ok(text
        .lines()
        .filter(|l| prefixes.iter().any(|p| l.starts_with(p)))
        .map(str::to_owned)
        .collect())
}

/// The history window cache's gauges, as "N sessions, X MiB".
pub fn window_cache(addr: SocketAddr, token: &str) -> Result<String> {
    let lines = metric_lines(
        addr,
        token,
        &[
            "exoclaw_window_cache_sessions ",
            "exoclaw_window_cache_bytes ",
        ],
    )?;
    let value = |name: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .with_context(|| format!("no {name} in /metrics"))
    };
    Ok(format!(
        "{} sessions, {:.1} MiB",
        value("exoclaw_window_cache_sessions ")?,
        value("exoclaw_window_cache_bytes ")? / 1_048_576.0
    ))
}

fn readyz_status(addr: SocketAddr, timeout: Duration) -> io::Result<u16> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
    stream.write_all(READYZ_REQUEST)?;
    let mut head = [0u8; 256];
    let mut len = 0;
    while len < head.len() && !head[..len].contains(&b'\n') {
        match stream.read(&mut head[len..])? {
            0 => break,
            n => len += n,
        }
    }
    parse_status(&head[..len])
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an HTTP/1.x response"))
}

/// The status code of an HTTP/1.x status line (`HTTP/1.1 200 OK`).
fn parse_status(head: &[u8]) -> Option<u16> {
    let line = head.split(|byte| *byte == b'\r' || *byte == b'\n').next()?;
    let mut parts = std::str::from_utf8(line).ok()?.split(' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(listener.local_addr().context("finding a free port")?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_status_reads_the_status_line() {
        let check = |head: &[u8], expect: Option<u16>| assert_eq!(parse_status(head), expect);
        check(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", Some(200));
        check(b"HTTP/1.1 503 Service Unavailable\r\n", Some(503));
        check(b"HTTP/1.0 200", Some(200));
        check(b"SSH-2.0-OpenSSH\r\n", None);
        check(b"", None);
    }
}
