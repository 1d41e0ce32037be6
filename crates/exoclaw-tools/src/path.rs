//! Resolving a model-supplied path inside the workspace. Absolute paths and
//! `..` that would climb above the root are refused before touching the disk;
//! then the nearest existing ancestor is canonicalized and must still lie
//! under the canonical root, which refuses symlinks that point out.
//!
//! Errors name the path as the model gave it, never the host path.
//! (The sandbox issue replaces the final check with an fd-by-fd openat2
//! `RESOLVE_BENEATH` walk, which also closes swap races.)

use exoclaw_core::tool::ToolError;
use std::path::{Component, Path, PathBuf};

fn denied(given: &str, why: &str) -> ToolError {
    ToolError::new(
        "security.path_denied",
        format!("{given:?} is outside the workspace ({why})"),
    )
}

/// The absolute host path for `given`, which must stay under `root`.
pub fn resolve(root: &Path, given: &str) -> Result<PathBuf, ToolError> {
    if given.is_empty() {
        return Err(ToolError::invalid_args("path: must not be empty"));
    }
    if given.contains('\0') {
        return Err(ToolError::invalid_args("path: must not contain NUL"));
    }
    let rel = Path::new(given);
    let mut clean = PathBuf::new();
    for c in rel.components() {
        match c {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if !clean.pop() {
                    return Err(denied(given, "`..` climbs above the root"));
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(denied(given, "absolute paths are not allowed"));
            }
        }
    }
    let root = root
        .canonicalize()
        .map_err(|_| ToolError::failed("the workspace is not available"))?;
    let full = root.join(&clean);
    // Canonicalize the nearest existing ancestor: symlinks resolve there.
    let mut existing = full.as_path();
    let mut rest = Vec::new();
    loop {
        match existing.canonicalize() {
            Ok(real) => {
                if !real.starts_with(&root) {
                    return Err(denied(given, "a symlink points out of it"));
                }
                let mut out = real;
                for part in rest.iter().rev() {
                    out.push(part);
                }
                return Ok(out);
            }
            Err(_) => {
                let Some(name) = existing.file_name() else {
                    return Err(denied(given, "unresolvable"));
                };
                rest.push(name.to_owned());
                existing = existing
                    .parent()
                    .ok_or_else(|| denied(given, "unresolvable"))?;
            }
        }
    }
}

/// `path` as shown to the model: relative to the workspace root.
pub fn display(root: &Path, path: &Path) -> String {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    path.strip_prefix(&root)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "?".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_is_allowed_outside_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("a")).unwrap();
        for ok in [
            "x.txt",
            "a/b.txt",
            "./a/../c",
            "my..file.txt",
            "a/new/deep.txt",
        ] {
            let p = resolve(root, ok).unwrap();
            assert!(p.starts_with(root.canonicalize().unwrap()), "{ok}");
        }
        for bad in ["/etc/passwd", "../x", "a/../../x", "..", ""] {
            let e = resolve(root, bad).unwrap_err();
            assert!(
                !e.message.contains(root.to_str().unwrap()),
                "host path leaked: {e}"
            );
        }
    }

    #[test]
    fn symlinks_out_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        let e = resolve(dir.path(), "link/secret").unwrap_err();
        assert_eq!(e.code, "security.path_denied");
        assert!(!e.message.contains(outside.path().to_str().unwrap()));
    }
}
