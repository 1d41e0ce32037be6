//! `exoclaw team list|show|create|update|delete|tasks` and `exoclaw team
//! task add|show|claim|comment`: the terminal side of `/v1/teams` and its
//! task board (`http::teams`: the same checks, codes and audit events, with
//! the actor `cli`). Like the other operator commands it acts as an owner
//! of the tenant it names and writes to the store directly; the gateway
//! may be running. Completing or failing a task is an agent's (the
//! `team_tasks` tool) or the running gateway's (`POST
//! /v1/teams/{id}/tasks/{task}/complete`), where the end of a task is
//! heard. `--json` prints the HTTP API's document.

use super::orchestration::{Access, refused, with_store};
use super::table::{Table, print_json};
use crate::cli::{TaskCommand, TeamCommand};
use crate::config::Settings;
use crate::http::orchestration::Actor;
use crate::http::teams::tasks::{self, ClaimTask, CommentTask, CreateTask, TaskView, TasksQuery};
use crate::http::teams::{self, CreateTeam, TeamView, UpdateTeam};
use exoclaw_core::TenantId;
use exoclaw_gateway::clock::rfc3339;

/// Whether `cmd` writes.
fn access(cmd: &TeamCommand) -> Access {
    match cmd {
        TeamCommand::List { .. } | TeamCommand::Show { .. } | TeamCommand::Tasks { .. } => {
            Access::Read
        }
        TeamCommand::Task(TaskCommand::Show { .. }) => Access::Read,
        _ => Access::Write,
    }
}

/// Every `team` subcommand.
pub async fn run(cmd: &TeamCommand, settings: &Settings) -> anyhow::Result<()> {
    with_store(settings, access(cmd), async |store| match cmd {
        TeamCommand::List { json, tenant } => {
            let list = teams::teams_of(store, &TenantId::new(tenant))
                .await
                .map_err(refused)?;
            if *json {
                return print_json(&list);
            }
            let mut t = Table::new(&["ID", "NAME", "LEAD", "MEMBERS", "CREATED"]);
            for team in &list.teams {
                t.row(team_row(team));
            }
            t.print("no teams");
            Ok(())
        }
        TeamCommand::Show { id, json, tenant } => {
            let team = teams::one(store, &TenantId::new(tenant), id)
                .await
                .map_err(refused)?;
            if *json {
                return print_json(&team);
            }
            print_team(&team);
            Ok(())
        }
        TeamCommand::Create {
            id,
            lead,
            members,
            name,
            tenant,
        } => {
            let actor = Actor::cli(TenantId::new(tenant));
            let body = CreateTeam {
                id: id.clone(),
                name: name.clone(),
                lead: lead.clone(),
                members: members.clone(),
            };
            let team = teams::create(store, &actor, body).await.map_err(refused)?;
            crate::outln!("created team {} (lead {})", team.id, team.lead);
            Ok(())
        }
        TeamCommand::Update {
            id,
            name,
            lead,
            members,
            tenant,
        } => {
            let actor = Actor::cli(TenantId::new(tenant));
            let body = UpdateTeam {
                name: name.clone(),
                lead: lead.clone(),
                members: members
                    .as_ref()
                    .map(|m| m.iter().filter(|s| !s.is_empty()).cloned().collect()),
            };
            let team = teams::update(store, &actor, id, body)
                .await
                .map_err(refused)?;
            crate::outln!("updated team {}", team.id);
            Ok(())
        }
        TeamCommand::Delete { id, tenant } => {
            let actor = Actor::cli(TenantId::new(tenant));
            teams::delete_team(store, &actor, id)
                .await
                .map_err(refused)?;
            crate::outln!("deleted team {id}");
            Ok(())
        }
        TeamCommand::Tasks {
            team,
            status,
            owner,
            query,
            cursor,
            limit,
            json,
            tenant,
        } => {
            let q = TasksQuery {
                status: status.clone(),
                owner: owner.clone(),
                q: query.clone(),
                cursor: cursor.clone(),
                limit: Some(*limit),
            };
            let page = tasks::board(store, &TenantId::new(tenant), team, q)
                .await
                .map_err(refused)?;
            if *json {
                return print_json(&page);
            }
            let mut t = Table::new(&["ID", "STATUS", "OWNER", "BLOCKED_BY", "TITLE"]);
            for task in &page.tasks {
                t.row(task_row(task));
            }
            t.print("no tasks");
            if let Some(next) = &page.next_cursor {
                crate::outln!("more: --cursor {next}");
            }
            Ok(())
        }
        TeamCommand::Task(task) => run_task(task, store).await,
    })
    .await
}

