//! "A build fails if any other HTTP client is constructed": clippy's
//! `disallowed-methods` (CI runs `cargo clippy --workspace --all-targets
//! -D warnings`) is the enforcement; this test proves the workspace's
//! `clippy.toml` still lists every way to build a reqwest client, and that
//! the egress client's own construction is the one place allowed to.

const CLIPPY_TOML: &str = include_str!("../../../../clippy.toml");
const CLIENT_RS: &str = include_str!("../../src/client.rs");

/// The `path = "..."` entries of `disallowed-methods`, with their reasons.
fn disallowed_methods() -> Vec<(String, String)> {
    let start = CLIPPY_TOML
        .find("disallowed-methods")
        .expect("clippy.toml has disallowed-methods");
    let list = &CLIPPY_TOML[start..];
    let list = &list[..list.find("\n]").expect("the list is closed")];
    let field = |line: &str, name: &str| {
        let at = line.find(&format!("{name} = \""))? + name.len() + 4;
        let len = line[at..].find('"')?;
        Some(line[at..at + len].to_owned())
    };
    list.lines()
        .filter_map(|l| Some((field(l, "path")?, field(l, "reason")?)))
        .collect()
}

#[test]
fn clippy_refuses_every_other_http_client() {
    let listed = disallowed_methods();
    for path in [
        "reqwest::Client::new",
        "reqwest::Client::builder",
        "reqwest::ClientBuilder::new",
        "reqwest::get",
    ] {
        let reason = listed
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, r)| r.as_str())
            .unwrap_or_else(|| panic!("clippy.toml does not disallow {path}"));
        assert!(
            reason.contains("exoclaw_egress::EgressClient"),
            "{path}: the reason should point at the egress client: {reason}"
        );
    }
    // The one construction, allowed where it happens.
    assert_eq!(CLIENT_RS.matches("reqwest::Client::builder()").count(), 1);
    assert_eq!(CLIENT_RS.matches("clippy::disallowed_methods").count(), 1);
}
