//! The `skills` section of `config.json`: the install pipeline's caps
//! (`crate::skills`) and how many skills a turn is offered. Every cap has
//! a safe default; an archive or folder over one is refused with the limit
//! named.

use serde::{Deserialize, Serialize};

/// Skills.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SkillsConfig {
    /// The largest upload (the archive as sent), in KiB (1 to 65536,
    /// default 1024).
    pub max_archive_kb: u32,
    /// The most a skill's files may hold unpacked, in KiB (1 to 65536,
    /// default 2048).
    pub max_total_kb: u32,
    /// The largest single file, in KiB (1 to 16384, default 256).
    pub max_file_kb: u32,
    /// The most files a skill may have (1 to 1000, default 64).
    pub max_files: u32,
    /// Skills offered to a turn by description, at most (0 to 20, default
    /// 3; 0: none offered, the tools still work).
    pub offer_top_k: u32,
    /// Tokens the offered skills may take in the prompt (estimated at four
    /// bytes a token; 20 to 4000, default 200).
    pub offer_max_tokens: u32,
}

impl Default for SkillsConfig {
    fn default() -> Self {
        Self {
            max_archive_kb: 1024,
            max_total_kb: 2048,
            max_file_kb: 256,
            max_files: 64,
            offer_top_k: 3,
            offer_max_tokens: 200,
        }
    }
}

impl SkillsConfig {
    /// Range problems, each as (JSON path, what to do).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        let mut range = |path: &str, n: u32, lo: u32, hi: u32| {
            if !(lo..=hi).contains(&n) {
                p.push((
                    path.to_owned(),
                    format!("must be between {lo} and {hi} (got {n})"),
                ));
            }
        };
        range("skills.max_archive_kb", self.max_archive_kb, 1, 65_536);
        range("skills.max_total_kb", self.max_total_kb, 1, 65_536);
        range("skills.max_file_kb", self.max_file_kb, 1, 16_384);
        range("skills.max_files", self.max_files, 1, 1000);
        range("skills.offer_top_k", self.offer_top_k, 0, 20);
        range("skills.offer_max_tokens", self.offer_max_tokens, 20, 4000);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_ranges_checked() {
        assert!(SkillsConfig::default().problems().is_empty());
        let c: SkillsConfig =
            serde_json::from_str(r#"{"max_files": 0, "offer_top_k": 50}"#).expect("valid");
        assert_eq!(c.problems().len(), 2);
    }
}
