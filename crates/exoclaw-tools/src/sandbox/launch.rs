//! The gateway's side of the sandbox: start the init with a spec, wait for
//! `ready` (or the failed step), pump stdout/stderr into capped buffers, and
//! map the init's final event to an [`ExitStatus`]. Dropping a [`Running`]
//! kills the whole tree (the init is killed; the sandbox's pid-namespace init
//! dies with it through its parent-death signal).

use super::spec::{Event, InitSpec, Limits, ProxySpec, Task};
use super::{
    AgentRole, EgressProxy, PROXY_PORT, Placement, SandboxError, SandboxInit, SandboxPolicy,
    command_env,
};
use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::unix::OwnedReadHalf;
use tokio::process::{Child, ChildStderr, ChildStdout};

/// How long building a sandbox may take before it counts as failed.
const SETUP_TIMEOUT: Duration = Duration::from_secs(20);
/// Extra time the gateway gives the init to enforce the limit itself.
const BACKSTOP: Duration = Duration::from_secs(5);
/// Tasks of the init counted in the sandbox's `RLIMIT_NPROC` besides the
/// command's tree (which gets exactly `max_pids`): the watcher and the supervisor.
const INIT_TASKS: u64 = 2;
/// Threads of the egress bridge (one acceptor, two per connection).
const BRIDGE_TASKS: u64 = 1 + 2 * super::forward::MAX_CONNECTIONS as u64;

/// Starts sandboxed (or, with the sandbox off, host) commands.
#[derive(Clone, Debug)]
pub struct Sandbox {
    init: SandboxInit,
    /// Tests of the fail-closed path: make the init fail at this step.
    fail_at: Option<String>,
}

/// Where a command runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Isolation {
    /// In the sandbox, as this host uid, with this Landlock enforcement.
    Sandboxed { host_uid: u32, landlock: String },
    /// On the host: the sandbox is off for this agent.
    Host,
}

/// How a command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
    /// The wall-clock limit passed; the whole tree was killed.
    TimedOut,
}

/// One output stream, capped: the first and last `cap / 2` bytes are kept,
/// the middle is dropped and counted.
#[derive(Clone, Debug, Default)]
pub struct Capture {
    cap: usize,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total: u64,
}

impl Capture {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            ..Self::default()
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.total += data.len() as u64;
        let half = self.cap - self.cap / 2;
        let room = half.saturating_sub(self.head.len());
        let (head, rest) = data.split_at(room.min(data.len()));
        self.head.extend_from_slice(head);
        let keep = self.cap / 2;
        if rest.len() >= keep {
            self.tail.clear();
            self.tail.extend(&rest[rest.len() - keep..]);
        } else {
            self.tail.extend(rest);
            let excess = self.tail.len().saturating_sub(keep);
            self.tail.drain(..excess);
        }
    }

    /// Bytes seen, including dropped ones.
    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn is_truncated(&self) -> bool {
        self.total > (self.head.len() + self.tail.len()) as u64
    }

    /// The kept bytes as text, with a marker where bytes were dropped.
    pub fn text(&self) -> String {
        let mut out = String::from_utf8_lossy(&self.head).into_owned();
        if self.is_truncated() {
            let dropped = self.total - (self.head.len() + self.tail.len()) as u64;
            out.push_str(&format!("\n[... {dropped} bytes of output dropped ...]\n"));
        }
        let (a, b) = self.tail.as_slices();
        let mut tail = a.to_vec();
        tail.extend_from_slice(b);
        out.push_str(&String::from_utf8_lossy(&tail));
        out
    }

    /// Return [`Capture::text`] and start over (for polling).
    pub fn take(&mut self) -> (String, bool) {
        let text = self.text();
        let truncated = self.is_truncated();
        *self = Self::new(self.cap);
        (text, truncated)
    }
}

/// Where a running command's output goes; shared with pollers.
#[derive(Debug)]
pub struct OutputSink {
    pub stdout: Mutex<Capture>,
    pub stderr: Mutex<Capture>,
}

impl OutputSink {
    pub fn new(cap: usize) -> Self {
        Self {
            stdout: Mutex::new(Capture::new(cap)),
            stderr: Mutex::new(Capture::new(cap)),
        }
    }

