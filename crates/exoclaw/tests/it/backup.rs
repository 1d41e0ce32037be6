//! Backups end to end with the real binary: the restore drill (data made
//! through the API and a chat against the fake provider, `backup create`
//! while the gateway runs, `verify`, `restore --home NEW`, `serve` on NEW,
//! the data and the token still there), on SQLite and on PostgreSQL; bad
//! backup files (truncated, flipped bytes, another key) failing verify and
//! restore with clear messages and changing nothing; restore refusing a
//! non-empty dir; retention pruning.

use crate::support::*;
use exoclaw_providers::fake::{FakeProvider, Reply};
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Header bytes of a backup file (see `backup/crypt.rs`).
const HEADER_LEN: usize = 28;

/// A data dir made 0700 with `config` as its config.json.
fn home_with_config(config: &str) -> TestHome {
    let home = TestHome::new();
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&home.path)
        .unwrap();
    std::fs::write(home.file("config.json"), config).unwrap();
    home
}

fn dotenv_value(home: &Path, key: &str) -> String {
    let text = std::fs::read_to_string(home.join(".env")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} not in .env"))
        .to_owned()
}

/// The provider variables pointing at the fake.
fn provider_env(base: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "EXOCLAW_OPENAI_API_KEY",
            "sk-test-fake-key-0123456789".to_owned(),
        ),
        ("EXOCLAW_OPENAI_BASE_URL", base.to_owned()),
    ]
}

