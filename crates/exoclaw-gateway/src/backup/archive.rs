//! The tar archive inside a backup: writing it from the data dir (hashing
//! every file as it goes in, never following a symbolic link, never reading
//! outside the data dir) and reading it back (checking every path, writing
//! only regular files and directories into a private staging dir, and
//! comparing every file with the manifest).
//!
//! Archive layout: `store/exoclaw.db` or `store/postgres.jsonl`,
//! `config/config.json`, `dotenv/.env`, `workspace/...`, `agents/...`, and
//! `manifest.json` last.

use super::crypt::{CryptError, DecryptReader};
use super::manifest::{
    FileEntry, MANIFEST_PATH, MAX_MANIFEST_BYTES, Manifest, Skipped, checked_path,
};
use anyhow::{Context as _, bail};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{
    DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

/// Counts and hashes what is read through it.
pub struct HashingReader<R> {
    inner: R,
    hash: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hash: Sha256::new(),
            count: 0,
        }
    }

    /// `(bytes read, SHA-256 as lowercase hex)`.
    pub fn finish(self) -> (u64, String) {
        (self.count, hex::encode(self.hash.finalize()))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Builds the archive into `W`, recording a manifest entry per file.
pub struct ArchiveWriter<W: Write> {
    tar: tar::Builder<W>,
    home: PathBuf,
    files: Vec<FileEntry>,
    skipped: Vec<Skipped>,
}

impl<W: Write> ArchiveWriter<W> {
    /// `home` is the data dir: no directory outside it is ever read.
    pub fn new(out: W, home: &Path) -> anyhow::Result<Self> {
        let home = fs::canonicalize(home)
            .with_context(|| format!("cannot resolve the data dir {}", home.display()))?;
        let mut tar = tar::Builder::new(out);
        tar.follow_symlinks(false);
        Ok(Self {
            tar,
            home,
            files: Vec::new(),
            skipped: Vec::new(),
        })
    }

    /// Adds the regular file at `source` as `path`. A missing file adds
    /// nothing (`Ok(false)`); a symbolic link or special file is skipped
    /// with a note in the manifest, never followed.
    pub fn add_file(&mut self, path: &str, source: &Path) -> anyhow::Result<bool> {
        let file = match fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(source)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                self.skip(path, "symbolic link, not followed");
                return Ok(false);
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", source.display())),
        };
        let meta = file
            .metadata()
            .with_context(|| format!("cannot read {}", source.display()))?;
        if !meta.is_file() {
            self.skip(path, "not a regular file");
            return Ok(false);
        }
        let size = meta.len();
        let mode = meta.permissions().mode() & 0o777;
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(size);
        header.set_mode(mode);
        header.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
        let mut reader = HashingReader::new(file.take(size));
        self.tar
            .append_data(&mut header, path, &mut reader)
            .with_context(|| format!("cannot archive {}", source.display()))?;
        let (count, sha256) = reader.finish();
        if count != size {
            bail!(
                "{} shrank while it was being backed up; try again",
                source.display()
            );
        }
        self.files.push(FileEntry {
            path: path.to_owned(),
            size,
            sha256,
            mode,
        });
        Ok(true)
    }

    /// Adds the directory tree at `root` as `top` (`workspace`, `agents`):
    /// directories and regular files with their modes. Symbolic links and
    /// special files are skipped with a note; a directory that resolves
    /// outside the data dir is refused.
    pub fn add_tree(&mut self, top: &str, root: &Path) -> anyhow::Result<()> {
        match fs::symlink_metadata(root) {
            Ok(m) if m.file_type().is_symlink() => {
                self.skip(top, "symbolic link, not followed");
                return Ok(());
            }
            Ok(m) if !m.is_dir() => {
                self.skip(top, "not a directory");
                return Ok(());
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", root.display())),
        }
        let mut stack = vec![(top.to_owned(), root.to_path_buf())];
        while let Some((path, dir)) = stack.pop() {
            let real = fs::canonicalize(&dir)
                .with_context(|| format!("cannot resolve {}", dir.display()))?;
            if !real.starts_with(&self.home) {
                bail!(
                    "{} resolves outside the data dir; refusing to back it up",
                    dir.display()
                );
            }
            self.add_dir(&path, &dir)?;
            let mut entries = fs::read_dir(&dir)
                .with_context(|| format!("cannot list {}", dir.display()))?
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("cannot list {}", dir.display()))?;
            entries.sort_by_key(|e| std::cmp::Reverse(e.file_name()));
            for entry in entries {
                let name = entry.file_name();
                let Some(name) = name.to_str() else {
                    self.skip(
                        &format!("{path}/{}", name.to_string_lossy()),
                        "name is not UTF-8",
                    );
                    continue;
                };
                let child = format!("{path}/{name}");
                // `file_type` of a directory entry does not follow links.
                let kind = entry
                    .file_type()
                    .with_context(|| format!("cannot read {}", entry.path().display()))?;
                if kind.is_symlink() {
                    self.skip(&child, "symbolic link, not followed");
                } else if kind.is_dir() {
                    stack.push((child, entry.path()));
                } else if kind.is_file() {
                    self.add_file(&child, &entry.path())?;
                } else {
                    self.skip(&child, "not a regular file");
                }
            }
        }
        Ok(())
    }

    fn add_dir(&mut self, path: &str, dir: &Path) -> anyhow::Result<()> {
        let meta =
            fs::symlink_metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_size(0);
        header.set_mode(meta.permissions().mode() & 0o777);
        header.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
        self.tar
            .append_data(&mut header, path, io::empty())
            .with_context(|| format!("cannot archive {}", dir.display()))
    }

    fn skip(&mut self, path: &str, reason: &str) {
        tracing::info!(path, reason, "left out of the backup");
        self.skipped.push(Skipped {
            path: path.to_owned(),
            reason: reason.to_owned(),
        });
    }

    /// Appends the manifest `build` makes from the file list, ends the
    /// archive and returns the writer with the manifest.
    pub fn finish(
        mut self,
        build: impl FnOnce(Vec<FileEntry>, Vec<Skipped>) -> Manifest,
    ) -> anyhow::Result<(W, Manifest)> {
        let manifest = build(
            std::mem::take(&mut self.files),
            std::mem::take(&mut self.skipped),
        );
        let bytes = serde_json::to_vec_pretty(&manifest).context("cannot encode the manifest")?;
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(bytes.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(0);
        self.tar
            .append_data(&mut header, MANIFEST_PATH, bytes.as_slice())
            .context("cannot archive the manifest")?;
        let out = self.tar.into_inner().context("cannot end the archive")?;
        Ok((out, manifest))
    }
}

/// Where [`unpack`] writes.
pub struct Targets<'a> {
    /// The store copy (`store/...`) goes here, always: it is checked after.
    pub store_dir: &'a Path,
    /// Everything else goes to its place in this future data dir; `None`
    /// only hashes it (verify).
    pub home_dir: Option<&'a Path>,
}

