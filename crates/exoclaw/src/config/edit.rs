//! Changing one channel's settings in `config.json` (`PATCH
//! /v1/channels/{name}`): the file is read again, the channel's section
//! merged with a JSON merge patch of the keys the running gateway applies
//! at once ([`PATCHABLE`]), the whole file validated exactly as at start-up,
//! and written back atomically (a temporary file beside it with the old
//! mode, synced, renamed over it). A section's [`version`] is a digest of
//! it as it is on disk: a patch that names the version it read is refused
//! when the file changed since (compare-and-set).
//!
//! The rest of the file is rewritten as JSON of the same content: every
//! value is kept, but the layout becomes pretty-printed JSON with the keys
//! of each object in alphabetical order.

use super::file::ChannelConfig;
use super::validate::{Problem, parse_config_text, validate};
use serde_json::Value;
use std::io::Write as _;
use std::path::Path;

/// The keys of `channels.<name>` a patch may change: the sender policy,
/// what a person sees while an answer is written, and files. The adapter's
/// own sections (`type`, `webhook`, `telegram`, `outbox`) need a restart
/// and stay in the file's hands.
pub const PATCHABLE: &[&str] = &["dm_policy", "allow_from", "groups", "progress", "files"];

/// Why a channel's settings were not changed.
#[derive(Debug)]
pub enum EditError {
    /// No such channel in the file.
    NotFound,
    /// The patch, or the file it would make, is not valid (each problem
    /// with its path).
    Invalid(Vec<Problem>),
    /// The section changed since the version the patch names.
    Conflict { current: String },
    /// The file cannot be read or written (the message names no secret).
    Io(String),
}

/// The digest of a channel's section as stored (16 hex characters).
pub fn version(section: &Value) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(section.to_string().as_bytes());
    hex::encode(&digest[..8])
}

/// `channels.<name>` of the file at `path`, as stored.
pub fn read_section(path: &Path, name: &str) -> Result<Value, EditError> {
    let root = read_root(path)?;
    root.get("channels")
        .and_then(|c| c.get(name))
        .filter(|s| s.is_object())
        .cloned()
        .ok_or(EditError::NotFound)
}

fn read_root(path: &Path) -> Result<Value, EditError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(EditError::NotFound),
        Err(e) => return Err(EditError::Io(format!("cannot read the configuration: {e}"))),
    };
    serde_json::from_str(&text)
        .map_err(|_| EditError::Io("the configuration file is no longer valid JSON".to_owned()))
}

/// RFC 7386: `patch` merged into `target` (`null` removes a key).
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// Apply `patch` to channel `name` in the file at `path` (see the module
/// docs); the channel's settings as now stored, and their new version.
pub fn patch_channel(
    path: &Path,
    name: &str,
    patch: &Value,
    expected: Option<&str>,
) -> Result<(ChannelConfig, String), EditError> {
    let Value::Object(keys) = patch else {
        return Err(EditError::Invalid(vec![Problem {
            path: "settings".to_owned(),
            message: "must be a JSON object (a merge patch of the channel's settings)".to_owned(),
        }]));
    };
    let fixed: Vec<Problem> = keys
        .keys()
        .filter(|k| !PATCHABLE.contains(&k.as_str()))
        .map(|k| Problem {
            path: format!("channels.{name}.{k}"),
            message: format!(
                "not changeable here (only {}); edit config.json and restart",
                PATCHABLE.join(", ")
            ),
        })
        .collect();
    if !fixed.is_empty() {
        return Err(EditError::Invalid(fixed));
    }
    let mut root = read_root(path)?;
    let section = root
        .get_mut("channels")
        .and_then(|c| c.get_mut(name))
        .filter(|s| s.is_object())
        .ok_or(EditError::NotFound)?;
    let current = version(section);
    if expected.is_some_and(|v| v != current) {
        return Err(EditError::Conflict { current });
    }
    merge(section, patch);
    let new_version = version(section);
    let mut text = serde_json::to_string_pretty(&root)
        .map_err(|e| EditError::Io(format!("cannot write the configuration: {e}")))?;
    text.push('\n');
    let config = parse_config_text(&text).map_err(EditError::Invalid)?;
    let problems = validate(&config);
    if !problems.is_empty() {
        return Err(EditError::Invalid(problems));
    }
    let channel = config
        .channels
        .get(name)
        .cloned()
        .ok_or(EditError::NotFound)?;
    write_atomically(path, text.as_bytes())?;
    Ok((channel, new_version))
}

