//! `manifest.json`, the last entry of every backup archive: what made the
//! backup and when, the store it holds, and for every file its path, size,
//! mode and SHA-256. Written last so that each checksum is of the bytes that
//! went into the archive, even while a running gateway changes files.

use serde::{Deserialize, Serialize};

/// The archive's manifest entry name.
pub const MANIFEST_PATH: &str = "manifest.json";
/// The `format` field.
pub const FORMAT: &str = "exoclaw-backup";
/// The version of the archive layout this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Largest manifest a reader accepts.
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024 * 1024;

/// The archive path of the SQLite copy.
pub const SQLITE_STORE_PATH: &str = "store/exoclaw.db";
/// The archive path of the PostgreSQL export.
pub const POSTGRES_STORE_PATH: &str = "store/postgres.jsonl";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub exoclaw_version: String,
    pub store: StoreInfo,
    /// Every regular file in the archive except the manifest.
    pub files: Vec<FileEntry>,
    /// What was left out, and why (symbolic links, special files).
    #[serde(default)]
    pub skipped: Vec<Skipped>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    Sqlite,
    Postgres,
}

impl StoreKind {
    pub fn archive_path(self) -> &'static str {
        match self {
            StoreKind::Sqlite => SQLITE_STORE_PATH,
            StoreKind::Postgres => POSTGRES_STORE_PATH,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Sqlite => "sqlite",
            StoreKind::Postgres => "postgres",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreInfo {
    pub kind: StoreKind,
    pub schema_version: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
    /// Unix permission bits as archived.
    pub mode: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
}

impl Manifest {
    /// Parses and checks the format fields.
    pub fn parse(bytes: &[u8]) -> anyhow::Result<Self> {
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| anyhow::anyhow!("the backup's manifest is not valid ({e})"))?;
        if m.format != FORMAT {
            anyhow::bail!(
                "the backup's manifest has format {:?}, not {FORMAT:?}",
                m.format
            );
        }
        if m.format_version != FORMAT_VERSION {
            anyhow::bail!(
                "the backup's archive layout is version {}; this exoclaw reads version \
                 {FORMAT_VERSION} (use the exoclaw release that made it)",
                m.format_version
            );
        }
        Ok(m)
    }

    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Checks an archive path and returns it as `/`-separated text: relative,
/// UTF-8, only plain components, and under one of the places a backup
/// holds. Anything else (`..`, absolute paths, unknown places) is refused,
/// so extraction can never write outside its target.
pub fn checked_path(path: &std::path::Path, is_dir: bool) -> anyhow::Result<String> {
    use std::path::Component;
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => match p.to_str() {
                Some(s) if !s.is_empty() => parts.push(s),
                _ => anyhow::bail!("the archive holds a path that is not UTF-8"),
            },
            Component::CurDir if parts.is_empty() => {}
            _ => anyhow::bail!(
                "the archive holds an unsafe path {:?} (absolute or with `..`)",
                path.display().to_string()
            ),
        }
    }
    let text = parts.join("/");
    let allowed = match (parts.first().copied(), parts.len(), is_dir) {
        (Some("workspace" | "agents"), 1, dir) => dir,
        (Some("workspace" | "agents"), _, _) => true,
        (Some("store" | "config" | "dotenv"), 1, true) => true,
        (Some(_), _, false) => {
            matches!(
                text.as_str(),
                MANIFEST_PATH
                    | SQLITE_STORE_PATH
                    | POSTGRES_STORE_PATH
                    | "config/config.json"
                    | "dotenv/.env"
            )
        }
        _ => false,
    };
    if !allowed {
        anyhow::bail!("the archive holds an unexpected entry {text:?}");
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn paths_stay_inside_the_backup_layout() {
        let ok = |p: &str, dir: bool| checked_path(Path::new(p), dir).unwrap();
        assert_eq!(
            ok("workspace/default/alice/notes.md", false),
            "workspace/default/alice/notes.md"
        );
        assert_eq!(ok("./store/exoclaw.db", false), "store/exoclaw.db");
        assert_eq!(ok("agents", true), "agents");
        assert_eq!(ok("dotenv/.env", false), "dotenv/.env");
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "workspace/../../x",
            "store/other.db",
            "exoclaw.db",
            "config/evil.json",
            "logs/x",
        ] {
            assert!(checked_path(Path::new(bad), false).is_err(), "{bad}");
        }
        assert!(checked_path(Path::new("store/exoclaw.db"), true).is_err());
    }

    #[test]
    fn manifests_of_another_format_are_refused() {
        let m = Manifest {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION + 1,
            created_at: "2026-01-01T00:00:00Z".into(),
            exoclaw_version: "9.9.9".into(),
            store: StoreInfo {
                kind: StoreKind::Sqlite,
                schema_version: 4,
            },
            files: vec![],
            skipped: vec![],
        };
        let err = Manifest::parse(&serde_json::to_vec(&m).unwrap()).unwrap_err();
        assert!(err.to_string().contains("layout is version"), "{err}");
    }
}