/// What [`unpack`] found, once every check passed.
pub struct Unpacked {
    pub manifest: Manifest,
    /// The store copy inside `Targets::store_dir`.
    pub store_file: PathBuf,
}

/// Reads the whole backup: every entry checked and written (or hashed),
/// the file read to its authenticated end, then every file compared with
/// the manifest. A damaged file is reported by what the decryption found.
pub fn unpack<R: Read>(
    reader: &mut DecryptReader<R>,
    targets: &Targets<'_>,
) -> anyhow::Result<Unpacked> {
    let result = read_entries(&mut *reader, targets).and_then(|found| {
        // Only the end of the stream proves the whole file authentic.
        io::copy(&mut *reader, &mut io::sink()).map_err(|e| archive_error(&e))?;
        Ok(found)
    });
    let (manifest, seen) = match (result, reader.failure()) {
        (_, Some(e)) => return Err(anyhow::Error::new(e.clone())),
        (Err(e), None) => return Err(e),
        (Ok(found), None) => found,
    };
    let manifest = Manifest::parse(&manifest.context("the backup has no manifest")?)?;
    compare(&manifest, &seen)?;
    let store_path = manifest.store.kind.archive_path();
    if !seen.contains_key(store_path) {
        bail!(
            "the backup holds no {store_path}, although its manifest names a {} store",
            manifest.store.kind.name()
        );
    }
    let name = Path::new(store_path)
        .file_name()
        .context("a store path has a file name")?;
    Ok(Unpacked {
        store_file: targets.store_dir.join(name),
        manifest,
    })
}

/// One file as found in the archive: size, SHA-256, mode.
type Seen = BTreeMap<String, (u64, String, u32)>;

fn archive_error(e: &io::Error) -> anyhow::Error {
    match CryptError::find(e) {
        Some(c) => anyhow::Error::new(c.clone()),
        None => anyhow::anyhow!("the backup's archive is damaged: {e}"),
    }
}

