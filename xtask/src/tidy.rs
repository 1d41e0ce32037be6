//! `cargo xtask tidy`: the structural rules of the codebase, checked on the
//! source text (std only, no parser crate), in the manner of rust-analyzer's
//! `tidy.rs`. CI runs it before the tests. It fails on:
//!
//! - a `.rs` file whose first non-blank line is not a `//!` module doc;
//! - a file over [`MAX_LINES`] lines that is not a test (`tests.rs`, a file
//!   under `tests/` or `benches/`);
//! - a crate depending on a crate of its own or a higher layer
//!   ([`CRATE_LAYERS`]);
//! - in a crate with declared module layers ([`MODULE_LAYERS`]), a top-level
//!   module that is not declared, or that names (`crate::x`, `super::x`,
//!   `use`) a module of a higher layer;
//! - an import circle between files of one crate (a file naming a second
//!   that names the first, directly or around a longer loop). Test files and
//!   `#[cfg(test)]` modules are left out: tests may reach anywhere.
//!
//! The layers are the ones ARCHITECTURE.md describes; change both together.

use crate::error::{Result, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Longest source file outside tests.
pub const MAX_LINES: usize = 1000;

/// Crates bottom-up: a crate may depend only on crates of lower layers.
pub const CRATE_LAYERS: &[(&str, usize)] = &[
    ("exoclaw-core", 0),
    ("exoclaw-egress", 1),
    ("exoclaw-guard", 1),
    ("exoclaw-providers", 2),
    ("exoclaw-embed", 2),
    ("exoclaw-tools", 2),
    ("exoclaw-store", 2),
    ("exoclaw-gateway", 3),
    ("exoclaw", 4),
];

/// Per crate, its top-level modules bottom-up, one layer a line: a module
/// may name modules of its own layer (without a circle) or lower ones.
pub const MODULE_LAYERS: &[(&str, &[&[&str]])] = &[
    (
        "exoclaw-gateway",
        &[
            &["clock", "version", "config", "home", "access", "test_store"],
            &[
                "supervisor",
                "credentials",
                "telemetry",
                "metrics",
                "audit",
                "alerts",
                "revocation",
                "db",
                "egress",
                "tenants",
            ],
            &[
                "users", "pairing", "channels", "mcp", "memory", "skills", "runtime", "backup",
            ],
        ],
    ),
    (
        "exoclaw",
        &[
            &["alloc", "logging", "out", "version", "config", "cli"],
            &["security"],
            &["http"],
            &["serve"],
            &["cmd"],
        ],
    ),
];

/// `cargo xtask tidy`: every problem, one a line; non-zero when any.
pub fn run() -> Result<std::process::ExitCode> {
    let root = workspace_root()?;
    let problems = check(&root)?;
    for p in &problems {
        eprintln!("tidy: {p}");
    }
    if problems.is_empty() {
        eprintln!("tidy: ok");
        Ok(std::process::ExitCode::SUCCESS)
    } else {
        eprintln!("tidy: {} problem(s)", problems.len());
        Ok(std::process::ExitCode::FAILURE)
    }
}

fn workspace_root() -> Result<PathBuf> {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    match here.parent() {
        Some(p) => Ok(p.to_path_buf()),
        None => bail!("cannot find the workspace root from {}", here.display()),
    }
}

/// Every problem in the workspace at `root`.
pub fn check(root: &Path) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut crates: Vec<PathBuf> = read_dir(&root.join("crates"))?
        .into_iter()
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    crates.push(root.join("xtask"));
    for dir in &crates {
        let name = crate_name(dir)?;
        let files = rust_files(dir)?;
        for f in &files {
            let text = read(f)?;
            let rel = f.strip_prefix(root).unwrap_or(f).display().to_string();
            if !starts_with_module_doc(&text) {
                problems.push(format!(
                    "{rel}: the file does not start with a `//!` module doc"
                ));
            }
            let lines = text.lines().count();
            if lines > MAX_LINES && !is_test_file(f) {
                problems.push(format!(
                    "{rel}: {lines} lines (at most {MAX_LINES} outside tests): split it by responsibility"
                ));
            }
        }
        problems.extend(crate_dependencies(dir, &name)?);
        let src = dir.join("src");
        if src.is_dir() {
            let graph = Graph::build(&src, &files)?;
            problems.extend(graph.layer_problems(&name, root));
            problems.extend(graph.circles(root));
        }
    }
    Ok(problems)
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| crate::error::Error::msg(format!("cannot read {}: {e}", path.display())))
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| crate::error::Error::msg(format!("cannot list {}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    out.sort();
    Ok(out)
}

/// `name = "..."` of the `[package]` table.
fn crate_name(dir: &Path) -> Result<String> {
    let toml = read(&dir.join("Cargo.toml"))?;
    toml.lines()
        .skip_while(|l| l.trim() != "[package]")
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == "name").then(|| v.trim().trim_matches('"').to_owned())
        })
        .ok_or_else(|| crate::error::Error::msg(format!("{}: no package name", dir.display())))
}

