//! `exoclaw agent link|links|unlink`, `exoclaw delegations list|show` and
//! `exoclaw bindings list|add|remove`: the terminal side of the operations
//! behind `/v1/agents/{id}/links`, `/v1/delegations` and `/v1/bindings`
//! (`http::orchestration`: the same checks, the same audit events with the
//! actor `cli`). The CLI acts as an owner of the tenant it names (whoever
//! can run it can read the data dir) and writes to the store directly; the
//! gateway may be running. `--json` prints the HTTP API's document.

use crate::cli::{AgentCommand, BindingsCommand, DelegationsCommand};
use crate::config::Settings;
use crate::http::error::ApiError;
use crate::http::orchestration::bindings::{self, BindingView, CreateBinding};
use crate::http::orchestration::delegations::{self, DelegationView, DelegationsQuery, Visibility};
use crate::http::orchestration::links::{self, CreateLink, LinkUsersView};
use crate::http::orchestration::{Actor, Surface};
use crate::serve::refuse_unsafe_home;
use anyhow::bail;
use exoclaw_core::TenantId;
use exoclaw_core::store::Store;
use exoclaw_gateway::clock::rfc3339;
use exoclaw_gateway::db;

use super::table::{Table, print_json};

/// A refusal of the API as the CLI's error line (the code in brackets).
pub(super) fn refused(e: ApiError) -> anyhow::Error {
    let ApiError { code, message } = e;
    anyhow::anyhow!("{message} [{code}]")
}

/// Whether a command writes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    Read,
    Write,
}

/// Runs `f` on the data dir's store, whose schema must be current.
pub(super) async fn with_store<T>(
    settings: &Settings,
    access: Access,
    f: impl AsyncFnOnce(&dyn Store) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    refuse_unsafe_home(&settings.home)?;
    let inspection = db::inspect(settings).await?;
    if !inspection.exists {
        bail!("there is no store yet; start `exoclaw serve` once");
    }
    if !inspection.status.is_current() {
        bail!(
            "the store schema is not current (version {} of {}); run `exoclaw upgrade` first",
            inspection.status.current,
            inspection.status.latest
        );
    }
    let db = match access {
        Access::Read => db::open_read_only(settings).await?,
        Access::Write => db::open(settings).await?,
    };
    let result = f(db.store().as_ref()).await;
    db.close().await;
    result
}

/// `agent link`, `agent links`, `agent unlink` (`cmd/agent.rs` hands them
/// over with its store).
pub async fn run_links(cmd: &AgentCommand, store: &dyn Store) -> anyhow::Result<()> {
    match cmd {
        AgentCommand::Link {
            source,
            target,
            direction,
            max_concurrent,
            allow_users,
            deny_users,
            tenant,
        } => {
            let actor = Actor::cli(TenantId::new(tenant));
            let users =
                (!allow_users.is_empty() || !deny_users.is_empty()).then(|| LinkUsersView {
                    allow: allow_users.clone(),
                    deny: deny_users.clone(),
                });
            let body = CreateLink {
                target: target.clone(),
                direction: Some(direction.clone()),
                max_concurrent: *max_concurrent,
                users,
            };
            let link = links::link(store, &actor, source, body)
                .await
                .map_err(refused)?;
            crate::outln!(
                "linked {} -> {} ({})",
                link.source,
                link.target,
                link.direction.as_str()
            );
        }
        AgentCommand::Links { id, json, tenant } => {
            let list = links::links_of(store, &TenantId::new(tenant), id.as_deref())
                .await
                .map_err(refused)?;
            if *json {
                return print_json(&list);
            }
            let mut t = Table::new(&[
                "SOURCE",
                "TARGET",
                "DIRECTION",
                "MAX",
                "ALLOW",
                "DENY",
                "CREATED",
            ]);
            for l in &list.links {
                t.row([
                    l.source.to_string(),
                    l.target.to_string(),
                    l.direction.as_str().to_owned(),
                    l.max_concurrent.map(|n| n.to_string()).unwrap_or_default(),
                    l.users.allow.join(","),
                    l.users.deny.join(","),
                    rfc3339(l.created_at),
                ]);
            }
            t.print(&match id {
                Some(id) => format!("agent {id} has no links"),
                None => "no links".to_owned(),
            });
        }
        AgentCommand::Unlink {
            source,
            target,
            tenant,
        } => {
            let actor = Actor::cli(TenantId::new(tenant));
            links::unlink(store, &actor, source, target, Surface::Cli)
                .await
                .map_err(refused)?;
            crate::outln!("unlinked {source} -> {target}");
        }
        AgentCommand::List { .. }
        | AgentCommand::Add { .. }
        | AgentCommand::Delete { .. }
        | AgentCommand::Chat { .. } => bail!("not a link command"),
    }
    Ok(())
}