/// Replace the file at `path` by `content`: a temporary file beside it with
/// its mode, synced, then renamed over it.
fn write_atomically(path: &Path, content: &[u8]) -> Result<(), EditError> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let io = |what: &str, e: std::io::Error| EditError::Io(format!("cannot {what}: {e}"));
    let meta = std::fs::symlink_metadata(path).map_err(|e| io("read the configuration", e))?;
    if !meta.file_type().is_file() {
        return Err(EditError::Io(
            "the configuration is not a regular file (a symlink?); edit it by hand".to_owned(),
        ));
    }
    let mode = meta.permissions().mode() & 0o777;
    let dir = path
        .parent()
        .ok_or_else(|| EditError::Io("the configuration has no directory".to_owned()))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(content)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io("write the configuration", e));
    }
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_merge_patch_replaces_adds_and_removes() {
        let mut t = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1]});
        merge(
            &mut t,
            &json!({"a": null, "b": {"c": 9}, "e": [2, 3], "f": "x"}),
        );
        assert_eq!(t, json!({"b": {"c": 9, "d": 3}, "e": [2, 3], "f": "x"}));
    }

    fn file(dir: &tempfile::TempDir, config: &Value) -> std::path::PathBuf {
        let path = dir.path().join("config.json");
        std::fs::write(&path, config.to_string()).unwrap();
        path
    }

    #[test]
    fn a_channel_is_patched_validated_and_written_with_its_mode() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = file(
            &dir,
            &json!({"gateway": {"port": 9}, "channels": {"tg": {"dm_policy": "pairing"}}}),
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let v0 = version(&read_section(&path, "tg").unwrap());
        let (c, v1) = patch_channel(
            &path,
            "tg",
            &json!({"dm_policy": "allowlist", "allow_from": ["42"]}),
            Some(&v0),
        )
        .unwrap();
        assert_eq!(c.allow_from, ["42"]);
        assert_ne!(v0, v1);
        let back: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back["gateway"]["port"], 9);
        assert_eq!(back["channels"]["tg"]["dm_policy"], "allowlist");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
        // The old version no longer matches.
        assert!(matches!(
            patch_channel(&path, "tg", &json!({"dm_policy": "open"}), Some(&v0)),
            Err(EditError::Conflict { .. })
        ));
        // Invalid values and fixed keys name their field; the file stays.
        let before = std::fs::read(&path).unwrap();
        for (patch, field) in [
            (json!({"dm_policy": "sometimes"}), "channels.tg.dm_policy"),
            (
                json!({"files": {"max_bytes": 0}}),
                "channels.tg.files.max_bytes",
            ),
            (
                json!({"telegram": {"api_base": "x"}}),
                "channels.tg.telegram",
            ),
            (json!({"allow_from": [""]}), "channels.tg.allow_from[0]"),
        ] {
            match patch_channel(&path, "tg", &patch, None) {
                Err(EditError::Invalid(p)) => {
                    assert!(p.iter().any(|p| p.path == field), "{patch}: {p:?}");
                }
                other => panic!("{patch}: {other:?}"),
            }
        }
        assert_eq!(std::fs::read(&path).unwrap(), before);
        assert!(matches!(
            patch_channel(&path, "nope", &json!({}), None),
            Err(EditError::NotFound)
        ));
    }
}
