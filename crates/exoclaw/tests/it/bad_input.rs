//! Bad input at start-up: each gives one clear error line naming the cause
//! and the fix, exits non-zero, and changes nothing on disk.

use crate::support::*;
use std::os::unix::fs::PermissionsExt as _;

/// A data dir after one clean start and stop.
fn prepared_home() -> TestHome {
    let home = TestHome::new();
    let mut gw = Gateway::start(&home.path, &[]);
    gw.signal("TERM");
    assert_eq!(
        gw.wait_exit(std::time::Duration::from_secs(10)).code(),
        Some(0)
    );
    home
}

fn set_schema_version(home: &TestHome, version: i64) {
    use sqlx::Connection as _;
    let url = format!("sqlite://{}", home.file("exoclaw.db").display());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query("UPDATE schema_migrations SET version = ?")
                .bind(version)
                .execute(&mut c)
                .await
                .unwrap();
            c.close().await.unwrap();
        });
}

/// Run `serve`, expect failure, and check the data dir is untouched.
fn refused(home: &TestHome, env: &[(&str, &str)]) -> String {
    let before = snapshot(&home.path);
    let out = run(&home.path, env, &["serve"]);
    assert!(!out.status.success(), "serve should fail");
    let err = error_line(&out);
    assert!(
        !err.is_empty(),
        "one `error:` line expected: {}",
        stderr(&out)
    );
    assert_eq!(
        snapshot(&home.path),
        before,
        "the data dir changed although start-up failed ({err})"
    );
    err
}

#[test]
fn corrupt_database() {
    let home = prepared_home();
    std::fs::write(
        home.file("exoclaw.db"),
        b"this is not a sqlite database, just garbage bytes ".repeat(200),
    )
    .unwrap();
    let err = refused(&home, &[]);
    assert!(err.contains("damaged"), "{err}");
    assert!(err.contains("restore"), "{err}");
}

#[test]
fn truncated_database() {
    let home = prepared_home();
    let db = home.file("exoclaw.db");
    let bytes = std::fs::read(&db).unwrap();
    std::fs::write(&db, &bytes[..bytes.len() / 3]).unwrap();
    let err = refused(&home, &[]);
    assert!(err.contains("damaged") || err.contains("schema"), "{err}");
}

#[test]
fn newer_schema_version() {
    let home = prepared_home();
    // As a newer exoclaw would leave it: a version this binary does not know.
    set_schema_version(&home, 999);
    let err = refused(&home, &[("EXOCLAW_AUTO_UPGRADE", "true")]);
    assert!(err.contains("newer than this exoclaw"), "{err}");
}

#[test]
fn outdated_schema_needs_upgrade_unless_auto_upgrade() {
    let home = prepared_home();
    let out = run(&home.path, &[], &["migrate", "down"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = refused(&home, &[]);
    assert!(err.contains("run `exoclaw upgrade`"), "{err}");

    let gw = Gateway::start(&home.path, &[("EXOCLAW_AUTO_UPGRADE", "true")]);
    assert_eq!(gw.get("/readyz", None).status, 200);
}

#[test]
fn port_in_use() {
    let home = prepared_home();
    let (_held, port) = occupied_port();
    let err = refused(&home, &[("EXOCLAW_PORT", &port.to_string())]);
    assert!(err.contains("already in use"), "{err}");
    assert!(err.contains("EXOCLAW_PORT"), "{err}");
}

#[test]
fn malformed_config_json() {
    let home = prepared_home();
    std::fs::write(home.file("config.json"), "{\"gateway\": {\"port\": 1,,}").unwrap();
    let err = refused(&home, &[]);
    assert!(err.contains("config.json"), "{err}");
    assert!(err.contains("line 1"), "{err}");

    std::fs::write(
        home.file("config.json"),
        r#"{"gateway": {"prot": 1}, "tools": {"rate_limit_per_hour": -1}}"#,
    )
    .unwrap();
    let err = refused(&home, &[]);
    assert!(err.contains("gateway.prot: unknown key"), "{err}");
    assert!(err.contains("tools.rate_limit_per_hour"), "{err}");
}

#[test]
fn wrong_encryption_key() {
    let home = prepared_home();
    let err = refused(&home, &[("EXOCLAW_ENCRYPTION_KEY", OTHER_KEY)]);
    assert!(
        err.contains("not the key this store was sealed with"),
        "{err}"
    );
    assert!(err.contains("EXOCLAW_ENCRYPTION_KEY_OLD"), "{err}");
    assert!(
        !err.contains(OTHER_KEY),
        "key material never printed: {err}"
    );
}

#[test]
fn missing_encryption_key_for_a_sealed_store() {
    let home = prepared_home();
    let dotenv = home.dotenv();
    let without: String = dotenv
        .lines()
        .filter(|l| !l.starts_with("EXOCLAW_ENCRYPTION_KEY="))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(home.file(".env"), without).unwrap();
    let err = refused(&home, &[]);
    assert!(err.contains("EXOCLAW_ENCRYPTION_KEY is not set"), "{err}");
}

#[test]
fn unwritable_data_dir() {
    // /proc refuses new entries even to root.
    let out = run(
        std::path::Path::new("/proc/exoclaw-test-home"),
        &[],
        &["serve"],
    );
    assert!(!out.status.success());
    let err = error_line(&out);
    assert!(
        err.contains("not writable") || err.contains("cannot create"),
        "{err}"
    );
    assert!(err.contains("EXOCLAW_HOME"), "{err}");
}

#[test]
fn group_readable_data_dir_or_secret_file() {
    let home = prepared_home();
    std::fs::set_permissions(&home.path, std::fs::Permissions::from_mode(0o750)).unwrap();
    let err = refused(&home, &[]);
    assert!(err.contains("chmod 700"), "{err}");
    std::fs::set_permissions(&home.path, std::fs::Permissions::from_mode(0o700)).unwrap();

    std::fs::set_permissions(home.file(".env"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = refused(&home, &[]);
    assert!(err.contains("chmod 600"), "{err}");
    assert!(err.contains(".env"), "{err}");
}
