//! `exoclaw users add|list|disable|enable|delete`, `exoclaw keys
//! create|list|revoke` and `exoclaw routes`: the terminal side of the same
//! operations as `/v1/users` and `/v1/keys` (shared in [`exoclaw_gateway::users`]).
//! The CLI acts as an owner: whoever can run it can read the data dir.

use crate::cli::{KeysCommand, UsersCommand};
use crate::config::Settings;
use crate::serve::refuse_unsafe_home;
use anyhow::{Context as _, bail};
use exoclaw_core::TenantId;
use exoclaw_core::model::{NewAuditEvent, Role};
use exoclaw_core::store::{Store, StoreError};
use exoclaw_gateway::access::Permission;
use exoclaw_gateway::db;
use exoclaw_gateway::users::{self, KeySpec};
use serde_json::json;

pub(crate) async fn with_store<T>(
    settings: &Settings,
    f: impl AsyncFnOnce(&dyn Store) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    refuse_unsafe_home(&settings.home)?;
    let inspection = db::inspect(settings).await?;
    // A fresh data dir is set up as `serve` would (nothing is at risk), so
    // users can be added before the first start; an outdated one is not.
    let plan = db::schema_plan(inspection.status, settings.auto_upgrade)?;
    if plan == db::SchemaPlan::Initialize {
        settings.home.ensure_layout()?;
    }
    let db = db::open(settings).await?;
    let store = db.store();
    if plan != db::SchemaPlan::Ready
        && let Err(e) = db::migrate_latest(store.as_ref()).await
    {
        db.close().await;
        return Err(e);
    }
    let result = f(store.as_ref()).await;
    db.close().await;
    result
}

async fn audit(store: &dyn Store, tenant: &TenantId, action: &str, resource: String) {
    let event = NewAuditEvent::new(tenant.clone(), "cli", action, resource, "allow");
    exoclaw_gateway::audit::record_logged(store, &event).await;
}

async fn user_of(
    store: &dyn Store,
    tenant: &TenantId,
    name: &str,
) -> anyhow::Result<exoclaw_core::model::User> {
    users::find(store, tenant, name).await?.with_context(|| {
        format!("no user {name:?} in tenant {tenant}; `exoclaw users list` shows them")
    })
}

pub async fn run_users(cmd: &UsersCommand, settings: &Settings) -> anyhow::Result<()> {
    with_store(settings, async |store| match cmd {
        UsersCommand::Add {
            name,
            role,
            tenant,
            json,
        } => {
            let role: Role = role.parse()?;
            let tenant = TenantId::new(tenant);
            let (user, issued) =
                users::create_user(store, &tenant, name, role, &KeySpec::default())
                    .await
                    .map_err(|e| match e {
                        users::UserError::Store(StoreError::Conflict(_)) => {
                            anyhow::anyhow!("a user {name:?} already exists in tenant {tenant}")
                        }
                        other => other.into(),
                    })?;
            audit(store, &tenant, "user.create", format!("user:{}", user.id)).await;
            if *json {
                crate::outln!(
                    "{}",
                    json!({"id": user.id, "name": user.name, "role": user.role,
                           "tenant": user.tenant_id, "api_key": issued.plaintext.expose()})
                );
            } else {
                crate::outln!(
                    "user {} ({}) created in tenant {}",
                    user.name,
                    user.role,
                    tenant
                );
                crate::outln!("API key (shown once; use it as `Authorization: Bearer <key>`):");
                crate::outln!("{}", issued.plaintext.expose());
            }
            Ok(())
        }
        UsersCommand::List { tenant, json } => {
            let tenant = TenantId::new(tenant);
            let list = store.list_users(&tenant).await?;
            let users: Vec<crate::http::UserView> = list
                .iter()
                .map(|u| crate::http::UserView::of(u, &settings.owner_ids))
                .collect();
            if *json {
                return crate::cmd::table::print_json(&crate::http::UserList { users });
            }
            let mut table = crate::cmd::table::Table::new(&["ID", "NAME", "ROLE", "STATE"]);
            for u in users {
                let state = if u.disabled { "disabled" } else { "active" };
                table.row([
                    u.id.to_string(),
                    u.name,
                    u.role.as_str().to_owned(),
                    state.to_owned(),
                ]);
            }
            table.print("no users");
            Ok(())
        }
        UsersCommand::Disable { name, tenant } | UsersCommand::Enable { name, tenant } => {
            let disabled = matches!(cmd, UsersCommand::Disable { .. });
            let tenant = TenantId::new(tenant);
            let user = user_of(store, &tenant, name).await?;
            store.set_user_disabled(&tenant, &user.id, disabled).await?;
            let action = if disabled {
                "user.disable"
            } else {
                "user.enable"
            };
            audit(store, &tenant, action, format!("user:{}", user.id)).await;
            crate::outln!(
                "{} {}",
                if disabled { "disabled" } else { "enabled" },
                user.name
            );
            Ok(())
        }
        UsersCommand::Delete { name, tenant } => {
            let tenant = TenantId::new(tenant);
            let user = user_of(store, &tenant, name).await?;
            store.delete_user(&tenant, &user.id).await?;
            audit(store, &tenant, "user.delete", format!("user:{}", user.id)).await;
            crate::outln!("deleted {}", user.name);
            Ok(())
        }
    })
    .await
}

