//! The system prompt, assembled from the agent's context files and the
//! user's. Files live in the data dir:
//!
//! ```text
//! agents/<agent>/SOUL.md IDENTITY.md AGENTS.md USER.md TOOLS.md     agent level (default tenant)
//! tenants/<tenant>/agents/<agent>/SOUL.md ... TOOLS.md               agent level (other tenants)
//! workspace/<tenant>/<user>/SOUL.md ... TOOLS.md                     user level
//! ```
//!
//! For `open` agents a user's file replaces the agent's file of the same
//! name; `predefined` agents share their context and take only USER.md from
//! the user. Each file is capped, and a missing file is simply skipped.
//!
//! An agent's own files are read and written through [`read_file`],
//! [`write_file`] and [`delete_file`] (`/v1/agents/{id}/files`, the
//! dashboard's agent page): only the five names, at most
//! [`MAX_FILE_BYTES`], written atomically (a temporary file beside it,
//! 0600, synced, renamed) in a 0700 directory.

use exoclaw_core::model::{Agent, AgentType};
use std::path::{Path, PathBuf};

/// The context files, in prompt order.
pub const CONTEXT_FILES: &[&str] = &["SOUL.md", "IDENTITY.md", "AGENTS.md", "USER.md", "TOOLS.md"];

/// Largest part of one context file that goes into the prompt, and the
/// largest file [`write_file`] takes.
pub const MAX_FILE_BYTES: usize = 64 * 1024;

/// Where the agent `agent` of `tenant` keeps its context files: the
/// default tenant's under `agents/` (as before tenants existed), every
/// other tenant's under its own `tenants/<tenant>/agents/`, so two tenants'
/// agents of one name never share a file.
pub fn agent_dir(home: &Path, tenant: &str, agent: &str) -> PathBuf {
    if tenant == exoclaw_core::DEFAULT_TENANT {
        home.join("agents").join(agent)
    } else {
        home.join("tenants").join(tenant).join("agents").join(agent)
    }
}

pub fn user_workspace(home: &Path, tenant: &str, user: &str) -> PathBuf {
    home.join("workspace").join(tenant).join(user)
}

/// The system prompt for `agent` serving `user`.
pub fn system_prompt(home: &Path, agent: &Agent, user: &str) -> String {
    let settings =
        super::agent_settings::AgentSettings::from_stored(agent.id.as_str(), &agent.config);
    let base = settings.system_prompt.unwrap_or_else(|| {
            format!(
                "You are {}, an AI assistant served by exoclaw. Use the tools you are given when they help; \
                 files you read and write live in the user's workspace.",
                agent.display_name
            )
        });
    // The untrusted-content note (exoclaw_guard::markers) is appended by
    // the runtime after the context files.
    let mut prompt = base;
    let agent_root = agent_dir(home, agent.tenant_id.as_str(), agent.id.as_str());
    let user_root = user_workspace(home, agent.tenant_id.as_str(), user);
    for name in CONTEXT_FILES {
        let user_allowed = agent.agent_type == AgentType::Open || *name == "USER.md";
        let text = user_allowed
            .then(|| read_capped(&user_root.join(name)))
            .flatten()
            .or_else(|| read_capped(&agent_root.join(name)));
        if let Some(text) = text {
            prompt.push_str(&format!("\n\n## {name}\n{}", text.trim_end()));
        }
    }
    prompt
}

fn read_capped(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if text.len() > MAX_FILE_BYTES {
        let mut cut = MAX_FILE_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("\n[truncated]");
    }
    Some(text)
}

/// One of an agent's context files as a listing shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    pub name: &'static str,
    /// `None`: the file does not exist.
    pub bytes: Option<u64>,
    /// Last change, Unix milliseconds.
    pub modified: Option<i64>,
}

/// Why a context file cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error(
        "{0:?} is not a context file: one of SOUL.md, IDENTITY.md, AGENTS.md, USER.md, TOOLS.md"
    )]
    Name(String),
    #[error("{name} is {bytes} bytes; a context file holds at most {MAX_FILE_BYTES} bytes")]
    TooLarge { name: String, bytes: usize },
    #[error("{0}")]
    Io(String),
}

/// `name` as one of [`CONTEXT_FILES`].
fn context_name(name: &str) -> Result<&'static str, FileError> {
    CONTEXT_FILES
        .iter()
        .copied()
        .find(|n| *n == name)
        .ok_or_else(|| FileError::Name(name.to_owned()))
}

/// The agent's five context files, existing or not, in prompt order.
pub fn list_files(home: &Path, tenant: &str, agent: &str) -> Vec<FileInfo> {
    let dir = agent_dir(home, tenant, agent);
    CONTEXT_FILES
        .iter()
        .map(|name| {
            let meta = std::fs::symlink_metadata(dir.join(name))
                .ok()
                .filter(std::fs::Metadata::is_file);
            FileInfo {
                name,
                bytes: meta.as_ref().map(std::fs::Metadata::len),
                modified: meta
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .and_then(|d| i64::try_from(d.as_millis()).ok()),
            }
        })
        .collect()
}

/// The text of one of the agent's context files; `None` when it does not
/// exist (a symlink is not followed: it reads as missing).
pub fn read_file(
    home: &Path,
    tenant: &str,
    agent: &str,
    name: &str,
) -> Result<Option<String>, FileError> {
    let path = agent_dir(home, tenant, agent).join(context_name(name)?);
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(FileError::Io(format!("cannot read {name}: {e}"))),
    }
    let bytes =
        std::fs::read(&path).map_err(|e| FileError::Io(format!("cannot read {name}: {e}")))?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// Replaces (or creates) one of the agent's context files with `text`,
