//! `cargo xtask bench [NAME..] [--runs N] [--seconds S] [--minutes M] [--gateway-env K=V]
//! [--binary PATH] [--keep]`: benchmarks of the release binary, as Markdown.
//!
//! Stdout is the report only (paste it into BENCHMARKS.md); progress and cargo's output go to stderr.
//! Each benchmark is one entry in [`BENCHES`]: a name and a function from the shared [`Context`]
//! to a Markdown section, all of them reusing [`gateway`] to start and stop the binary. The
//! proxy benchmarks add a fake provider ([`fake_llm`]), an HTTP/1.1 client ([`http`]) and a
//! load generator ([`load`]).

mod channels;
mod cpu;
mod dashboard;
mod delegation;
mod fake_llm;
mod fake_server;
mod gateway;
mod history;
mod hmac;
mod http;
mod layout;
mod layout_rodata;
mod load;
mod mcp;
mod memory;
mod proxy;
mod soak;
mod startup;
mod teams;
mod telegram;
mod ws;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use crate::command::{cargo, command, output, run as run_command, workspace_root};
use crate::error::{Context as _, Result, bail};

pub use gateway::GatewayBinary;
pub use layout::run as layout;

/// One benchmark: `cargo xtask bench NAME`.
struct Bench {
    name: &'static str,
    run: fn(&Context) -> Result<String>,
    /// Part of `cargo xtask bench` / `all` (the long soak is only run by name).
    in_all: bool,
}

/// Every benchmark, in the order `cargo xtask bench` runs them.
const BENCHES: &[Bench] = &[
    Bench {
        name: "startup",
        run: startup::run,
        in_all: true,
    },
    Bench {
        name: "proxy",
        run: proxy::run,
        in_all: true,
    },
    Bench {
        name: "soak",
        run: soak::run,
        in_all: false,
    },
    Bench {
        name: "delegation",
        run: delegation::run,
        in_all: false,
    },
    Bench {
        name: "teams",
        run: teams::run,
        in_all: false,
    },
    Bench {
        name: "history",
        run: history::run,
        in_all: false,
    },
    Bench {
        name: "mcp",
        run: mcp::run,
        in_all: false,
    },
    Bench {
        name: "memory",
        run: memory::run,
        in_all: false,
    },
    Bench {
        name: "ws",
        run: ws::run,
        in_all: false,
    },
    Bench {
        name: "dashboard",
        run: dashboard::run,
        in_all: false,
    },
    Bench {
        name: "channels",
        run: channels::run,
        in_all: false,
    },
];

const DEFAULT_RUNS: usize = 30;
const DEFAULT_SECONDS: u64 = 10;
const DEFAULT_MINUTES: u64 = 10;

/// What every benchmark gets: the binary to run and a scratch directory deleted afterwards
/// (unless `--keep`).
pub struct Context {
    pub binary: GatewayBinary,
    /// Repetitions for timed measurements (`--runs`).
    pub runs: usize,
    /// Length of each load measurement after its warm-up (`--seconds`).
    pub seconds: u64,
    /// Length of the soak (`--minutes`).
    pub minutes: u64,
    /// More environment for gateways under load (`--gateway-env K=V`, e.g. `EXOCLAW_LOG=off`).
    pub gateway_env: Vec<(String, String)>,
    pub scratch: PathBuf,
}

struct Options {
    benches: Vec<&'static Bench>,
    runs: usize,
    seconds: u64,
    minutes: u64,
    gateway_env: Vec<(String, String)>,
    /// `--binary PATH`: benchmark this binary instead of building the release one.
    binary: Option<PathBuf>,
    /// `--keep`: leave the scratch directory (data dirs, gateway logs) for inspection.
    keep: bool,
}

