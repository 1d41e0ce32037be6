//! A skill's files, read whole into memory from an upload (a `.tar.gz` or
//! a `.zip`, told apart by their first bytes, never by a name) or from a
//! folder, before anything is stored: nothing is ever written to
//! disk. Every entry is checked as it comes: the caps (archive size, file
//! count, each file's size, the whole, counted on the bytes really read,
//! not on what a header claims), the path (relative, `/`-separated, no
//! `..`, no absolute path, no backslash, no control characters, each
//! once), the kind (regular files and directories only: a symlink, hard
//! link, device or FIFO refuses the whole skill; so does an encrypted zip
//! entry) and the content (UTF-8 text). The first failure refuses the skill, naming the entry and the
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

/// The files of an upload: a `.tar.gz` or a `.zip`, by its magic bytes.
pub fn unpack(bytes: &[u8], limits: &Limits) -> Result<Files, SkillError> {
    check_archive_size(bytes, limits)?;
    match bytes.get(..4) {
        Some([0x1f, 0x8b, ..]) => unpack_tar_gz(bytes, limits),
        Some(b"PK\x03\x04" | b"PK\x05\x06") => unpack_zip(bytes, limits),
        _ => Err(SkillError::Invalid(
            "not a skill archive: send a gzip-compressed tar (.tar.gz) or a .zip".to_owned(),
        )),
    }
}

fn check_archive_size(bytes: &[u8], limits: &Limits) -> Result<(), SkillError> {
    if bytes.len() as u64 > limits.archive_bytes {
        return Err(SkillError::TooLarge(format!(
            "the archive is {} KiB, over the {} KiB an upload may be (skills.max_archive_kb)",
            bytes.len() / 1024,
            limits.archive_bytes / 1024
        )));
    }
    Ok(())
}

/// Entries an archive may have: directory entries carry no data but still
/// cost a header each.
fn max_entries(limits: &Limits) -> usize {
    limits.files.saturating_mul(4).saturating_add(64)
}

fn too_many_entries(limits: &Limits) -> SkillError {
    SkillError::TooLarge(format!(
        "the archive has too many entries (a skill has at most {} files, skills.max_files)",
        limits.files
    ))
}

/// The files of a `.zip` upload. The central directory is trusted for
/// nothing but where entries start: the sizes it declares are not the cap
/// (each file is read through the same counted cap as a tar's), an entry
/// that is encrypted, a link or any other special file refuses the skill,
/// so do duplicate names, overlapping entries and local headers that
/// disagree with the central directory, and only stored and deflated
/// entries are read (each one's CRC checked at its end).
pub fn unpack_zip(bytes: &[u8], limits: &Limits) -> Result<Files, SkillError> {
    check_archive_size(bytes, limits)?;
    let corrupt = |e: zip::result::ZipError| SkillError::Invalid(format!("corrupt archive: {e}"));
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(corrupt)?;
    if archive.len() > max_entries(limits) {
        return Err(too_many_entries(limits));
    }
    if archive.has_duplicate_names() {
        return Err(SkillError::Invalid(
            "a path appears twice in the archive".to_owned(),
        ));
    }
    // Each local header agrees with its central one, no entries overlap
    // (the overlapping-file bomb) and no local header hides outside the
    // central directory: what is checked is what any unzip would extract.
    archive.validate_header_consistency().map_err(corrupt)?;
    let mut files = Files::default();
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(corrupt)?;
        let raw = String::from_utf8(entry.name_raw().to_vec())
            .map_err(|_| SkillError::Invalid("an entry's path is not UTF-8".to_owned()))?;
        if entry.encrypted() {
            return Err(SkillError::Invalid(format!(
                "entry {raw:?} is encrypted; skills are uploaded unencrypted"
            )));
        }
        // The file type bits of a Unix mode, when the archive has one.
        let kind = entry.unix_mode().map(|m| m & 0o170_000);
        if entry.is_symlink() || kind == Some(0o120_000) {
            return Err(SkillError::Invalid(format!(
                "entry {raw:?} is a link; skills hold regular files only"
            )));
        }
        if entry.is_dir() {
            if kind.is_some_and(|k| k != 0 && k != 0o040_000) {
                return Err(SkillError::Invalid(format!(
                    "entry {raw:?} is not a regular file; skills hold regular files only"
                )));
            }
            checked_path(&raw)?;
            continue;
        }
        if kind.is_some_and(|k| k != 0 && k != 0o100_000) {
            return Err(SkillError::Invalid(format!(
                "entry {raw:?} is not a regular file; skills hold regular files only"
            )));
        }
        let path = checked_path(&raw)?;
        drop(entry);
        let entry = archive.by_index(i).map_err(corrupt)?;
        let data = read_capped(entry, &path, limits).map_err(|e| match e {
            SkillError::Invalid(m) => SkillError::Invalid(format!("corrupt archive: {m}")),
            e => e,
        })?;
        files.add(path, data, limits)?;
    }
    finish(files)
}

