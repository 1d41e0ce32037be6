//! `search` (a regex over the files of the workspace, .gitignore-aware,
//! results `path:line:text`) and `glob` (a pattern over workspace paths).
//! Both walk with [`super::walk`] and cap their output: result count, line
//! length, file size, entries visited and wall time. `search` reads each
//! file in chunks and holds at most [`MAX_SCAN_LINE_BYTES`] of a line.

use super::lines::{Line, LineScanner, Scanned};
use super::walk::{Cut, Entry, Kind, WalkOptions, walk};
use super::{FsOptions, blocking, clip, parse_args};
use crate::path::Workspace;
use async_trait::async_trait;
use exoclaw_core::provider::ToolSpec;
use exoclaw_core::tool::{Check, Provenance, Tool, ToolContext, ToolEffect, ToolError, ToolOutput};
use rustix::fs::{FileType, Mode, OFlags};
use serde::Deserialize;
use serde_json::{Value, json};
use std::io::Read as _;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

const DEFAULT_RESULTS: usize = 100;
const MAX_RESULTS: usize = 1000;
/// Longest line of text shown per search hit.
const MAX_LINE_BYTES: usize = 300;
/// Most bytes of one line held and matched; a longer line is searched in
/// its first this many bytes only (and the output says so).
const MAX_SCAN_LINE_BYTES: usize = 64 * 1024;
/// Files larger than this are skipped by `search`.
const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;
/// A NUL in the first bytes marks a binary file, skipped.
const BINARY_PROBE_BYTES: usize = 8 * 1024;
const MAX_VISITS: usize = 200_000;
const TIME_BUDGET: Duration = Duration::from_secs(20);
/// Compiled-regex size limit: keeps a pathological pattern cheap.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

fn dot() -> String {
    ".".to_owned()
}

fn walk_options(hidden: bool) -> WalkOptions {
    WalkOptions {
        hidden,
        deadline: Instant::now() + TIME_BUDGET,
        max_visits: MAX_VISITS,
    }
}

fn cap(max_results: Option<usize>) -> Result<usize, ToolError> {
    match max_results {
        None => Ok(DEFAULT_RESULTS),
        Some(n) if (1..=MAX_RESULTS).contains(&n) => Ok(n),
        Some(_) => Err(ToolError::invalid_args(format!(
            "max_results: between 1 and {MAX_RESULTS}"
        ))),
    }
}

/// `rel` (relative to the walk's start `base`) as a workspace path.
fn shown(base: &str, rel: &str) -> String {
    let base = base.trim_start_matches("./").trim_end_matches('/');
    if base.is_empty() || base == "." {
        rel.to_owned()
    } else {
        format!("{base}/{rel}")
    }
}

fn footer(out: &mut String, found: usize, limit: usize, cut: Option<Cut>) {
    match cut {
        Some(Cut::Visitor) => out.push_str(&format!("[... stopped at {limit} results]\n")),
        Some(Cut::Deadline) => out.push_str(&format!(
            "[... stopped after {}s; narrow the path or pattern]\n",
            TIME_BUDGET.as_secs()
        )),
        Some(Cut::Budget) => out.push_str(&format!(
            "[... stopped after {MAX_VISITS} entries; narrow the path]\n"
        )),
        None if found == 0 => out.push_str("no matches\n"),
        None => {}
    }
}

