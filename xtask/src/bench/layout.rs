//! `cargo xtask layout`: writes `crates/exoclaw/link-order.txt`, the functions that start-up and
//! the request path execute, which the linker places first and together in `.text`
//! (`--symbol-ordering-file`, set by `crates/exoclaw/build.rs`).
//!
//! Why: the kernel maps a file-backed page fault's neighbours too (fault-around, 64 KiB), so a
//! start-up that touches a few functions in every 64 KiB of an 8 MiB `.text` makes all of it
//! resident. Packed together, the executed code is about 1.7 MiB.
//!
//! How: build the release binary with a link map (`EXOCLAW_LINK_MAP`, the same profile, so the
//! same symbol names as every release build), run it under `valgrind --tool=callgrind` through
//! four starts (a bare restart on an existing data dir, idle, stop; restarts with a provider and
//! with the local embedder configured; and a first start on a new data dir with the requests a
//! client makes: models, a chat completion plain and streamed, a refused token), and map every
//! executed instruction address to the `.text.SYMBOL` input section that holds it. Restart
//! functions come first, then those only the first start and the requests ran. Then two native
//! starts with read-ahead off (`layout_rodata`) add what valgrind cannot show: the functions
//! that run only on the real CPU (SHA-NI and other feature-selected paths), found from the
//! `.text` pages they read, and the `.rodata` input sections start-up reads
//! (`crates/exoclaw/rodata-order.ld`). A name that no longer exists after a code change is
//! skipped by the linker, so a stale file costs memory, never correctness; re-run this after
//! larger changes or a toolchain update.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread::sleep;
use std::time::Duration;

use super::fake_llm::FakeLlm;
use super::fake_llm::start_gateway;
use super::gateway::GatewayBinary;
use super::http::{Conn, post_json};
use super::proxy::{check_completion, check_sse, completion_request};
use super::{Context, Scratch, layout_rodata, target_dir};
use crate::command::{cargo, find_program, run as run_command, workspace_root};
use crate::error::{Context as _, Result, bail};

/// Long enough for the idle timers (write-behind flush, memory trim) to run once.
const IDLE: Duration = Duration::from_secs(6);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest functions a bare restart runs, listed: the first places to look for a smaller
/// idle footprint.
const LARGEST: usize = 40;

