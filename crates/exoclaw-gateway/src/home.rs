//! The data dir (`EXOCLAW_HOME`, default `~/.exoclaw`): its layout, its
//! permissions, and the atomic 0600 writes of the secret files in it.
//!
//! ```text
//! ~/.exoclaw/            0700
//!   config.json          non-secret settings (0600 when exoclaw writes it)
//!   .env                 secrets: gateway token, encryption key (0600)
//!   exoclaw.db           the embedded SQLite store, plus -wal/-shm (0600)
//!   instance_id          this gateway's name as the owner of its runs
//!   workspace/           agent workspaces (per user below it)
//!   skills/              installed skills
//!   backups/             encrypted backups
//!   logs/                log files when file logging is on
//! ```

use crate::config::env::Env;
use anyhow::{Context as _, bail};
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

pub const SUBDIRS: &[&str] = &["workspace", "skills", "backups", "logs"];
pub const DB_FILE: &str = "exoclaw.db";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `EXOCLAW_HOME`, or `$HOME/.exoclaw`.
    pub fn resolve(env: &Env) -> anyhow::Result<Self> {
        if let Some(h) = env.get("EXOCLAW_HOME") {
            return Ok(Self::new(h));
        }
        match env.get("HOME") {
            Some(home) => Ok(Self::new(Path::new(home).join(".exoclaw"))),
            None => bail!("neither EXOCLAW_HOME nor HOME is set; set EXOCLAW_HOME to the data dir"),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn dotenv_path(&self) -> PathBuf {
        self.root.join(".env")
    }
    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.json")
    }
    pub fn db_path(&self) -> PathBuf {
        self.root.join(DB_FILE)
    }

    /// This gateway's lasting name: it owns the delegations it runs, and
    /// a restart from the same data dir finds the ones the last run left
    /// behind. Read from `instance_id`, made on first use.
    pub fn instance_id(&self) -> anyhow::Result<String> {
        let path = self.root.join("instance_id");
        match fs::read_to_string(&path) {
            Ok(text) if is_instance_id(text.trim()) => return Ok(text.trim().to_owned()),
            Ok(_) => bail!(
                "{} does not hold an instance id (32 hex characters); remove it to make a new one",
                path.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
        let id = random_hex_32()?[..32].to_owned();
        write_private_file(&path, format!("{id}\n").as_bytes())?;
        Ok(id)
    }

    /// A log file under `logs/` (the terminal chat's, for one).
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.root.join("logs").join(name)
    }

    /// Files that hold secrets or private data and must be 0600.
    pub fn secret_files(&self) -> Vec<PathBuf> {
        let db = self.db_path();
        vec![
            self.dotenv_path(),
            db.clone(),
            db.with_extension("db-wal"),
            db.with_extension("db-shm"),
        ]
    }

    pub fn exists(&self) -> bool {
        self.root.exists()
    }

    /// Read-only checks: the data dir (if present) is a directory with no
    /// group/other permissions, and so is every secret file present.
    /// Returns one problem per offending path, each naming the fix.
    pub fn permission_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let meta = match fs::metadata(&self.root) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return out,
            Err(e) => {
                out.push(format!(
                    "cannot inspect data dir {}: {e}",
                    self.root.display()
                ));
                return out;
            }
        };
        if !meta.is_dir() {
            out.push(format!(
                "data dir {} is not a directory; point EXOCLAW_HOME at a directory",
                self.root.display()
            ));
            return out;
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            out.push(format!(
                "data dir {} is accessible by group or others (mode {mode:04o}); run `chmod 700 {}`",
                self.root.display(),
                self.root.display()
            ));
        }
        for file in self.secret_files() {
            if let Ok(m) = fs::symlink_metadata(&file) {
                let mode = m.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    out.push(format!(
                        "secret file {} is readable by group or others (mode {mode:04o}); run `chmod 600 {}`",
                        file.display(),
                        file.display()
                    ));
                }
            }
        }
        out
    }

    /// Fails when the data dir exists but cannot be written (checked with a
    /// probe file that is removed at once), or cannot be created.
    pub fn check_writable(&self) -> anyhow::Result<()> {
        let dir = if self.root.exists() {
            self.root.clone()
        } else {
            // The nearest existing ancestor must let us create the data dir.
            let mut p = self.root.parent();
            while let Some(d) = p {
                if d.exists() {
                    break;
                }
                p = d.parent();
            }
            match p {
                Some(d) => d.to_path_buf(),
                None => return Ok(()),
            }
        };
        let probe = dir.join(format!(".exoclaw-write-probe-{}", std::process::id()));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&probe)
        {
            Ok(_) => {
                let _ = fs::remove_file(&probe);
                Ok(())
            }
            Err(e) => bail!(
                "data dir {} is not writable ({e}); fix its permissions or choose another with EXOCLAW_HOME",
                self.root.display()
            ),
        }
    }

    /// Create the data dir (0700) and its subdirectories when missing.
    pub fn ensure_layout(&self) -> anyhow::Result<()> {
        create_private_dir(&self.root).with_context(|| {
            format!(
                "cannot create data dir {} (choose a writable location with EXOCLAW_HOME)",
                self.root.display()
            )
        })?;
        for sub in SUBDIRS {
            let p = self.root.join(sub);
            create_private_dir(&p).with_context(|| format!("cannot create {}", p.display()))?;
        }
        Ok(())
    }
}