pub fn run(args: &[String]) -> Result<ExitCode> {
    let options = parse_args(args)?;
    let binary = match &options.binary {
        Some(binary) => binary.clone(),
        None => {
            eprintln!("xtask: $ cargo build --release -p exoclaw");
            run_command(cargo().args(["build", "--release", "-p", "exoclaw"]))?;
            target_dir().join("release/exoclaw")
        }
    };
    if !binary.is_file() {
        bail!("{} does not exist", binary.display());
    }
    let mut scratch = Scratch::create()?;
    scratch.keep = options.keep;
    let context = Context {
        binary: GatewayBinary::new(binary)?,
        runs: options.runs,
        seconds: options.seconds,
        minutes: options.minutes,
        gateway_env: options.gateway_env,
        scratch: scratch.dir.clone(),
    };

    let mut report = header(args);
    for bench in &options.benches {
        eprintln!("xtask: bench {}", bench.name);
        report.push('\n');
        report.push_str(&(bench.run)(&context)?);
    }
    print!("{report}");
    Ok(ExitCode::SUCCESS)
}

fn parse_args(args: &[String]) -> Result<Options> {
    let mut benches = Vec::new();
    let mut runs = DEFAULT_RUNS;
    let mut seconds = DEFAULT_SECONDS;
    let mut minutes = DEFAULT_MINUTES;
    let mut gateway_env = Vec::new();
    let mut binary = None;
    let mut keep = false;
    let all = BENCHES.iter().filter(|bench| bench.in_all);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if let Some(value) = flag_value("--runs", arg, &mut args) {
            runs = positive("--runs", value)?;
        } else if let Some(value) = flag_value("--seconds", arg, &mut args) {
            seconds = positive("--seconds", value)?;
        } else if let Some(value) = flag_value("--minutes", arg, &mut args) {
            minutes = positive("--minutes", value)?;
        } else if let Some(value) = flag_value("--gateway-env", arg, &mut args) {
            match value.split_once('=') {
                Some((key, value)) if key.starts_with("EXOCLAW_") => {
                    gateway_env.push((key.to_owned(), value.to_owned()));
                }
                _ => bail!("--gateway-env wants EXOCLAW_NAME=VALUE, got {value:?}"),
            }
        } else if let Some(value) = flag_value("--binary", arg, &mut args) {
            binary = Some(PathBuf::from(value));
        } else if arg == "--keep" {
            keep = true;
        } else if arg == "all" {
            benches.extend(all.clone());
        } else if let Some(bench) = BENCHES.iter().find(|bench| bench.name == arg) {
            benches.push(bench);
        } else {
            let names: Vec<&str> = BENCHES.iter().map(|bench| bench.name).collect();
            bail!(
                "unknown benchmark {arg:?} (known: {}, all; options: --runs N, --seconds S, \
                 --minutes M, --gateway-env K=V, --binary PATH, --keep)",
                names.join(", ")
            );
        }
    }
    if benches.is_empty() {
        benches.extend(all);
    }
    let mut seen = Vec::new();
    benches.retain(|bench| {
        let first = !seen.contains(&bench.name);
        seen.push(bench.name);
        first
    });
    Ok(Options {
        benches,
        runs,
        seconds,
        minutes,
        gateway_env,
        binary,
        keep,
    })
}

/// A positive integer option value.
fn positive<T: std::str::FromStr + PartialOrd + Default>(flag: &str, value: &str) -> Result<T> {
    match value.parse() {
        Ok(n) if n > T::default() => Ok(n),
        _ => bail!("{flag} wants a positive number, got {value:?}"),
    }
}

/// The value of `--name VALUE` or `--name=VALUE` if `arg` is that flag (empty when missing).
fn flag_value<'a>(
    name: &str,
    arg: &'a str,
    rest: &mut impl Iterator<Item = &'a String>,
) -> Option<&'a str> {
    match arg.strip_prefix(name)? {
        "" => Some(rest.next().map_or("", String::as_str)),
        tail => tail.strip_prefix('='),
    }
}