fn read_entries<R: Read>(
    reader: R,
    targets: &Targets<'_>,
) -> anyhow::Result<(Option<Vec<u8>>, Seen)> {
    let mut archive = tar::Archive::new(reader);
    let mut seen = Seen::new();
    let mut manifest = None;
    for entry in archive.entries().map_err(|e| archive_error(&e))? {
        let mut entry = entry.map_err(|e| archive_error(&e))?;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir()) {
            bail!(
                "the archive holds an entry of type {kind:?}; backups hold only files and directories"
            );
        }
        let raw = entry.path().map_err(|e| archive_error(&e))?.into_owned();
        let path = checked_path(&raw, kind.is_dir())?;
        if kind.is_dir() {
            if let (Some(home), Some(rel)) = (targets.home_dir, home_place(&path)) {
                create_private_dirs(&home.join(rel))?;
            }
            continue;
        }
        if path == MANIFEST_PATH {
            if manifest.is_some() {
                bail!("the archive holds two manifests");
            }
            let mut bytes = Vec::new();
            (&mut entry)
                .take(MAX_MANIFEST_BYTES + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| archive_error(&e))?;
            if bytes.len() as u64 > MAX_MANIFEST_BYTES {
                bail!("the backup's manifest is larger than {MAX_MANIFEST_BYTES} bytes");
            }
            manifest = Some(bytes);
            continue;
        }
        if seen.contains_key(&path) {
            bail!("the archive holds {path} twice");
        }
        let mode = entry.header().mode().unwrap_or(0o600) & 0o777;
        let mtime = entry.header().mtime().unwrap_or(0);
        let dest = match path.strip_prefix("store/") {
            Some(name) => Some(targets.store_dir.join(name)),
            None => targets
                .home_dir
                .zip(home_place(&path))
                .map(|(home, rel)| home.join(rel)),
        };
        let mut hashing = HashingReader::new(&mut entry);
        match dest {
            Some(dest) => write_private(&dest, &mut hashing, mode, mtime)?,
            None => {
                io::copy(&mut hashing, &mut io::sink()).map_err(|e| archive_error(&e))?;
            }
        }
        let (size, sha) = hashing.finish();
        seen.insert(path, (size, sha, mode));
    }
    Ok((manifest, seen))
}

/// Where an archive path goes in a data dir (`None`: not into it).
fn home_place(path: &str) -> Option<&str> {
    if path.starts_with("workspace") || path.starts_with("agents") {
        return Some(path);
    }
    match path {
        "config/config.json" => Some("config.json"),
        "dotenv/.env" => Some(".env"),
        _ => None,
    }
}

/// Every file of the archive is in the manifest with the same size and
/// checksum, and every file of the manifest is in the archive.
fn compare(manifest: &Manifest, seen: &Seen) -> anyhow::Result<()> {
    let mut listed = BTreeMap::new();
    for f in &manifest.files {
        if listed.insert(f.path.as_str(), f).is_some() {
            bail!("the manifest lists {} twice", f.path);
        }
        let Some((size, sha, _)) = seen.get(&f.path) else {
            bail!(
                "{} is listed in the manifest but missing from the backup",
                f.path
            );
        };
        if *size != f.size {
            bail!(
                "{}: the manifest says {} bytes, the backup holds {size}",
                f.path,
                f.size
            );
        }
        if *sha != f.sha256 {
            bail!("{}: the checksum does not match the manifest", f.path);
        }
    }
    if let Some(extra) = seen.keys().find(|p| !listed.contains_key(p.as_str())) {
        bail!("{extra} is in the backup but not in its manifest");
    }
    Ok(())
}

/// Creates `dir` and its missing parents with mode 0700.
pub fn create_private_dirs(dir: &Path) -> anyhow::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// Writes a new file (never replacing one) with the owner's bits of `mode`
/// (at least 0600) and the archived modification time.
fn write_private(dest: &Path, data: &mut impl Read, mode: u32, mtime: u64) -> anyhow::Result<()> {
    if let Some(parent) = dest.parent() {
        create_private_dirs(parent)?;
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode((mode & 0o700) | 0o600)
        .open(dest)
        .with_context(|| format!("cannot create {}", dest.display()))?;
    io::copy(data, &mut file).map_err(|e| archive_error(&e))?;
    // The mode of `open` is filtered by the umask; set it exactly.
    file.set_permissions(fs::Permissions::from_mode((mode & 0o700) | 0o600))
        .with_context(|| format!("cannot set the mode of {}", dest.display()))?;
    file.set_modified(UNIX_EPOCH + Duration::from_secs(mtime))
        .with_context(|| format!("cannot set the time of {}", dest.display()))?;
    file.sync_all()
        .with_context(|| format!("cannot write {}", dest.display()))
}
