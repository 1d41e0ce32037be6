//! Retention: after a successful backup, remove the backups in the same
//! directory whose modification time is older than `backup.keep_days`.
//! Only regular files named like a backup are candidates; symbolic links
//! are never followed nor removed, and the backup just made is always kept.

use super::is_backup_name;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// What pruning did.
#[derive(Debug, Default)]
pub struct Pruned {
    pub removed: Vec<PathBuf>,
    /// One line per file that should have gone but could not.
    pub errors: Vec<String>,
}

/// Removes backups in `dir` older than `keep_days` days (by mtime) at `now`,
/// except `keep`. Never fails: problems are collected in `errors`.
pub fn prune(dir: &Path, keep_days: u32, now: SystemTime, keep: &Path) -> Pruned {
    let mut out = Pruned::default();
    let max_age = Duration::from_secs(u64::from(keep_days) * 86_400);
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            out.errors
                .push(format!("cannot list {} for pruning: {e}", dir.display()));
            return out;
        }
    };
    let keep_name = keep.file_name();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if Some(name.as_os_str()) == keep_name || !name.to_str().is_some_and(is_backup_name) {
            continue;
        }
        let path = entry.path();
        // `symlink_metadata`: a link is judged (and skipped) as a link.
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.file_type().is_file() {
            continue;
        }
        let old = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age > max_age);
        if !old {
            continue;
        }
        match fs::remove_file(&path) {
            Ok(()) => out.removed.push(path),
            Err(e) => out
                .errors
                .push(format!("cannot remove old backup {}: {e}", path.display())),
        }
    }
    out.removed.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn aged(path: &Path, days: u64) {
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(days * 86_400))
            .unwrap();
    }

    #[test]
    fn only_old_regular_backup_files_go() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let old = d.join("exoclaw-backup-20200101T000000Z.exob");
        let recent = d.join("exoclaw-backup-20200102T000000Z.exob");
        let other = d.join("notes.txt");
        let just_made = d.join("exoclaw-backup-20200103T000000Z.exob");
        aged(&old, 30);
        aged(&recent, 2);
        aged(&other, 30);
        aged(&just_made, 30);
        // An old file outside, linked under a backup name: neither goes.
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("precious");
        aged(&target, 30);
        let link = d.join("exoclaw-backup-20200104T000000Z.exob");
        symlink(&target, &link).unwrap();

        let pruned = prune(d, 14, SystemTime::now(), &just_made);
        assert_eq!(pruned.removed, vec![old.clone()]);
        assert!(pruned.errors.is_empty(), "{:?}", pruned.errors);
        assert!(!old.exists());
        for kept in [&recent, &other, &just_made, &target] {
            assert!(kept.exists(), "{}", kept.display());
        }
        assert!(fs::symlink_metadata(&link).is_ok(), "the link stays");
    }
}