/// `$CARGO_TARGET_DIR`, else `target` in the workspace root.
fn target_dir() -> PathBuf {
    let root = workspace_root();
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

/// A scratch directory under the system temp dir, deleted on drop unless `keep`.
struct Scratch {
    dir: PathBuf,
    keep: bool,
}

impl Scratch {
    fn create() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("exoclaw-bench-{}", std::process::id()));
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self { dir, keep: false })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("xtask: kept {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// The report's title, command line and machine facts.
fn header(args: &[String]) -> String {
    let mut command_line = String::from("cargo xtask bench");
    for arg in args {
        command_line.push(' ');
        command_line.push_str(arg);
    }
    let date = quiet_output(&mut command("date", ["-u", "+%Y-%m-%d %H:%M UTC"]));
    let commit = quiet_output(&mut command("git", ["rev-parse", "--short", "HEAD"]));
    let dirty = quiet_output(&mut command("git", ["status", "--porcelain"]));
    let commit = match (commit.as_str(), dirty.is_empty()) {
        ("", _) => "unknown".to_owned(),
        (hash, true) => hash.to_owned(),
        (hash, false) => format!("{hash} + uncommitted changes"),
    };
    let threads = std::thread::available_parallelism().map_or(0, usize::from);
    let facts = [
        (
            "CPU",
            format!("{} ({threads} threads available)", cpu_model()),
        ),
        ("memory", memory_total()),
        ("kernel", read_trimmed("/proc/sys/kernel/osrelease")),
        ("OS", os_name()),
        (
            "toolchain",
            quiet_output(&mut command("rustc", ["--version"])),
        ),
    ];
    let mut text = format!(
        "## exoclaw benchmarks\n\n`{command_line}` on {date}, commit {commit}\n\n| machine | |\n|---|---|\n"
    );
    for (name, value) in facts {
        text.push_str(&format!("| {name} | {value} |\n"));
    }
    text
}

fn cpu_model() -> String {
    let cpuinfo = read_trimmed("/proc/cpuinfo");
    cpuinfo
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            matches!(key.trim(), "model name" | "Hardware" | "cpu model").then(|| value.trim())
        })
        .unwrap_or("unknown CPU")
        .to_owned()
}

fn memory_total() -> String {
    let meminfo = read_trimmed("/proc/meminfo");
    proc_kib(&meminfo, "MemTotal")
        .map(|kib| format!("{:.1} GiB", kib as f64 / (1024.0 * 1024.0)))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn os_name() -> String {
    let release = read_trimmed("/etc/os-release");
    release
        .lines()
        .find_map(|line| line.strip_prefix("PRETTY_NAME="))
        .map_or_else(
            || "unknown".to_owned(),
            |name| name.trim_matches('"').to_owned(),
        )
}

fn read_trimmed(path: &str) -> String {
    let mut text = String::new();
    if let Ok(mut file) = fs::File::open(path) {
        let _ = file.read_to_string(&mut text);
    }
    text.trim().to_owned()
}

fn quiet_output(cmd: &mut Command) -> String {
    output(cmd.current_dir(workspace_root())).unwrap_or_default()
}

/// The filesystem type holding `path` (`ext4`, `tmpfs`, …): data dir timings depend on it.
pub fn filesystem_of(path: &Path) -> String {
    let mounts = read_trimmed("/proc/mounts");
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_device, mount_point, fs_type) = (fields.next()?, fields.next()?, fields.next()?);
            path.starts_with(mount_point)
                .then_some((mount_point.len(), fs_type))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(
            || "unknown filesystem".to_owned(),
            |(_, fs_type)| fs_type.to_owned(),
        )
}

/// A target's verdict in a report.
pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

/// A `Key:   123 kB` value from `/proc/meminfo` or `/proc/PID/status`, in KiB.
pub fn proc_kib(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(key)?.strip_prefix(':')?;
        value.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// Order statistics of repeated timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub runs: usize,
    pub min: Duration,
    pub p50: Duration,
    pub p95: Duration,
    pub max: Duration,
}

impl Summary {
    /// `None` for no samples.
    pub fn of(samples: &[Duration]) -> Option<Self> {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        Some(Self {
            runs: sorted.len(),
            min: *sorted.first()?,
            p50: percentile(&sorted, 50),
            p95: percentile(&sorted, 95),
            max: *sorted.last()?,
        })
    }
}

