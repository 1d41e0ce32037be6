//! A skill's files, read whole into memory from an upload (a `.tar.gz`) or
//! from a folder, before anything is stored: nothing is ever written to
//! disk. Every entry is checked as it comes: the caps (archive size, file
//! count, each file's size, the whole, counted on the bytes really read,
//! not on what a header claims), the path (relative, `/`-separated, no
//! `..`, no absolute path, no backslash, no control characters, each
//! once), the kind (regular files and directories only: a symlink, hard
//! link, device or FIFO refuses the whole skill) and the content (UTF-8
//! text). The first failure refuses the skill, naming the entry and the
//! limit.

use super::SkillError;
use crate::config::skills::SkillsConfig;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// The caps, in bytes and files.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub archive_bytes: u64,
    pub total_bytes: u64,
    pub file_bytes: u64,
    pub files: usize,
}

impl Limits {
    pub fn from_config(c: &SkillsConfig) -> Self {
        Self {
            archive_bytes: u64::from(c.max_archive_kb) * 1024,
            total_bytes: u64::from(c.max_total_kb) * 1024,
            file_bytes: u64::from(c.max_file_kb) * 1024,
            files: usize::try_from(c.max_files).unwrap_or(usize::MAX),
        }
    }
}

/// Directory levels a folder may have.
const MAX_DEPTH: usize = 8;

/// Files by relative path (sorted), each checked.
#[derive(Debug, Default)]
pub struct Files {
    pub files: BTreeMap<String, String>,
    total: u64,
}

impl Files {
    fn add(&mut self, path: String, bytes: Vec<u8>, limits: &Limits) -> Result<(), SkillError> {
        if self.files.contains_key(&path) {
            return Err(SkillError::Invalid(format!("{path:?} appears twice")));
        }
        if self.files.len() >= limits.files {
            return Err(SkillError::TooLarge(format!(
                "a skill has at most {} files (skills.max_files)",
                limits.files
            )));
        }
        self.total += bytes.len() as u64;
        if self.total > limits.total_bytes {
            return Err(SkillError::TooLarge(format!(
                "a skill holds at most {} KiB unpacked (skills.max_total_kb)",
                limits.total_bytes / 1024
            )));
        }
        let text = String::from_utf8(bytes).map_err(|_| {
            SkillError::Invalid(format!(
                "{path:?} is not UTF-8 text (skills hold text only)"
            ))
        })?;
        if text.contains('\0') {
            return Err(SkillError::Invalid(format!(
                "{path:?} is not text (it has NUL bytes; skills hold text only)"
            )));
        }
        self.files.insert(path, text);
        Ok(())
    }

    /// Drops one top-level folder that holds everything (`my-skill/SKILL.md`
    /// as `tar czf` of a folder makes it).
    fn strip_common_folder(self) -> Self {
        if self.files.contains_key("SKILL.md") {
            return self;
        }
        let first = |p: &str| p.split_once('/').map(|(a, _)| a.to_owned());
        let Some(top) = self.files.keys().next().and_then(|p| first(p)) else {
            return self;
        };
        if !self
            .files
            .keys()
            .all(|p| first(p).as_deref() == Some(top.as_str()))
        {
            return self;
        }
        let files = self
            .files
            .into_iter()
            .map(|(p, c)| (p[top.len() + 1..].to_owned(), c))
            .collect();
        Files {
            files,
            total: self.total,
        }
    }
}

/// `raw` as a safe relative path (`./` prefixes dropped), or why not.
pub fn checked_path(raw: &str) -> Result<String, SkillError> {
    let bad = |why: &str| Err(SkillError::Invalid(format!("entry {raw:?}: {why}")));
    if raw.starts_with('/') || raw.starts_with('\\') || raw.get(1..2) == Some(":") {
        return bad("absolute paths are not allowed");
    }
    if raw.contains('\\') {
        return bad("backslashes are not allowed in paths");
    }
    if raw.chars().any(char::is_control) {
        return bad("control characters are not allowed in paths");
    }
    let mut parts = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => return bad("`..` is not allowed in paths"),
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return bad("an empty path");
    }
    if parts.len() > MAX_DEPTH {
        return bad("too deeply nested");
    }
    Ok(parts.join("/"))
}

/// Reads at most `limit` bytes, refusing a file that has more.
fn read_capped(r: impl Read, path: &str, limits: &Limits) -> Result<Vec<u8>, SkillError> {
    let mut bytes = Vec::new();
    r.take(limits.file_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| SkillError::Invalid(format!("cannot read {path:?}: {e}")))?;
    if bytes.len() as u64 > limits.file_bytes {
        return Err(SkillError::TooLarge(format!(
            "{path:?} is over {} KiB, the most one file may hold (skills.max_file_kb)",
            limits.file_bytes / 1024
        )));
    }
    Ok(bytes)
}

