//! `.rodata` for `cargo xtask layout`: the read-only data start-up reads, written as
//! `crates/exoclaw/rodata-order.ld`, a linker script that puts those input sections together in
//! one output section (`.rodata.startup`) before `.rodata` (`crates/exoclaw/build.rs` passes it).
//!
//! Why: as for `.text`, the kernel maps the 64 KiB around each fault of a file mapping
//! (fault-around), and start-up reads constants (strings, tables, jump tables) spread over the
//! whole 2.8 MiB of `.rodata`: 1.7 MiB of it was resident 5 s after ready, of which start-up had
//! read 0.7 MiB.
//!
//! How: callgrind does not report data addresses, and Rust's anonymous constants have no symbol
//! an ordering file could name; their input sections have names (`.rodata..Lanon.HASH.N`), which
//! a linker script can. To find the pages start-up reads, the binary is dropped from the page
//! cache and the disk's read-ahead is turned off for the run (restored after, also on error),
//! so the kernel has no cached neighbours to fault around: the pages a native start maps are the
//! pages it read (`/proc/PID/pagemap`). Each input section on such a page is listed, except the
//! merged ones (C string literals, constant pools) and large ones read in a few places. This
//! needs root (the read-ahead setting); without it the step is skipped and the file kept.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::command::{command, run as run_command};
use crate::error::{Context as _, Result, bail};

const PAGE: u64 = 4096;
/// The output section the script creates.
pub const HOT: &str = ".rodata.startup";

/// An input section of `.rodata` (or of [`HOT`], when the build already used a script).
#[derive(Debug, PartialEq)]
pub struct DataSection<'a> {
    pub address: u64,
    pub size: u64,
    /// The input section's name, such as `.rodata..Lanon.HASH.N`.
    pub name: &'a str,
}

/// One line of an lld link map (`-Map`): `VMA LMA Size Align`, then an output section (indented
/// 1), an input section (indented 9, `file:(section)`) or a symbol it defines (indented 17).
pub struct MapLine<'a> {
    pub address: u64,
    pub size: u64,
    /// 1, 9 or 17, as above.
    pub indent: usize,
    pub name: &'a str,
}

/// `line` read as a [`MapLine`]; `None` for the header and anything else.
pub fn map_line(line: &str) -> Option<MapLine<'_>> {
    let mut rest = line;
    let mut numbers = [0u64; 4];
    for (i, number) in numbers.iter_mut().enumerate() {
        let trimmed = rest.trim_start();
        let end = trimmed.find(' ').unwrap_or(trimmed.len());
        let radix = if i == 3 { 10 } else { 16 };
        *number = u64::from_str_radix(&trimmed[..end], radix).ok()?;
        rest = &trimmed[end..];
    }
    let name = rest.trim_start();
    Some(MapLine {
        address: numbers[0],
        size: numbers[2],
        indent: rest.len() - name.len(),
        name,
    })
}

/// The input sections of `.rodata` and [`HOT`] in an lld link map, by address.
pub fn data_sections(map: &str) -> Vec<DataSection<'_>> {
    let mut inside = false;
    let mut sections = Vec::new();
    for line in map.lines().filter_map(map_line) {
        let name = line.name;
        match line.indent {
            1 => inside = name == ".rodata" || name == HOT,
            9 if inside && line.size > 0 => {
                if let Some(section) = name
                    .rsplit_once(":(")
                    .and_then(|(_, s)| s.strip_suffix(')'))
                {
                    sections.push(DataSection {
                        address: line.address,
                        size: line.size,
                        name: section,
                    });
                }
            }
            _ => {}
        }
    }
    sections.sort_by_key(|s| s.address);
    sections
}

/// The read-ahead of the disk holding a file, turned off while this lives.
pub struct ColdCache {
    setting: PathBuf,
    saved: String,
}

impl ColdCache {
    /// `Ok(None)` when the setting cannot be changed (not root, no block device).
    pub fn start(binary: &Path) -> Result<Option<Self>> {
        let dev = fs::metadata(binary)
            .with_context(|| format!("reading {}", binary.display()))?
            .dev();
        let (major, minor) = (
            ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff),
            (dev & 0xff) | ((dev >> 12) & !0xff),
        );
        let device = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
        // A partition's queue settings are its disk's.
        let setting = [
            device.join("queue/read_ahead_kb"),
            device.join("../queue/read_ahead_kb"),
        ]
        .into_iter()
        .find(|p| p.exists());
        let Some(setting) = setting else {
            return Ok(None);
        };
        let Ok(saved) = fs::read_to_string(&setting) else {
            return Ok(None);
        };
        if fs::write(&setting, "0").is_err() {
            return Ok(None);
        }
        Ok(Some(Self {
            setting,
            saved: saved.trim().to_owned(),
        }))
    }

    /// Drops `binary` from the page cache (GNU dd's `nocache`: `posix_fadvise(DONTNEED)`).
    pub fn drop_file(&self, binary: &Path) -> Result<()> {
        let mut input = std::ffi::OsString::from("if=");
        input.push(binary);
        run_command(&mut command(
            "dd",
            [
                input.as_os_str(),
                "iflag=nocache".as_ref(),
                "count=0".as_ref(),
            ],
        ))
    }
}

impl Drop for ColdCache {
    fn drop(&mut self) {
        if let Err(e) = fs::write(&self.setting, &self.saved) {
            eprintln!(
                "xtask: layout: could not restore {} to {}: {e}",
                self.setting.display(),
                self.saved
            );
        }
    }
}

