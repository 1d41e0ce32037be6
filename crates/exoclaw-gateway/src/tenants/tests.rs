//! Tenant settings: narrowing accepted, widening refused with the field and
//! the gateway's value, and the effective limits (sandbox, egress, budgets)
//! as the tools and the budget decorator apply them.

#![allow(
    clippy::needless_pass_by_value,
    reason = "test helpers take JSON by value for brevity"
)]

use super::*;
use crate::config::env::Env;
use exoclaw_egress::Host;
use serde_json::json;

fn settings(config: &serde_json::Value) -> Settings {
    let home = crate::home::Home::new("/tmp/exoclaw-test-home");
    let config = serde_json::from_value(config.clone()).expect("a valid config");
    Settings::from_config(
        home,
        config,
        Env::from_pairs(std::iter::empty::<(&str, &str)>()),
    )
}

fn acme() -> TenantId {
    TenantId::new("acme")
}

fn refused(s: &Settings, raw: serde_json::Value) -> Rejection {
    validate(s, &acme(), &raw).expect_err("refused")
}

#[test]
fn narrowing_settings_are_accepted() {
    let s = settings(&json!({
        "agents": {"defaults": {"sandbox": {"mode": "non-main", "network_enabled": true}}},
        "egress": {"allow_domains": ["*.example.com", "example.org"]},
        "budgets": {"tenants": {"acme": {"daily_usd": 5, "monthly_tokens": 1000000}}},
    }));
    let raw = json!({
        "sandbox": {"mode": "all", "network_enabled": false, "memory_mb": 128, "timeout_sec": 10, "max_pids": 8},
        "egress": {"allow_domains": ["docs.example.com", "*.api.example.com", "example.org"], "deny_domains": ["bad.example.com"]},
        "budgets": {"daily_usd": 1.5, "monthly_tokens": 1000, "daily_tokens": 99},
    });
    let ok = validate(&s, &acme(), &raw).unwrap();
    assert_eq!(ok.sandbox.mode, Some(SandboxMode::All));
    assert_eq!(ok.budgets.daily_tokens, Some(99));
    // What is stored is what was written (unset fields left out).
    assert_eq!(serde_json::to_value(&ok).unwrap(), raw);
    assert_eq!(
        serde_json::to_value(validate(&s, &acme(), &json!({})).unwrap()).unwrap(),
        json!({})
    );
}

#[test]
fn widening_is_refused_naming_the_field_and_the_gateways_value() {
    let s = settings(&json!({
        "agents": {"defaults": {"sandbox": {"mode": "all", "network_enabled": false, "memory_mb": 256}}},
        "egress": {"allow_domains": ["*.example.com"]},
        "budgets": {"tenants": {"*": {"daily_usd": 2}}},
    }));
    let r = refused(
        &s,
        json!({
            "sandbox": {"mode": "off", "network_enabled": true, "memory_mb": 1024},
            "egress": {"allow_domains": ["example.com", "a.example.com", "evil.net"]},
            "budgets": {"daily_usd": 3, "monthly_usd": 1000},
        }),
    );
    assert_eq!(r.code, CODE_WIDENS);
    let text = r.to_string();
    for needle in [
        "sandbox.mode: \"off\" would widen the gateway's agents.defaults.sandbox.mode (\"all\")",
        "sandbox.network_enabled: true would widen the gateway's agents.defaults.sandbox.network_enabled (false)",
        "sandbox.memory_mb: 1024 would widen the gateway's agents.defaults.sandbox.memory_mb (256)",
        // The apex is not inside `*.example.com`; a subdomain is.
        "egress.allow_domains: \"example.com\" is outside the gateway's egress.allow_domains [*.example.com]",
        "egress.allow_domains: \"evil.net\" is outside",
        "budgets.daily_usd: 3 would widen the gateway's budgets.tenants.\"*\".daily_usd (2)",
    ] {
        assert!(text.contains(needle), "{needle:?} not in {text}");
    }
    assert!(!text.contains("a.example.com\" is outside"), "{text}");
    // No configured monthly limit: any monthly limit narrows.
    assert!(!text.contains("monthly_usd"), "{text}");
    assert_eq!(r.problems.len(), 6, "{text}");
}