fn pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// A secret, a chat session and workspace files (one executable, one
/// symbolic link), made through the running gateway `gw` on `home`.
fn make_data(gw: &Gateway, fake: &FakeProvider, home: &Path, token: &str) {
    let r = request(
        gw.addr,
        "PUT",
        "/v1/secrets/drill-secret",
        Some(token),
        Some(r#"{"value": "drill-value-never-printed"}"#),
    );
    assert_eq!(r.status, 204, "{}", r.body);
    fake.push(Reply::text("the drill answer"));
    let body = serde_json::json!({
        "model": "default",
        "messages": [{"role": "user", "content": "remember the drill"}],
        "user": "alice",
    });
    let r = request(
        gw.addr,
        "POST",
        "/v1/chat/completions",
        Some(token),
        Some(&body.to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let ws = home.join("workspace/default/alice");
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::write(ws.join("notes.md"), "drill notes\n").unwrap();
    std::fs::write(ws.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(ws.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", ws.join("outside")).unwrap();
    let agents = home.join("agents/default");
    std::fs::create_dir_all(&agents).unwrap();
    std::fs::write(agents.join("SOUL.md"), "be brief\n").unwrap();
}

/// The data `make_data` made, seen through the gateway `gw` on `home`.
fn assert_data(gw: &Gateway, home: &Path, token: &str) {
    let secrets = gw.get("/v1/secrets", Some(token)).json();
    assert_eq!(secrets["secrets"][0]["name"], "drill-secret", "{secrets}");
    let sessions = gw.get("/v1/sessions", Some(token)).json();
    let id = sessions["sessions"][0]["id"].as_str().unwrap().to_owned();
    let messages = gw
        .get(&format!("/v1/sessions/{id}/messages"), Some(token))
        .body;
    assert!(messages.contains("remember the drill"), "{messages}");
    assert!(messages.contains("the drill answer"), "{messages}");
    let ws = home.join("workspace/default/alice");
    assert_eq!(
        std::fs::read_to_string(ws.join("notes.md")).unwrap(),
        "drill notes\n"
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode(&ws.join("run.sh")),
        0o700,
        "owner bits kept, others dropped"
    );
    assert_eq!(mode(&ws.join("notes.md")), 0o600);
    assert!(
        !ws.join("outside").exists(),
        "symbolic links are not restored"
    );
    assert_eq!(
        std::fs::read_to_string(home.join("agents/default/SOUL.md")).unwrap(),
        "be brief\n"
    );
    assert_eq!(mode(home), 0o700);
    assert_eq!(mode(&home.join(".env")), 0o600);
}

/// The path a successful `backup create` printed.
fn created_path(out: &std::process::Output) -> PathBuf {
    assert!(
        out.status.success(),
        "backup create failed: {}",
        stderr(out)
    );
    let text = stdout(out);
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix("backup written: "))
        .unwrap_or_else(|| panic!("no path in {text}"));
    PathBuf::from(path)
}

fn stop(mut gw: Gateway) {
    gw.signal("TERM");
    assert_eq!(gw.wait_exit(Duration::from_secs(15)).code(), Some(0));
}

#[test]
fn restore_drill_on_sqlite() {
    let (fake, base) = FakeProvider::start_in_thread().unwrap();
    let penv = provider_env(&base);
    let home = home_with_config(r#"{"backup": {"schedule": "03:30"}}"#);
    let gw = Gateway::start(&home.path, &pairs(&penv));
    assert!(
        gw.log_lines()
            .iter()
            .any(|l| l.contains("backups scheduled")),
        "the schedule task starts with serve"
    );
    let token = dotenv_value(&home.path, "EXOCLAW_GATEWAY_TOKEN");
    let vault_key = dotenv_value(&home.path, "EXOCLAW_ENCRYPTION_KEY");
    make_data(&gw, &fake, &home.path, &token);

    // Online: the gateway keeps running.
    let out = run(&home.path, &[], &["backup", "create"]);
    let file = created_path(&out);
    let text = stdout(&out);
    assert!(
        text.contains("left out: workspace/default/alice/outside (symbolic link"),
        "{text}"
    );
    assert!(
        !text.contains(&vault_key) && !text.contains(&token),
        "no secret printed"
    );
    assert!(file.starts_with(home.path.join("backups")));
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(gw.get("/readyz", None).status, 200);
    stop(gw);

    let out = run(
        &home.path,
        &[],
        &["backup", "verify", file.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("backup ok"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("integrity check ok"),
        "{}",
        stdout(&out)
    );

    // A new machine: only the backup file and the vault key, kept apart.
    let new = TestHome::new();
    let key_env = [("EXOCLAW_ENCRYPTION_KEY", vault_key.as_str())];
    let out = run(
        &new.path,
        &key_env,
        &[
            "backup",
            "restore",
            file.to_str().unwrap(),
            "--home",
            new.path.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("restored"), "{}", stdout(&out));

    let gw = Gateway::start(&new.path, &pairs(&penv));
    assert_data(&gw, &new.path, &token);
    assert_eq!(
        gw.get("/v1/status", Some(&token)).status,
        200,
        "the old token works"
    );
    stop(gw);
}

/// Offsets `(start, end)` of every frame of a backup file.
fn frames(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = HEADER_LEN;
    while at + 5 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at + 1..at + 5].try_into().unwrap()) as usize;
        out.push((at, at + 5 + len));
        at += 5 + len;
    }
    out
}

/// A data dir after one start and stop, with a workspace large enough for
/// several chunks.
fn prepared_home(env: &[(&str, &str)]) -> TestHome {
    let home = TestHome::new();
    stop(Gateway::start(&home.path, env));
    let ws = home.file("workspace/default/big");
    std::fs::create_dir_all(&ws).unwrap();
    let mut noise = vec![0u8; 300 * 1024];
    getrandom::fill(&mut noise).unwrap();
    std::fs::write(ws.join("noise.bin"), &noise).unwrap();
    home
}

#[test]
fn damaged_backups_fail_verify_and_restore_and_change_nothing() {
    let key_env = [("EXOCLAW_BACKUP_KEY", KEY)];
    let home = prepared_home(&key_env);
    let file = created_path(&run(&home.path, &key_env, &["backup", "create"]));
    let good = std::fs::read(&file).unwrap();
    let f = frames(&good);
    assert!(f.len() >= 4, "several chunks: {}", f.len());
    let last = f[f.len() - 1];
    let flip = |i: usize| {
        let mut b = good.clone();
        b[i] ^= 0x20;
        b
    };
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "cut in the middle",
            good[..good.len() / 2].to_vec(),
            KEY,
            "truncated",
        ),
        (
            "final chunk missing",
            good[..last.0].to_vec(),
            KEY,
            "truncated",
        ),
        (
            "flipped key id in the header",
            flip(10),
            KEY,
            "header was altered",
        ),
        ("flipped nonce in the header", flip(20), KEY, "chunk 0"),
        (
            "flipped byte in the middle",
            flip(f[f.len() / 2].0 + 1000),
            KEY,
            "failed authentication",
        ),
        (
            "flipped byte in the last chunk",
            flip(last.1 - 3),
            KEY,
            "failed authentication",
        ),
        ("another key", good.clone(), OTHER_KEY, "wrong key"),
        (
            "not a backup",
            b"just some text, not a backup".to_vec(),
            KEY,
            "not an exoclaw backup",
        ),
    ];
    let work = tempfile::tempdir().unwrap();
    for (what, bytes, key, expect) in cases {
        let bad = work.path().join("bad.exob");
        std::fs::write(&bad, &bytes).unwrap();
        let env = [("EXOCLAW_BACKUP_KEY", key)];
        let home_before = snapshot(&home.path);
        let bad_path = bad.to_str().unwrap();

        let out = run(&home.path, &env, &["backup", "verify", bad_path]);
        assert!(!out.status.success(), "{what}: verify passed");
        let err = error_line(&out);
        assert!(err.contains(expect), "{what}: {err}");

        let target_parent = tempfile::tempdir().unwrap();
        let target = target_parent.path().join("new-home");
        std::fs::create_dir(&target).unwrap();
        let parent_before = snapshot(target_parent.path());
        let out = run(
            &home.path,
            &env,
            &[
                "backup",
                "restore",
                bad_path,
                "--home",
                target.to_str().unwrap(),
            ],
        );
        assert!(!out.status.success(), "{what}: restore passed");
        let err = error_line(&out);
        assert!(err.contains(expect), "{what}: {err}");
        assert_eq!(
            snapshot(target_parent.path()),
            parent_before,
            "{what}: target changed"
        );
        assert_eq!(
            snapshot(&home.path),
            home_before,
            "{what}: data dir changed"
        );
        assert_eq!(std::fs::read(&bad).unwrap(), bytes, "{what}: file changed");
        if what == "another key" {
            let expected_id = err.split("key id ").nth(1).unwrap_or_default();
            assert!(!expected_id.is_empty(), "{err}");
            assert!(err.contains("configured key (EXOCLAW_BACKUP_KEY)"), "{err}");
        }
    }
    // The untouched file still verifies.
    let out = run(
        &home.path,
        &key_env,
        &["backup", "verify", file.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn restore_refuses_a_non_empty_or_odd_target() {
    let key_env = [("EXOCLAW_BACKUP_KEY", KEY)];
    let home = prepared_home(&key_env);
    let file = created_path(&run(&home.path, &key_env, &["backup", "create"]));
    let parent = tempfile::tempdir().unwrap();
    let full = parent.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("keep.txt"), "mine").unwrap();
    let a_file = parent.path().join("a-file");
    std::fs::write(&a_file, "x").unwrap();
    let link = parent.path().join("link");
    std::os::unix::fs::symlink(parent.path().join("elsewhere"), &link).unwrap();
    let before = snapshot(parent.path());
    for (target, expect) in [
        (&full, "is not empty"),
        (&a_file, "not a directory"),
        (&link, "symbolic link"),
    ] {
        let out = run(
            &home.path,
            &key_env,
            &[
                "backup",
                "restore",
                file.to_str().unwrap(),
                "--home",
                target.to_str().unwrap(),
            ],
        );
        assert!(!out.status.success());
        assert!(error_line(&out).contains(expect), "{}", error_line(&out));
    }
    assert_eq!(snapshot(parent.path()), before);
}

fn set_age(path: &Path, days: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(days * 86_400))
        .unwrap();
}

#[test]
fn retention_prunes_only_old_backups_in_the_output_dir() {
    let key_env = [("EXOCLAW_BACKUP_KEY", KEY)];
    let home = prepared_home(&key_env);
    std::fs::write(home.file("config.json"), r#"{"backup": {"keep_days": 7}}"#).unwrap();
    let out_parent = tempfile::tempdir().unwrap();
    let out_dir = out_parent.path().join("offsite");

    // A first backup creates the directory 0700.
    let first = created_path(&run(
        &home.path,
        &key_env,
        &["backup", "create", "--out", out_dir.to_str().unwrap()],
    ));
    let mode = std::fs::metadata(&out_dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);

    let old = out_dir.join("exoclaw-backup-20200101T000000Z.exob");
    let recent = out_dir.join("exoclaw-backup-20200102T000000Z.exob");
    let other = out_dir.join("notes.txt");
    for p in [&old, &recent, &other] {
        std::fs::write(p, "x").unwrap();
    }
    set_age(&old, 8);
    set_age(&recent, 6);
    set_age(&other, 30);
    set_age(&first, 30);
    let precious = out_parent.path().join("precious");
    std::fs::write(&precious, "outside").unwrap();
    set_age(&precious, 30);
    let link = out_dir.join("exoclaw-backup-20200103T000000Z.exob");
    std::os::unix::fs::symlink(&precious, &link).unwrap();

    let out = run(
        &home.path,
        &key_env,
        &["backup", "create", "--out", out_dir.to_str().unwrap()],
    );
    let second = created_path(&out);
    assert!(
        stdout(&out).contains(&format!("pruned: {}", old.display())),
        "{}",
        stdout(&out)
    );
    assert!(!old.exists() && !first.exists(), "old backups pruned");
    for kept in [&recent, &other, &second, &precious] {
        assert!(kept.exists(), "{} was kept", kept.display());
    }
    assert!(
        std::fs::symlink_metadata(&link).is_ok(),
        "links are never pruned"
    );
}

#[test]
fn restore_drill_on_postgres() {
    let Some(source_db) = crate::postgres::fresh_database() else {
        return;
    };
    let Some(target_db) = crate::postgres::fresh_database() else {
        return;
    };
    let (fake, base) = FakeProvider::start_in_thread().unwrap();
    let mut penv = provider_env(&base);
    penv.push(("EXOCLAW_POSTGRES_DSN", source_db.clone()));
    let home = TestHome::new();
    let gw = Gateway::start(&home.path, &pairs(&penv));
    let token = dotenv_value(&home.path, "EXOCLAW_GATEWAY_TOKEN");
    let vault_key = dotenv_value(&home.path, "EXOCLAW_ENCRYPTION_KEY");
    make_data(&gw, &fake, &home.path, &token);
    let out = run(&home.path, &pairs(&penv), &["backup", "create"]);
    let file = created_path(&out);
    assert!(stdout(&out).contains("postgres store"), "{}", stdout(&out));
    stop(gw);
    let file = file.to_str().unwrap();
    let out = run(&home.path, &pairs(&penv), &["backup", "verify", file]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("PostgreSQL export"),
        "{}",
        stdout(&out)
    );

    // The source database is not empty: refused, nothing written.
    let parent = tempfile::tempdir().unwrap();
    let refused = parent.path().join("refused");
    let into_source = [
        ("EXOCLAW_ENCRYPTION_KEY", vault_key.as_str()),
        ("EXOCLAW_POSTGRES_DSN", source_db.as_str()),
    ];
    let out = run(
        &refused,
        &into_source,
        &[
            "backup",
            "restore",
            file,
            "--home",
            refused.to_str().unwrap(),
        ],
    );
    assert!(
        error_line(&out).contains("not empty"),
        "{}",
        error_line(&out)
    );
    assert!(snapshot(parent.path()).is_empty(), "nothing left behind");

    let new = TestHome::new();
    let into_target = [
        ("EXOCLAW_ENCRYPTION_KEY", vault_key.as_str()),
        ("EXOCLAW_POSTGRES_DSN", target_db.as_str()),
    ];
    let out = run(
        &new.path,
        &into_target,
        &[
            "backup",
            "restore",
            file,
            "--home",
            new.path.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!new.file("exoclaw.db").exists());

    let mut new_env = provider_env(&base);
    new_env.push(("EXOCLAW_POSTGRES_DSN", target_db));
    let gw = Gateway::start(&new.path, &pairs(&new_env));
    assert_eq!(
        gw.get("/v1/status", Some(&token)).json()["storage"],
        "postgres"
    );
    assert_data(&gw, &new.path, &token);
    stop(gw);
}