fn create_private_dir(path: &Path) -> std::io::Result<()> {
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Write `contents` to `path` atomically with mode 0600: a new temp file in
/// the same directory, fsync, rename over, fsync the directory.
pub fn write_private_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("a file path has a parent")?;
    let name = path
        .file_name()
        .context("a file path has a name")?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

/// Set (`Some`) or remove (`None`) keys in a `.env` file, keeping every other
/// line as it was. The file is rewritten atomically with mode 0600.
pub fn update_dotenv(path: &Path, updates: &[(&str, Option<&str>)]) -> anyhow::Result<()> {
    let old = match fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut lines: Vec<String> = Vec::new();
    let mut done = vec![false; updates.len()];
    for line in old.lines() {
        let key = line
            .trim_start()
            .trim_start_matches("export ")
            .split('=')
            .next()
            .unwrap_or("")
            .trim();
        match updates.iter().position(|(k, _)| *k == key) {
            Some(i) => {
                if let (Some(v), false) = (updates[i].1, done[i]) {
                    lines.push(format!("{key}={v}"));
                }
                done[i] = true;
            }
            None => lines.push(line.to_owned()),
        }
    }
    for (i, (k, v)) in updates.iter().enumerate() {
        if let (false, Some(v)) = (done[i], v) {
            lines.push(format!("{k}={v}"));
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    write_private_file(path, text.as_bytes())
}

fn is_instance_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// 32 random bytes as 64 lowercase hex characters.
pub fn random_hex_32() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no system randomness: {e}"))?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_private() {
        let tmp = tempfile::tempdir().unwrap();
        let home = Home::new(tmp.path().join("h"));
        home.ensure_layout().unwrap();
        let mode = fs::metadata(home.root()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        for sub in SUBDIRS {
            assert!(home.root().join(sub).is_dir());
        }
        assert!(home.permission_problems().is_empty());
    }

    #[test]
    fn open_permissions_are_named_with_the_fix() {
        let tmp = tempfile::tempdir().unwrap();
        let home = Home::new(tmp.path().join("h"));
        home.ensure_layout().unwrap();
        fs::set_permissions(home.root(), fs::Permissions::from_mode(0o755)).unwrap();
        let env = home.dotenv_path();
        fs::write(&env, "X=1\n").unwrap();
        fs::set_permissions(&env, fs::Permissions::from_mode(0o644)).unwrap();
        let problems = home.permission_problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("chmod 700"), "{problems:?}");
        assert!(problems[1].contains("chmod 600"), "{problems:?}");
    }

    #[test]
    fn dotenv_update_keeps_other_lines_and_is_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(".env");
        fs::write(&path, "# comment\nA=1\nEXOCLAW_X=old\nB=2\n").unwrap();
        update_dotenv(
            &path,
            &[("EXOCLAW_X", Some("new")), ("EXOCLAW_Y", Some("y"))],
        )
        .unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "# comment\nA=1\nEXOCLAW_X=new\nB=2\nEXOCLAW_Y=y\n"
        );
        update_dotenv(&path, &[("A", None)]).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "# comment\nEXOCLAW_X=new\nB=2\nEXOCLAW_Y=y\n"
        );
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn random_keys_are_hex_and_distinct() {
        let a = random_hex_32().unwrap();
        let b = random_hex_32().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
