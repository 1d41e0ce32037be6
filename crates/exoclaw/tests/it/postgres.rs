//! The gateway on PostgreSQL (`EXOCLAW_POSTGRES_DSN`), against the throwaway
//! cluster `cargo xtask test` provisions. Skips only when no cluster is given
//! and `REQUIRE_POSTGRES` is not set.

use crate::support::*;
use sqlx::Connection as _;

/// A DSN to a new, empty database, or `None` to skip.
#[expect(
    clippy::disallowed_methods,
    reason = "tests read the harness's variables"
)]
pub fn fresh_database() -> Option<String> {
    let Ok(admin) = std::env::var("EXOCLAW_TEST_POSTGRES_DSN") else {
        assert!(
            std::env::var("REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "REQUIRE_POSTGRES=1 but EXOCLAW_TEST_POSTGRES_DSN is unset: run `cargo xtask test`"
        );
        eprintln!("skipping: EXOCLAW_TEST_POSTGRES_DSN not set (run `cargo xtask test`)");
        return None;
    };
    let name = format!("exoclaw_e2e_{}", hex_id());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("connect to the test cluster");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create database");
    });
    let mut url = url::Url::parse(&admin).expect("DSN is a URL");
    url.set_path(&name);
    Some(url.to_string())
}

fn hex_id() -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    hex::encode(b)
}

#[test]
fn serve_on_postgres() {
    let Some(dsn) = fresh_database() else { return };
    let home = TestHome::new();
    let env = [
        ("EXOCLAW_POSTGRES_DSN", dsn.as_str()),
        ("EXOCLAW_GATEWAY_TOKEN", TOKEN),
    ];
    let out = run(&home.path, &env, &["upgrade", "--status"]);
    assert!(
        stdout(&out).contains("current 0"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    let mut gw = Gateway::start(&home.path, &env);
    assert_eq!(gw.get("/readyz", None).status, 200);
    let status = gw.get("/v1/status", Some(TOKEN)).json();
    assert_eq!(status["storage"], "postgres");
    let r = request(
        gw.addr,
        "PUT",
        "/v1/secrets/k",
        Some(TOKEN),
        Some(r#"{"value": "pg-7f3e9a1c5b2d"}"#),
    );
    assert_eq!(r.status, 204);
    assert_eq!(
        gw.get("/v1/secrets", Some(TOKEN)).json()["secrets"][0]["name"],
        "k"
    );
    assert!(
        !home.file("exoclaw.db").exists(),
        "no SQLite file in PostgreSQL mode"
    );
    gw.signal("TERM");
    assert_eq!(
        gw.wait_exit(std::time::Duration::from_secs(10)).code(),
        Some(0)
    );

    let out = run(&home.path, &env, &["doctor"]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("postgres reachable"));
    let out = run(&home.path, &env, &["migrate", "down"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&home.path, &env, &["serve"]);
    assert!(
        error_line(&out).contains("run `exoclaw upgrade`"),
        "{}",
        error_line(&out)
    );
    let out = run(&home.path, &env, &["upgrade"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Reverting the newest migration and upgrading again keeps the vault.
    let out = run(&home.path, &env, &["secrets", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["secrets"][0]["owner"], "tenant");
    assert_eq!(v["secrets"][0]["name"], "k");
}

#[test]
fn unreachable_postgres_is_named_without_the_password() {
    let (listener, port) = occupied_port();
    drop(listener); // nothing listens there now
    let home = TestHome::new();
    let dsn = format!("postgres://exo:hunter2secret@127.0.0.1:{port}/exoclaw");
    let out = run(
        &home.path,
        &[
            ("EXOCLAW_POSTGRES_DSN", &dsn),
            ("EXOCLAW_GATEWAY_TOKEN", TOKEN),
        ],
        &["serve"],
    );
    assert!(!out.status.success());
    let err = error_line(&out);
    assert!(err.contains("unreachable"), "{err}");
    assert!(!stderr(&out).contains("hunter2secret"), "{}", stderr(&out));
    assert!(
        !home.path.exists(),
        "nothing created when the store is unreachable"
    );
}