/// atomically; the next turn's prompt has it.
pub fn write_file(
    home: &Path,
    tenant: &str,
    agent: &str,
    name: &str,
    text: &str,
) -> Result<(), FileError> {
    use std::io::Write as _;
    use std::os::unix::fs::DirBuilderExt as _;
    let name = context_name(name)?;
    if text.len() > MAX_FILE_BYTES {
        return Err(FileError::TooLarge {
            name: name.to_owned(),
            bytes: text.len(),
        });
    }
    let io = |e: std::io::Error| FileError::Io(format!("cannot write {name}: {e}"));
    let dir = agent_dir(home, tenant, agent);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(io)?;
    // tempfile creates the file 0600, with a name of its own.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .tempfile_in(&dir)
        .map_err(io)?;
    tmp.write_all(text.as_bytes()).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(dir.join(name)).map_err(|e| io(e.error))?;
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Removes one of the agent's context files; `false` when there was none.
pub fn delete_file(home: &Path, tenant: &str, agent: &str, name: &str) -> Result<bool, FileError> {
    let path = agent_dir(home, tenant, agent).join(context_name(name)?);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(FileError::Io(format!("cannot remove {name}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn agent(kind: AgentType) -> Agent {
        Agent {
            id: "helper".into(),
            tenant_id: "default".into(),
            display_name: "Helper".into(),
            agent_type: kind,
            config: json!({}),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn assembles_agent_and_user_files_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        let a = agent_dir(home, "default", "helper");
        let u = user_workspace(home, "default", "alice");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&u).unwrap();
        std::fs::write(a.join("SOUL.md"), "agent soul").unwrap();
        std::fs::write(a.join("TOOLS.md"), "agent tools").unwrap();
        std::fs::write(u.join("SOUL.md"), "alice soul").unwrap();
        std::fs::write(u.join("USER.md"), "alice likes tea").unwrap();

        let open = system_prompt(home, &agent(AgentType::Open), "alice");
        assert!(open.starts_with("You are Helper"));
        assert!(open.contains("## SOUL.md\nalice soul"), "{open}");
        let soul = open.find("## SOUL.md").unwrap();
        let user = open.find("## USER.md\nalice likes tea").unwrap();
        let tools = open.find("## TOOLS.md\nagent tools").unwrap();
        assert!(soul < user && user < tools);

        let shared = system_prompt(home, &agent(AgentType::Predefined), "alice");
        assert!(
            shared.contains("## SOUL.md\nagent soul"),
            "predefined agents keep their soul"
        );
        assert!(shared.contains("alice likes tea"));

        let bob = system_prompt(home, &agent(AgentType::Open), "bob");
        assert!(!bob.contains("alice"), "users never see each other's files");
    }

    #[test]
    fn tenants_agents_of_one_name_keep_their_own_files() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        write_file(home, "default", "helper", "SOUL.md", "the default soul").unwrap();
        write_file(home, "acme", "helper", "SOUL.md", "acme's soul").unwrap();
        assert!(
            home.join("agents/helper/SOUL.md").is_file(),
            "the old place"
        );
        assert!(home.join("tenants/acme/agents/helper/SOUL.md").is_file());
        let mut theirs = agent(AgentType::Open);
        theirs.tenant_id = "acme".into();
        let prompt = system_prompt(home, &theirs, "alice");
        assert!(
            prompt.contains("acme's soul") && !prompt.contains("default soul"),
            "{prompt}"
        );
        let ours = system_prompt(home, &agent(AgentType::Open), "alice");
        assert!(
            ours.contains("the default soul") && !ours.contains("acme"),
            "{ours}"
        );
    }

    #[test]
    fn files_are_written_atomically_private_and_only_under_their_names() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        assert_eq!(
            read_file(home, "default", "helper", "TOOLS.md").unwrap(),
            None
        );
        write_file(
            home,
            "default",
            "helper",
            "TOOLS.md",
            "use the shell sparingly",
        )
        .unwrap();
        write_file(home, "default", "helper", "TOOLS.md", "use it never").unwrap();
        assert_eq!(
            read_file(home, "default", "helper", "TOOLS.md")
                .unwrap()
                .as_deref(),
            Some("use it never")
        );
        let d = agent_dir(home, "default", "helper");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&d.join("TOOLS.md")), 0o600);
        assert_eq!(mode(&d), 0o700);
        let names: Vec<String> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["TOOLS.md"], "no temporary file left");
        let listed = list_files(home, "default", "helper");
        assert_eq!(listed.len(), 5);
        assert_eq!(listed[4].name, "TOOLS.md");
        assert_eq!(listed[4].bytes, Some(12));
        assert_eq!(listed[0].bytes, None, "SOUL.md does not exist");
        for bad in ["../config.json", "soul.md", "SOUL.md/x", ".env", ""] {
            assert!(matches!(
                write_file(home, "default", "helper", bad, "x"),
                Err(FileError::Name(_))
            ));
            assert!(matches!(
                read_file(home, "default", "helper", bad),
                Err(FileError::Name(_))
            ));
        }
        let big = "x".repeat(MAX_FILE_BYTES + 1);
        let e = write_file(home, "default", "helper", "SOUL.md", &big).unwrap_err();
        assert!(e.to_string().contains("at most 65536 bytes"), "{e}");
        assert_eq!(
            read_file(home, "default", "helper", "SOUL.md").unwrap(),
            None,
            "nothing written"
        );
        // A symlink planted in the agent's directory is not followed.
        std::os::unix::fs::symlink("/etc/passwd", d.join("USER.md")).unwrap();
        assert_eq!(
            read_file(home, "default", "helper", "USER.md").unwrap(),
            None
        );
        assert!(delete_file(home, "default", "helper", "TOOLS.md").unwrap());
        assert!(!delete_file(home, "default", "helper", "TOOLS.md").unwrap());
    }
}
