//! Who used the CPUs during a measurement: the gateway, this process (load generator and fake
//! provider), and everything else on the machine. The load benchmarks share the cores with the
//! gateway, and a build or test run elsewhere on the machine skews them, so every row of their
//! reports says how busy the machine was.
//!
//! Sources: `utime + stime` of `/proc/PID/stat` (all threads, exited ones included) and the
//! aggregate `cpu` line of `/proc/stat`, both in clock ticks of `USER_HZ`, which is 100 on every
//! Linux architecture's ABI (`sysconf(_SC_CLK_TCK)`); so the resolution is 10 ms.

use std::fs;
use std::time::{Duration, Instant};

use crate::error::{Context, Result};

const USER_HZ: u64 = 100;

/// CPU counters at one instant.
#[derive(Clone, Copy, Debug)]
pub struct Snapshot {
    at: Instant,
    machine_busy: Duration,
    gateway: Duration,
    own: Duration,
}

impl Snapshot {
    /// The counters now; `gateway` is the gateway's pid.
    pub fn take(gateway: u32) -> Result<Self> {
        Ok(Self {
            at: Instant::now(),
            machine_busy: machine_busy()?,
            gateway: process(&gateway.to_string())?,
            own: process("self")?,
        })
    }

    /// What was used between `earlier` and this snapshot.
    pub fn since(&self, earlier: &Self) -> Usage {
        let gateway = self.gateway.saturating_sub(earlier.gateway);
        let own = self.own.saturating_sub(earlier.own);
        let busy = self.machine_busy.saturating_sub(earlier.machine_busy);
        Usage {
            wall: self.at.saturating_duration_since(earlier.at),
            gateway,
            own,
            others: busy.saturating_sub(gateway + own),
        }
    }
}

/// CPU time used over a wall-clock interval.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    pub wall: Duration,
    pub gateway: Duration,
    /// This process: the load generator and the fake provider.
    pub own: Duration,
    /// Every other process on the machine.
    pub others: Duration,
}

impl Usage {
    /// `time` as cores busy on average over the interval.
    pub fn cores(&self, time: Duration) -> f64 {
        time.as_secs_f64() / self.wall.as_secs_f64().max(1e-9)
    }

    /// `gateway / own / others` in cores, for tables.
    pub fn split(&self) -> String {
        format!(
            "{:.2} / {:.2} / {:.2}",
            self.cores(self.gateway),
            self.cores(self.own),
            self.cores(self.others)
        )
    }
}

/// CPU time process `pid` (or `self`) used so far.
fn process(pid: &str) -> Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    stat_cpu_time(&stat).with_context(|| format!("no CPU times in {path}"))
}

/// CPU time all CPUs spent busy so far (not idle, not waiting for IO, not stolen).
fn machine_busy() -> Result<Duration> {
    let stat = fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    stat_busy_time(&stat).context("no cpu line in /proc/stat")
}

/// `utime + stime` of a `/proc/PID/stat` line. The command name may hold spaces and
/// parentheses, so fields are counted from its closing `)`.
fn stat_cpu_time(stat: &str) -> Option<Duration> {
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    // Fields 14 and 15 of proc(5), where pid and (comm) are 1 and 2.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(ticks(utime + stime))
}

/// `user + nice + system + irq + softirq` of the `cpu` line of `/proc/stat` (guest time is
/// already inside user; idle, iowait and steal are not work done here).
fn stat_busy_time(stat: &str) -> Option<Duration> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let field = |i: usize| values.get(i).copied();
    let busy = field(0)? + field(1)? + field(2)? + field(5)? + field(6)?;
    Some(ticks(busy))
}

fn ticks(n: u64) -> Duration {
    Duration::from_millis(n * 1000 / USER_HZ)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_time_sums_user_and_system_ticks() {
        let stat = "4242 (exo) claw) S 1 4242 4242 0 -1 4194560 2043 0 0 0 150 27 0 0 20 0 7 0";
        assert_eq!(stat_cpu_time(stat), Some(Duration::from_millis(1770)));
        assert_eq!(stat_cpu_time("4242 (x) S 1"), None);
        assert_eq!(stat_cpu_time("no parenthesis"), None);
    }

    #[test]
    fn machine_busy_leaves_out_idle_iowait_and_steal() {
        let stat = "cpu  100 5 50 9000 300 2 3 700 0 0\ncpu0 50 2 25 4500 150 1 1 350 0 0\n";
        // user 100 + nice 5 + system 50 + irq 2 + softirq 3 = 160 ticks.
        assert_eq!(stat_busy_time(stat), Some(Duration::from_millis(1600)));
        assert_eq!(stat_busy_time("cpu0 1 2 3\n"), None);
        assert_eq!(stat_busy_time("cpu  1 x 3 4 5 6 7\n"), None);
    }

    #[test]
    fn usage_splits_the_busy_time() {
        let s = |ms: u64| Duration::from_millis(ms);
        let earlier = Snapshot {
            at: Instant::now(),
            machine_busy: s(1000),
            gateway: s(100),
            own: s(50),
        };
        let later = Snapshot {
            at: earlier.at + s(2000),
            machine_busy: s(4000),
            gateway: s(1600),
            own: s(550),
        };
        let usage = later.since(&earlier);
        assert_eq!(
            (usage.gateway, usage.own, usage.others),
            (s(1500), s(500), s(1000))
        );
        assert_eq!(usage.split(), "0.75 / 0.25 / 0.50");
        assert!(process("self").is_ok() && machine_busy().is_ok());
    }
}
