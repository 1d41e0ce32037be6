//! The system prompt, assembled from the agent's context files and the
//! user's. Files live in the data dir:
//!
//! ```text
//! agents/<agent>/SOUL.md IDENTITY.md AGENTS.md USER.md TOOLS.md     agent level
//! workspace/<tenant>/<user>/SOUL.md ... TOOLS.md                     user level
//! ```
//!
//! For `open` agents a user's file replaces the agent's file of the same
//! name; `predefined` agents share their context and take only USER.md from
//! the user. Each file is capped, and a missing file is simply skipped.

use exoclaw_core::model::{Agent, AgentType};
use std::path::{Path, PathBuf};

/// The context files, in prompt order.
pub const CONTEXT_FILES: &[&str] = &["SOUL.md", "IDENTITY.md", "AGENTS.md", "USER.md", "TOOLS.md"];

/// Largest part of one context file that goes into the prompt.
const MAX_FILE_BYTES: usize = 64 * 1024;

pub fn agent_dir(home: &Path, agent: &str) -> PathBuf {
    home.join("agents").join(agent)
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
    let agent_root = agent_dir(home, agent.id.as_str());
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
        let a = agent_dir(home, "helper");
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
}