    fn capture(m: &Mutex<Capture>) -> Capture {
        m.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

/// A finished command.
#[derive(Clone, Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Capture,
    pub stderr: Capture,
    pub duration: Duration,
    pub isolation: Isolation,
}

/// A started command. Dropping it kills the whole process tree.
pub struct Running {
    child: Child,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    events: Option<Lines<BufReader<OwnedReadHalf>>>,
    /// Kept so the init sees the gateway alive until the run is over.
    _events_w: Option<tokio::net::unix::OwnedWriteHalf>,
    /// The host process group (sandbox off).
    group: Option<rustix::process::Pid>,
    started: Instant,
    timeout: Duration,
    isolation: Isolation,
    max_output: usize,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("isolation", &self.isolation)
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Sandboxed: `kill_on_drop` kills the init, and with it the sandbox.
        if let Some(group) = self.group.take() {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
    }
}

impl Sandbox {
    pub fn new(init: SandboxInit) -> Self {
        Self {
            init,
            fail_at: None,
        }
    }

    /// Make every sandbox fail at setup step `step` (`start`, `user
    /// namespace`, `namespaces`, `mounts`, `confine`, `landlock`): for tests
    /// proving that a failed setup runs nothing.
    #[doc(hidden)]
    pub fn with_injected_failure(mut self, step: &str) -> Self {
        self.fail_at = Some(step.to_owned());
        self
    }

    /// Start `sh -c command` for an agent with `role` under `policy`, with a
    /// wall-clock limit of `timeout` (at most `policy.timeout`).
    pub async fn spawn(
        &self,
        policy: &SandboxPolicy,
        role: AgentRole,
        command: &str,
        timeout: Duration,
    ) -> Result<Running, SandboxError> {
        let timeout = timeout.min(policy.timeout);
        if !policy.mode.applies_to(role) {
            let argv = ["/bin/sh".to_owned(), "-c".to_owned(), command.to_owned()];
            return spawn_host(
                policy,
                &argv,
                &command_env(policy, Placement::Host),
                timeout,
            );
        }
        let argv = vec!["/bin/sh".to_owned(), "-c".to_owned(), command.to_owned()];
        let spec = spec(policy, argv, timeout, Task::Command)?;
        self.spawn_spec(&spec, policy.max_output_bytes).await
    }

    /// Start `argv` as it is, without a shell (no word is ever parsed
    /// again), with `extra_env` added to the allowlisted environment: for
    /// commands built from a template whose arguments come from a model.
    pub async fn spawn_argv(
        &self,
        policy: &SandboxPolicy,
        role: AgentRole,
        argv: &[String],
        extra_env: &[(String, String)],
        timeout: Duration,
    ) -> Result<Running, SandboxError> {
        let timeout = timeout.min(policy.timeout);
        if argv.is_empty() {
            return Err(SandboxError::Spawn("empty argv".into()));
        }
        let mut env = command_env(policy, Placement::Host);
        if !policy.mode.applies_to(role) {
            env.extend(extra_env.iter().cloned());
            return spawn_host(policy, argv, &env, timeout);
        }
        let mut spec = spec(policy, argv.to_vec(), timeout, Task::Command)?;
        spec.env.extend(extra_env.iter().cloned());
        self.spawn_spec(&spec, policy.max_output_bytes).await
    }

    /// [`Sandbox::spawn_argv`] and wait for the end, collecting output.
    pub async fn run_argv(
        &self,
        policy: &SandboxPolicy,
        role: AgentRole,
        argv: &[String],
        extra_env: &[(String, String)],
        timeout: Duration,
    ) -> Result<Finished, SandboxError> {
        let running = self
            .spawn_argv(policy, role, argv, extra_env, timeout)
            .await?;
        let sink = OutputSink::new(policy.max_output_bytes);
        running.finish(&sink).await
    }

