//! `exoclaw tenants list|create|show|set`: the terminal side of
//! `/v1/tenants` and `/v1/tenants/{id}` (the narrowing rules are shared in
//! [`exoclaw_gateway::tenants`]). The CLI acts as the gateway's owner. A
//! change made here applies to a running gateway at the tenant's next turn
//! (the store bumps the tenant's directory version).

use crate::cli::{JsonFlag, TenantSetArgs, TenantsCommand};
use crate::cmd::users::with_store;
use crate::config::Settings;
use crate::http::tenants::TenantDetail;
use anyhow::{Context as _, bail};
use exoclaw_core::TenantId;
use exoclaw_core::model::NewAuditEvent;
use exoclaw_core::store::{Store, StoreError};
use exoclaw_gateway::tenants::{self, UpdateError};
use serde_json::{Value, json};

pub async fn run(cmd: &TenantsCommand, settings: &Settings) -> anyhow::Result<()> {
    with_store(settings, async |store| match cmd {
        TenantsCommand::List(JsonFlag { json }) => list(store, *json).await,
        TenantsCommand::Create { id, name } => create(store, id, name.as_deref()).await,
        TenantsCommand::Show { id, json } => {
            let t = store
                .get_tenant(&TenantId::new(id))
                .await?
                .with_context(|| no_tenant(id))?;
            let detail =
                TenantDetail::build(settings, t).map_err(|e| anyhow::anyhow!("{}", e.message))?;
            show(&detail, *json)
        }
        TenantsCommand::Set(args) => set(store, settings, args).await,
    })
    .await
}

fn no_tenant(id: &str) -> String {
    format!("no tenant {id:?}; `exoclaw tenants list` shows them")
}

async fn list(store: &dyn Store, json: bool) -> anyhow::Result<()> {
    let all = store.list_tenants().await?;
    if json {
        let tenants: Vec<Value> = all
            .iter()
            .map(|t| json!({"id": t.id, "name": t.name, "created_at": t.created_at}))
            .collect();
        return crate::cmd::table::print_json(&json!({ "tenants": tenants }));
    }
    let mut table = crate::cmd::table::Table::new(&["ID", "NAME", "SETTINGS"]);
    for t in all {
        let own = if t.settings.as_object().is_some_and(|o| !o.is_empty()) {
            format!("v{}", t.settings_version)
        } else {
            "-".to_owned()
        };
        table.row([t.id.to_string(), t.name, own]);
    }
    table.print("no tenants");
    Ok(())
}

async fn create(store: &dyn Store, id: &str, name: Option<&str>) -> anyhow::Result<()> {
    let tenant = TenantId::new(id);
    let t = store
        .create_tenant(&tenant, name.unwrap_or(id))
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => anyhow::anyhow!("a tenant {id:?} already exists"),
            other => other.into(),
        })?;
    exoclaw_gateway::runtime::ensure_default_agent_of(store, &tenant).await?;
    let event = NewAuditEvent::new(
        tenant.clone(),
        "cli",
        "tenant.create",
        format!("tenant:{tenant}"),
        "allow",
    );
    exoclaw_gateway::audit::record_logged(store, &event).await;
    crate::outln!("tenant {} ({}) created", t.id, t.name);
    Ok(())
}

fn show(d: &TenantDetail, json: bool) -> anyhow::Result<()> {
    if json {
        return crate::cmd::table::print_json(d);
    }
    let e = &d.effective;
    let opt = |v: Option<String>| v.unwrap_or_else(|| "no limit".to_owned());
    let list = |l: &[String], empty: &str| {
        if l.is_empty() {
            empty.to_owned()
        } else {
            l.join(", ")
        }
    };
    crate::outln!("tenant {} ({})", d.id, d.name);
    crate::outln!(
        "settings (v{}): {}",
        d.settings_version,
        serde_json::to_string(&d.settings)?
    );
    crate::outln!("effective limits (the narrower of the gateway's and the tenant's):");
    let network = match (e.sandbox.network_enabled, &e.sandbox.network_note) {
        (true, Some(note)) => format!("on ({note})"),
        (true, None) => "on".to_owned(),
        (false, _) => "off".to_owned(),
    };
    crate::outln!(
        "  sandbox: mode {}, network {}, memory {} MB, timeout {} s, {} processes",
        e.sandbox.mode,
        network,
        e.sandbox.memory_mb,
        e.sandbox.timeout_sec,
        e.sandbox.max_pids
    );
    crate::outln!(
        "  egress: allow {}; deny {}",
        list(&e.egress.allow_domains, "every public host"),
        list(&e.egress.deny_domains, "none of its own")
    );
    crate::outln!(
        "  budgets: daily {}, monthly {}, daily tokens {}, monthly tokens {}",
        opt(e.budgets.daily_usd.map(|v| format!("${v}"))),
        opt(e.budgets.monthly_usd.map(|v| format!("${v}"))),
        opt(e.budgets.daily_tokens.map(|v| v.to_string())),
        opt(e.budgets.monthly_tokens.map(|v| v.to_string()))
    );
    Ok(())
}