pub fn run(args: &[String]) -> Result<ExitCode> {
    if let Some(arg) = args.first() {
        bail!("`cargo xtask layout` takes no arguments, got `{arg}`");
    }
    let Some(valgrind) = find_program("valgrind") else {
        bail!("valgrind is needed: apt-get install -y valgrind");
    };
    let scratch = Scratch::create()?;
    let map = scratch.dir.join("exoclaw.map");
    eprintln!(
        "xtask: $ EXOCLAW_LINK_MAP={} cargo build --release -p exoclaw",
        map.display()
    );
    run_command(
        cargo()
            .args(["build", "--release", "-p", "exoclaw"])
            .env("EXOCLAW_LINK_MAP", &map),
    )?;
    let binary = GatewayBinary::new(target_dir().join("release/exoclaw"))?;
    let map_text =
        fs::read_to_string(&map).with_context(|| format!("reading {}", map.display()))?;
    let sections = text_sections(&map_text);
    if sections.is_empty() {
        bail!("no .text input sections with symbols in {}", map.display());
    }

    let outputs = ["bare-restart", "embedder-restart", "restart", "first-start"].map(|phase| {
        let mut flag = OsString::from("--callgrind-out-file=");
        flag.push(scratch.dir.join(format!("callgrind.{phase}")));
        (phase, flag)
    });
    // Each phase runs the binary under callgrind with its own output file; `info` logging is
    // what a deployment runs with (the bare restart is `cargo xtask bench startup`'s: `warn`).
    let ctx = |out: &OsString, log: &str| -> Context {
        let wrapper: Vec<OsString> = vec![
            valgrind.clone().into(),
            "--tool=callgrind".into(),
            "--dump-instr=yes".into(),
            "--compress-strings=no".into(),
            "--compress-pos=no".into(),
            out.clone(),
        ];
        Context {
            binary: binary.wrapped(wrapper),
            runs: 1,
            seconds: 1,
            minutes: 1,
            gateway_env: vec![("EXOCLAW_LOG".to_owned(), log.to_owned())],
            scratch: scratch.dir.clone(),
        }
    };
    let fake = FakeLlm::start()?;
    eprintln!("xtask: layout: first start with a provider, requests, idle");
    first_start(&ctx(&outputs[3].1, "info"), &fake)?;
    eprintln!("xtask: layout: bare restart (no provider), idle");
    let bare = ctx(&outputs[0].1, "warn");
    let mut gateway = bare.binary.start(&scratch.dir.join("layout/home"))?;
    gateway.wait_ready()?;
    sleep(IDLE);
    gateway.stop()?;
    eprintln!("xtask: layout: restart with a provider, idle");
    let gateway = start_gateway(&ctx(&outputs[2].1, "info"), &fake, "layout")?;
    sleep(IDLE);
    gateway.stop()?;
    // `memory.embedder` set, as issue 14's idle figure has it: the config file's own sections
    // and the embedder's set-up (it reads the model's `config.json`; the weights load at the
    // first search).
    eprintln!("xtask: layout: restart with the local embedder configured, idle");
    let embedder = ctx(&outputs[1].1, "warn");
    let config = scratch.dir.join("embedder-config.json");
    crate::model::write_embedder_config(&config)?;
    let config = config.to_str().context("the scratch path is not UTF-8")?;
    let mut gateway = embedder.binary.start_with(
        &scratch.dir.join("layout/home"),
        &[("EXOCLAW_CONFIG", config)],
    )?;
    gateway.wait_ready()?;
    sleep(IDLE);
    gateway.stop()?;

    // Bare restart first (the idle footprint), then what a configured embedder adds (a config
    // file read: its functions are most of what a provider adds too), then what a provider adds,
    // then what only the first start and the requests ran.
    let mut order: Vec<&str> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut bare_end = 0;
    for (phase, _) in &outputs {
        let path = scratch.dir.join(format!("callgrind.{phase}"));
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let fns = executed(&sections, &text);
        eprintln!(
            "xtask: layout: {phase}: {} functions, {} KiB; most by crate: {}",
            fns.len(),
            fns.iter().map(|s| s.size).sum::<u64>() / 1024,
            by_crate(&fns, 12)
        );
        if *phase == "bare-restart" {
            let mut largest = fns.clone();
            largest.sort_by_key(|f| std::cmp::Reverse(f.size));
            for f in largest.iter().take(LARGEST) {
                eprintln!("xtask: layout:   {:>6} {}", f.size, f.symbol);
            }
        }
        for section in fns {
            if seen.insert(section.symbol) {
                order.push(section.symbol);
            }
        }
        if *phase == "bare-restart" {
            bare_end = order.len();
        }
    }
    // What native starts ran and callgrind could not see (valgrind hides CPU features, so the
    // SHA-NI and other feature-selected paths run only natively): the functions on `.text`
    // pages a native start read that hold no function callgrind saw, after the bare restart's.
    let text_range = match (sections.first(), sections.last()) {
        (Some(first), Some(last)) => (first.address, last.address + last.size),
        _ => (0, 0),
    };
    if let Some(pages) = native(&binary, &scratch.dir, &map_text, config, text_range)? {
        let extra = native_only(&sections, &seen, &pages);
        eprintln!(
            "xtask: layout: native starts ran {} functions ({} KiB) callgrind did not see",
            extra.len(),
            extra.iter().map(|s| s.size).sum::<u64>() / 1024
        );
        let tail = order.split_off(bare_end);
        for section in extra {
            if seen.insert(section.symbol) {
                order.push(section.symbol);
            }
        }
        order.extend(tail);
    }
    let executed_bytes: u64 = sections
        .iter()
        .filter(|s| seen.contains(s.symbol))
        .map(|s| s.size)
        .sum();
    let text_bytes: u64 = sections.iter().map(|s| s.size).sum();
    let out = workspace_root().join("crates/exoclaw/link-order.txt");
    let mut text = String::from(HEADER);
    for symbol in &order {
        text.push_str(symbol);
        text.push('\n');
    }
    fs::write(&out, text).with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "xtask: layout: {} of {} functions executed ({} KiB of {} KiB); wrote {}",
        order.len(),
        sections.len(),
        executed_bytes / 1024,
        text_bytes / 1024,
        relative(&out).display()
    );
    eprintln!("xtask: rebuild (cargo build --release) to link with it");
    Ok(ExitCode::SUCCESS)
}

