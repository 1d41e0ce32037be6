//! Per-tenant limits through the real binary: a tenant's settings narrow the
//! gateway's (egress for the web tools, the exec sandbox, budgets) while
//! another tenant keeps the gateway's; widening is refused with 400 and a
//! stable code, and changes nothing; `GET /v1/tenants/{id}` shows the
//! effective limits; the CLI round trip; a change made by the CLI reaches
//! the running gateway at the tenant's next turn.

use crate::chat::{Setup, setup_with};
use crate::support::*;
use exoclaw_core::provider::Usage;
use exoclaw_providers::fake::Reply;
use serde_json::{Value, json};

struct T {
    s: Setup,
}

impl T {
    fn start(config: Value) -> Self {
        let s = setup_with(&config.to_string(), &[]);
        let t = Self { s };
        let r = t.req("POST", "/v1/tenants", TOKEN, Some(json!({"id": "acme"})));
        assert_eq!(r.status, 201, "{}", r.body);
        t
    }

    fn req(&self, method: &str, path: &str, key: &str, body: Option<Value>) -> Response {
        let body = body.map(|b| b.to_string());
        request(self.s.gw.addr, method, path, Some(key), body.as_deref())
    }

    /// The CLI on the gateway's data dir and config file.
    fn cli(&self, args: &[&str]) -> std::process::Output {
        let config = self.s.config_path();
        run(
            &self.s.home.path,
            &[
                ("EXOCLAW_GATEWAY_TOKEN", TOKEN),
                ("EXOCLAW_CONFIG", config.to_str().unwrap()),
            ],
            args,
        )
    }