#[test]
fn a_mode_may_keep_or_tighten() {
    let s = settings(&json!({"agents": {"defaults": {"sandbox": {"mode": "non-main"}}}}));
    for ok in ["all", "non-main"] {
        assert!(validate(&s, &acme(), &json!({"sandbox": {"mode": ok}})).is_ok());
    }
    assert_eq!(
        refused(&s, json!({"sandbox": {"mode": "off"}})).code,
        CODE_WIDENS
    );
}

#[test]
fn malformed_settings_are_invalid_not_widening() {
    let s = settings(&json!({}));
    for raw in [
        json!({"sandbox": {"profile": "strict"}}),
        json!({"egress": {"allow": ["x.com"]}}),
        json!({"budgets": {"daily_usd": "five"}}),
        json!([1, 2]),
        json!({"sandbox": {"mode": "paranoid"}}),
    ] {
        let r = refused(&s, raw.clone());
        assert_eq!(r.code, CODE_INVALID, "{raw}: {r}");
    }
    let r = refused(
        &s,
        json!({"egress": {"allow_domains": ["http://x.com/", "10.0.0.1"]}, "budgets": {"daily_usd": -1}, "sandbox": {"timeout_sec": 0}}),
    );
    assert_eq!(r.code, CODE_INVALID);
    assert_eq!(r.problems.len(), 4, "{r}");
    let many: Vec<String> = (0..=MAX_DOMAINS).map(|i| format!("h{i}.example")).collect();
    let r = refused(&s, json!({"egress": {"deny_domains": many}}));
    assert!(r.to_string().contains("at most 256 patterns"), "{r}");
}

#[test]
fn without_a_gateway_allowlist_any_tenant_allowlist_narrows() {
    let s = settings(&json!({}));
    assert!(
        validate(
            &s,
            &acme(),
            &json!({"egress": {"allow_domains": ["example.com"]}})
        )
        .is_ok()
    );
}

fn effective_of_raw(s: &Settings, raw: serde_json::Value) -> Effective {
    let parsed = validate(s, &acme(), &raw).unwrap();
    effective(s, &acme(), parsed, 1).unwrap()
}

#[test]
fn the_effective_budget_is_the_lower_of_both() {
    let s =
        settings(&json!({"budgets": {"tenants": {"acme": {"daily_usd": 5, "monthly_usd": 50}}}}));
    let e = effective_of_raw(&s, json!({"budgets": {"daily_usd": 1, "daily_tokens": 10}}));
    assert_eq!(
        e.budgets,
        BudgetSettings {
            daily_usd: Some(1.0),
            monthly_usd: Some(50.0),
            daily_tokens: Some(10),
            monthly_tokens: None,
        }
    );
    assert_eq!(e.own_budgets.as_ref().and_then(|b| b.daily_usd), Some(1.0));
    // Stored settings wider than a configuration narrowed since still
    // apply only the narrower value.
    let e = effective(
        &s,
        &acme(),
        TenantSettings {
            budgets: BudgetSettings {
                daily_usd: Some(9.0),
                ..BudgetSettings::default()
            },
            ..TenantSettings::default()
        },
        2,
    )
    .unwrap();
    assert_eq!(e.budgets.daily_usd, Some(5.0));
    let none = effective_of_raw(&s, json!({}));
    assert!(none.own_budgets.is_none());
}

fn policy() -> exoclaw_tools::sandbox::SandboxPolicy {
    let mut p = exoclaw_tools::sandbox::SandboxPolicy::new("/w", "/d");
    p.mode = exoclaw_tools::sandbox::SandboxMode::NonMain;
    p.network_enabled = true;
    p.proxy = Some(exoclaw_tools::sandbox::EgressProxy::Unix("/p.sock".into()));
    p
}