/// Nearest-rank percentile of sorted, non-empty samples.
fn percentile(sorted: &[Duration], percent: usize) -> Duration {
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// Milliseconds with one decimal, for tables.
pub fn ms(duration: Duration) -> String {
    format!("{:.1}", duration.as_secs_f64() * 1000.0)
}

/// Bytes as MiB with two decimals, for tables.
pub fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// `n` random bytes as lowercase hex, from the kernel.
pub fn random_hex(n: usize) -> Result<String> {
    let mut bytes = vec![0u8; n];
    fs::File::open("/dev/urandom")
        .and_then(|mut urandom| urandom.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// Creates `path`'s parent directories (normal modes), not `path` itself.
pub fn create_parent(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(values: &[u64]) -> Vec<Duration> {
        values.iter().copied().map(Duration::from_millis).collect()
    }

    #[test]
    fn summary_uses_nearest_rank() {
        let samples = millis(&(1..=100).rev().collect::<Vec<_>>());
        let summary = Summary::of(&samples).unwrap();
        assert_eq!(summary.min, Duration::from_millis(1));
        assert_eq!(summary.p50, Duration::from_millis(50));
        assert_eq!(summary.p95, Duration::from_millis(95));
        assert_eq!(summary.max, Duration::from_millis(100));

        let one = Summary::of(&millis(&[7])).unwrap();
        let seven = Duration::from_millis(7);
        assert_eq!(
            (one.min, one.p50, one.p95, one.max),
            (seven, seven, seven, seven)
        );
        assert!(Summary::of(&[]).is_none());
    }

    #[test]
    fn proc_kib_reads_status_lines() {
        let status = "Name:\texoclaw\nVmHWM:\t   15000 kB\nVmRSS:\t   12345 kB\n";
        assert_eq!(proc_kib(status, "VmRSS"), Some(12345));
        assert_eq!(proc_kib(status, "VmHWM"), Some(15000));
        assert_eq!(proc_kib(status, "VmSwap"), None);
    }

    #[test]
    fn parse_args_selects_benches_and_runs() {
        let args = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let names = |options: &Options| options.benches.iter().map(|b| b.name).collect::<Vec<_>>();
        let options = parse_args(&args(&[])).unwrap();
        assert_eq!(
            names(&options),
            ["startup", "proxy"],
            "the soak is not in all"
        );
        assert_eq!(options.runs, DEFAULT_RUNS);
        assert_eq!(
            (options.seconds, options.minutes),
            (DEFAULT_SECONDS, DEFAULT_MINUTES)
        );
        let options = parse_args(&args(&["all", "soak", "--minutes", "2", "proxy"])).unwrap();
        assert_eq!(names(&options), ["startup", "proxy", "soak"]);
        assert_eq!(options.minutes, 2);
        let options = parse_args(&args(&[
            "proxy",
            "--seconds=3",
            "--gateway-env",
            "EXOCLAW_LOG=off",
        ]))
        .unwrap();
        assert_eq!(options.seconds, 3);
        assert_eq!(
            options.gateway_env,
            [("EXOCLAW_LOG".to_owned(), "off".to_owned())]
        );
        assert!(parse_args(&args(&["--gateway-env", "PATH=/x"])).is_err());
        assert!(parse_args(&args(&["soak", "--keep"])).unwrap().keep);
        assert!(parse_args(&args(&["--seconds", "-1"])).is_err());
        let options = parse_args(&args(&["startup", "--runs", "5"])).unwrap();
        assert_eq!((options.benches.len(), options.runs), (1, 5));
        assert_eq!(parse_args(&args(&["--runs=7"])).unwrap().runs, 7);
        let options = parse_args(&args(&["--binary", "/x/exoclaw", "all"])).unwrap();
        assert_eq!(options.binary, Some(PathBuf::from("/x/exoclaw")));
        assert!(parse_args(&args(&["--runs"])).is_err());
        assert!(parse_args(&args(&["--runs", "0"])).is_err());
        assert!(parse_args(&args(&["nope"])).is_err());
    }
}