/// The files of a `.tar.gz` upload.
pub fn unpack_tar_gz(bytes: &[u8], limits: &Limits) -> Result<Files, SkillError> {
    check_archive_size(bytes, limits)?;
    if bytes.get(..2) != Some(&[0x1f, 0x8b]) {
        return Err(SkillError::Invalid(
            "not a gzip-compressed tar archive (.tar.gz)".to_owned(),
        ));
    }
    let corrupt = |e: std::io::Error| SkillError::Invalid(format!("corrupt archive: {e}"));
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut files = Files::default();
    let mut entries_left = max_entries(limits);
    for entry in archive.entries().map_err(corrupt)? {
        let entry = entry.map_err(corrupt)?;
        entries_left = entries_left
            .checked_sub(1)
            .ok_or_else(|| too_many_entries(limits))?;
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
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    const GOOD: &[u8] = b"---\nname: z\ndescription: d\nversion: 1.0.0\n---\n# z\n";

    enum Z<'a> {
        File(&'a str, &'a [u8]),
        Dir(&'a str),
        Symlink(&'a str, &'a str),
        /// A file whose Unix mode says FIFO (set in its central header).
        Fifo(&'a str),
    }

    fn zip(entries: &[Z<'_>]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let o = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for e in entries {
            match e {
                Z::File(p, d) => {
                    w.start_file(*p, o).expect("start");
                    w.write_all(d).expect("write");
                }
                Z::Dir(p) => w.add_directory(*p, o).expect("dir"),
                Z::Symlink(p, t) => w.add_symlink(*p, *t, o).expect("symlink"),
                Z::Fifo(p) => w.start_file(*p, o).expect("fifo"),
            }
        }
        let mut v = w.finish().expect("finish").into_inner();
        for e in entries {
            if let Z::Fifo(p) = e {
                for at in find(&v, b"PK\x01\x02") {
                    if v[at + 46..].starts_with(p.as_bytes()) {
                        let mode: u32 = 0o010_644 << 16;
                        v[at + 38..at + 42].copy_from_slice(&mode.to_le_bytes());
                    }
                }
            }
        }
        v
    }

    /// Offsets of a 4-byte signature in `bytes`.
    fn find(bytes: &[u8], sig: &[u8; 4]) -> Vec<usize> {
        bytes
            .windows(4)
            .enumerate()
            .filter(|(_, w)| w == sig)
            .map(|(i, _)| i)
            .collect()
    }

    fn limits() -> Limits {
        Limits {
            archive_bytes: 64 * 1024,
            total_bytes: 8 * 1024,
            file_bytes: 4 * 1024,
            files: 4,
        }
    }

    #[test]
    fn a_zip_is_read_like_a_tar() {
        let files = unpack(
            &zip(&[
                Z::Dir("my-skill/"),
                Z::File("my-skill/SKILL.md", GOOD),
                Z::File("my-skill/docs/more.md", b"more"),
            ]),
            &limits(),
        )
        .expect("a clean zip is read");
        let names: Vec<_> = files.files.keys().cloned().collect();
        assert_eq!(names, ["SKILL.md", "docs/more.md"]);
        assert_eq!(files.files["SKILL.md"].as_bytes(), GOOD);
        // Stored entries too.
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let stored =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        w.start_file("SKILL.md", stored).expect("start");
        w.write_all(GOOD).expect("write");
        let bytes = w.finish().expect("finish").into_inner();
        assert!(unpack(&bytes, &limits()).is_ok());
    }

    #[test]
    fn hostile_and_broken_zips_are_refused_with_the_reason() {
        let valid = zip(&[Z::File("SKILL.md", GOOD)]);
        let bomb = vec![0u8; 10 * 1024 * 1024];
        let encrypted = {
            // The "encrypted" flag (bit 0) set in the local and central headers.
            let mut v = zip(&[Z::File("SKILL.md", GOOD), Z::File("a.md", b"secret")]);
            for i in find(&v, b"PK\x03\x04") {
                v[i + 6] |= 1;
            }
            for i in find(&v, b"PK\x01\x02") {
                v[i + 8] |= 1;
            }
            v
        };
        let lying = {
            // A bomb whose headers claim 10 bytes unpacked.
            let mut v = zip(&[Z::File("SKILL.md", GOOD), Z::File("a.md", &bomb)]);
            let central = find(&v, b"PK\x01\x02")[1];
            v[central + 24..central + 28].copy_from_slice(&10u32.to_le_bytes());
            let local = find(&v, b"PK\x03\x04")[1];
            v[local + 22..local + 26].copy_from_slice(&10u32.to_le_bytes());
            v
        };
        let duplicate = {
            let mut v = zip(&[Z::File("SKILL.md", GOOD), Z::File("SKILL.mx", b"again")]);
            for i in 0..v.len().saturating_sub(8) {
                if &v[i..i + 8] == b"SKILL.mx" {
                    v[i + 7] = b'd';
                }
            }
            v
        };
        let dirs: Vec<String> = (0..100).map(|i| format!("d{i}/")).collect();
        let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
            (
                "dotdot",
                zip(&[Z::File("SKILL.md", GOOD), Z::File("../evil.sh", b"x")]),
                &["`..`"],
            ),
            (
                "nested dotdot",
                zip(&[Z::File("SKILL.md", GOOD), Z::File("a/../../x", b"x")]),
                &["`..`"],
            ),
            (
                "absolute",
                zip(&[Z::File("SKILL.md", GOOD), Z::File("/etc/cron.d/x", b"x")]),
                &["absolute"],
            ),
            (
                "backslash",
                zip(&[Z::File("SKILL.md", GOOD), Z::File("..\\x", b"x")]),
                &["backslash"],
            ),
            (
                "symlink",
                zip(&[Z::File("SKILL.md", GOOD), Z::Symlink("link", "/etc/passwd")]),
                &["link"],
            ),
            (
                "fifo",
                zip(&[Z::File("SKILL.md", GOOD), Z::Fifo("pipe")]),
                &["regular files only"],
            ),
            (
                "too deep",
                zip(&[
                    Z::File("SKILL.md", GOOD),
                    Z::File("a/b/c/d/e/f/g/h/i/j", b"x"),
                ]),
                &["deeply"],
            ),
            (
                "bomb",
                zip(&[Z::File("SKILL.md", GOOD), Z::File("a.md", &bomb)]),
                &["skills.max_file_kb"],
            ),
            (
                "bomb with lying sizes",
                lying,
                &["skills.max_file_kb", "corrupt"],
            ),
            (
                "whole too big",
                zip(&[
                    Z::File("SKILL.md", GOOD),
                    Z::File("a.md", &[b'a'; 4096]),
                    Z::File("b.md", &[b'b'; 4096]),
                ]),
                &["skills.max_total_kb"],
            ),
            (
                "too many files",
                zip(&[
                    Z::File("SKILL.md", GOOD),
                    Z::File("a", b"1"),
                    Z::File("b", b"2"),
                    Z::File("c", b"3"),
                    Z::File("d", b"4"),
                ]),
                &["skills.max_files"],
            ),
            (
                "too many entries",
                zip(&dirs
                    .iter()
                    .map(|d| Z::Dir(d))
                    .chain([Z::File("SKILL.md", GOOD)])
                    .collect::<Vec<_>>()),
                &["skills.max_files", "corrupt"],
            ),
            ("encrypted", encrypted, &["encrypted"]),
            ("duplicate names", duplicate, &["twice", "corrupt"]),
            (
                "binary",
                zip(&[Z::File("SKILL.md", GOOD), Z::File("a.bin", &[0, 159, 146])]),
                &["text"],
            ),
            ("truncated", valid[..valid.len() / 2].to_vec(), &["corrupt"]),
            (
                "damaged data",
                {
                    let mut v = valid.clone();
                    let at = find(&v, b"PK\x03\x04")[0] + 30 + "SKILL.md".len() + 2;
                    v[at] ^= 0xff;
                    v
                },
                &["corrupt"],
            ),
            (
                "garbage after the magic",
                b"PK\x03\x04garbage".to_vec(),
                &["corrupt"],
            ),
            (
                "neither",
                b"#!/bin/sh\nrm -rf /\n".to_vec(),
                &[".tar.gz", ".zip"],
            ),
            (
                "no SKILL.md",
                zip(&[Z::File("README.md", b"hi")]),
                &["SKILL.md"],
            ),
            (
                "archive too big",
                {
                    let noise: Vec<u8> = (0..200_000u32)
                        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                        .collect();
                    let mut v = b"PK\x03\x04".to_vec();
                    v.extend(noise);
                    v
                },
                &["skills.max_archive_kb"],
            ),
        ];
        for (what, bytes, says) in &cases {
            let Err(e) = unpack(bytes, &limits()) else {
                panic!("{what}: accepted");
            };
            let e = e.to_string();
            assert!(
                says.iter().any(|s| e.contains(s)),
                "{what}: {e:?} should say one of {says:?}"
            );
        }
    }

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