    /// Start `argv` (no shell) as a long-lived process that talks over its
    /// stdin and stdout (an MCP stdio server): the same sandbox as
    /// [`Sandbox::spawn_argv`], with `policy.timeout` as its lifetime.
    /// Dropping the [`Interactive`] kills it with its whole tree.
    pub async fn spawn_interactive(
        &self,
        policy: &SandboxPolicy,
        role: AgentRole,
        argv: &[String],
        extra_env: &[(String, String)],
    ) -> Result<Interactive, SandboxError> {
        if argv.is_empty() {
            return Err(SandboxError::Spawn("empty argv".into()));
        }
        if !policy.mode.applies_to(role) {
            let mut env = command_env(policy, Placement::Host);
            env.extend(extra_env.iter().cloned());
            let mut running = spawn_host_with(policy, argv, &env, policy.timeout, true)?;
            let stdin = running
                .child
                .stdin
                .take()
                .ok_or_else(|| SandboxError::Spawn("no stdin".into()))?;
            return Interactive::of(running, Box::pin(stdin));
        }
        let mut spec = spec(policy, argv.to_vec(), policy.timeout, Task::Command)?;
        spec.env.extend(extra_env.iter().cloned());
        spec.stdin = true;
        let mut running = self.spawn_spec(&spec, policy.max_output_bytes).await?;
        let stdin = running
            ._events_w
            .take()
            .ok_or_else(|| SandboxError::Spawn("no stdin".into()))?;
        Interactive::of(running, Box::pin(stdin))
    }

    /// [`Sandbox::spawn`] and wait for the end, collecting output.
    pub async fn run(
        &self,
        policy: &SandboxPolicy,
        role: AgentRole,
        command: &str,
        timeout: Duration,
    ) -> Result<Finished, SandboxError> {
        let running = self.spawn(policy, role, command, timeout).await?;
        let sink = OutputSink::new(policy.max_output_bytes);
        running.finish(&sink).await
    }

    pub(crate) async fn spawn_spec(
        &self,
        spec: &InitSpec,
        max_output: usize,
    ) -> Result<Running, SandboxError> {
        let started = Instant::now();
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()
            .map_err(|e| SandboxError::unavailable("status socket", e.to_string()))?;
        let mut child = tokio::process::Command::new(&self.init.program)
            .args(&self.init.args)
            .env_clear()
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                SandboxError::unavailable("start the sandbox init", e.kind().to_string())
            })?;
        ours.set_nonblocking(true)
            .map_err(|e| SandboxError::unavailable("status socket", e.to_string()))?;
        let ours = tokio::net::UnixStream::from_std(ours)
            .map_err(|e| SandboxError::unavailable("status socket", e.to_string()))?;
        let (read, mut write) = ours.into_split();
        let mut spec = spec.clone();
        if self.fail_at.is_some() {
            spec.fail_at.clone_from(&self.fail_at);
        }
        let mut body = serde_json::to_vec(&spec)
            .map_err(|e| SandboxError::unavailable("sandbox spec", e.to_string()))?;
        body.push(b'\n');
        // An init that died at once closes the socket; its event says why.
        let _ = write.write_all(&body).await;
        if !spec.stdin {
            let _ = write.shutdown().await;
        }
        let mut events = BufReader::new(read).lines();
        let ready = tokio::time::timeout(SETUP_TIMEOUT, async {
            loop {
                match events.next_line().await {
                    Ok(Some(line)) => match serde_json::from_str::<Event>(&line) {
                        Ok(Event::Ready { host_uid, landlock }) => {
                            return Ok(Isolation::Sandboxed { host_uid, landlock });
                        }
                        Ok(Event::Failed { step, detail }) => {
                            return Err(SandboxError::Unavailable { step, detail });
                        }
                        _ => {}
                    },
                    Ok(None) | Err(_) => {
                        return Err(SandboxError::unavailable(
                            "sandbox init",
                            "the init exited during setup without a status",
                        ));
                    }
                }
            }
        })
        .await
        .unwrap_or_else(|_| Err(SandboxError::unavailable("sandbox init", "setup timed out")));
        let isolation = match ready {
            Ok(i) => i,
            Err(e) => {
                let _ = child.start_kill();
                return Err(e);
            }
        };
        Ok(Running {
            stdout: child.stdout.take(),
            stderr: child.stderr.take(),
            child,
            events: Some(events),
            _events_w: Some(write),
            group: None,
            started,
            timeout: Duration::from_millis(spec.timeout_ms),
            isolation,
            max_output,
        })
    }
}