    /// A key of a new user of `tenant`.
    fn key(&self, name: &str, role: &str, tenant: &str) -> String {
        let out = self.cli(&[
            "users", "add", name, "--role", role, "--tenant", tenant, "--json",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
        v["api_key"].as_str().unwrap().to_owned()
    }

    fn patch(&self, settings: Value) -> Response {
        self.req(
            "PATCH",
            "/v1/tenants/acme",
            TOKEN,
            Some(json!({ "settings": settings })),
        )
    }

    fn invoke(&self, key: &str, tool: &str, args: Value, dry_run: bool) -> Response {
        self.req(
            "POST",
            "/v1/tools/invoke",
            key,
            Some(json!({"tool": tool, "args": args, "dry_run": dry_run})),
        )
    }
}

fn code(r: &Response) -> String {
    r.json()["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_tenant_narrowed_to_an_allowlist_cannot_fetch_another_host_while_others_still_can() {
    let t = T::start(json!({}));
    let acme = t.key("ann", "admin", "acme");
    let r = t.patch(json!({"egress": {"allow_domains": ["docs.example.com"]}}));
    assert_eq!(r.status, 200, "{}", r.body);
    for dry in [true, false] {
        // Another host, by name or address: refused for acme, before any
        // name is resolved.
        for url in ["http://other.example.net/", "http://1.1.1.1/"] {
            let r = t.invoke(&acme, "web_fetch", json!({"url": url}), dry);
            assert_eq!(r.status, 403, "{url}: {}", r.body);
            assert_eq!(code(&r), "security.egress_denied", "{url}");
            assert!(r.body.contains("tenant's egress settings"), "{}", r.body);
        }
        let r = t.invoke(&acme, "web_search", json!({"query": "anything"}), dry);
        assert_eq!(code(&r), "security.egress_denied", "{}", r.body);
    }
    // The default tenant still reaches a public address.
    let r = t.invoke(TOKEN, "web_fetch", json!({"url": "http://1.1.1.1/"}), true);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = t.invoke(
        TOKEN,
        "web_fetch",
        json!({"url": "http://other.example.net/"}),
        true,
    );
    assert_ne!(code(&r), "security.egress_denied", "{}", r.body);
    // Reset: acme reaches the public address again, at once.
    let r = t.patch(json!({"egress": null}));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = t.invoke(&acme, "web_fetch", json!({"url": "http://1.1.1.1/"}), true);
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn a_tenant_whose_sandbox_forbids_network_gets_none_while_the_default_tenant_keeps_it() {
    let t = T::start(json!({"agents": {"defaults": {"sandbox": {"network_enabled": true}}}}));
    let acme = t.key("ann", "admin", "acme");
    let probe = json!({"command": "echo proxy=${HTTP_PROXY:-none}"});
    let before = t.invoke(&acme, "exec", probe.clone(), false);
    assert_eq!(before.status, 200, "{}", before.body);
    assert!(
        before.json()["output"]
            .as_str()
            .unwrap()
            .contains("proxy=http://127.0.0.1:"),
        "{}",
        before.body
    );
    let r = t.patch(json!({"sandbox": {"network_enabled": false, "timeout_sec": 7}}));
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["effective"]["sandbox"]["network_enabled"], false);
    assert_eq!(v["effective"]["sandbox"]["timeout_sec"], 7);
    let after = t.invoke(&acme, "exec", probe.clone(), false);
    assert_eq!(after.status, 200, "{}", after.body);
    assert!(
        after.json()["output"]
            .as_str()
            .unwrap()
            .contains("proxy=none"),
        "{}",
        after.body
    );
    // The lower timeout binds.
    let r = t.invoke(
        &acme,
        "exec",
        json!({"command": "true", "timeout_sec": 8}),
        true,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("at most 7"), "{}", r.body);
    // The default tenant behaves as before.
    let other = t.invoke(TOKEN, "exec", probe, false);
    assert_eq!(other.status, 200, "{}", other.body);
    assert!(
        other.json()["output"]
            .as_str()
            .unwrap()
            .contains("proxy=http://127.0.0.1:"),
        "{}",
        other.body
    );
}

#[test]
fn a_tenants_egress_lists_bind_inside_the_sandbox_through_its_own_proxy() {
    let t = T::start(json!({"agents": {"defaults": {"sandbox": {"network_enabled": true}}}}));
    let acme = t.key("ann", "admin", "acme");
    let r = t.patch(json!({"egress": {"allow_domains": ["docs.example.com"]}}));
    assert_eq!(r.status, 200, "{}", r.body);
    let script = "import os,urllib.request\n\
                  print('proxy', os.environ.get('HTTP_PROXY'))\n\
                  try:\n  urllib.request.urlopen('http://other.example.net/',timeout=10); print('fetched')\n\
                  except Exception as e: print('refused:', e)\n";
    for key in [acme.as_str(), TOKEN] {
        let r = t.invoke(
            key,
            "write_file",
            json!({"path": "probe.py", "content": script}),
            false,
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let probe = json!({"command": "python3 probe.py"});
    let r = t.invoke(&acme, "exec", probe.clone(), false);
    assert_eq!(r.status, 200, "{}", r.body);
    let out = r.json()["output"].as_str().unwrap().to_owned();
    assert!(out.contains("proxy http://127.0.0.1:"), "{out}");
    assert!(out.contains("refused: HTTP Error 403"), "{out}");
    // The tenant's rule refused it, as the audit log says.
    let audit = t.req("GET", "/v1/audit?actor=sandbox", TOKEN, None).json();
    assert!(
        audit["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["reason"]
                .as_str()
                .is_some_and(|r| r.contains("the tenant's egress settings"))),
        "{audit}"
    );
    let before = audit["events"].as_array().unwrap().len();
    // The default tenant's commands still go through the gateway's proxy,
    // where that host is not refused by any list.
    let r = t.invoke(TOKEN, "exec", probe, false);
    assert_eq!(r.status, 200, "{}", r.body);
    let out = r.json()["output"].as_str().unwrap().to_owned();
    assert!(out.contains("proxy http://127.0.0.1:"), "{out}");
    let audit = t.req("GET", "/v1/audit?actor=sandbox", TOKEN, None).json();
    let events = audit["events"].as_array().unwrap();
    assert!(
        events[..events.len() - before]
            .iter()
            .all(|e| !e["reason"].as_str().unwrap_or("").contains("tenant's")),
        "{audit}"
    );
}

/// Each call is priced at exactly $1 (see `budget.rs`).
fn dollar_a_call() -> Value {
    json!({
        "budgets": {"tenants": {"*": {"daily_usd": 10}}},
        "models": {"pricing": {"gpt-4o-mini": {"input_usd_per_mtok": 0, "output_usd_per_mtok": 10000}}},
        "agents": {"defaults": {"model": "gpt-4o-mini", "max_tokens": 100}}
    })
}

fn dollar_reply() -> Reply {
    Reply::text("one paid answer").usage(Usage {
        input_tokens: 10,
        output_tokens: 100,
        ..Usage::default()
    })
}

#[test]
fn a_tenant_budget_lower_than_the_gateways_refuses_the_call_over_it() {
    let t = T::start(dollar_a_call());
    let acme = t.key("ann", "user", "acme");
    // Above the configured $10: refused, naming the field and the value.
    let r = t.patch(json!({"budgets": {"daily_usd": 11}}));
    assert_eq!(
        (r.status, code(&r)),
        (400, "tenant.settings_widen".into()),
        "{}",
        r.body
    );
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("budgets.daily_usd: 11")
            && message.contains("budgets.tenants.\"*\".daily_usd (10)"),
        "{message}"
    );
    let r = t.patch(json!({"budgets": {"daily_usd": 2}}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["effective"]["budgets"]["daily_usd"], 2.0);
    t.s.fake.push_all((0..6).map(|_| dollar_reply()));
    let ask = |key: &str, text: &str| {
        t.req(
            "POST",
            "/v1/chat/completions",
            key,
            Some(json!({"model": "default", "messages": [{"role": "user", "content": text}]})),
        )
    };
    assert_eq!(ask(&acme, "one").status, 200);
    assert_eq!(ask(&acme, "two").status, 200);
    let r = ask(&acme, "three");
    assert_eq!(
        (r.status, code(&r)),
        (429, "budget.exceeded".into()),
        "{}",
        r.body
    );
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("tenant acme (its own settings)")
            && message.contains("tenants.acme.settings.budgets.daily_usd"),
        "{message}"
    );
    // The default tenant is held to the configured $10 only.
    for text in ["a", "b", "c"] {
        assert_eq!(ask(TOKEN, text).status, 200);
    }
    assert_eq!(t.s.fake.requests().len(), 5);
}

#[test]
fn widening_is_refused_with_400_and_changes_nothing() {
    let t = T::start(json!({
        "agents": {"defaults": {"sandbox": {"mode": "non-main", "memory_mb": 256}}},
        "egress": {"allow_domains": ["*.example.com"]},
    }));
    let r = t.patch(json!({"sandbox": {"memory_mb": 128}}));
    assert_eq!(r.status, 200, "{}", r.body);
    let before = snapshot(&t.s.home.path);
    let stored = t.req("GET", "/v1/tenants/acme", TOKEN, None).json();
    for (settings, field, gateway) in [
        (
            json!({"sandbox": {"mode": "off"}}),
            "sandbox.mode",
            "agents.defaults.sandbox.mode (\"non-main\")",
        ),
        (
            json!({"sandbox": {"network_enabled": true}}),
            "sandbox.network_enabled",
            "agents.defaults.sandbox.network_enabled (false)",
        ),
        (
            json!({"sandbox": {"memory_mb": 512}}),
            "sandbox.memory_mb",
            "agents.defaults.sandbox.memory_mb (256)",
        ),
        (
            json!({"egress": {"allow_domains": ["evil.net"]}}),
            "egress.allow_domains",
            "egress.allow_domains [*.example.com]",
        ),
    ] {
        let r = t.patch(settings.clone());
        assert_eq!(r.status, 400, "{settings}: {}", r.body);
        assert_eq!(code(&r), "tenant.settings_widen", "{settings}");
        let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(
            message.contains(field) && message.contains(gateway),
            "{settings}: {message}"
        );
    }
    let r = t.patch(json!({"sandbox": {"profile": "strict"}}));
    assert_eq!(
        (r.status, code(&r)),
        (400, "tenant.settings_invalid".into()),
        "{}",
        r.body
    );
    let r = t.patch(json!({"egress": {"allow_domains": ["http://x.example.com/"]}}));
    assert_eq!(code(&r), "tenant.settings_invalid", "{}", r.body);
    assert_eq!(t.req("GET", "/v1/tenants/acme", TOKEN, None).json(), stored);
    // Refusals are not audited as changes; the one change is (in acme's log).
    let boss = t.key("boss", "owner", "acme");
    let audit = t
        .req("GET", "/v1/audit?action=tenant.update", &boss, None)
        .json();
    assert_eq!(audit["events"].as_array().map(Vec::len), Some(1), "{audit}");
    let after = snapshot(&t.s.home.path);
    let db = |m: &std::collections::BTreeMap<std::path::PathBuf, (u32, u64, Vec<u8>)>| {
        m.keys()
            .filter(|p| !p.to_string_lossy().contains("exoclaw.db"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(db(&before), db(&after));
}

#[test]
fn get_shows_settings_and_effective_limits_and_only_operators_change_them() {
    let t = T::start(json!({
        "agents": {"defaults": {"sandbox": {"mode": "all", "network_enabled": true}}},
        "egress": {"allow_domains": ["*.example.com", "example.com"]},
        "budgets": {"tenants": {"acme": {"daily_usd": 5, "monthly_tokens": 900}}},
    }));
    let v = t.req("GET", "/v1/tenants/acme", TOKEN, None).json();
    assert_eq!(v["settings"], json!({}));
    assert_eq!(v["settings_version"], 0);
    let e = &v["effective"];
    assert_eq!(e["sandbox"]["mode"], "all");
    assert_eq!(e["sandbox"]["network_enabled"], true);
    assert_eq!(
        e["egress"]["allow_domains"],
        json!(["*.example.com", "example.com"])
    );
    assert_eq!(e["budgets"]["daily_usd"], 5.0);
    assert_eq!(e["budgets"]["monthly_tokens"], 900);
    let r = t.patch(json!({
        "egress": {"allow_domains": ["docs.example.com"]},
        "budgets": {"daily_usd": 1.5, "daily_tokens": 100}
    }));
    assert_eq!(r.status, 200, "{}", r.body);
    let v = t.req("GET", "/v1/tenants/acme", TOKEN, None).json();
    assert_eq!(v["settings_version"], 1);
    let e = &v["effective"];
    assert_eq!(e["egress"]["allow_domains"], json!(["docs.example.com"]));
    assert_eq!(e["budgets"]["daily_usd"], 1.5);
    assert_eq!(e["budgets"]["daily_tokens"], 100);
    assert_eq!(e["budgets"]["monthly_tokens"], 900);
    // Own egress lists: commands go out through a proxy of the tenant's own.
    assert_eq!(e["sandbox"]["network_enabled"], true);
    assert!(e["sandbox"]["network_note"].is_string(), "{v}");
    // An owner of acme reads its own tenant, not another, and changes none.
    let boss = t.key("boss", "owner", "acme");
    // The change is audited in the tenant's log, with what it set.
    let audit = t
        .req("GET", "/v1/audit?action=tenant.update", &boss, None)
        .json();
    let event = &audit["events"][0];
    assert_eq!(event["action"], "tenant.update", "{audit}");
    assert_eq!(event["resource"], "tenant:acme", "{audit}");
    assert_eq!(event["detail"]["settings_version"], 1, "{audit}");
    let r = t.req("GET", "/v1/tenants/acme", &boss, None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(t.req("GET", "/v1/tenants/default", &boss, None).status, 404);
    let r = t.req(
        "PATCH",
        "/v1/tenants/acme",
        &boss,
        Some(json!({"settings": {"egress": null}})),
    );
    assert_eq!(
        (r.status, code(&r)),
        (403, "auth.forbidden".into()),
        "{}",
        r.body
    );
    // Below owner: no access at all.
    let admin = t.key("adam", "admin", "default");
    assert_eq!(t.req("GET", "/v1/tenants/acme", &admin, None).status, 403);
    assert_eq!(t.req("GET", "/v1/tenants/nope", TOKEN, None).status, 404);
    assert_eq!(t.patch(json!({})).status, 200);
}

#[test]
fn the_cli_sets_and_shows_settings_and_the_running_gateway_follows() {
    let t = T::start(json!({"egress": {"allow_domains": ["*.example.com"]}}));
    let acme = t.key("ann", "admin", "acme");
    let out = t.cli(&[
        "tenants",
        "set",
        "acme",
        "--egress-allow",
        "a.example.com,b.example.com",
        "--daily-usd",
        "3",
        "--sandbox-mode",
        "all",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        v["settings"],
        json!({"sandbox": {"mode": "all"}, "egress": {"allow_domains": ["a.example.com", "b.example.com"]}, "budgets": {"daily_usd": 3.0}})
    );
    let out = t.cli(&["tenants", "show", "acme", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(shown, v);
    assert_eq!(t.req("GET", "/v1/tenants/acme", TOKEN, None).json(), v);
    let out = t.cli(&["tenants", "show", "acme"]);
    assert!(
        stdout(&out).contains("a.example.com, b.example.com"),
        "{}",
        stdout(&out)
    );
    // The gateway applies it at acme's next call (the directory version moved).
    let r = t.invoke(
        &acme,
        "web_fetch",
        json!({"url": "http://c.example.com/"}),
        true,
    );
    assert_eq!(code(&r), "security.egress_denied", "{}", r.body);
    // Widening from the CLI: refused, with the code, nothing changed.
    let out = t.cli(&["tenants", "set", "acme", "--egress-allow", "evil.net"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("tenant.settings_widen") && err.contains("evil.net"),
        "{err}"
    );
    // A settings file, then a reset.
    let file = t.s.home.path.join("acme.json");
    std::fs::write(&file, r#"{"budgets": {"daily_tokens": 50}}"#).unwrap();
    let out = t.cli(&[
        "tenants",
        "set",
        "acme",
        "--file",
        file.to_str().unwrap(),
        "--reset",
        "egress",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        v["settings"],
        json!({"sandbox": {"mode": "all"}, "budgets": {"daily_usd": 3.0, "daily_tokens": 50}})
    );
    assert_eq!(v["settings_version"], 2);
    let r = t.invoke(
        &acme,
        "web_fetch",
        json!({"url": "http://c.example.com/"}),
        true,
    );
    assert_ne!(code(&r), "security.egress_denied", "{}", r.body);
    let out = t.cli(&["tenants", "list"]);
    assert!(stdout(&out).contains("acme"), "{}", stdout(&out));
    let out = t.cli(&["tenants", "show", "nope"]);
    assert!(!out.status.success());
}

#[test]
fn a_change_on_one_gateway_binds_on_another_sharing_postgresql_at_the_next_call() {
    let Some(dsn) = crate::postgres::fresh_database() else {
        return;
    };
    let cfg = tempfile::tempdir().unwrap();
    let cfg_path = cfg.path().join("config.json");
    std::fs::write(
        &cfg_path,
        json!({"gateway": {"rate_limit_rpm": 0}}).to_string(),
    )
    .unwrap();
    let cfg_str = cfg_path.to_str().unwrap().to_owned();
    let env = [
        ("EXOCLAW_POSTGRES_DSN", dsn.as_str()),
        ("EXOCLAW_GATEWAY_TOKEN", TOKEN),
        ("EXOCLAW_CONFIG", cfg_str.as_str()),
    ];
    let (home_a, home_b) = (TestHome::new(), TestHome::new());
    let a = Gateway::start(&home_a.path, &env);
    // The second gateway shares the first one's vault key (one database).
    let key = home_a
        .dotenv()
        .lines()
        .find_map(|l| l.strip_prefix("EXOCLAW_ENCRYPTION_KEY=").map(str::to_owned))
        .expect("the vault key of the first gateway");
    let mut env_b = env.to_vec();
    env_b.push(("EXOCLAW_ENCRYPTION_KEY", key.as_str()));
    let b = Gateway::start(&home_b.path, &env_b);
    let call = |gw: &Gateway, method: &str, path: &str, key: &str, body: Value| {
        request(gw.addr, method, path, Some(key), Some(&body.to_string()))
    };
    let r = call(&a, "POST", "/v1/tenants", TOKEN, json!({"id": "acme"}));
    assert_eq!(r.status, 201, "{}", r.body);
    let out = run(
        &home_a.path,
        &env,
        &[
            "users", "add", "ann", "--role", "admin", "--tenant", "acme", "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let ann: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let ann = ann["api_key"].as_str().unwrap().to_owned();
    let fetch = |gw: &Gateway| {
        call(
            gw,
            "POST",
            "/v1/tools/invoke",
            &ann,
            json!({"tool": "web_fetch", "args": {"url": "http://1.1.1.1/"}, "dry_run": true}),
        )
    };
    // B has read acme's settings (none) before the change.
    assert_eq!(fetch(&b).status, 200, "{}", fetch(&b).body);
    let r = call(
        &a,
        "PATCH",
        "/v1/tenants/acme",
        TOKEN,
        json!({"settings": {"egress": {"allow_domains": ["docs.example.com"]}}}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // No restart, no wait: B's next call sees the new directory version.
    let r = fetch(&b);
    assert_eq!(
        (r.status, code(&r)),
        (403, "security.egress_denied".into()),
        "{}",
        r.body
    );
    let r = call(
        &a,
        "PATCH",
        "/v1/tenants/acme",
        TOKEN,
        json!({"settings": {"egress": null}}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(fetch(&b).status, 200);
    assert_eq!(fetch(&a).status, 200);
}