/// A glob with `*` not crossing `/` and `**` crossing it, as in gitignore.
fn compile_glob(field: &str, pattern: &str) -> Result<globset::GlobMatcher, ToolError> {
    if pattern.starts_with('/') || pattern.split('/').any(|p| p == "..") {
        return Err(ToolError::invalid_args(format!(
            "{field}: must be relative to the searched directory (no leading '/' or '..')"
        )));
    }
    globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| ToolError::invalid_args(format!("{field}: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    pattern: String,
    #[serde(default = "dot")]
    path: String,
    /// Only files whose path (relative to `path`) matches this glob.
    glob: Option<String>,
    #[serde(default)]
    case_insensitive: bool,
    #[serde(default)]
    hidden: bool,
    max_results: Option<usize>,
}

struct SearchPlan {
    regex: regex::bytes::Regex,
    glob: Option<globset::GlobMatcher>,
    limit: usize,
}

impl SearchArgs {
    fn plan(&self) -> Result<SearchPlan, ToolError> {
        let regex = regex::bytes::RegexBuilder::new(&self.pattern)
            .case_insensitive(self.case_insensitive)
            .multi_line(true)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| ToolError::invalid_args(format!("pattern: {e}")))?;
        let glob = self
            .glob
            .as_deref()
            .map(|g| compile_glob("glob", g))
            .transpose()?;
        Ok(SearchPlan {
            regex,
            glob,
            limit: cap(self.max_results)?,
        })
    }
}

pub struct Search(pub FsOptions);

#[async_trait]
impl Tool for Search {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "search".into(),
            description: "Search the text files of the workspace for a regex (Rust regex syntax); honours .gitignore, skips hidden and binary files. Results are `path:line:text`.".into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "pattern": {"type": "string", "description": "regular expression, matched per line"},
                    "path": {"type": "string", "default": ".", "description": "directory to search, relative to the workspace"},
                    "glob": {"type": "string", "description": "only files matching this glob, e.g. **/*.rs"},
                    "case_insensitive": {"type": "boolean", "default": false},
                    "hidden": {"type": "boolean", "default": false, "description": "also search hidden files"},
                    "max_results": {"type": "integer", "minimum": 1, "maximum": MAX_RESULTS, "default": DEFAULT_RESULTS}
                },
                "required": ["pattern"],
                "additionalProperties": false
            }),
        }
    }

    fn effect(&self) -> ToolEffect {
        ToolEffect::ReadOnly
    }

    /// Matching lines are files' text: untrusted.
    fn provenance(&self) -> Provenance {
        Provenance::Untrusted
    }

    async fn check(&self, ctx: &ToolContext, args: &Value) -> Result<Check, ToolError> {
        let a: SearchArgs = parse_args(args)?;
        a.plan()?;
        let ws = self.0.workspace(ctx)?;
        blocking(move || check_dir(&ws, &a.path)).await?;
        Ok(Check::Allow)
    }

    async fn call(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let a: SearchArgs = parse_args(args)?;
        let plan = a.plan()?;
        let ws = self.0.workspace(ctx)?;
        blocking(move || search(&ws, &a, &plan).map(ToolOutput::text)).await
    }
}

fn check_dir(ws: &Workspace, given: &str) -> Result<(), ToolError> {
    ws.open_at(given, OFlags::PATH | OFlags::DIRECTORY, Mode::empty())
        .map(drop)
}

fn search(ws: &Workspace, a: &SearchArgs, plan: &SearchPlan) -> Result<String, ToolError> {
    let mut out = String::new();
    let mut found = 0usize;
    let mut clipped = 0usize;
    let mut scanner = LineScanner::new(MAX_SCAN_LINE_BYTES);
    let cut = walk(ws, &a.path, &walk_options(a.hidden), &mut |e: &Entry<
        '_,
    >| {
        if e.kind != Kind::File || plan.glob.as_ref().is_some_and(|g| !g.is_match(e.rel)) {
            return ControlFlow::Continue(());
        }
        let Some(mut file) = open_text_file(e) else {
            return ControlFlow::Continue(());
        };
        let path = shown(&a.path, e.rel);
        let scanned = scanner.scan(&mut file, BINARY_PROBE_BYTES, &mut |line: &Line<'_>| {
            if line.is_clipped() {
                clipped += 1;
            }
            if !is_hit(&plan.regex, line) {
                return ControlFlow::Continue(());
            }
            if found == plan.limit {
                return ControlFlow::Break(());
            }
            found += 1;
            out.push_str(&format!("{path}:{}:{}\n", line.number, shown_line(line)));
            ControlFlow::Continue(())
        });
        match scanned {
            Ok(Scanned::Stopped) => ControlFlow::Break(()),
            // An unreadable file is skipped like a binary one.
            Ok(Scanned::Done | Scanned::Binary) | Err(_) => ControlFlow::Continue(()),
        }
    })?;
    if clipped > 0 {
        out.push_str(&format!(
            "[... {clipped} line(s) longer than {MAX_SCAN_LINE_BYTES} bytes were searched only in their first {MAX_SCAN_LINE_BYTES} bytes]\n"
        ));
    }
    footer(&mut out, found, plan.limit, cut);
    Ok(out)
}

