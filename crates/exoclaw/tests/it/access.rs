//! Identity and access: API keys (expiry, revocation, disabled users,
//! scopes), the declared permission of every route and WebSocket method
//! (a role × route matrix over the table `exoclaw routes` prints), and
//! isolation between users and tenants on SQLite and PostgreSQL: someone
//! else's id answers 404, never 403.

use crate::chat::{Setup, setup_with};
use crate::support::*;
use crate::ws::{call, open};
use exoclaw_providers::fake::Reply;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

const ROLES: [&str; 4] = ["owner", "admin", "operator", "user"];

fn cli_json(home: &Path, env: &[(&str, &str)], args: &[&str]) -> Value {
    let out = run(home, env, args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
}

/// `users add NAME --role ROLE --tenant T --json`: (user id, key).
fn add_user(
    s: &Setup,
    env: &[(&str, &str)],
    name: &str,
    role: &str,
    tenant: &str,
) -> (String, String) {
    let v = cli_json(
        &s.home.path,
        env,
        &[
            "users", "add", name, "--role", role, "--tenant", tenant, "--json",
        ],
    );
    assert_eq!(v["role"], role);
    assert_eq!(v["tenant"], tenant);
    (
        v["id"].as_str().unwrap().to_owned(),
        v["api_key"].as_str().unwrap().to_owned(),
    )
}

fn req(s: &Setup, method: &str, path: &str, key: Option<&str>, body: Option<Value>) -> Response {
    let body = body.map(|b| b.to_string());
    request(s.gw.addr, method, path, key, body.as_deref())
}

fn code(r: &Response) -> String {
    r.json()["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn min_role_allows(min: &str, role: &str) -> bool {
    let rank = |r: &str| ROLES.iter().position(|x| *x == r).unwrap();
    rank(role) <= rank(min)
}

fn permissions(table: &Value) -> BTreeMap<String, String> {
    table["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["min_role"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn every_route_and_method_enforces_its_declared_permission() {
    let s = setup_with("{}", &[]);
    let env = [("EXOCLAW_GATEWAY_TOKEN", TOKEN)];
    let table = cli_json(&s.home.path, &env, &["routes", "--json"]);
    let min_roles = permissions(&table);
    let keys: Vec<(&str, String)> = ROLES
        .iter()
        .map(|r| (*r, add_user(&s, &env, &format!("u-{r}"), r, "default").1))
        .collect();
    let routes = table["routes"].as_array().unwrap();
    assert!(routes.len() >= 30, "{}", routes.len());
    let mut checked = 0;
    for route in routes {
        let method = route["method"].as_str().unwrap();
        let path = route["path"]
            .as_str()
            .unwrap()
            .replace("{id}", "no-such-id")
            .replace("{name}", "no_such_name");
        let access = &route["access"];
        let body = matches!(method, "POST" | "PUT" | "PATCH").then(|| json!({}));
        match access["kind"].as_str().unwrap() {
            "public" => {
                let r = req(&s, method, &path, None, body.clone());
                assert!(
                    r.status != 401 && r.status != 403,
                    "{method} {path}: {}",
                    r.status
                );
            }
            "self_auth" => assert_eq!(path, "/ws", "only the WebSocket authenticates itself"),
            "perm" => {
                let perm = access["permission"].as_str().unwrap();
                let min = &min_roles[perm];
                // Without a credential: 401, whatever the route.
                let r = req(&s, method, &path, None, body.clone());
                assert_eq!(r.status, 401, "{method} {path} without a key");
                for (role, key) in &keys {
                    let r = req(&s, method, &path, Some(key), body.clone());
                    if min_role_allows(min, role) {
                        assert!(
                            r.status != 401 && r.status != 403,
                            "{role} must reach {method} {path} ({perm}): {} {}",
                            r.status,
                            r.body
                        );
                    } else {
                        assert_eq!(
                            r.status, 403,
                            "{role} must not reach {method} {path} ({perm})"
                        );
                        assert_eq!(code(&r), "auth.forbidden");
                    }
                    checked += 1;
                }
            }
            other => panic!("unknown access kind {other}"),
        }
    }
    assert!(checked > 100, "{checked}");

    // The same for every WebSocket method.
    for (role, key) in &keys {
        let mut ws = open(&s.gw, &[]).unwrap();
        let (r, _) = call(
            &mut ws,
            "c",
            "connect",
            json!({"token": key, "protocol": 1}),
        );
        assert_eq!(r["ok"], true, "{role}: {r}");
        for m in table["ws_methods"].as_array().unwrap() {
            let method = m["method"].as_str().unwrap();
            if method == "chat.send" {
                continue; // would start a run; its permission is `chat`, held by all roles
            }
            let min = &min_roles[m["permission"].as_str().unwrap()];
            let (r, _) = call(&mut ws, method, method, json!({}));
            let forbidden = r["error"]["code"] == "auth.forbidden";
            assert_eq!(
                forbidden,
                !min_role_allows(min, role),
                "{role} {method}: {r}"
            );
        }
    }
}

#[test]
fn routes_are_added_only_through_the_declared_table() {
    // A route added with `.route(` elsewhere would bypass the table; the
    // router is built in one place.
    // The whole of src/http, subdirectories included.
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http")];
    let mut files = 0;
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            files += 1;
            if name == "routes.rs" {
                continue;
            }
            assert!(
                !text.contains(".route(") && !text.contains(".nest("),
                "{name} adds a route outside routes::Routes"
            );
        }
    }
    assert!(files > 20, "{files}");
}

#[test]
fn keys_expire_get_revoked_and_follow_their_user() {
    let s = setup_with("{}", &[]);
    let env = [("EXOCLAW_GATEWAY_TOKEN", TOKEN)];
    let (alice_id, alice) = add_user(&s, &env, "alice", "user", "default");
    let me = req(&s, "GET", "/v1/me", Some(&alice), None).json();
    assert_eq!(me["user_id"], alice_id.as_str());
    assert_eq!(me["role"], "user");
    assert_eq!(me["tenant"], "default");

    // A scoped key holds only its scopes.
    let scoped = cli_json(
        &s.home.path,
        &env,
        &[
            "keys", "create", "--user", "alice", "--scope", "chat", "--json",
        ],
    );
    let scoped_key = scoped["api_key"].as_str().unwrap();
    assert_eq!(req(&s, "GET", "/v1/agents", Some(&alice), None).status, 200);
    let r = req(&s, "GET", "/v1/agents", Some(scoped_key), None);
    assert_eq!((r.status, code(&r)), (403, "auth.forbidden".into()));

    // Malformed and unknown keys: 401 auth.unauthorized.
    for bad in ["exk_short", &format!("exk_{}", "0".repeat(64)), "nonsense"] {
        let r = req(&s, "GET", "/v1/me", Some(bad), None);
        assert_eq!(
            (r.status, code(&r)),
            (401, "auth.unauthorized".into()),
            "{bad}"
        );
    }

    // Revoked: refused at once, with its own code.
    let id = scoped["id"].as_str().unwrap();
    let out = run(&s.home.path, &env, &["keys", "revoke", id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = req(&s, "GET", "/v1/me", Some(scoped_key), None);
    assert_eq!((r.status, code(&r)), (401, "auth.key_revoked".into()));

    // Expired: a key whose expiry has passed (set in the store directly).
    let expiring = cli_json(
        &s.home.path,
        &env,
        &[
            "keys",
            "create",
            "--user",
            "alice",
            "--expires",
            "1",
            "--json",
        ],
    );
    let expiring_key = expiring["api_key"].as_str().unwrap();
    assert_eq!(
        req(&s, "GET", "/v1/me", Some(expiring_key), None).status,
        200
    );
    sql(
        &s.home.path,
        &format!(
            "UPDATE api_keys SET expires_at = 1 WHERE id = '{}'",
            expiring["id"].as_str().unwrap()
        ),
    );
    let r = req(&s, "GET", "/v1/me", Some(expiring_key), None);
    assert_eq!((r.status, code(&r)), (401, "auth.key_expired".into()));

    // Disabled user: every key refused; enabled again: accepted.
    let out = run(&s.home.path, &env, &["users", "disable", "alice"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = req(&s, "GET", "/v1/me", Some(&alice), None);
    assert_eq!((r.status, code(&r)), (401, "auth.user_disabled".into()));
    assert!(
        run(&s.home.path, &env, &["users", "enable", "alice"])
            .status
            .success()
    );
    assert_eq!(req(&s, "GET", "/v1/me", Some(&alice), None).status, 200);

    // Each refusal was audited, without the key.
    let audit = sql(
        &s.home.path,
        "SELECT reason || ' ' || resource FROM audit_events WHERE action = 'auth.failure'",
    );
    for reason in ["revoked", "expired", "disabled", "invalid"] {
        assert!(audit.contains(reason), "{reason} not audited: {audit}");
    }
    assert!(
        !audit.contains(scoped_key) && !audit.contains(&alice[4..]),
        "{audit}"
    );

    // Deleting the user deletes their keys.
    assert!(
        run(&s.home.path, &env, &["users", "delete", "alice"])
            .status
            .success()
    );
    let r = req(&s, "GET", "/v1/me", Some(&alice), None);
    assert_eq!(r.status, 401);

    // Keys are stored as digests only.
    let db = std::fs::read(s.home.file("exoclaw.db")).unwrap();
    let text = String::from_utf8_lossy(&db);
    assert!(
        !text.contains(&expiring_key[4..]),
        "a key is stored in plaintext"
    );
}

/// Run one SQL statement on the data dir's SQLite store; the first column of
/// the rows, one per line.
fn sql(home: &Path, statement: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::{Connection as _, Row as _};
        let url = format!("sqlite://{}", home.join("exoclaw.db").display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let rows = sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
            .fetch_all(&mut conn)
            .await
            .unwrap();
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    })
}

#[test]
fn admins_cannot_grant_above_themselves() {
    let s = setup_with("{}", &[]);
    let env = [("EXOCLAW_GATEWAY_TOKEN", TOKEN)];
    let (_, admin) = add_user(&s, &env, "ada", "admin", "default");
    let r = req(
        &s,
        "POST",
        "/v1/users",
        Some(&admin),
        Some(json!({"name": "eve", "role": "owner"})),
    );
    assert_eq!((r.status, code(&r)), (403, "auth.forbidden".into()));
    let r = req(
        &s,
        "POST",
        "/v1/users",
        Some(&admin),
        Some(json!({"name": "op", "role": "operator"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let op_key = r.json()["api_key"].as_str().unwrap().to_owned();
    assert_eq!(
        req(
            &s,
            "POST",
            "/v1/tools/invoke",
            Some(&op_key),
            Some(json!({}))
        )
        .status,
        422
    );
    // Admins stay in their tenant.
    let r = req(&s, "GET", "/v1/users?tenant=other", Some(&admin), None);
    assert_eq!(r.status, 403);
    // The owner (gateway token) may create tenants and users in them.
    let r = req(
        &s,
        "POST",
        "/v1/tenants",
        Some(TOKEN),
        Some(json!({"id": "acme"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = req(
        &s,
        "POST",
        "/v1/users",
        Some(TOKEN),
        Some(json!({"name": "bob", "tenant": "acme"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["tenant"], "acme");
}

/// What user A owns, made through the API.
struct Owned {
    session: String,
    trace: String,
    key_id: String,
    user_id: String,
}

fn make_owned(s: &Setup, key: &str, user_id: &str) -> Owned {
    s.fake.push(Reply::text("hello alice"));
    let r = req(
        s,
        "POST",
        "/v1/chat/completions",
        Some(key),
        Some(
            json!({"model": "default", "messages": [{"role": "user", "content": "alice's secret plan"}]}),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let sessions = req(s, "GET", "/v1/sessions", Some(key), None).json();
    let session = sessions["sessions"][0]["id"].as_str().unwrap().to_owned();
    let traces = req(s, "GET", "/v1/traces", Some(key), None).json();
    let trace = traces["traces"][0]["id"].as_str().unwrap().to_owned();
    let r = req(
        s,
        "POST",
        "/v1/keys",
        Some(key),
        Some(json!({"name": "second"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    Owned {
        session,
        trace,
        key_id: r.json()["id"].as_str().unwrap().to_owned(),
        user_id: user_id.to_owned(),
    }
}

/// B cannot list, read, change or delete anything of A's: lists leave A's
/// records out and A's ids answer 404 through every route and method.
fn assert_isolated(s: &Setup, a: &Owned, b_key: &str, b_label: &str) {
    let list = req(s, "GET", "/v1/sessions", Some(b_key), None).body;
    assert!(!list.contains(&a.session), "{b_label} lists A's session");
    let list = req(s, "GET", "/v1/traces", Some(b_key), None).body;
    assert!(!list.contains(&a.trace), "{b_label} lists A's trace");
    let list = req(s, "GET", "/v1/keys", Some(b_key), None).body;
    assert!(!list.contains(&a.key_id), "{b_label} lists A's key");
    for (method, path) in [
        ("GET", format!("/v1/sessions/{}/messages", a.session)),
        ("DELETE", format!("/v1/sessions/{}", a.session)),
        ("GET", format!("/v1/traces/{}", a.trace)),
        ("DELETE", format!("/v1/keys/{}", a.key_id)),
    ] {
        let r = req(s, method, &path, Some(b_key), None);
        assert_eq!(r.status, 404, "{b_label}: {method} {path}: {}", r.body);
        assert!(!r.body.contains("secret plan"));
    }
    let mut ws = open(&s.gw, &[]).unwrap();
    let (r, _) = call(
        &mut ws,
        "c",
        "connect",
        json!({"token": b_key, "protocol": 1}),
    );
    assert_eq!(r["ok"], true);
    for method in ["sessions.history", "sessions.reset", "chat.stop"] {
        let (r, _) = call(&mut ws, method, method, json!({"session_id": a.session}));
        assert_eq!(r["error"]["code"], "not_found", "{b_label}: {method}: {r}");
    }
    let (r, _) = call(&mut ws, "l", "sessions.list", json!({}));
    assert!(!r.to_string().contains(&a.session), "{b_label}: {r}");
    // A file A wrote is out of B's reach through the file tools.
    let r = req(
        s,
        "POST",
        "/v1/tools/invoke",
        Some(b_key),
        Some(json!({"tool": "read_file", "args": {"path": format!("../{}/notes.txt", a.user_id)}})),
    );
    assert!(!r.body.contains("alice's notes"), "{b_label}: {}", r.body);
}

fn cross_tenant_matrix(extra_env: &[(&str, &str)]) {
    let s = setup_with("{}", extra_env);
    let mut env = vec![("EXOCLAW_GATEWAY_TOKEN", TOKEN)];
    env.extend_from_slice(extra_env);
    let r = req(
        &s,
        "POST",
        "/v1/tenants",
        Some(TOKEN),
        Some(json!({"id": "tenant-b"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let (alice_id, alice) = add_user(&s, &env, "alice", "operator", "default");
    // Same tenant, another user; another tenant's user and its admin.
    let (_, carol) = add_user(&s, &env, "carol", "operator", "default");
    let (_, bob) = add_user(&s, &env, "bob", "operator", "tenant-b");
    let (_, bob_admin) = add_user(&s, &env, "bob-admin", "admin", "tenant-b");
    let a = make_owned(&s, &alice, &alice_id);
    let r = req(
        &s,
        "POST",
        "/v1/tools/invoke",
        Some(&alice),
        Some(
            json!({"tool": "write_file", "args": {"path": "notes.txt", "content": "alice's notes"}}),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    assert_isolated(&s, &a, &carol, "carol (same tenant)");
    assert_isolated(&s, &a, &bob, "bob (tenant-b)");
    assert_isolated(&s, &a, &bob_admin, "bob-admin (admin of tenant-b)");

    // Tenant B's admin cannot see or touch tenant A's users.
    let list = req(&s, "GET", "/v1/users", Some(&bob_admin), None).body;
    assert!(
        !list.contains(&alice_id) && !list.contains("alice"),
        "{list}"
    );
    for (method, path, body) in [
        ("GET", format!("/v1/users/{alice_id}"), None),
        (
            "PATCH",
            format!("/v1/users/{alice_id}"),
            Some(json!({"disabled": true})),
        ),
        ("DELETE", format!("/v1/users/{alice_id}"), None),
        ("GET", format!("/v1/users/{alice_id}/keys"), None),
        (
            "POST",
            format!("/v1/users/{alice_id}/keys"),
            Some(json!({})),
        ),
        ("GET", "/v1/users/alice".to_owned(), None),
    ] {
        let r = req(&s, method, &path, Some(&bob_admin), body);
        assert_eq!(r.status, 404, "bob-admin: {method} {path}: {}", r.body);
    }
    // Tenant B's admin reads only tenant B's audit log; a user none.
    let r = req(&s, "GET", "/v1/audit?limit=500", Some(&bob_admin), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        !r.body.contains(&alice_id),
        "tenant A's audit events leak: {}",
        r.body
    );
    let own = req(&s, "GET", "/v1/audit?limit=500", Some(TOKEN), None);
    assert!(own.body.contains(&alice_id), "A's tool call is not audited");
    assert_eq!(req(&s, "GET", "/v1/audit", Some(&carol), None).status, 403);
    // Tenant A's secrets are out of tenant B's reach (list, overwrite, delete).
    let r = req(
        &s,
        "PUT",
        "/v1/secrets/a_secret",
        Some(TOKEN),
        Some(json!({"value": "tenant-a-9f3c2e7b1d"})),
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let listed = req(&s, "GET", "/v1/secrets", Some(&bob_admin), None);
    assert_eq!(listed.status, 200);
    assert!(!listed.body.contains("a_secret"), "{}", listed.body);
    let r = req(&s, "DELETE", "/v1/secrets/a_secret", Some(&bob_admin), None);
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(
        req(&s, "GET", "/v1/secrets", Some(TOKEN), None)
            .body
            .contains("a_secret")
    );
    // Tenant B's admin lists no secret, agent or session of tenant A.
    let r = req(&s, "GET", "/v1/sessions", Some(&bob_admin), None);
    assert!(!r.body.contains(&a.session));

    // A still has everything.
    let r = req(
        &s,
        "GET",
        &format!("/v1/sessions/{}/messages", a.session),
        Some(&alice),
        None,
    );
    assert_eq!(r.status, 200);
    assert!(r.body.contains("alice's secret plan"));
    assert_eq!(req(&s, "GET", "/v1/me", Some(&alice), None).status, 200);
    let r = req(
        &s,
        "POST",
        "/v1/tools/invoke",
        Some(&alice),
        Some(json!({"tool": "read_file", "args": {"path": "notes.txt"}})),
    );
    assert!(r.body.contains("alice's notes"), "{}", r.body);
    // Admins of A's own tenant do see A's sessions (the owner here).
    let r = req(&s, "GET", "/v1/sessions", Some(TOKEN), None);
    assert!(r.body.contains(&a.session));
}

#[test]
fn users_and_tenants_are_isolated_on_sqlite() {
    cross_tenant_matrix(&[]);
}

#[test]
fn users_and_tenants_are_isolated_on_postgres() {
    let Some(dsn) = crate::postgres::fresh_database() else {
        return;
    };
    cross_tenant_matrix(&[("EXOCLAW_POSTGRES_DSN", &dsn)]);
}

#[test]
fn tenants_bring_their_own_provider_keys() {
    let s = setup_with("{}", &[]);
    let env = [("EXOCLAW_GATEWAY_TOKEN", TOKEN)];
    let r = req(
        &s,
        "POST",
        "/v1/tenants",
        Some(TOKEN),
        Some(json!({"id": "tenant-b"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let (_, bob) = add_user(&s, &env, "bob", "admin", "tenant-b");
    let (_, alice) = add_user(&s, &env, "alice", "user", "default");
    const B_KEY: &str = "sk-tenant-b-own-key-0123456789";
    let ask = || Some(json!({"model": "default", "messages": [{"role": "user", "content": "hi"}]}));

    let r = req(
        &s,
        "PUT",
        "/v1/providers/openai",
        Some(&bob),
        Some(json!({"api_key": B_KEY})),
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let r = req(
        &s,
        "PUT",
        "/v1/providers/no-such",
        Some(&bob),
        Some(json!({"api_key": B_KEY})),
    );
    assert_eq!(r.status, 404);
    let listed = req(&s, "GET", "/v1/providers", Some(&bob), None);
    assert!(!listed.body.contains(B_KEY), "a key came back");
    let openai = |v: Value| {
        v["providers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "openai")
            .cloned()
            .unwrap()
    };
    assert_eq!(openai(listed.json())["tenant_key"], true);
    let own = req(&s, "GET", "/v1/providers", Some(TOKEN), None).json();
    assert_eq!(openai(own)["tenant_key"], false, "tenant A sees B's key");

    // B's calls carry B's key; A's the gateway's.
    s.fake.require_api_key(Some(B_KEY));
    s.fake.push(Reply::text("paid by B"));
    let r = req(&s, "POST", "/v1/chat/completions", Some(&bob), ask());
    assert_eq!(r.status, 200, "{}", r.body);
    let r = req(&s, "POST", "/v1/chat/completions", Some(&alice), ask());
    assert_ne!(r.status, 200, "A's call used B's key: {}", r.body);
    s.fake.require_api_key(Some("sk-test-fake-key-0123456789"));
    s.fake.push(Reply::text("paid by the gateway"));
    let r = req(&s, "POST", "/v1/chat/completions", Some(&alice), ask());
    assert_eq!(r.status, 200, "{}", r.body);

    // Deleted: B falls back to the gateway's providers.
    assert_eq!(
        req(&s, "DELETE", "/v1/providers/openai", Some(&bob), None).status,
        204
    );
    s.fake.push(Reply::text("gateway again"));
    let r = req(&s, "POST", "/v1/chat/completions", Some(&bob), ask());
    assert_eq!(r.status, 200, "{}", r.body);

    // Stored encrypted: the plaintext is nowhere in the data dir.
    for entry in std::fs::read_dir(&s.home.path).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            let bytes = std::fs::read(&p).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(B_KEY),
                "{}",
                p.display()
            );
        }
    }
}