fn spec(
    policy: &SandboxPolicy,
    argv: Vec<String>,
    timeout: Duration,
    task: Task,
) -> Result<InitSpec, SandboxError> {
    let proxy = match (&policy.proxy, policy.network_enabled) {
        (Some(EgressProxy::Unix(socket)), true) => Some(ProxySpec {
            socket: socket.clone(),
            port: PROXY_PORT,
        }),
        (Some(EgressProxy::Tcp(_)), true) => {
            return Err(SandboxError::unavailable(
                "egress proxy",
                "a TCP egress proxy cannot be bridged into the sandbox yet; configure its unix socket",
            ));
        }
        _ => None,
    };
    let timeout_ms = u64::try_from(timeout.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    Ok(InitSpec {
        argv,
        env: command_env(policy, Placement::Sandbox),
        workspace: policy.workspace.clone(),
        hide: vec![policy.data_dir.clone()],
        limits: Limits {
            memory_bytes: policy.memory_mb.saturating_mul(1 << 20),
            cpu_sec: timeout.as_secs().max(1),
            nproc: u64::from(policy.max_pids)
                + INIT_TASKS
                + if proxy.is_some() { BRIDGE_TASKS } else { 0 },
            nofile: u64::from(policy.max_open_files),
            fsize_bytes: file_size_limit(policy),
            tmp_bytes: policy.tmp_mb.saturating_mul(1 << 20),
        },
        timeout_ms,
        cpus: policy.cpus,
        proxy,
        task,
        fail_at: None,
        stdin: false,
    })
}

/// `RLIMIT_FSIZE` of a command: `max_file_mb`, or less if the policy says.
fn file_size_limit(policy: &SandboxPolicy) -> u64 {
    let configured = policy.max_file_mb.saturating_mul(1 << 20);
    policy
        .max_file_bytes
        .map_or(configured, |b| b.min(configured))
}

pub(crate) fn probe_spec(
    policy: &SandboxPolicy,
    probe: super::spec::ProbeSpec,
) -> Result<InitSpec, SandboxError> {
    spec(
        policy,
        Vec::new(),
        Duration::from_secs(30),
        Task::Probe(probe),
    )
}

/// The sandbox is off for this agent: run on the host in a new process
/// group, with the allowlisted environment and cwd = workspace.
fn spawn_host(
    policy: &SandboxPolicy,
    argv: &[String],
    env: &[(String, String)],
    timeout: Duration,
) -> Result<Running, SandboxError> {
    spawn_host_with(policy, argv, env, timeout, false)
}

fn spawn_host_with(
    policy: &SandboxPolicy,
    argv: &[String],
    env: &[(String, String)],
    timeout: Duration,
    stdin: bool,
) -> Result<Running, SandboxError> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| SandboxError::Spawn("empty argv".into()))?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(&policy.workspace)
        .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| SandboxError::Spawn(e.kind().to_string()))?;
    let group = child
        .id()
        .and_then(|id| rustix::process::Pid::from_raw(i32::try_from(id).ok()?));
    Ok(Running {
        stdout: child.stdout.take(),
        stderr: child.stderr.take(),
        child,
        events: None,
        _events_w: None,
        group,
        started: Instant::now(),
        timeout,
        isolation: Isolation::Host,
        max_output: policy.max_output_bytes,
    })
}

async fn pump(stream: Option<impl AsyncRead + Unpin>, sink: &Mutex<Capture>) {
    let Some(mut stream) = stream else { return };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if let Ok(mut c) = sink.lock() {
                    c.push(&buf[..n]);
                }
            }
        }
    }
}

impl Running {
    pub fn isolation(&self) -> &Isolation {
        &self.isolation
    }

    /// Bytes kept per stream by [`Running::finish`]'s callers.
    pub fn max_output(&self) -> usize {
        self.max_output
    }

    /// Pump output into `sink` until the command ends; the whole tree is
    /// gone when this returns.
    pub async fn finish(mut self, sink: &OutputSink) -> Result<Finished, SandboxError> {
        let status = self.wait(sink).await?;
        Ok(Finished {
            status,
            stdout: OutputSink::capture(&sink.stdout),
            stderr: OutputSink::capture(&sink.stderr),
            duration: self.started.elapsed(),
            isolation: self.isolation.clone(),
        })
    }