/// The sections of `.text` on pages in `pages` where no section callgrind saw lies.
fn native_only<'a>(
    sections: &'a [Section<'a>],
    seen: &std::collections::HashSet<&str>,
    pages: &std::collections::BTreeSet<u64>,
) -> Vec<&'a Section<'a>> {
    const PAGE: u64 = 4096;
    let page_range = |s: &Section<'_>| {
        let first = s.address & !(PAGE - 1);
        let last = (s.address + s.size.max(1) - 1) & !(PAGE - 1);
        (first..=last).step_by(4096)
    };
    let mut seen_pages = std::collections::BTreeSet::new();
    for section in sections.iter().filter(|s| seen.contains(s.symbol)) {
        seen_pages.extend(page_range(section));
    }
    sections
        .iter()
        .filter(|s| !seen.contains(s.symbol))
        .filter(|s| page_range(s).any(|p| pages.contains(&p) && !seen_pages.contains(&p)))
        .collect()
}

/// Runs a bare restart and a restart with the embedder configured natively (not under valgrind)
/// with the binary out of the page cache and read-ahead off (see `layout_rodata`); writes
/// `crates/exoclaw/rodata-order.ld` from the `.rodata` pages they read and returns the `.text`
/// pages in `text_range` they ran. `None` when read-ahead cannot be turned off (not root).
fn native(
    binary: &GatewayBinary,
    scratch: &Path,
    map: &str,
    embedder_config: &str,
    text_range: (u64, u64),
) -> Result<Option<std::collections::BTreeSet<u64>>> {
    let out = workspace_root().join("crates/exoclaw/rodata-order.ld");
    layout_rodata::check_tools()?;
    let sections = layout_rodata::data_sections(map);
    let (Some(first), Some(last)) = (sections.first(), sections.last()) else {
        bail!("no .rodata input sections in the link map");
    };
    let (start, end) = (first.address, last.address + last.size);
    let Some(cold) = layout_rodata::ColdCache::start(binary.path())? else {
        eprintln!(
            "xtask: layout: cannot turn the disk's read-ahead off (not root?); {} kept",
            relative(&out).display()
        );
        return Ok(None);
    };
    let home = scratch.join("layout/home");
    let mut touched = std::collections::BTreeSet::new();
    let mut text_pages = std::collections::BTreeSet::new();
    let plain: &[(&str, &str)] = &[];
    for extra in [plain, &[("EXOCLAW_CONFIG", embedder_config)]] {
        cold.drop_file(binary.path())?;
        let mut gateway = binary.start_with(&home, extra)?;
        gateway.wait_ready()?;
        sleep(IDLE);
        let pid = gateway.pid().context("the gateway is not running")?;
        touched.extend(layout_rodata::present_pages(
            pid,
            binary.path(),
            start,
            end,
        )?);
        text_pages.extend(layout_rodata::present_pages(
            pid,
            binary.path(),
            text_range.0,
            text_range.1,
        )?);
        gateway.stop()?;
    }
    drop(cold);
    let (text, count, bytes) = layout_rodata::script(&sections, &touched);
    fs::write(&out, text).with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "xtask: layout: .rodata: start-up read {} KiB in {} pages; {count} sections ({} KiB) listed; wrote {}",
        touched.len() * 4,
        touched.len(),
        bytes / 1024,
        relative(&out).display()
    );
    Ok(Some(text_pages))
}

const HEADER: &str = "\
# Written by `cargo xtask layout`: the functions start-up and the request path execute, placed
# first in .text by crates/exoclaw/build.rs (lld --symbol-ordering-file). Generated; do not edit.
";

/// The first start on a new data dir, then the requests a client makes, then idle and stop.
fn first_start(ctx: &Context, fake: &FakeLlm) -> Result<()> {
    let gateway = start_gateway(ctx, fake, "layout")?;
    let addr = gateway.addr();
    let token = ctx.binary.token();
    let mut conn = Conn::new(addr, REQUEST_TIMEOUT);
    let get = |path: &str, bearer: Option<&str>| {
        let auth = bearer.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}\r\n").into_bytes()
    };
    let expect = |what: &str, status: u16, want: u16| -> Result<()> {
        if status != want {
            bail!("{what}: status {status}, expected {want}");
        }
        Ok(())
    };
    let send = |conn: &mut Conn, request: &[u8]| {
        conn.send(request)
            .map_err(|err| crate::error::Error::msg(format!("request failed: {err}")))
    };
    expect(
        "/healthz",
        send(&mut conn, &get("/healthz", None))?.status,
        200,
    )?;
    expect(
        "/v1/models",
        send(&mut conn, &get("/v1/models", Some(token)))?.status,
        200,
    )?;
    expect(
        "wrong token",
        send(
            &mut conn,
            &get("/v1/models", Some("exoclaw-wrong-token-0000000000000000")),
        )?
        .status,
        401,
    )?;
    for i in 0..2 {
        let response = send(
            &mut conn,
            &completion_request(&gateway, token, "layout", 0, i),
        )?;
        check_completion(&response).map_err(crate::error::Error::msg)?;
    }
    let streamed = post_json(
        addr,
        "/v1/chat/completions",
        Some(token),
        r#"{"model":"default","messages":[{"role":"user","content":"hi"}],"stream":true,"user":"layout-stream"}"#,
    );
    check_sse(&send(&mut conn, &streamed)?).map_err(crate::error::Error::msg)?;
    sleep(IDLE);
    gateway.stop()
}

