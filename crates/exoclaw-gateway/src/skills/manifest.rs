//! A `SKILL.md`'s front matter: the block between a first line `---` and
//! the next `---`, in the small YAML subset skills use: `key: value` lines
//! (values bare or quoted), and `tools` either as a flow list (`[exec,
//! read_file]`) or as `- item` lines under it. `name` (a slug) and
//! `description` (one line) are required; `version` defaults to `0.0.0`;
//! other keys (`license`, `metadata`, ...) and their indented lines are
//! ignored. A hand parser over a closed subset: no anchors, aliases or
//! tags, so no YAML bombs, and nothing to keep up with.

use super::SkillError;
use exoclaw_core::id::is_valid_slug;

/// The longest description.
pub const MAX_DESCRIPTION: usize = 1024;
/// The most tools a skill may name.
const MAX_TOOLS: usize = 32;

/// What a `SKILL.md` says about its skill.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub name: String,
    pub description: String,
    pub version: String,
    pub tools: Vec<String>,
    /// The text after the front matter.
    pub body: String,
}

fn unquote(v: &str) -> &str {
    let v = v.trim();
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

/// Parses `text` (a `SKILL.md`).
pub fn parse(text: &str) -> Result<Manifest, SkillError> {
    let bad = |why: String| SkillError::Invalid(format!("SKILL.md: {why}"));
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines();
    if lines.next().map(str::trim_end) != Some("---") {
        return Err(bad(
            "it must start with front matter (a line `---`)".to_owned()
        ));
    }
    let (mut name, mut description, mut version) = (None, None, None);
    let mut tools: Vec<String> = Vec::new();
    let mut in_tools = false;
    let mut closed = false;
    let mut consumed = 1;
    for line in lines.by_ref() {
        consumed += 1;
        if line.trim_end() == "---" {
            closed = true;
            break;
        }
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t', '-']) {
            if in_tools && let Some(item) = line.trim_start().strip_prefix('-') {
                tools.push(unquote(item).to_owned());
            }
            continue;
        }
        in_tools = false;
        let Some((key, value)) = line.split_once(':') else {
            return Err(bad(format!("line {consumed}: expected `key: value`")));
        };
        let value = unquote(value);
        match key.trim() {
            "name" => name = Some(value.to_owned()),
            "description" => description = Some(value.to_owned()),
            "version" => version = Some(value.to_owned()),
            "tools" => {
                if value.is_empty() {
                    in_tools = true;
                } else if let Some(list) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']'))
                {
                    tools.extend(
                        list.split(',')
                            .map(unquote)
                            .filter(|t| !t.is_empty())
                            .map(str::to_owned),
                    );
                } else {
                    tools.push(value.to_owned());
                }
            }
            _ => {}
        }
    }
    if !closed {
        return Err(bad(
            "the front matter is not closed (a line `---`)".to_owned()
        ));
    }
    let name = name.ok_or_else(|| bad("front matter needs `name`".to_owned()))?;
    if !is_valid_slug(&name) {
        return Err(bad(format!(
            "name {name:?} must be 1-64 characters of a-z, 0-9, '-' or '_'"
        )));
    }
    let description = description
        .filter(|d| !d.trim().is_empty())
        .ok_or_else(|| bad("front matter needs a `description`".to_owned()))?;
    if description.len() > MAX_DESCRIPTION {
        return Err(bad(format!(
            "the description is at most {MAX_DESCRIPTION} bytes"
        )));
    }
    let version = version.unwrap_or_else(|| "0.0.0".to_owned());
    if version.len() > 64 || version.chars().any(char::is_whitespace) {
        return Err(bad("version is one word of at most 64 bytes".to_owned()));
    }
    if tools.len() > MAX_TOOLS
        || tools
            .iter()
            .any(|t| t.is_empty() || t.len() > 128 || t.chars().any(char::is_whitespace))
    {
        return Err(bad(format!(
            "tools is a list of at most {MAX_TOOLS} tool names"
        )));
    }
    let body: Vec<&str> = text.lines().skip(consumed).collect();
    Ok(Manifest {
        name,
        description,
        version,
        tools,
        body: body.join("\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_in_both_list_styles() {
        let m = parse(
            "---\nname: pdf-tools\ndescription: \"Work with PDFs\"\nversion: 1.2.0\n\
             tools: [exec, 'read_file']\nlicense: MIT\nmetadata:\n  a: b\n---\n# PDF\nUse qpdf.\n",
        )
        .expect("valid");
        assert_eq!(m.name, "pdf-tools");
        assert_eq!(m.description, "Work with PDFs");
        assert_eq!(m.version, "1.2.0");
        assert_eq!(m.tools, ["exec", "read_file"]);
        assert_eq!(m.body, "# PDF\nUse qpdf.");
        let m = parse("---\nname: x\ndescription: d\ntools:\n  - exec\n  - web_fetch\n---\n")
            .expect("valid");
        assert_eq!(m.tools, ["exec", "web_fetch"]);
        assert_eq!(m.version, "0.0.0");
    }

    #[test]
    fn bad_front_matter_is_refused() {
        for bad in [
            "no front matter",
            "---\nname: x\ndescription: d\n",
            "---\ndescription: d\n---\n",
            "---\nname: Bad Name\ndescription: d\n---\n",
            "---\nname: x\n---\n",
            "---\nname: x\ndescription: d\nversion: 1 2\n---\n",
            "---\nname: x\ndescription: d\nthis line has no colon\n---\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