/// Every `.rs` file of a crate (sources, tests, benches, fuzz targets), not
/// build output.
fn rust_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for p in read_dir(&d)? {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if p.is_dir() {
                if !matches!(name, "target" | "corpus" | "artifacts" | "coverage") {
                    stack.push(p);
                }
            } else if name.ends_with(".rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn starts_with_module_doc(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .is_some_and(|l| l.starts_with("//!"))
}

fn is_test_file(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == "tests.rs")
        || path
            .components()
            .any(|c| matches!(c.as_os_str().to_str(), Some("tests" | "benches" | "fuzz")))
}

/// Dependencies on crates of the same or a higher layer.
fn crate_dependencies(dir: &Path, name: &str) -> Result<Vec<String>> {
    let Some(own) = layer_of_crate(name) else {
        return Ok(Vec::new());
    };
    let toml = read(&dir.join("Cargo.toml"))?;
    let mut problems = Vec::new();
    let mut section = String::new();
    for line in toml.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.trim_matches(|c| c == '[' || c == ']').to_owned();
            continue;
        }
        if section != "dependencies" {
            continue;
        }
        let Some((dep, _)) = line.split_once(['=', '.']) else {
            continue;
        };
        let dep = dep.trim();
        if let Some(theirs) = layer_of_crate(dep)
            && theirs >= own
        {
            problems.push(format!(
                "crates: {name} (layer {own}) depends on {dep} (layer {theirs}): a crate depends only on lower layers"
            ));
        }
    }
    Ok(problems)
}

fn layer_of_crate(name: &str) -> Option<usize> {
    CRATE_LAYERS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, l)| *l)
}

/// The files of one crate's `src` and which files each one names.
struct Graph {
    src: PathBuf,
    /// File -> the files it names (not itself, not the crate root).
    edges: BTreeMap<PathBuf, BTreeSet<PathBuf>>,
}

impl Graph {
    fn build(src: &Path, files: &[PathBuf]) -> Result<Self> {
        let mut edges = BTreeMap::new();
        for f in files
            .iter()
            .filter(|f| f.starts_with(src) && !is_test_file(f))
        {
            let text = strip_tests(&strip_comments_and_strings(&read(f)?));
            let module = module_path(src, f);
            let children = declared_children(&text);
            let mut named = BTreeSet::new();
            let own_dir = f.parent().map(Path::to_path_buf).unwrap_or_default();
            let own_children =
                own_dir.join(f.file_stem().filter(|s| *s != "mod").unwrap_or_default());
            for (path, reexport) in referenced_paths(&text) {
                if let Some(target) = resolve(src, &module, &children, &path)
                    && target != *f
                    && !is_crate_root(src, &target)
                    // A module re-exporting its own children is their
                    // facade, not a user of them.
                    && !(reexport && target.starts_with(&own_children))
                {
                    named.insert(target);
                }
            }
            edges.insert(f.clone(), named);
        }
        Ok(Self {
            src: src.to_path_buf(),
            edges,
        })
    }

    /// The top-level module a file belongs to (`None`: the crate root).
    fn top(&self, file: &Path) -> Option<String> {
        let rel = file.strip_prefix(&self.src).ok()?;
        let first = rel.components().next()?.as_os_str().to_str()?;
        let top = first.strip_suffix(".rs").unwrap_or(first);
        (!matches!(top, "lib" | "main")).then(|| top.to_owned())
    }

    fn layer_problems(&self, krate: &str, root: &Path) -> Vec<String> {
        let Some((_, layers)) = MODULE_LAYERS.iter().find(|(n, _)| *n == krate) else {
            return Vec::new();
        };
        let layer = |m: &str| layers.iter().position(|l| l.contains(&m));
        let mut problems = BTreeSet::new();
        for (from, targets) in &self.edges {
            let Some(a) = self.top(from) else { continue };
            let Some(la) = layer(&a) else {
                problems.insert(format!(
                    "{krate}: module `{a}` is not in a layer (xtask/src/tidy.rs MODULE_LAYERS and ARCHITECTURE.md)"
                ));
                continue;
            };
            for to in targets {
                let Some(b) = self.top(to) else { continue };
                if let Some(lb) = layer(&b)
                    && lb > la
                {
                    problems.insert(format!(
                        "{}: `{a}` (layer {}) names `{b}` (layer {}): a module names only its own or lower layers",
                        rel(root, from),
                        la + 1,
                        lb + 1
                    ));
                }
            }
        }
        problems.into_iter().collect()
    }

