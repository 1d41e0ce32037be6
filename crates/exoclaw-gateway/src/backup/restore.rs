//! `backup verify` and `backup restore`. Both decrypt the whole file and
//! check every checksum and the store copy before anything is trusted;
//! verify then throws its private temp copy away, restore moves a fully
//! checked data dir into place.
//!
//! Restore writes nothing at the target until everything passed: it
//! unpacks into a private staging dir beside the target (same file system,
//! so the final step is one `rename`), checks, imports a PostgreSQL export
//! into the (empty) database, and only then renames the staging dir onto
//! the missing or empty target. Any failure removes the staging dir.

use super::archive::{Targets, Unpacked, create_private_dirs, unpack};
use super::crypt::{BackupKey, DecryptReader};
use super::manifest::{Manifest, StoreKind};
use super::{StoreCheck, absolute};
use crate::config::Settings;
use crate::home::{self, Home};
use anyhow::{Context as _, bail};
use exoclaw_store::{PgOptions, PgStore, backup::check_export, check_sqlite_snapshot};
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What `verify` found.
#[derive(Debug)]
pub struct Verified {
    pub manifest: Manifest,
    pub store: StoreCheck,
}

/// What `restore` did.
#[derive(Debug)]
pub struct Restored {
    pub manifest: Manifest,
    pub store: StoreCheck,
    pub home: PathBuf,
    /// Things the operator should know (config moved, DSN rewritten, ...).
    pub notes: Vec<String>,
}

/// Decrypts `file`, checks every checksum against the manifest and opens
/// the store copy; changes nothing (the copy lives in a private temp dir
/// that is removed).
pub async fn verify(key: &BackupKey, file: &Path) -> anyhow::Result<Verified> {
    let staging = tempfile::Builder::new()
        .prefix("exoclaw-verify-")
        .tempdir()
        .context("cannot create a private temporary dir")?;
    let store_dir = staging.path().join("store");
    let unpacked = unpack_file(key, file, store_dir, None).await?;
    let store = check_store(&unpacked).await?;
    Ok(Verified {
        manifest: unpacked.manifest,
        store,
    })
}

/// Restores `file` into `target`, a missing or empty directory. See the
/// module docs for the order of steps.
pub async fn restore(
    settings: &Settings,
    key: &BackupKey,
    file: &Path,
    target: &Path,
) -> anyhow::Result<Restored> {
    let target = absolute(target)?;
    check_target(&target)?;
    let parent = target
        .parent()
        .context("the target dir has a parent")?
        .to_path_buf();
    if !parent.is_dir() {
        bail!(
            "the parent of the target, {}, is not an existing directory; create it first",
            parent.display()
        );
    }
    let staging = tempfile::Builder::new()
        .prefix(".exoclaw-restore-")
        .tempdir_in(&parent)
        .with_context(|| format!("cannot create a private dir in {}", parent.display()))?;
    let new_home = staging.path().join("home");
    create_private_dirs(&new_home)?;
    let store_dir = staging.path().join("store");
    let unpacked = unpack_file(key, file, store_dir, Some(new_home.clone())).await?;
    let store = check_store(&unpacked).await?;
    let mut notes = Vec::new();

    match unpacked.manifest.store.kind {
        StoreKind::Sqlite => {
            let db = Home::new(&new_home).db_path();
            fs::rename(&unpacked.store_file, &db)
                .with_context(|| format!("cannot move the store into {}", new_home.display()))?;
            fs::set_permissions(&db, fs::Permissions::from_mode(0o600))
                .with_context(|| format!("cannot set the mode of {}", db.display()))?;
            if settings.secrets.postgres_dsn.is_some() {
                notes.push(
                    "this is a SQLite backup but EXOCLAW_POSTGRES_DSN is set: unset it when \
                     starting the restored gateway, or it will use PostgreSQL"
                        .to_owned(),
                );
            }
        }
        StoreKind::Postgres => {
            let Some(dsn) = settings.secrets.postgres_dsn.clone() else {
                bail!(
                    "this backup holds a PostgreSQL store: set EXOCLAW_POSTGRES_DSN to a new, \
                     empty database to restore it into"
                );
            };
            let dotenv = Home::new(&new_home).dotenv_path();
            if has_dsn_line(&dotenv)? {
                home::update_dotenv(&dotenv, &[("EXOCLAW_POSTGRES_DSN", Some(dsn.expose()))])?;
                notes.push(
                    "the restored .env now names the database restored into \
                     (EXOCLAW_POSTGRES_DSN)"
                        .to_owned(),
                );
            } else {
                notes.push(
                    "start the restored gateway with EXOCLAW_POSTGRES_DSN naming the database \
                     restored into"
                        .to_owned(),
                );
            }
            import_postgres(dsn, &unpacked.store_file).await?;
        }
    }
    Home::new(&new_home).ensure_layout()?;
    if unpacked
        .manifest
        .files
        .iter()
        .any(|f| f.path == "config/config.json")
    {
        notes.push(format!(
            "the config file was restored to {}",
            target.join("config.json").display()
        ));
    }
    // The target may have changed while we worked: check again, then move.
    check_target(&target)?;
    fs::rename(&new_home, &target).with_context(|| {
        format!(
            "cannot move the restored data dir into {} (the store was already restored)",
            target.display()
        )
    })?;
    fs::set_permissions(&target, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot set the mode of {}", target.display()))?;
    fs::File::open(&parent)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", parent.display()))?;
    Ok(Restored {
        manifest: unpacked.manifest,
        store,
        home: target,
        notes,
    })
}

/// The target must be missing, or an empty directory (not a link).
fn check_target(target: &Path) -> anyhow::Result<()> {
    match fs::symlink_metadata(target) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot inspect {}", target.display())),
        Ok(m) if m.file_type().is_symlink() => bail!(
            "{} is a symbolic link; restore into a real, empty directory",
            target.display()
        ),
        Ok(m) if !m.is_dir() => bail!(
            "{} exists and is not a directory; restore only into an empty or missing data dir",
            target.display()
        ),
        Ok(_) => {
            let mut entries = fs::read_dir(target)
                .with_context(|| format!("cannot list {}", target.display()))?;
            if entries.next().is_some() {
                bail!(
                    "{} is not empty; restore only into an empty or missing data dir (nothing \
                     was changed)",
                    target.display()
                );
            }
            Ok(())
        }
    }
}