/// The files of a `.tar.gz` upload.
pub fn unpack_tar_gz(bytes: &[u8], limits: &Limits) -> Result<Files, SkillError> {
    if bytes.len() as u64 > limits.archive_bytes {
        return Err(SkillError::TooLarge(format!(
            "the archive is {} KiB, over the {} KiB an upload may be (skills.max_archive_kb)",
            bytes.len() / 1024,
            limits.archive_bytes / 1024
        )));
    }
    if bytes.get(..2) != Some(&[0x1f, 0x8b]) {
        return Err(SkillError::Invalid(
            "not a gzip-compressed tar archive (.tar.gz)".to_owned(),
        ));
    }
    let corrupt = |e: std::io::Error| SkillError::Invalid(format!("corrupt archive: {e}"));
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut files = Files::default();
    // Directory entries carry no data but still cost a header each.
    let mut entries_left = limits.files.saturating_mul(4).saturating_add(64);
    for entry in archive.entries().map_err(corrupt)? {
        let entry = entry.map_err(corrupt)?;
        entries_left = entries_left.checked_sub(1).ok_or_else(|| {
            SkillError::TooLarge(format!(
                "the archive has too many entries (a skill has at most {} files, \
                 skills.max_files)",
                limits.files
            ))
        })?;
        let raw = String::from_utf8(entry.path_bytes().into_owned())
            .map_err(|_| SkillError::Invalid("an entry's path is not UTF-8".to_owned()))?;
        let kind = entry.header().entry_type();
        use tar::EntryType as E;
        match kind {
            E::Directory => {
                checked_path(&raw)?;
                continue;
            }
            E::XGlobalHeader | E::XHeader | E::GNULongName | E::GNULongLink => continue,
            E::Regular | E::Continuous => {}
            E::Symlink | E::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                return Err(SkillError::Invalid(format!(
                    "entry {raw:?} is a link (to {target:?}); skills hold regular files only"
                )));
            }
            other => {
                return Err(SkillError::Invalid(format!(
                    "entry {raw:?} is a {other:?} entry; skills hold regular files only"
                )));
            }
        }
        let path = checked_path(&raw)?;
        let claimed = entry.header().size().map_err(corrupt)?;
        if claimed > limits.file_bytes {
            return Err(SkillError::TooLarge(format!(
                "{path:?} is over {} KiB, the most one file may hold (skills.max_file_kb)",
                limits.file_bytes / 1024
            )));
        }
        let data = read_capped(entry, &path, limits).map_err(|e| match e {
            SkillError::Invalid(m) => SkillError::Invalid(format!("corrupt archive: {m}")),
            e => e,
        })?;
        files.add(path, data, limits)?;
    }
    // The tar ends before the gzip stream does: read it to its end, so
    // that its checksum is verified (a damaged archive is refused, not
    // half read), with the padding after the tar bounded.
    let mut rest = archive.into_inner();
    let padding = std::io::copy(
        &mut (&mut rest).take(TRAILER_BYTES + 1),
        &mut std::io::sink(),
    )
    .map_err(corrupt)?;
    if padding > TRAILER_BYTES {
        return Err(SkillError::Invalid(
            "corrupt archive: data after the end of the tar".to_owned(),
        ));
    }
    finish(files)
}

/// Bytes a `.tar.gz` may carry after the tar's end (tar pads to 10 KiB
/// records).
const TRAILER_BYTES: u64 = 64 * 1024;

/// The files of a skill folder on disk (the gateway's `skills/`, or
/// `exoclaw skills install DIR`). A symlink anywhere refuses it.
pub fn read_folder(dir: &Path, limits: &Limits) -> Result<Files, SkillError> {
    let mut files = Files::default();
    walk(dir, "", 0, limits, &mut files)?;
    finish(files)
}

fn walk(
    dir: &Path,
    prefix: &str,
    depth: usize,
    limits: &Limits,
    files: &mut Files,
) -> Result<(), SkillError> {
    let io = |e: std::io::Error| SkillError::Invalid(format!("cannot read {}: {e}", dir.display()));
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for e in entries {
        let name = e
            .file_name()
            .into_string()
            .map_err(|n| SkillError::Invalid(format!("file name {n:?} is not UTF-8")))?;
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let path = checked_path(&rel)?;
        let meta = std::fs::symlink_metadata(e.path()).map_err(io)?;
        let kind = meta.file_type();
        if kind.is_symlink() {
            return Err(SkillError::Invalid(format!(
                "{path:?} is a symlink; skills hold regular files only"
            )));
        }
        if kind.is_dir() {
            if depth + 1 >= MAX_DEPTH {
                return Err(SkillError::Invalid(format!("{path:?}: too deeply nested")));
            }
            walk(&e.path(), &path, depth + 1, limits, files)?;
        } else if kind.is_file() {
            if meta.len() > limits.file_bytes {
                return Err(SkillError::TooLarge(format!(
                    "{path:?} is over {} KiB, the most one file may hold (skills.max_file_kb)",
                    limits.file_bytes / 1024
                )));
            }
            let f = std::fs::File::open(e.path()).map_err(io)?;
            let data = read_capped(f, &path, limits)?;
            files.add(path, data, limits)?;
        } else {
            return Err(SkillError::Invalid(format!(
                "{path:?} is not a regular file; skills hold regular files only"
            )));
        }
    }
    Ok(())
}

fn finish(files: Files) -> Result<Files, SkillError> {
    let files = files.strip_common_folder();
    if !files.files.contains_key("SKILL.md") {
        return Err(SkillError::Invalid(
            "no SKILL.md at the top of the skill".to_owned(),
        ));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_relative_and_inside() {
        assert_eq!(checked_path("./a/b.md").ok().as_deref(), Some("a/b.md"));
        assert_eq!(checked_path("a//b").ok().as_deref(), Some("a/b"));
        for bad in [
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a\\b",
            "C:/x",
            "",
            ".",
            "a/\u{7}",
        ] {
            assert!(checked_path(bad).is_err(), "{bad:?}");
        }
    }
}