    /// One problem per import circle (a strongly connected set of files).
    fn circles(&self, root: &Path) -> Vec<String> {
        tarjan(&self.edges)
            .into_iter()
            .filter(|c| c.len() > 1)
            .map(|c| {
                let names: Vec<String> = c.iter().map(|f| rel(root, f)).collect();
                format!(
                    "import circle of {} files: {}",
                    names.len(),
                    names.join(" <-> ")
                )
            })
            .collect()
    }
}

fn rel(root: &Path, f: &Path) -> String {
    f.strip_prefix(root).unwrap_or(f).display().to_string()
}

fn is_crate_root(src: &Path, f: &Path) -> bool {
    *f == src.join("lib.rs") || *f == src.join("main.rs")
}

/// `src/http/ws.rs` -> `["http", "ws"]`; `src/http/mod.rs` -> `["http"]`.
fn module_path(src: &Path, f: &Path) -> Vec<String> {
    let rel = f.strip_prefix(src).unwrap_or(f);
    let mut parts: Vec<String> = rel
        .components()
        .filter_map(|c| c.as_os_str().to_str().map(str::to_owned))
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.strip_suffix(".rs").unwrap_or(&last).to_owned();
        if !matches!(stem.as_str(), "mod" | "lib" | "main") {
            parts.push(stem);
        }
    }
    parts
}

/// The file a path names: the deepest module file along it.
fn resolve(
    src: &Path,
    module: &[String],
    children: &BTreeSet<String>,
    path: &[String],
) -> Option<PathBuf> {
    let (mut base, rest): (Vec<String>, &[String]) = match path.first().map(String::as_str) {
        Some("crate") => (Vec::new(), &path[1..]),
        Some("super") => {
            let mut base = module.to_vec();
            let mut rest = path;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
            (base, rest)
        }
        Some("self") => (module.to_vec(), &path[1..]),
        Some(first) if children.contains(first) => (module.to_vec(), path),
        _ => return None,
    };
    let mut file = None;
    for seg in rest {
        let dir: PathBuf = base.iter().fold(src.to_path_buf(), |d, s| d.join(s));
        let as_file = dir.join(format!("{seg}.rs"));
        let as_dir = dir.join(seg).join("mod.rs");
        if as_file.is_file() {
            file = Some(as_file);
        } else if as_dir.is_file() {
            file = Some(as_dir);
        } else {
            break;
        }
        base.push(seg.clone());
    }
    file.or_else(|| {
        // `super::Item`: the parent module's own file.
        let dir: PathBuf = base.iter().fold(src.to_path_buf(), |d, s| d.join(s));
        let (parent, name) = (dir.parent()?, dir.file_name()?.to_str()?);
        let f = parent.join(format!("{name}.rs"));
        if f.is_file() {
            Some(f)
        } else {
            Some(dir.join("mod.rs")).filter(|p| p.is_file())
        }
    })
}

/// `mod x;` declarations of a file.
fn declared_children(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter_map(|l| {
            let l = l
                .strip_prefix("pub(crate) ")
                .or_else(|| l.strip_prefix("pub "))
                .unwrap_or(l);
            let name = l.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.trim().to_owned())
        })
        .collect()
}

/// Every path a file names that may leave it: `use` trees (flattened; the
/// flag says `pub use`, a re-export) and inline `crate::`, `super::` and
/// `self::` paths.
fn referenced_paths(text: &str) -> Vec<(Vec<String>, bool)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = find_word(rest, "use ") {
        let reexport = rest[..i].trim_end().ends_with("pub") || rest[..i].trim_end().ends_with(')');
        let after = &rest[i + 4..];
        let end = after.find(';').unwrap_or(after.len());
        let mut paths = Vec::new();
        flatten_use(&after[..end], &mut Vec::new(), &mut paths);
        out.extend(paths.into_iter().map(|p| (p, reexport)));
        rest = &after[end..];
    }
    for anchor in ["crate::", "super::", "self::"] {
        let mut rest = text;
        while let Some(i) = find_word(rest, anchor) {
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(tail.len());
            let segs: Vec<String> = tail[..end]
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            out.push((segs, false));
            rest = &tail[end..];
        }
    }
    out
}