/// Set `path` (`a.b`) in `patch` to `value`.
fn put(patch: &mut Value, path: &str, value: Value) -> anyhow::Result<()> {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    if head.is_empty() {
        bail!("{path:?} is not a settings field (e.g. egress.allow_domains, budgets)");
    }
    let Value::Object(map) = patch else {
        bail!("{path:?}: its parent is not an object in the patch (reset it separately)");
    };
    match rest {
        None => {
            map.insert(head.to_owned(), value);
            Ok(())
        }
        Some(rest) => put(
            map.entry(head.to_owned()).or_insert_with(|| json!({})),
            rest,
            value,
        ),
    }
}

/// The merge patch the flags describe (the file's first).
fn patch_of(args: &TenantSetArgs) -> anyhow::Result<Value> {
    let mut patch = match &args.file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let v: Value = serde_json::from_str(&text).map_err(|e| {
                anyhow::anyhow!(
                    "{} is not JSON (line {}, column {})",
                    path.display(),
                    e.line(),
                    e.column()
                )
            })?;
            if !v.is_object() {
                bail!("{} must hold a JSON object", path.display());
            }
            v
        }
        None => json!({}),
    };
    for field in &args.reset {
        put(&mut patch, field, Value::Null)?;
    }
    if let Some(hosts) = &args.egress_allow {
        put(&mut patch, "egress.allow_domains", json!(hosts))?;
    }
    if let Some(hosts) = &args.egress_deny {
        put(&mut patch, "egress.deny_domains", json!(hosts))?;
    }
    if let Some(mode) = &args.sandbox_mode {
        put(&mut patch, "sandbox.mode", json!(mode))?;
    }
    if let Some(net) = &args.sandbox_network {
        let on = match net.as_str() {
            "on" | "true" => true,
            "off" | "false" => false,
            other => bail!("--sandbox-network: {other:?} is not on or off"),
        };
        put(&mut patch, "sandbox.network_enabled", json!(on))?;
    }
    let numbers: [(&str, Option<Value>); 7] = [
        ("sandbox.memory_mb", args.memory_mb.map(Value::from)),
        ("sandbox.timeout_sec", args.timeout_sec.map(Value::from)),
        ("sandbox.max_pids", args.max_pids.map(Value::from)),
        ("budgets.daily_usd", args.daily_usd.map(Value::from)),
        ("budgets.monthly_usd", args.monthly_usd.map(Value::from)),
        ("budgets.daily_tokens", args.daily_tokens.map(Value::from)),
        (
            "budgets.monthly_tokens",
            args.monthly_tokens.map(Value::from),
        ),
    ];
    for (field, value) in numbers {
        if let Some(v) = value {
            put(&mut patch, field, v)?;
        }
    }
    Ok(patch)
}

async fn set(store: &dyn Store, settings: &Settings, args: &TenantSetArgs) -> anyhow::Result<()> {
    let patch = patch_of(args)?;
    if patch.as_object().is_some_and(|m| m.is_empty()) {
        bail!("nothing to change: give --file or a flag (`exoclaw tenants set --help`)");
    }
    let tenant = TenantId::new(&args.id);
    let t = tenants::update(store, settings, &tenant, &patch)
        .await
        .map_err(|e| match e {
            UpdateError::NotFound(_) => anyhow::anyhow!("{}", no_tenant(&args.id)),
            UpdateError::Rejected(r) => {
                anyhow::anyhow!("tenant {tenant}: settings refused ({}): {r}", r.code)
            }
            e @ UpdateError::Conflict(_) => anyhow::anyhow!("{e}"),
            UpdateError::Store(e) => e.into(),
        })?;
    let mut event = NewAuditEvent::new(
        tenant.clone(),
        "cli",
        "tenant.update",
        format!("tenant:{tenant}"),
        "allow",
    );
    event.detail = json!({"settings_version": t.settings_version, "settings": t.settings});
    exoclaw_gateway::audit::record_logged(store, &event).await;
    let detail = TenantDetail::build(settings, t).map_err(|e| anyhow::anyhow!("{}", e.message))?;
    if !args.json {
        crate::outln!(
            "tenant {tenant} settings changed (v{}); a running gateway applies them at the tenant's next turn",
            detail.settings_version
        );
    }
    show(&detail, args.json)
}