/// An input section of `.text` in the link map, named by the first symbol it defines.
#[derive(Debug, PartialEq)]
struct Section<'a> {
    address: u64,
    size: u64,
    symbol: &'a str,
}

/// The input sections of `.text` in an lld link map (`-Map`, lines as in
/// [`layout_rodata::MapLine`]), each named by the first symbol it defines, by address. The
/// first symbol is what the ordering file names: for Rust's `.text.SYMBOL` and
/// `.text.unlikely.SYMBOL` it is SYMBOL, and it also names C and assembly objects' plain
/// `.text` (sqlite, ring), which hold many functions.
fn text_sections(map: &str) -> Vec<Section<'_>> {
    let mut in_text = false;
    let mut sections = Vec::new();
    let mut pending: Option<(u64, u64)> = None;
    for line in map.lines().filter_map(layout_rodata::map_line) {
        match line.indent {
            1 => {
                in_text = line.name == ".text";
                pending = None;
            }
            9 => pending = (in_text && line.size > 0).then_some((line.address, line.size)),
            17 => {
                if let Some((address, size)) = pending.take() {
                    sections.push(Section {
                        address,
                        size,
                        symbol: line.name,
                    });
                }
            }
            _ => {}
        }
    }
    sections.sort_by_key(|s| s.address);
    sections
}

/// The sections holding an instruction callgrind saw executed in the `/exoclaw` object, by
/// address. With `--dump-instr=yes --compress-strings=no --compress-pos=no`, `ob=` names the
/// object of the `fn=` blocks after it and cost lines start with the instruction's address
/// (the link-time address: the object is position-independent and callgrind reports offsets
/// from its base of 0).
fn executed<'a>(sections: &'a [Section<'a>], callgrind: &str) -> Vec<&'a Section<'a>> {
    let mut hit = BTreeMap::new();
    let mut ours = false;
    for line in callgrind.lines() {
        if let Some(object) = line.strip_prefix("ob=") {
            ours = object.ends_with("/exoclaw");
            continue;
        }
        if !ours {
            continue;
        }
        let address = line
            .strip_prefix("fn=")
            .map(|f| f.split('\'').next().unwrap_or(f))
            .or_else(|| {
                line.split_whitespace()
                    .next()
                    .filter(|w| w.starts_with("0x"))
            });
        let Some(address) = address
            .and_then(|a| a.strip_prefix("0x"))
            .and_then(|a| u64::from_str_radix(a, 16).ok())
        else {
            continue;
        };
        let index = sections.partition_point(|s| s.address <= address);
        if let Some(section) = index.checked_sub(1).map(|i| &sections[i])
            && address < section.address + section.size
        {
            hit.insert(section.address, section);
        }
    }
    hit.into_values().collect()
}