/// Decrypts and unpacks on a blocking thread.
async fn unpack_file(
    key: &BackupKey,
    file: &Path,
    store_dir: PathBuf,
    home_dir: Option<PathBuf>,
) -> anyhow::Result<Unpacked> {
    let key = key.clone();
    let file = file.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let f = fs::File::open(&file)
            .with_context(|| format!("cannot open the backup {}", file.display()))?;
        if !f.metadata().is_ok_and(|m| m.is_file()) {
            bail!("{} is not a regular file", file.display());
        }
        let mut reader =
            DecryptReader::new(std::io::BufReader::new(f), &key).map_err(anyhow::Error::new)?;
        create_private_dirs(&store_dir)?;
        unpack(
            &mut reader,
            &Targets {
                store_dir: &store_dir,
                home_dir: home_dir.as_deref(),
            },
        )
    })
    .await
    .context("the backup task failed")?
}

/// Opens the store copy: SQLite read-only with an integrity check, a
/// PostgreSQL export parsed line by line. Its schema version must be the
/// manifest's.
async fn check_store(unpacked: &Unpacked) -> anyhow::Result<StoreCheck> {
    let expected = unpacked.manifest.store.schema_version;
    let path = unpacked.store_file.clone();
    let (schema_version, rows) = match unpacked.manifest.store.kind {
        StoreKind::Sqlite => {
            let info = check_sqlite_snapshot(&path)
                .await
                .map_err(|e| anyhow::anyhow!("the backup's SQLite store failed its check: {e}"))?;
            (info.schema_version, None)
        }
        StoreKind::Postgres => {
            let summary = tokio::task::spawn_blocking(move || {
                let f = fs::File::open(&path)
                    .with_context(|| format!("cannot open {}", path.display()))?;
                check_export(std::io::BufReader::new(f)).map_err(|e| {
                    anyhow::anyhow!("the backup's PostgreSQL export failed its check: {e}")
                })
            })
            .await
            .context("the check task failed")??;
            (summary.schema_version, Some(summary.total_rows()))
        }
    };
    if schema_version != expected {
        bail!(
            "the backup's store has schema version {schema_version}, its manifest says {expected}"
        );
    }
    Ok(StoreCheck {
        kind: unpacked.manifest.store.kind,
        schema_version,
        rows,
    })
}

fn has_dsn_line(dotenv: &Path) -> anyhow::Result<bool> {
    match fs::read_to_string(dotenv) {
        Ok(text) => Ok(text.lines().any(|l| {
            l.trim_start()
                .trim_start_matches("export ")
                .trim_start()
                .starts_with("EXOCLAW_POSTGRES_DSN=")
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", dotenv.display())),
    }
}

async fn import_postgres(dsn: exoclaw_core::Secret, export: &Path) -> anyhow::Result<()> {
    let store = PgStore::connect(PgOptions {
        dsn,
        max_connections: 2,
        connect_timeout: Duration::from_secs(5),
    })
    .await
    .map_err(|e| anyhow::anyhow!("cannot reach the PostgreSQL database to restore into: {e}"))?;
    let file = tokio::fs::File::open(export)
        .await
        .with_context(|| format!("cannot open {}", export.display()))?;
    let result = store
        .import_jsonl(tokio::io::BufReader::new(file))
        .await
        .map_err(|e| anyhow::anyhow!("cannot restore the PostgreSQL store: {e}"));
    store.close().await;
    result.map(|_| ())
}