#[test]
fn a_tenant_without_network_gets_a_sandbox_without_network() {
    let s = settings(
        &json!({"agents": {"defaults": {"sandbox": {"mode": "non-main", "network_enabled": true}}}}),
    );
    let e = effective_of_raw(
        &s,
        json!({"sandbox": {"network_enabled": false, "mode": "all", "timeout_sec": 5, "memory_mb": 64}}),
    );
    let mut p = policy();
    e.narrow_sandbox(&mut p);
    assert!(!p.network_enabled);
    assert_eq!(p.proxy, None);
    assert_eq!(p.mode, exoclaw_tools::sandbox::SandboxMode::All);
    assert_eq!(p.timeout, Duration::from_secs(5));
    assert_eq!(p.memory_mb, 64);
    // A tenant with no settings keeps the gateway's sandbox as it is.
    let e = effective_of_raw(&s, json!({}));
    let mut p = policy();
    e.narrow_sandbox(&mut p);
    assert!(p.network_enabled && p.proxy.is_some());
    assert_eq!(p.mode, exoclaw_tools::sandbox::SandboxMode::NonMain);
    assert_eq!(p.timeout, Duration::from_secs(300));
}

#[tokio::test]
async fn a_tenant_with_egress_lists_gets_its_own_proxy_or_no_network() {
    let db = crate::test_store::sqlite().await;
    let store = db.store.clone();
    let s = Arc::new(settings(
        &json!({"agents": {"defaults": {"sandbox": {"network_enabled": true}}}}),
    ));
    store.create_tenant(&acme(), "Acme").await.unwrap();
    store
        .set_tenant_settings(
            &acme(),
            &json!({"egress": {"deny_domains": ["evil.com"]}}),
            None,
        )
        .await
        .unwrap();
    let limits = TenantLimits::new(s);
    limits.sync(&*store, &acme(), None).await.unwrap();
    let e = limits.get(&acme()).unwrap();
    assert!(e.sandbox.network_enabled);
    assert!(e.sandbox.network_note.is_some());
    // No proxy can be had: no network (fail closed).
    let mut p = policy();
    limits.narrow(&acme(), &mut p);
    assert!(!p.network_enabled && p.proxy.is_none());
    // With one: the tenant's socket, asked for with its version and rules.
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = asked.clone();
    limits.set_proxies(Arc::new(move |t: &TenantId, v: i64, r: &DomainRules| {
        let refused = r.check(&Host::Name("evil.com".into())).is_err();
        seen.lock().unwrap().push((t.clone(), v, refused));
        Some("/tmp/t-acme.sock".into())
    }));
    let mut p = policy();
    limits.narrow(&acme(), &mut p);
    assert!(p.network_enabled);
    assert_eq!(
        p.proxy,
        Some(exoclaw_tools::sandbox::EgressProxy::Unix(
            "/tmp/t-acme.sock".into()
        ))
    );
    assert_eq!(asked.lock().unwrap().as_slice(), [(acme(), 1, true)]);
    // Another tenant keeps the gateway's proxy.
    let mut p = policy();
    limits.narrow(&TenantId::new("default"), &mut p);
    assert_eq!(
        p.proxy,
        Some(exoclaw_tools::sandbox::EgressProxy::Unix("/p.sock".into()))
    );
    db.finish().await;
}

#[test]
fn a_tenant_allowlist_is_a_layer_on_the_gateways() {
    let s = settings(&json!({"egress": {"allow_domains": ["*.example.com"]}}));
    let e = effective_of_raw(
        &s,
        json!({"egress": {"allow_domains": ["a.example.com"], "deny_domains": ["b.a.example.com"]}}),
    );
    assert_eq!(e.allow_domains, ["a.example.com"]);
    let rules = e.rules.unwrap();
    let host = |n: &str| Host::Name(n.to_owned());
    assert!(rules.check(&host("a.example.com")).is_ok());
    assert_eq!(
        rules.check(&host("c.example.com")).unwrap_err().rule,
        "domain.not_allowed"
    );
    // Without its own lists, the gateway's allowlist is what applies.
    let e = effective_of_raw(&s, json!({}));
    assert_eq!(e.allow_domains, ["*.example.com"]);
    assert!(e.rules.is_none());
}