/// The position of `word` in `text` where it starts a word.
fn find_word(text: &str, word: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find(word) {
        let at = from + i;
        let before = text[..at].chars().next_back();
        if before.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')) {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

/// `a::{b, c::{d, e}}` -> `a::b`, `a::c::d`, `a::c::e`.
fn flatten_use(tree: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head: Vec<String> = tree[..open]
            .split("::")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let inner = tree[open + 1..].trim_end().trim_end_matches('}');
        let depth = prefix.len();
        prefix.extend(head);
        for part in split_top_level(inner) {
            flatten_use(part, prefix, out);
        }
        prefix.truncate(depth);
    } else {
        let path = tree.split(" as ").next().unwrap_or(tree);
        let mut full = prefix.clone();
        full.extend(
            path.split("::")
                .map(str::trim)
                .filter(|s| !s.is_empty() && *s != "*")
                .map(str::to_owned),
        );
        if !full.is_empty() {
            out.push(full);
        }
    }
}

/// Split on commas outside braces.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// The text without comments and without the contents of string and char
/// literals (so a path in a doc or a message is not an edge).
fn strip_comments_and_strings(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'r' && matches!(b.get(i + 1), Some(b'#' | b'"')) && !ident_before(b, i) {
            // A raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push('r');
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == b'"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&b'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && b.get(i + 2) == Some(&b'\'') {
            // 'c'
            i += 3;
        } else if b[i] == b'\'' && b.get(i + 1) == Some(&b'\\') {
            // '\n', '\u{..}'
            i += 2;
            while i < b.len() && b[i] != b'\'' {
                i += 1;
            }
            i += 1;
        } else {
            let start = i;
            i += 1;
            while i < b.len() && !matches!(b[i], b'/' | b'"' | b'\'' | b'r') {
                i += 1;
            }
            out.push_str(&text[start..i]);
        }
    }
    out
}

fn ident_before(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')
}

/// The text without `#[cfg(test)]` items (a `mod tests { ... }` block or a
/// `mod tests;` line).
fn strip_tests(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        // The item ends at its `;` or at the brace closing its first `{`.
        let semi = after.find(';');
        let brace = after.find('{');
        match (semi, brace) {
            (Some(s), Some(b)) if s < b => rest = &after[s + 1..],
            (_, Some(b)) => {
                let mut depth = 0;
                let mut end = after.len();
                for (j, c) in after[b..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = b + j + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                rest = &after[end..];
            }
            (Some(s), None) => rest = &after[s + 1..],
            (None, None) => rest = "",
        }
    }
    out.push_str(rest);
    out
}

/// Strongly connected components (Tarjan), each sorted.
fn tarjan(edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Vec<Vec<PathBuf>> {
    struct State<'a> {
        edges: &'a BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        index: BTreeMap<&'a PathBuf, usize>,
        low: BTreeMap<&'a PathBuf, usize>,
        stack: Vec<&'a PathBuf>,
        on_stack: BTreeSet<&'a PathBuf>,
        next: usize,
        out: Vec<Vec<PathBuf>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a PathBuf) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        if let Some(targets) = s.edges.get(v) {
            for w in targets {
                let Some((w, _)) = s.edges.get_key_value(w) else {
                    continue;
                };
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let lw = s.low[w];
                    let lv = s.low[v];
                    s.low.insert(v, lv.min(lw));
                } else if s.on_stack.contains(w) {
                    let iw = s.index[w];
                    let lv = s.low[v];
                    s.low.insert(v, lv.min(iw));
                }
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            component.sort();
            s.out.push(component);
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_trees_flatten() {
        let mut out = Vec::new();
        flatten_use(
            "crate::http::{self, auth::{A, B as C}, ws}",
            &mut Vec::new(),
            &mut out,
        );
        let joined: Vec<String> = out.iter().map(|p| p.join("::")).collect();
        assert_eq!(
            joined,
            [
                "crate::http::self",
                "crate::http::auth::A",
                "crate::http::auth::B",
                "crate::http::ws"
            ]
        );
    }

    #[test]
    fn comments_strings_and_tests_are_not_edges() {
        let text = "// crate::a::b\nlet s = \"crate::c::d\"; let r = r#\"crate::e\"#;\n\
                    #[cfg(test)]\nmod tests { use crate::f; }\nuse crate::g;";
        let clean = strip_tests(&strip_comments_and_strings(text));
        let paths: Vec<String> = referenced_paths(&clean)
            .iter()
            .map(|(p, _)| p.join("::"))
            .collect();
        assert_eq!(paths, ["crate::g", "crate::g"]);
    }

    #[test]
    fn circles_are_found() {
        let p = |s: &str| PathBuf::from(s);
        let mut edges = BTreeMap::new();
        edges.insert(p("a"), BTreeSet::from([p("b")]));
        edges.insert(p("b"), BTreeSet::from([p("c")]));
        edges.insert(p("c"), BTreeSet::from([p("a")]));
        edges.insert(p("d"), BTreeSet::from([p("a")]));
        let circles: Vec<_> = tarjan(&edges).into_iter().filter(|c| c.len() > 1).collect();
        assert_eq!(circles, vec![vec![p("a"), p("b"), p("c")]]);
    }

    #[test]
    fn the_workspace_is_tidy() {
        let root = workspace_root().unwrap();
        let problems = check(&root).unwrap();
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
