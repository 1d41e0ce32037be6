//! `exoclaw token rotate`: a new token works at once, the old one until the
//! grace period ends, then a running gateway refuses it — no restart.

use crate::support::*;
use std::time::{Duration, Instant};

#[test]
fn rotation_with_an_overlap_window_and_no_restart() {
    let home = TestHome::new();
    let gw = Gateway::start(&home.path, &[]);
    let old = home
        .dotenv()
        .lines()
        .find_map(|l| l.strip_prefix("EXOCLAW_GATEWAY_TOKEN="))
        .unwrap()
        .to_owned();
    assert_eq!(gw.get("/v1/status", Some(&old)).status, 200);

    let out = run(
        &home.path,
        &[],
        &["token", "rotate", "--grace", "3s", "--json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let new = v["token"].as_str().unwrap().to_owned();
    assert_eq!(new.len(), 64);
    assert!(v["old_valid_until"].as_str().unwrap().ends_with('Z'));
    assert!(home.dotenv().contains(&new), ".env follows the rotation");
    assert_eq!(home.mode(".env"), 0o600);

    // The running gateway takes the new token at once and the old one for now.
    assert_eq!(gw.get("/v1/status", Some(&new)).status, 200);
    assert_eq!(gw.get("/v1/status", Some(&old)).status, 200);
    // After the window the old token is refused, without a restart.
    let deadline = Instant::now() + Duration::from_secs(10);
    while gw.get("/v1/status", Some(&old)).status == 200 {
        assert!(
            Instant::now() < deadline,
            "the old token still works after the grace period"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(gw.get("/v1/status", Some(&new)).status, 200);
    drop(gw);

    // The store holds digests only, and the rotation was audited.
    let db = std::fs::read(home.file("exoclaw.db")).unwrap();
    let wal = std::fs::read(home.file("exoclaw.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(
            !bytes.windows(new.len()).any(|w| w == new.as_bytes()),
            "plaintext token on disk"
        );
    }
    // A restart keeps the new token; the stale old one stays refused even if
    // someone puts it back in the environment.
    let gw = Gateway::start(&home.path, &[("EXOCLAW_GATEWAY_TOKEN", &old)]);
    assert_eq!(gw.get("/v1/status", Some(&new)).status, 200);
    assert_eq!(gw.get("/v1/status", Some(&old)).status, 401);
    assert!(gw.log_lines().join("\n").contains("security.stale_token"));
}

#[test]
fn a_new_token_in_the_environment_replaces_the_stored_one() {
    let home = TestHome::new();
    let first = Gateway::start(&home.path, &[("EXOCLAW_GATEWAY_TOKEN", TOKEN)]);
    drop(first);
    let other = "another-token-0123456789abcdef0123456789";
    let gw = Gateway::start(&home.path, &[("EXOCLAW_GATEWAY_TOKEN", other)]);
    assert_eq!(gw.get("/v1/status", Some(other)).status, 200);
    assert_eq!(
        gw.get("/v1/status", Some(TOKEN)).status,
        401,
        "the replaced token is retired"
    );
}

#[test]
fn grace_is_validated() {
    let home = TestHome::new();
    let out = run(&home.path, &[], &["token", "rotate", "--grace", "soon"]);
    assert!(!out.status.success());
    assert!(error_line(&out).contains("--grace"), "{}", error_line(&out));
}
