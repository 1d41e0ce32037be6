//! Encrypted backups of a data dir: `exoclaw backup create|verify|restore`
//! and the daily backup inside `serve`.
//!
//! A backup file (`exoclaw-backup-<UTC time>.exob`, mode 0600) is a tar
//! archive ([`archive`], with a [`manifest`] of checksums) encrypted as a
//! stream of AES-256-GCM chunks ([`crypt`]). It holds a consistent copy of
//! the store taken while the gateway runs (SQLite `VACUUM INTO`, or a
//! PostgreSQL export in one repeatable-read transaction), the config file,
//! the data dir's `.env`, the workspace and the agents' context files.
//!
//! The `.env` holds the gateway token and the vault key: a restored data dir
//! starts with the same token and opens its secrets. That is why the whole
//! file is encrypted, and why the backup key must be kept apart from the
//! backups (whoever holds both holds every secret of the gateway).

pub mod archive;
mod create;
pub mod crypt;
pub mod manifest;
mod restore;
pub mod retention;
pub mod schedule;

pub use create::{Created, create};
pub use crypt::BackupKey;
pub use restore::{restore, verify};

use crate::config::Settings;
use crate::home::Home;
use std::path::{Path, PathBuf};
use std::time::SystemTime;
#[cfg(test)]
use std::time::UNIX_EPOCH;

/// Every backup file's name starts with this.
pub const FILE_PREFIX: &str = "exoclaw-backup-";
/// And ends with this.
pub const FILE_SUFFIX: &str = ".exob";

/// The backup key of these settings: `EXOCLAW_BACKUP_KEY`, else derived
/// from `EXOCLAW_ENCRYPTION_KEY`.
pub fn key(settings: &Settings) -> anyhow::Result<BackupKey> {
    if let Some(k) = &settings.secrets.backup_key {
        return BackupKey::from_hex(k.expose());
    }
    if let Some(k) = &settings.secrets.encryption_key {
        return BackupKey::derive_from_vault_hex(k.expose());
    }
    anyhow::bail!(
        "no backup key: set EXOCLAW_BACKUP_KEY (64 hex characters), or EXOCLAW_ENCRYPTION_KEY \
         (the vault key, which the first `exoclaw serve` writes into the data dir's .env) to \
         derive one from"
    )
}

/// `<data dir>/backups`, where backups go unless `--out` says otherwise.
pub fn default_dir(home: &Home) -> PathBuf {
    home.root().join("backups")
}

/// `exoclaw-backup-20260102T030405Z.exob`; `n > 0` adds `-n` (two backups
/// in the same second).
pub fn file_name(at: SystemTime, n: u32) -> String {
    let stamp = utc_stamp(unix_secs(at), true);
    if n == 0 {
        format!("{FILE_PREFIX}{stamp}{FILE_SUFFIX}")
    } else {
        format!("{FILE_PREFIX}{stamp}-{n}{FILE_SUFFIX}")
    }
}

/// Whether `name` is one [`file_name`] makes (nothing else is ever pruned).
pub fn is_backup_name(name: &str) -> bool {
    let Some(rest) = name
        .strip_prefix(FILE_PREFIX)
        .and_then(|r| r.strip_suffix(FILE_SUFFIX))
    else {
        return false;
    };
    let (stamp, n) = match rest.split_once('-') {
        Some((s, n)) => (s, Some(n)),
        None => (rest, None),
    };
    let b = stamp.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let stamp_ok = b.len() == 16 && digits(0..8) && b[8] == b'T' && digits(9..15) && b[15] == b'Z';
    let n_ok =
        n.is_none_or(|n| !n.is_empty() && n.len() <= 4 && n.bytes().all(|c| c.is_ascii_digit()));
    stamp_ok && n_ok
}

pub use crate::clock::{unix_secs, utc_stamp};

/// `path` made absolute against the current directory (not resolving links).
pub fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).map_err(|e| anyhow::anyhow!("cannot resolve {}: {e}", path.display()))
}

/// The SQLite/PostgreSQL check of a store copy, as one line for output.
#[derive(Clone, Debug)]
pub struct StoreCheck {
    pub kind: manifest::StoreKind,
    pub schema_version: i64,
    /// PostgreSQL: rows in the export.
    pub rows: Option<u64>,
}

impl std::fmt::Display for StoreCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.kind, self.rows) {
            (manifest::StoreKind::Sqlite, _) => write!(
                f,
                "SQLite store (schema {}, integrity check ok)",
                self.schema_version
            ),
            (manifest::StoreKind::Postgres, rows) => write!(
                f,
                "PostgreSQL export (schema {}, {} rows)",
                self.schema_version,
                rows.unwrap_or(0)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn names_and_stamps() {
        let at = UNIX_EPOCH + Duration::from_secs(1_767_323_045); // 2026-01-02T03:04:05Z
        assert_eq!(file_name(at, 0), "exoclaw-backup-20260102T030405Z.exob");
        assert_eq!(file_name(at, 2), "exoclaw-backup-20260102T030405Z-2.exob");
        assert_eq!(utc_stamp(1_767_323_045, false), "2026-01-02T03:04:05Z");
        assert!(is_backup_name(&file_name(at, 0)));
        assert!(is_backup_name(&file_name(at, 17)));
        for not in [
            "exoclaw-backup-20260102T030405Z.exob.partial",
            ".exoclaw-backup-20260102T030405Z.exob",
            "exoclaw-backup-2026-01-02.exob",
            "exoclaw-backup-20260102T030405Z-.exob",
            "exoclaw-backup-20260102T030405Z-x.exob",
            "notes.exob",
            "exoclaw.db",
        ] {
            assert!(!is_backup_name(not), "{not}");
        }
    }
}