pub async fn run_keys(cmd: &KeysCommand, settings: &Settings) -> anyhow::Result<()> {
    with_store(settings, async |store| match cmd {
        KeysCommand::Create {
            user,
            tenant,
            name,
            expires,
            scopes,
            json,
        } => {
            let tenant = TenantId::new(tenant);
            let u = user_of(store, &tenant, user).await?;
            let spec = KeySpec {
                name: name.clone(),
                expires_days: *expires,
                scopes: scopes.clone(),
            };
            let issued = users::issue_key(store, &tenant, &u.id, &spec).await?;
            audit(
                store,
                &tenant,
                "key.create",
                format!("api_key:{}", issued.key.id),
            )
            .await;
            if *json {
                let mut out = crate::http::key_json(&issued.key);
                out["api_key"] = issued.plaintext.expose().into();
                crate::outln!("{out}");
            } else {
                crate::outln!("key {} for {} (shown once):", issued.key.id, u.name);
                crate::outln!("{}", issued.plaintext.expose());
            }
            Ok(())
        }
        KeysCommand::List { user, tenant, json } => {
            let tenant = TenantId::new(tenant);
            let only = match user {
                Some(name) => Some(user_of(store, &tenant, name).await?.id),
                None => None,
            };
            let keys = store.list_api_keys(&tenant, only.as_ref()).await?;
            if *json {
                return crate::cmd::table::print_json(&crate::http::KeyList::of(&keys));
            }
            let mut table =
                crate::cmd::table::Table::new(&["ID", "USER", "PREFIX", "NAME", "STATE", "SCOPES"]);
            for k in keys {
                let state = if k.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                let scopes = if k.scopes.is_empty() {
                    "*".to_owned()
                } else {
                    k.scopes.join(",")
                };
                table.row([
                    k.id,
                    k.user_id.to_string(),
                    format!("{}…", k.prefix),
                    k.name,
                    state.to_owned(),
                    scopes,
                ]);
            }
            table.print("no keys");
            Ok(())
        }
        KeysCommand::Revoke { id, tenant } => {
            let tenant = TenantId::new(tenant);
            let now = exoclaw_core::now_ms();
            match store.revoke_api_key(&tenant, None, id, now).await {
                Ok(()) => {}
                Err(StoreError::NotFound) => {
                    bail!("no key {id} in tenant {tenant}; `exoclaw keys list` shows them")
                }
                Err(e) => return Err(e.into()),
            }
            audit(store, &tenant, "key.revoke", format!("api_key:{id}")).await;
            crate::outln!("revoked {id}");
            Ok(())
        }
    })
    .await
}

/// `exoclaw routes [--json]`.
pub fn routes(json: bool) {
    let (_, table) = crate::http::api_routes().finish();
    let methods: Vec<_> = crate::http::ws_methods()
        .iter()
        .map(|(m, p)| json!({"method": m, "permission": p.as_str()}))
        .collect();
    if json {
        let perms: Vec<_> = Permission::ALL
            .iter()
            .map(|p| {
                json!({
                    "name": p.as_str(),
                    "min_role": p.min_role(),
                    "scope": if p.is_gateway_wide() { "gateway" } else { "tenant" },
                })
            })
            .collect();
        crate::outln!(
            "{}",
            json!({"routes": *table, "ws_methods": methods, "permissions": perms})
        );
        return;
    }
    for r in table.iter() {
        let access = match r.access {
            crate::http::routes::Access::Public => "public".to_owned(),
            crate::http::routes::Access::SelfAuth => "connect frame".to_owned(),
            crate::http::routes::Access::Perm(p) => describe(p),
        };
        crate::outln!("{:<7} {:<32} {access}", r.method, r.path);
    }
    for (m, p) in crate::http::ws_methods() {
        crate::outln!("{:<7} {:<32} {}", "WS", m, describe(*p));
    }
}

/// `metrics.read (operator+, default tenant or owner)`.
fn describe(p: Permission) -> String {
    if p.is_gateway_wide() && p.min_role() != exoclaw_core::model::Role::Owner {
        format!("{p} ({}+, default tenant or owner)", p.min_role())
    } else {
        format!("{p} ({}+)", p.min_role())
    }
}
