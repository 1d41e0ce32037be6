//! `cargo xtask bench startup`: start-to-ready time, idle memory and binary size.
//!
//! - start to ready: from spawn to the first 200 on `/readyz`, N times with a new data dir each
//!   (first start: creates files, runs migrations) and N times on one existing data dir (after a
//!   warm-up start that created it);
//! - idle RSS: `VmRSS` / `VmHWM` from `/proc/PID/status` 5 s after ready, on the existing data
//!   dir, bare and with `memory.embedder` set to the local embedder (issue 14's figure: the model
//!   is not loaded until the first search);
//! - binary size: the release binary, and what `strip --strip-all` would still remove.

use std::fs;
use std::path::Path;
use std::thread::sleep;
use std::time::Duration;

use super::{Context, Summary, create_parent, filesystem_of, mib, ms, proc_kib};
use crate::command::{command, find_program, output};
use crate::error::{Context as _, Result};

const IDLE_WAIT: Duration = Duration::from_secs(5);

pub fn run(ctx: &Context) -> Result<String> {
    let new_dir = time_new_data_dir(ctx)?;
    let existing_dir = time_existing_data_dir(ctx)?;
    let idle = idle_memory(ctx, &[])?;
    let embedder_config = embedder_config(ctx)?;
    let config = embedder_config
        .to_str()
        .context("the scratch path is not UTF-8")?;
    let idle_embedder = idle_memory(ctx, &[("EXOCLAW_CONFIG", config)])?;
    let size = binary_size(ctx.binary.path(), &ctx.scratch)?;

    let mut text = String::from("### Startup and footprint\n\n");
    text.push_str(&format!(
        "Binary `{}`; data dirs under `{}` ({}).\n\n",
        ctx.binary.path().display(),
        ctx.scratch.display(),
        filesystem_of(&ctx.scratch)
    ));
    text.push_str("| start to ready (ms) | runs | min | p50 | p95 | max |\n");
    text.push_str("|---|---:|---:|---:|---:|---:|\n");
    for (label, summary) in [
        ("new data dir", new_dir),
        ("existing data dir", existing_dir),
    ] {
        text.push_str(&format!(
            "| {label} | {} | {} | {} | {} | {} |\n",
            summary.runs,
            ms(summary.min),
            ms(summary.p50),
            ms(summary.p95),
            ms(summary.max)
        ));
    }
    text.push_str("\n| footprint | value |\n|---|---:|\n");
    text.push_str(&format!(
        "| idle RSS, {} s after ready | {} |\n",
        IDLE_WAIT.as_secs(),
        mib(idle.rss_kib * 1024)
    ));
    text.push_str(&format!(
        "| peak RSS (VmHWM) until then | {} |\n",
        mib(idle.hwm_kib * 1024)
    ));
    text.push_str(&format!(
        "| idle RSS, {} s after ready, local embedder configured | {} |\n",
        IDLE_WAIT.as_secs(),
        mib(idle_embedder.rss_kib * 1024)
    ));
    text.push_str(&format!("| binary size | {} |\n", mib(size.bytes)));
    text.push_str(&format!(
        "| `strip --strip-all` would save | {} |\n",
        size.strip_saving
    ));
    Ok(text)
}

fn time_new_data_dir(ctx: &Context) -> Result<Summary> {
    let mut samples = Vec::with_capacity(ctx.runs);
    for run in 0..ctx.runs {
        let workdir = ctx.scratch.join(format!("new-{run}"));
        let home = workdir.join("home");
        create_parent(&home)?;
        let mut gateway = ctx.binary.start(&home)?;
        samples.push(gateway.wait_ready()?);
        gateway.stop()?;
        fs::remove_dir_all(&workdir).with_context(|| format!("removing {}", workdir.display()))?;
    }
    report("new data dir", &samples)
}

fn time_existing_data_dir(ctx: &Context) -> Result<Summary> {
    let home = existing_home(ctx)?;
    let mut samples = Vec::with_capacity(ctx.runs);
    for _ in 0..ctx.runs {
        let mut gateway = ctx.binary.start(&home)?;
        samples.push(gateway.wait_ready()?);
        gateway.stop()?;
    }
    report("existing data dir", &samples)
}

/// The shared existing data dir, created by a warm-up start the first time.
fn existing_home(ctx: &Context) -> Result<std::path::PathBuf> {
    let home = ctx.scratch.join("existing/home");
    if !home.exists() {
        create_parent(&home)?;
        let mut warm_up = ctx.binary.start(&home)?;
        warm_up.wait_ready()?;
        warm_up.stop()?;
    }
    Ok(home)
}

fn report(label: &str, samples: &[Duration]) -> Result<Summary> {
    let summary = Summary::of(samples).context("no runs")?;
    eprintln!(
        "xtask: start to ready, {label}: p50 {} ms over {} runs",
        ms(summary.p50),
        summary.runs
    );
    Ok(summary)
}

struct IdleMemory {
    rss_kib: u64,
    hwm_kib: u64,
}

/// A `config.json` in the scratch dir that sets `memory.embedder` to the local embedder.
fn embedder_config(ctx: &Context) -> Result<std::path::PathBuf> {
    let path = ctx.scratch.join("embedder-config.json");
    crate::model::write_embedder_config(&path)?;
    Ok(path)
}

fn idle_memory(ctx: &Context, env: &[(&str, &str)]) -> Result<IdleMemory> {
    let home = existing_home(ctx)?;
    let mut gateway = ctx.binary.start_with(&home, env)?;
    gateway.wait_ready()?;
    sleep(IDLE_WAIT);
    let pid = gateway.pid().context("the gateway is not running")?;
    let status_path = format!("/proc/{pid}/status");
    let status =
        fs::read_to_string(&status_path).with_context(|| format!("reading {status_path}"))?;
    gateway.stop()?;
    let field =
        |key: &str| proc_kib(&status, key).with_context(|| format!("no {key} in {status_path}"));
    Ok(IdleMemory {
        rss_kib: field("VmRSS")?,
        hwm_kib: field("VmHWM")?,
    })
}

struct BinarySize {
    bytes: u64,
    /// What `strip` would still remove, or why we cannot tell.
    strip_saving: String,
}

fn binary_size(binary: &Path, scratch: &Path) -> Result<BinarySize> {
    let bytes = fs::metadata(binary)
        .with_context(|| format!("reading {}", binary.display()))?
        .len();
    let strip_saving = match find_program("strip") {
        None => "unknown (no `strip` installed)".to_owned(),
        Some(strip) => {
            let stripped = scratch.join("exoclaw.stripped");
            let result = output(
                command(strip, ["--strip-all", "-o"])
                    .arg(&stripped)
                    .arg(binary),
            )
            .and_then(|_| {
                fs::metadata(&stripped)
                    .map(|meta| meta.len())
                    .context("reading the stripped copy")
            });
            let _ = fs::remove_file(&stripped);
            match result {
                Ok(after) if after < bytes => format!("{} KiB", (bytes - after) / 1024),
                Ok(_) => "nothing (already stripped)".to_owned(),
                Err(_) => "unknown (`strip` cannot process it)".to_owned(),
            }
        }
    };
    Ok(BinarySize {
        bytes,
        strip_saving,
    })
}