/// The pages of `binary`'s file mapping in `pid` that are present, as offsets from its load
/// address, between `start` and `end`.
pub fn present_pages(pid: u32, binary: &Path, start: u64, end: u64) -> Result<BTreeSet<u64>> {
    let maps = fs::read_to_string(format!("/proc/{pid}/maps")).context("reading maps")?;
    let canonical = fs::canonicalize(binary).unwrap_or_else(|_| binary.to_path_buf());
    let base = maps
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (range, offset, path) = (fields.first()?, fields.get(2)?, fields.get(5)?);
            (Path::new(path) == canonical && u64::from_str_radix(offset, 16).ok()? == 0)
                .then(|| u64::from_str_radix(range.split('-').next()?, 16).ok())
                .flatten()
        })
        .context("the binary is not mapped at offset 0")?;
    let mut pagemap =
        fs::File::open(format!("/proc/{pid}/pagemap")).context("opening pagemap (root?)")?;
    let mut present = BTreeSet::new();
    let mut entry = [0u8; 8];
    let mut page = start & !(PAGE - 1);
    while page < end {
        pagemap
            .seek(SeekFrom::Start((base + page) / PAGE * 8))
            .context("seeking pagemap")?;
        pagemap.read_exact(&mut entry).context("reading pagemap")?;
        if u64::from_le_bytes(entry) >> 63 == 1 {
            present.insert(page);
        }
        page += PAGE;
    }
    Ok(present)
}

/// The linker script putting every listable section on a `touched` page into [`HOT`], with how
/// many sections and bytes it lists.
pub fn script(sections: &[DataSection<'_>], touched: &BTreeSet<u64>) -> (String, usize, u64) {
    let mut text = String::from(HEADER);
    let (mut count, mut bytes) = (0, 0);
    text.push_str("SECTIONS\n{\n  ");
    text.push_str(HOT);
    text.push_str(" : {\n");
    for section in sections {
        let first = section.address & !(PAGE - 1);
        let last = (section.address + section.size - 1) & !(PAGE - 1);
        let pages = (last - first) / PAGE + 1;
        let hit = (0..pages)
            .filter(|i| touched.contains(&(first + i * PAGE)))
            .count() as u64;
        if hit == 0 || !listable(section.name) || (pages > 4 && hit * 2 < pages) {
            continue;
        }
        text.push_str("    *(");
        text.push_str(section.name);
        text.push_str(")\n");
        count += 1;
        bytes += section.size;
    }
    text.push_str("  }\n}\nINSERT BEFORE .rodata;\n");
    (text, count, bytes)
}

/// A section the script can name on its own: not merged with others by the linker (string
/// literals, constant pools) and spelled without characters a linker script reads as syntax.
fn listable(name: &str) -> bool {
    name.starts_with(".rodata.")
        && !name.starts_with(".rodata.str")
        && !name.starts_with(".rodata.cst")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.$".contains(&b))
}

const HEADER: &str = "\
/* Written by `cargo xtask layout`: the read-only data start-up reads, placed together before
   .rodata by crates/exoclaw/build.rs (lld -T; a script that only inserts). Generated; do not
   edit. Sections not in a build match nothing: a stale file costs memory, never correctness. */
";

/// Checks the preconditions the caller cannot: `dd` present.
pub fn check_tools() -> Result<()> {
    if crate::command::find_program("dd").is_none() {
        bail!("dd is needed to drop the binary from the page cache");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: &str = "\
             VMA              LMA     Size Align Out     In      Symbol
            9000             9000     2000  4096 .rodata.startup
            9000             9000       10     1         /x/a.o:(.rodata..Lanon.abc.1)
            9010             9010     1ff0     1         /x/a.o:(.rodata._ZN3foo3bar17h0123456789abcdefE)
            b000             b000     6000  4096 .rodata
            b000             b000      100    16         <internal>:(.rodata.cst16)
            b100             b100       20     1         /x/a.o:(.rodata..Lanon.abc.2)
            c000             c000     5000     1         /x/a.o:(.rodata..Lanon.abc.3)
           11000            11000     1000     8 .text
           11000            11000       10     1         /x/a.o:(.text.main)
";

    #[test]
    fn sections_of_both_output_sections_are_read_and_the_script_lists_touched_ones() {
        let sections = data_sections(MAP);
        let names: Vec<&str> = sections.iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                ".rodata..Lanon.abc.1",
                ".rodata._ZN3foo3bar17h0123456789abcdefE",
                ".rodata.cst16",
                ".rodata..Lanon.abc.2",
                ".rodata..Lanon.abc.3",
            ]
        );
        // Page 0xb000 read (cst16 and anon.2 on it), and one page of the five of anon.3.
        let touched = BTreeSet::from([0xb000, 0xe000]);
        let (text, count, bytes) = script(&sections, &touched);
        assert!(text.contains("*(.rodata..Lanon.abc.2)"), "{text}");
        assert!(!text.contains("cst16"), "merged sections stay");
        assert!(
            !text.contains("abc.3"),
            "one page of five: left where it is"
        );
        assert!(!text.contains("abc.1"), "not touched");
        assert_eq!((count, bytes), (1, 0x20));
        assert!(text.trim_end().ends_with("INSERT BEFORE .rodata;"));
    }
}