    async fn wait(&mut self, sink: &OutputSink) -> Result<ExitStatus, SandboxError> {
        let sandboxed = self.group.is_none();
        let limit = if sandboxed {
            self.timeout + BACKSTOP
        } else {
            self.timeout
        };
        let deadline = tokio::time::Instant::from_std(self.started + limit);
        let stdout = self.stdout.take();
        let stderr = self.stderr.take();
        let mut events = self.events.take();
        let group = self.group;
        let child = &mut self.child;
        let work = async {
            let exit = async {
                let st = child.wait().await;
                if let Some(g) = group {
                    // The command is over: so is everything it started.
                    let _ = rustix::process::kill_process_group(g, rustix::process::Signal::KILL);
                }
                st
            };
            let last_event = async {
                let mut last = None;
                if let Some(events) = events.as_mut() {
                    while let Ok(Some(line)) = events.next_line().await {
                        if let Ok(ev) = serde_json::from_str::<Event>(&line) {
                            last = Some(ev);
                        }
                    }
                }
                last
            };
            tokio::join!(
                exit,
                pump(stdout, &sink.stdout),
                pump(stderr, &sink.stderr),
                last_event
            )
        };
        let (exit, (), (), event) = match tokio::time::timeout_at(deadline, work).await {
            Ok(done) => done,
            Err(_) => {
                let _ = self.child.start_kill();
                if let Some(g) = self.group {
                    let _ = rustix::process::kill_process_group(g, rustix::process::Signal::KILL);
                }
                let _ = self.child.wait().await;
                return Ok(ExitStatus::TimedOut);
            }
        };
        self.group = None;
        if !sandboxed {
            let st = exit.map_err(|e| SandboxError::Spawn(e.to_string()))?;
            return Ok(host_status(st));
        }
        match event {
            Some(Event::Exited { code }) => Ok(ExitStatus::Exited(code)),
            Some(Event::Signaled { signal }) => Ok(ExitStatus::Signaled(signal)),
            Some(Event::TimedOut) => Ok(ExitStatus::TimedOut),
            Some(Event::Failed { step, detail }) => Err(SandboxError::Unavailable { step, detail }),
            _ => Err(SandboxError::unavailable(
                "sandbox supervisor",
                "the sandbox ended without reporting the command's status",
            )),
        }
    }
}

fn host_status(st: std::process::ExitStatus) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(code), _) => ExitStatus::Exited(code),
        (None, Some(sig)) => ExitStatus::Signaled(sig),
        (None, None) => ExitStatus::Exited(-1),
    }
}

/// A long-lived sandboxed process and its three streams
/// ([`Sandbox::spawn_interactive`]). Dropping it kills the process tree;
/// dropping only `stdin` ends its input.
pub struct Interactive {
    pub stdin: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    pub stdout: ChildStdout,
    pub stderr: ChildStderr,
    /// Holds the process (and the sandbox) alive.
    pub running: Running,
}

impl Interactive {
    fn of(
        mut running: Running,
        stdin: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    ) -> Result<Self, SandboxError> {
        let stdout = running
            .stdout
            .take()
            .ok_or_else(|| SandboxError::Spawn("no stdout".into()))?;
        let stderr = running
            .stderr
            .take()
            .ok_or_else(|| SandboxError::Spawn("no stderr".into()))?;
        Ok(Self {
            stdin,
            stdout,
            stderr,
            running,
        })
    }

    /// Whether the process has exited (`Some` with its exit code, or
    /// `Some(None)` when killed by a signal).
    pub fn try_exit(&mut self) -> Option<Option<i32>> {
        match self.running.child.try_wait() {
            Ok(Some(status)) => Some(status.code()),
            Ok(None) => None,
            Err(_) => Some(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Capture;

    #[test]
    fn capture_keeps_head_and_tail() {
        let mut c = Capture::new(10);
        c.push(b"0123456789abcdefghij");
        assert!(c.is_truncated());
        assert_eq!(c.total(), 20);
        let t = c.text();
        assert!(t.starts_with("01234"), "{t}");
        assert!(t.ends_with("fghij"), "{t}");
        assert!(t.contains("10 bytes of output dropped"), "{t}");
        let mut small = Capture::new(10);
        small.push(b"abc");
        small.push(b"def");
        assert_eq!(small.text(), "abcdef");
        assert!(!small.is_truncated());
        let (text, truncated) = c.take();
        assert!(truncated && !text.is_empty());
        assert_eq!(c.total(), 0);
    }

    #[test]
    fn capture_tail_slides_over_many_pushes() {
        let mut c = Capture::new(8);
        for chunk in [b"aaaa", b"bbbb", b"cccc", b"dddd"] {
            c.push(chunk);
        }
        let t = c.text();
        assert!(t.starts_with("aaaa") && t.ends_with("dddd"), "{t}");
    }
}