#[tokio::test]
async fn the_cache_reads_a_tenant_once_per_directory_version() {
    let db = crate::test_store::sqlite().await;
    let store = db.store.clone();
    let s = Arc::new(settings(&json!({})));
    let limits = TenantLimits::new(s);
    store.create_tenant(&acme(), "Acme").await.unwrap();
    let rules = limits.egress_rules();
    limits.sync(&*store, &acme(), Some(-1)).await.unwrap();
    assert!(rules(&acme()).is_none());
    store
        .set_tenant_settings(
            &acme(),
            &json!({"egress": {"allow_domains": ["example.com"]}}),
            None,
        )
        .await
        .unwrap();
    // The same version: nothing is read.
    limits.sync(&*store, &acme(), Some(-1)).await.unwrap();
    assert!(rules(&acme()).is_none());
    // A new version: read again.
    let v = store.directory_version(&acme()).await.unwrap();
    assert!(v.is_some_and(|v| v != -1), "{v:?}");
    limits.sync(&*store, &acme(), v).await.unwrap();
    assert!(rules(&acme()).is_some());
    // Written here: applies at once.
    let t = store
        .set_tenant_settings(&acme(), &json!({}), None)
        .await
        .unwrap();
    limits.apply(&t).unwrap();
    assert!(rules(&acme()).is_none());
    // Corrupt stored settings fail the sync, never run unnarrowed.
    let bad = Tenant {
        settings: json!({"egress": {"allow_domains": ["http://x/"]}}),
        ..t
    };
    assert!(matches!(limits.apply(&bad), Err(StoreError::Corrupt(_))));
    db.finish().await;
}

#[test]
fn merge_patch_merges_and_null_resets() {
    let mut t = json!({"sandbox": {"mode": "all", "memory_mb": 64}, "budgets": {"daily_usd": 1}});
    merge_patch(
        &mut t,
        &json!({"sandbox": {"memory_mb": null, "network_enabled": false}, "budgets": null, "egress": {"allow_domains": ["a.com"]}}),
    );
    assert_eq!(
        t,
        json!({"sandbox": {"mode": "all", "network_enabled": false}, "egress": {"allow_domains": ["a.com"]}})
    );
}

#[tokio::test]
async fn update_merges_validates_and_changes_nothing_when_refused() {
    let db = crate::test_store::sqlite().await;
    let store = db.store.clone();
    let s = settings(&json!({"egress": {"allow_domains": ["*.example.com"]}}));
    store.create_tenant(&acme(), "Acme").await.unwrap();
    let t = update(
        &*store,
        &s,
        &acme(),
        &json!({"egress": {"allow_domains": ["a.example.com"]}}),
    )
    .await
    .unwrap();
    assert_eq!(t.settings_version, 1);
    let t = update(
        &*store,
        &s,
        &acme(),
        &json!({"budgets": {"daily_tokens": 5}}),
    )
    .await
    .unwrap();
    assert_eq!(
        t.settings,
        json!({"egress": {"allow_domains": ["a.example.com"]}, "budgets": {"daily_tokens": 5}})
    );
    let err = update(
        &*store,
        &s,
        &acme(),
        &json!({"egress": {"allow_domains": ["evil.net"]}}),
    )
    .await
    .unwrap_err();
    let UpdateError::Rejected(r) = err else {
        panic!("not a rejection")
    };
    assert_eq!(r.code, CODE_WIDENS);
    assert!(matches!(
        update(&*store, &s, &TenantId::new("nope"), &json!({})).await,
        Err(UpdateError::NotFound(_))
    ));
    let after = store.get_tenant(&acme()).await.unwrap().unwrap();
    assert_eq!((after.settings, after.settings_version), (t.settings, 2));
    db.finish().await;
}

#[tokio::test]
async fn an_update_that_lost_a_race_changes_nothing() {
    let db = crate::test_store::sqlite().await;
    let store = db.store.clone();
    let s = settings(&json!({}));
    store.create_tenant(&acme(), "Acme").await.unwrap();
    // Read at version 0, written by someone else meanwhile.
    store
        .set_tenant_settings(&acme(), &json!({"budgets": {"daily_tokens": 9}}), Some(0))
        .await
        .unwrap();
    let err = store
        .set_tenant_settings(&acme(), &json!({}), Some(0))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let t = store.get_tenant(&acme()).await.unwrap().unwrap();
    assert_eq!(t.settings, json!({"budgets": {"daily_tokens": 9}}));
    // `update` reads the current version, so it goes through.
    let t = update(&*store, &s, &acme(), &json!({"budgets": {"daily_usd": 1}}))
        .await
        .unwrap();
    assert_eq!(t.settings_version, 2);
    db.finish().await;
}