/// `delegations list`, `delegations show`.
pub async fn run_delegations(cmd: &DelegationsCommand, settings: &Settings) -> anyhow::Result<()> {
    with_store(settings, Access::Read, async |store| match cmd {
        DelegationsCommand::List {
            caller,
            target,
            user,
            status,
            kind,
            before,
            cursor,
            limit,
            json,
            tenant,
        } => {
            let q = DelegationsQuery {
                caller: caller.clone(),
                target: target.clone(),
                user: user.clone(),
                status: status.clone(),
                kind: kind.clone(),
                before: *before,
                cursor: cursor.clone(),
                limit: Some(*limit),
            };
            let tenant = TenantId::new(tenant);
            let page = delegations::history(store, &tenant, &Visibility::AllUsers, q)
                .await
                .map_err(refused)?;
            if *json {
                return print_json(&page);
            }
            let mut t = Table::new(&[
                "ID", "STARTED", "KIND", "MODE", "CALLER", "TARGET", "USER", "STATUS", "TOKENS",
                "COST_USD",
            ]);
            for d in &page.delegations {
                t.row([
                    d.id.clone(),
                    rfc3339(d.started_at),
                    word(d.kind),
                    word(d.mode),
                    d.caller_agent.to_string(),
                    d.target_agent.to_string(),
                    d.user_id.to_string(),
                    d.status.as_str().to_owned(),
                    format!("{}/{}", d.input_tokens, d.output_tokens),
                    dollars(d.cost_micros),
                ]);
            }
            t.print("no delegations");
            if let Some(next) = &page.next_cursor {
                crate::outln!("older ones: add --cursor {next}");
            }
            Ok(())
        }
        DelegationsCommand::Show { id, json, tenant } => {
            let tenant = TenantId::new(tenant);
            let d = delegations::one(store, &tenant, &Visibility::AllUsers, id)
                .await
                .map_err(refused)?;
            if *json {
                return print_json(&d);
            }
            show(&d);
            Ok(())
        }
    })
    .await
}

/// A domain word as its JSON spelling (`delegate`, `async`, ...).
fn word(v: impl serde::Serialize) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Micro-dollars as dollars with six decimals.
fn dollars(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    format!("{sign}{}.{:06}", m / 1_000_000, m % 1_000_000)
}

/// One delegation as `field: value` lines, every field of the view.
fn show(d: &DelegationView) {
    let opt = |v: Option<&str>| v.unwrap_or("-").to_owned();
    let lines = [
        ("id", d.id.clone()),
        ("kind", word(d.kind)),
        ("mode", word(d.mode)),
        ("status", d.status.as_str().to_owned()),
        ("caller_agent", d.caller_agent.to_string()),
        ("target_agent", d.target_agent.to_string()),
        ("user_id", d.user_id.to_string()),
        (
            "caller_session",
            opt(d.caller_session.as_ref().map(|s| s.as_str())),
        ),
        (
            "child_session",
            opt(d.child_session.as_ref().map(|s| s.as_str())),
        ),
        ("parent_id", opt(d.parent_id.as_deref())),
        ("task_digest", d.task_digest.clone()),
        ("parent_trace_id", opt(d.parent_trace_id.as_deref())),
        ("child_trace_id", opt(d.child_trace_id.as_deref())),
        ("started_at", rfc3339(d.started_at)),
        ("finished_at", opt(d.finished_at.map(rfc3339).as_deref())),
        ("input_tokens", d.input_tokens.to_string()),
        ("output_tokens", d.output_tokens.to_string()),
        ("cost_usd", dollars(d.cost_micros)),
        ("error_code", opt(d.error_code.as_deref())),
        ("announced", d.announced.to_string()),
    ];
    for (k, v) in lines {
        crate::outln!("{k:<16}{v}");
    }
}

/// `bindings list`, `bindings add`, `bindings remove`.
pub async fn run_bindings(cmd: &BindingsCommand, settings: &Settings) -> anyhow::Result<()> {
    let access = match cmd {
        BindingsCommand::List { .. } => Access::Read,
        BindingsCommand::Add { .. } | BindingsCommand::Remove { .. } => Access::Write,
    };
    with_store(settings, access, async |store| match cmd {
        BindingsCommand::List { json, tenant } => {
            let list = bindings::bindings_of(store, &TenantId::new(tenant))
                .await
                .map_err(refused)?;
            if *json {
                return print_json(&list);
            }
            let mut t = Table::new(&[
                "ID", "CHANNEL", "ACCOUNT", "PEER", "USER", "AGENT", "CREATED",
            ]);
            for b in &list.bindings {
                t.row(binding_row(b));
            }
            t.print("no bindings (every conversation goes to the agent `default`)");
            Ok(())
        }
        BindingsCommand::Add {
            agent,
            channel,
            account,
            peer,
            user,
            tenant,
        } => {
            let actor = Actor::cli(TenantId::new(tenant));
            let body = CreateBinding {
                agent: agent.clone(),
                channel: channel.clone(),
                account: account.clone(),
                peer: peer.clone(),
                user: user.clone(),
            };
            let b = bindings::bind(store, &actor, body).await.map_err(refused)?;
            crate::outln!("added binding {} -> {}", b.id, b.agent);
            Ok(())
        }
        BindingsCommand::Remove { id, tenant } => {
            let actor = Actor::cli(TenantId::new(tenant));
            bindings::unbind(store, &actor, id).await.map_err(refused)?;
            crate::outln!("removed binding {id}");
            Ok(())
        }
    })
    .await
}

fn binding_row(b: &BindingView) -> [String; 7] {
    let any = |v: &Option<String>| v.clone().unwrap_or_else(|| "*".to_owned());
    [
        b.id.clone(),
        any(&b.channel),
        any(&b.account),
        any(&b.peer),
        any(&b.user),
        b.agent.to_string(),
        rfc3339(b.created_at),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_have_six_decimals() {
        assert_eq!(dollars(0), "0.000000");
        assert_eq!(dollars(1_234_567), "1.234567");
        assert_eq!(dollars(-5), "-0.000005");
    }
}