/// Whether `regex` matches the line. A clipped line only counts a match
/// that ends before the cut: `$` (or a greedy repeat) would otherwise
/// match at the cut, which is not the end of the line.
fn is_hit(regex: &regex::bytes::Regex, line: &Line<'_>) -> bool {
    if line.is_clipped() {
        regex
            .find_iter(line.text)
            .any(|m| m.end() < line.text.len())
    } else {
        regex.is_match(line.text)
    }
}

/// The text of a hit: its first [`MAX_LINE_BYTES`] and how many more the
/// line has (counting the part a clipped line was not read into memory for).
fn shown_line(line: &Line<'_>) -> String {
    let raw = if line.is_clipped() {
        line.text
    } else {
        line.text.strip_suffix(b"\r").unwrap_or(line.text)
    };
    let text = String::from_utf8_lossy(raw);
    let unread = line.len - line.text.len() as u64;
    if unread == 0 {
        return clip(&text, MAX_LINE_BYTES);
    }
    let mut cut = MAX_LINE_BYTES.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let more = (text.len() - cut) as u64 + unread;
    format!("{}[... {more} more bytes]", &text[..cut])
}

/// Open the file `e` relative to its directory fd (no symlink followed);
/// `None` for files too large to search, non-regular or unreadable ones.
fn open_text_file(e: &Entry<'_>) -> Option<std::io::Take<std::fs::File>> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(e.dir, e.name, flags, Mode::empty()).ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    let small = u64::try_from(st.st_size).is_ok_and(|n| n <= MAX_FILE_BYTES);
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile || !small {
        return None;
    }
    // A file that grows after the check is still read only up to the cap.
    Some(std::fs::File::from(fd).take(MAX_FILE_BYTES))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GlobArgs {
    pattern: String,
    #[serde(default = "dot")]
    path: String,
    #[serde(default)]
    hidden: bool,
    max_results: Option<usize>,
}

pub struct Glob(pub FsOptions);

#[async_trait]
impl Tool for Glob {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "glob".into(),
            description: "Find workspace paths matching a glob (`*` within a directory, `**` across directories, e.g. src/**/*.rs); honours .gitignore, skips hidden entries. Directories end with '/'.".into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "pattern": {"type": "string", "description": "glob relative to `path`"},
                    "path": {"type": "string", "default": ".", "description": "directory to search from, relative to the workspace"},
                    "hidden": {"type": "boolean", "default": false},
                    "max_results": {"type": "integer", "minimum": 1, "maximum": MAX_RESULTS, "default": DEFAULT_RESULTS}
                },
                "required": ["pattern"],
                "additionalProperties": false
            }),
        }
    }

    fn effect(&self) -> ToolEffect {
        ToolEffect::ReadOnly
    }

    async fn check(&self, ctx: &ToolContext, args: &Value) -> Result<Check, ToolError> {
        let a: GlobArgs = parse_args(args)?;
        compile_glob("pattern", &a.pattern)?;
        cap(a.max_results)?;
        let ws = self.0.workspace(ctx)?;
        blocking(move || check_dir(&ws, &a.path)).await?;
        Ok(Check::Allow)
    }

    async fn call(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let a: GlobArgs = parse_args(args)?;
        let matcher = compile_glob("pattern", &a.pattern)?;
        let limit = cap(a.max_results)?;
        let ws = self.0.workspace(ctx)?;
        blocking(move || {
            let mut hits = Vec::new();
            let cut = walk(&ws, &a.path, &walk_options(a.hidden), &mut |e: &Entry<
                '_,
            >| {
                if !matcher.is_match(e.rel) {
                    return ControlFlow::Continue(());
                }
                if hits.len() == limit {
                    return ControlFlow::Break(());
                }
                let slash = if e.kind == Kind::Dir { "/" } else { "" };
                hits.push(format!("{}{slash}", shown(&a.path, e.rel)));
                ControlFlow::Continue(())
            })?;
            let mut out: String = hits.iter().map(|h| format!("{h}\n")).collect();
            footer(&mut out, hits.len(), limit, cut);
            Ok(ToolOutput::text(out))
        })
        .await
    }
}
