//! `backup create`: a consistent online snapshot of the store, the config,
//! the `.env`, the workspace and the agents' context files, encrypted into
//! a new file written atomically (a 0600 temp file, renamed without
//! replacing anything), then retention pruning.

use super::archive::{ArchiveWriter, create_private_dirs};
use super::crypt::{BackupKey, EncryptWriter};
use super::manifest::{self, Manifest, StoreInfo, StoreKind};
use super::{file_name, retention, unix_secs, utc_stamp};
use crate::config::Settings;
use crate::db::Db;
use anyhow::{Context as _, bail};
use exoclaw_store::check_sqlite_snapshot;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use tokio::io::AsyncWriteExt as _;

/// A backup just written.
#[derive(Debug)]
pub struct Created {
    pub path: PathBuf,
    /// Size of the encrypted file.
    pub bytes: u64,
    pub manifest: Manifest,
    pub key_id: String,
    /// Where the key came from (`EXOCLAW_BACKUP_KEY`, or derived).
    pub key_source: &'static str,
    pub pruned: retention::Pruned,
}

/// Takes a backup of `settings`' data dir and the store `db` into
/// `out_dir` (created 0700 when missing), then prunes backups there older
/// than `backup.keep_days`.
pub async fn create(
    settings: &Settings,
    db: &Db,
    key: &BackupKey,
    out_dir: &Path,
) -> anyhow::Result<Created> {
    let out_dir = super::absolute(out_dir)?;
    check_out_dir(settings, &out_dir)?;
    create_private_dirs(&out_dir)?;
    let now = SystemTime::now();
    let staging = tempfile::Builder::new()
        .prefix(".exoclaw-backup-")
        .tempdir_in(&out_dir)
        .with_context(|| format!("cannot create a temporary dir in {}", out_dir.display()))?;

    let (kind, schema_version, store_file) = match db {
        Db::Sqlite(store) => {
            let path = staging.path().join("exoclaw.db");
            store
                .snapshot_to(&path)
                .await
                .map_err(|e| anyhow::anyhow!("cannot copy the SQLite store: {e}"))?;
            let info = check_sqlite_snapshot(&path)
                .await
                .map_err(|e| anyhow::anyhow!("the SQLite copy failed its check: {e}"))?;
            (StoreKind::Sqlite, info.schema_version, path)
        }
        Db::Postgres(store) => {
            let path = staging.path().join("postgres.jsonl");
            let file = tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .await
                .with_context(|| format!("cannot create {}", path.display()))?;
            let mut out = tokio::io::BufWriter::new(file);
            let summary = store
                .export_jsonl(&mut out)
                .await
                .map_err(|e| anyhow::anyhow!("cannot export the PostgreSQL store: {e}"))?;
            out.flush().await.context("cannot write the export")?;
            out.get_mut()
                .sync_all()
                .await
                .context("cannot write the export")?;
            (StoreKind::Postgres, summary.schema_version, path)
        }
    };

    let job = Job {
        home: settings.home.root().to_path_buf(),
        config: settings
            .config_file_exists
            .then(|| settings.config_path.clone()),
        dotenv: settings.home.dotenv_path(),
        store_file,
        store: StoreInfo {
            kind,
            schema_version,
        },
        out_dir: out_dir.clone(),
        key: key.clone(),
        now,
    };
    let (path, manifest) = tokio::task::spawn_blocking(move || job.write())
        .await
        .context("the backup task failed")??;
    drop(staging);
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let pruned = retention::prune(&out_dir, settings.config.backup.keep_days, now, &path);
    Ok(Created {
        path,
        bytes,
        manifest,
        key_id: key.key_id(),
        key_source: key.source().describe(),
        pruned,
    })
}

/// Refuses an output dir inside what the backup reads (it would archive
/// itself) and an output path that is not a directory.
fn check_out_dir(settings: &Settings, out_dir: &Path) -> anyhow::Result<()> {
    if out_dir.exists() && !out_dir.is_dir() {
        bail!(
            "{} is not a directory; choose another --out",
            out_dir.display()
        );
    }
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let out = real(out_dir);
    for inside in ["workspace", "agents"] {
        let dir = real(&settings.home.root().join(inside));
        if out.starts_with(&dir) {
            bail!(
                "--out {} is inside the data dir's {inside}/, which the backup reads; choose \
                 another directory",
                out_dir.display()
            );
        }
    }
    Ok(())
}

/// The blocking part: archive, encrypt, write and name the file.
struct Job {
    home: PathBuf,
    config: Option<PathBuf>,
    dotenv: PathBuf,
    store_file: PathBuf,
    store: StoreInfo,
    out_dir: PathBuf,
    key: BackupKey,
    now: SystemTime,
}

impl Job {
    fn write(self) -> anyhow::Result<(PathBuf, Manifest)> {
        let mut tmp = tempfile::Builder::new()
            .prefix(".exoclaw-backup-")
            .suffix(".partial")
            .tempfile_in(&self.out_dir)
            .with_context(|| format!("cannot create a file in {}", self.out_dir.display()))?;
        let file = tmp
            .as_file()
            .try_clone()
            .context("cannot open the backup file")?;
        let writer = EncryptWriter::new(BufWriter::new(file), &self.key)
            .context("cannot write the backup file")?;
        let mut archive = ArchiveWriter::new(writer, &self.home)?;
        if !archive.add_file(self.store.kind.archive_path(), &self.store_file)? {
            bail!("the store copy disappeared before it was archived");
        }
        if let Some(config) = &self.config {
            // The config file may live outside the data dir (--config,
            // EXOCLAW_CONFIG), behind a link the operator chose.
            let config = std::fs::canonicalize(config)
                .with_context(|| format!("cannot resolve {}", config.display()))?;
            archive.add_file("config/config.json", &config)?;
        }
        archive.add_file("dotenv/.env", &self.dotenv)?;
        archive.add_tree("workspace", &self.home.join("workspace"))?;
        archive.add_tree("agents", &self.home.join("agents"))?;
        let store = self.store.clone();
        let created_at = utc_stamp(unix_secs(self.now), false);
        let (writer, manifest) = archive.finish(|files, skipped| Manifest {
            format: manifest::FORMAT.to_owned(),
            format_version: manifest::FORMAT_VERSION,
            created_at,
            exoclaw_version: crate::version::VERSION.to_owned(),
            store,
            files,
            skipped,
        })?;
        let mut buffered = writer.finish().context("cannot write the backup file")?;
        buffered.flush().context("cannot write the backup file")?;
        buffered
            .into_inner()
            .map_err(|e| anyhow::anyhow!("cannot write the backup file: {}", e.error()))?
            .sync_all()
            .context("cannot write the backup file")?;
        tmp.as_file_mut()
            .sync_all()
            .context("cannot write the backup file")?;
        for n in 0..100 {
            let path = self.out_dir.join(file_name(self.now, n));
            match tmp.persist_noclobber(&path) {
                Ok(_) => {
                    std::fs::File::open(&self.out_dir)
                        .and_then(|d| d.sync_all())
                        .with_context(|| format!("cannot sync {}", self.out_dir.display()))?;
                    return Ok((path, manifest));
                }
                Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => tmp = e.file,
                Err(e) => {
                    return Err(e.error)
                        .with_context(|| format!("cannot name the backup {}", path.display()));
                }
            }
        }
        bail!(
            "too many backups named for this second in {}",
            self.out_dir.display()
        )
    }
}