async fn run_task(cmd: &TaskCommand, store: &dyn exoclaw_core::store::Store) -> anyhow::Result<()> {
    match cmd {
        TaskCommand::Add {
            team,
            title,
            description,
            blocked_by,
            created_by,
            tenant,
        } => {
            let body = CreateTask {
                title: title.clone(),
                description: description.clone(),
                blocked_by: blocked_by.clone(),
                created_by: created_by.clone(),
            };
            let task = tasks::add(store, &TenantId::new(tenant), team, body)
                .await
                .map_err(refused)?;
            crate::outln!("added task {} ({})", task.id, task.status);
            Ok(())
        }
        TaskCommand::Show {
            team,
            id,
            json,
            tenant,
        } => {
            let task = tasks::one(store, &TenantId::new(tenant), team, id)
                .await
                .map_err(refused)?;
            if *json {
                return print_json(&task);
            }
            print_task(&task);
            Ok(())
        }
        TaskCommand::Claim {
            team,
            id,
            agent,
            tenant,
        } => {
            let body = ClaimTask {
                agent: agent.clone(),
            };
            let task = tasks::claim(store, &TenantId::new(tenant), team, id, body)
                .await
                .map_err(refused)?;
            crate::outln!("{agent} claimed task {}", task.id);
            Ok(())
        }
        TaskCommand::Comment {
            team,
            id,
            text,
            author,
            tenant,
        } => {
            let body = CommentTask {
                author: author.clone(),
                text: text.clone(),
            };
            tasks::comment(store, &TenantId::new(tenant), team, id, body)
                .await
                .map_err(refused)?;
            crate::outln!("commented on task {id}");
            Ok(())
        }
    }
}

fn team_row(t: &TeamView) -> [String; 5] {
    [
        t.id.clone(),
        t.name.clone(),
        t.lead.to_string(),
        members(t),
        rfc3339(t.created_at),
    ]
}

fn members(t: &TeamView) -> String {
    t.members
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn print_team(t: &TeamView) {
    for (k, v) in [
        ("id", t.id.clone()),
        ("name", t.name.clone()),
        ("lead", t.lead.to_string()),
        ("members", members(t)),
        ("created_at", rfc3339(t.created_at)),
        ("updated_at", rfc3339(t.updated_at)),
    ] {
        crate::outln!("{k:<12}{v}");
    }
}

fn task_row(t: &TaskView) -> [String; 5] {
    [
        t.id.clone(),
        t.status.to_owned(),
        t.owner
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        t.blocked_by.join(","),
        t.title.clone(),
    ]
}

fn print_task(t: &TaskView) {
    let opt = |v: Option<&str>| v.unwrap_or("-").to_owned();
    for (k, v) in [
        ("id", t.id.clone()),
        ("team", t.team_id.clone()),
        ("title", t.title.clone()),
        ("status", t.status.to_owned()),
        ("owner", opt(t.owner.as_ref().map(|o| o.as_str()))),
        ("blocked_by", t.blocked_by.join(",")),
        ("created_by", t.created_by.to_string()),
        ("created_at", rfc3339(t.created_at)),
        ("updated_at", rfc3339(t.updated_at)),
        ("description", t.description.clone()),
        ("result", opt(t.result.as_deref())),
    ] {
        crate::outln!("{k:<13}{v}");
    }
    for c in &t.comments {
        crate::outln!("comment      {} {}: {}", rfc3339(c.at), c.author, c.text);
    }
}