/// The `top` crates with the most executed code, as `crate KiB, ...`: where start-up's
/// resident `.text` comes from.
fn by_crate(fns: &[&Section<'_>], top: usize) -> String {
    let mut sizes: BTreeMap<&str, u64> = BTreeMap::new();
    for f in fns {
        *sizes.entry(crate_of(f.symbol)).or_default() += f.size;
    }
    let mut sizes: Vec<_> = sizes.into_iter().collect();
    sizes.sort_by_key(|&(_, size)| std::cmp::Reverse(size));
    sizes
        .iter()
        .take(top)
        .map(|(name, size)| format!("{name} {}", size / 1024))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The crate a legacy-mangled Rust symbol belongs to (`_ZN5tokio7runtime...` is `tokio`; an
/// impl block `_ZN..._$LT$alloc..vec..Vec...` is its self type's crate); `C` for anything
/// else (SQLite, mimalloc, ring's assembly).
fn crate_of(symbol: &str) -> &str {
    let Some(rest) = symbol.strip_prefix("_ZN") else {
        return "C";
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let Ok(len) = rest[..digits].parse::<usize>() else {
        return "C";
    };
    let first = rest.get(digits..digits + len).unwrap_or("C");
    let first = first.strip_prefix("_$LT$").unwrap_or(first);
    let end = first
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(first.len());
    &first[..end]
}

fn relative(path: &Path) -> PathBuf {
    path.strip_prefix(workspace_root())
        .map_or_else(|_| path.to_path_buf(), Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: &str = "             VMA              LMA     Size Align Out     In      Symbol
             2e0              2e0       1c     1 .interp
             2e0              2e0       1c     1         <internal>:(.interp)
            1000             1000       40    64 .rodata
            1000             1000       10     4         a.o:(.rodata._ZN1a1fE)
            1000             1000        0     1                 _ZN1a1fE
            2000             2000      400    64 .text
            2000             2000      100    16         x.o:(.text._ZN1x4mainE)
            2000             2000        0     1                 _ZN1x4mainE
            2100             2100      100    16         x.o:(.text.unlikely._RNvCs1_1x4idle)
            2100             2100        0     1                 _RNvCs1_1x4idle
            2200             2200      100    16         chacha.o:(.text)
            2200             2200       40     1                 chacha_open
            2240             2240       c0     1                 chacha_seal
            2300             2300        0    16         empty.o:(.text.nothing)
            2300             2300        0     1                 nothing
            2300             2300      100    16         x.o:(.text.anonymous)
            3000             3000       10     8 .data
            3000             3000       10     8         x.o:(.data._ZN1x4dataE)
            3000             3000        0     1                 _ZN1x4dataE
";

    #[test]
    fn text_sections_are_named_by_their_first_symbol() {
        let sections = text_sections(MAP);
        assert_eq!(
            sections,
            [
                Section {
                    address: 0x2000,
                    size: 0x100,
                    symbol: "_ZN1x4mainE"
                },
                Section {
                    address: 0x2100,
                    size: 0x100,
                    symbol: "_RNvCs1_1x4idle"
                },
                Section {
                    address: 0x2200,
                    size: 0x100,
                    symbol: "chacha_open"
                },
            ]
        );
    }

    #[test]
    fn native_only_takes_the_unseen_functions_of_pages_no_seen_function_is_on() {
        let section = |address, size, symbol| Section {
            address,
            size,
            symbol,
        };
        let sections = [
            section(0x1000, 0x100, "seen"),
            section(0x1100, 0x100, "neighbour_of_seen"),
            section(0x5000, 0x80, "sha_ni"),
            section(0x5080, 0x80, "sha_ni_neighbour"),
            section(0x9000, 0x80, "never_read"),
        ];
        let seen = std::collections::HashSet::from(["seen"]);
        let pages = std::collections::BTreeSet::from([0x1000, 0x5000]);
        let extra: Vec<&str> = native_only(&sections, &seen, &pages)
            .iter()
            .map(|s| s.symbol)
            .collect();
        assert_eq!(extra, ["sha_ni", "sha_ni_neighbour"]);
    }

    #[test]
    fn executed_maps_our_addresses_only() {
        let sections = text_sections(MAP);
        let callgrind = "\
ob=/usr/lib/x86_64-linux-gnu/libc.so.6
fn=0x0000000000002000
0x2000 5
ob=/tmp/target/release/exoclaw
fn=0x00000000000021f0'2
0x21f0 3
calls=1 0x0
0x21f4 1
0x5000 1
";
        let hit: Vec<&str> = executed(&sections, callgrind)
            .iter()
            .map(|s| s.symbol)
            .collect();
        assert_eq!(hit, ["_RNvCs1_1x4idle"]);
        let callgrind = "ob=/tmp/target/release/exoclaw\nfn=0x2010\n0x2010 1\n";
        let hit: Vec<&str> = executed(&sections, callgrind)
            .iter()
            .map(|s| s.symbol)
            .collect();
        assert_eq!(hit, ["_ZN1x4mainE"]);
    }

    #[test]
    fn crate_of_reads_the_first_path_component() {
        assert_eq!(
            crate_of("_ZN5tokio7runtime4park17h0123456789abcdefE"),
            "tokio"
        );
        assert_eq!(
            crate_of("_ZN61_$LT$alloc..vec..Vec$LT$T$GT$$u20$as$u20$core..ops..Drop$GT$4drop17h0E"),
            "alloc"
        );
        assert_eq!(crate_of("sqlite3VdbeExec"), "C");
        assert_eq!(crate_of("_ZN99short"), "C");
    }
}
