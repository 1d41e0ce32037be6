//! Teams: created with a lead and members that exist (the lead not among
//! them, no one twice), read and listed by id with members in name order,
//! updated all or nothing, deleted with their board and mailbox; deleting a
//! member agent takes it out of its teams, deleting a lead is refused; and
//! another tenant's teams are not found. Refused input changes nothing.

use crate::harness::*;
use crate::links::agents;
use exoclaw_core::store::teams::{NewTask, NewTeam, TaskFilter, Team, TeamUpdate};
use exoclaw_core::store::{Store, StoreError};
use exoclaw_core::{AgentId, TenantId};
use std::sync::Arc;

contract!(store:
    teams_are_created_with_existing_members,
    teams_update_all_or_nothing,
    deleting_a_team_deletes_its_board_and_mailbox,
    member_agents_leave_their_teams_and_leads_stay,
    teams_are_tenant_isolated,
);

pub fn team(id: &str, lead: &str, members: &[&str]) -> NewTeam {
    NewTeam {
        id: id.to_owned(),
        name: format!("Team {id}"),
        lead: lead.into(),
        members: members.iter().map(|m| AgentId::new(*m)).collect(),
    }
}

/// Agents `lead`, `m1`, `m2`, `m3` and team `core` of `lead`, `m1`, `m2`.
pub async fn core_team(store: &dyn Store, t: &TenantId) -> Team {
    agents(store, t, &["lead", "m1", "m2", "m3"]).await;
    store
        .create_team(t, &team("core", "lead", &["m2", "m1"]))
        .await
        .unwrap()
}

fn members(team: &Team) -> Vec<&str> {
    team.members.iter().map(AgentId::as_str).collect()
}

async fn teams_are_created_with_existing_members(store: Arc<dyn Store>) {
    let t = default_tenant();
    let core = core_team(&*store, &t).await;
    assert_eq!(
        (
            core.id.as_str(),
            core.name.as_str(),
            core.lead.as_str(),
            members(&core)
        ),
        ("core", "Team core", "lead", vec!["m1", "m2"]),
        "members in name order"
    );
    assert_eq!(core.created_at, core.updated_at);
    assert!(core.includes(&"m1".into()) && core.includes(&"lead".into()));
    assert!(!core.includes(&"m3".into()));
    assert_eq!(
        store.get_team(&t, "core").await.unwrap(),
        Some(core.clone())
    );
    let solo = store
        .create_team(&t, &team("a-solo", "m3", &[]))
        .await
        .unwrap();
    assert!(solo.members.is_empty());
    assert_eq!(
        store.list_teams(&t).await.unwrap(),
        [solo.clone(), core.clone()],
        "by id"
    );

    let err = store
        .create_team(&t, &team("core", "m3", &[]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let long = NewTeam {
        name: "n".repeat(201),
        ..team("t2", "lead", &[])
    };
    let blank = NewTeam {
        name: "  ".to_owned(),
        ..team("t2", "lead", &[])
    };
    for (bad, what) in [
        (team("Core 2", "lead", &[]), "team id"),
        (team("", "lead", &[]), "team id"),
        (
            team("t2", "lead", &["m1", "lead"]),
            "lead lead is listed as a member",
        ),
        (team("t2", "lead", &["m1", "m1"]), "listed twice"),
        (team("t2", "Lead", &[]), "team lead agent"),
        (team("t2", "lead", &["m 1"]), "team member agent"),
        (long, "team name"),
        (blank, "team name"),
    ] {
        let err = store.create_team(&t, &bad).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Invalid(m) if m.contains(what)),
            "{what}: {err}"
        );
    }
    // An unknown lead or member: nothing is created.
    for bad in [
        team("t2", "ghost", &["m1"]),
        team("t2", "lead", &["m1", "ghost"]),
    ] {
        let err = store.create_team(&t, &bad).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err}");
        assert_eq!(store.get_team(&t, "t2").await.unwrap(), None);
    }
    assert_eq!(store.list_teams(&t).await.unwrap(), [solo, core]);
    assert_eq!(store.get_team(&t, "nope").await.unwrap(), None);
}

async fn teams_update_all_or_nothing(store: Arc<dyn Store>) {
    let t = default_tenant();
    let core = core_team(&*store, &t).await;
    tick().await;
    let renamed = store
        .update_team(
            &t,
            "core",
            &TeamUpdate {
                name: Some("Core crew".to_owned()),
                ..TeamUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (
            renamed.name.as_str(),
            renamed.lead.as_str(),
            members(&renamed)
        ),
        ("Core crew", "lead", vec!["m1", "m2"])
    );
    assert!(renamed.updated_at > core.updated_at);
    assert_eq!(renamed.created_at, core.created_at);

    let replaced = store
        .update_team(
            &t,
            "core",
            &TeamUpdate {
                members: Some(vec!["m3".into(), "m1".into()]),
                ..TeamUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(members(&replaced), ["m1", "m3"]);

    // A member promoted to lead while staying a member: refused, nothing
    // changed; with the member list that drops it: done.
    let refused = [
        TeamUpdate {
            lead: Some("m1".into()),
            ..TeamUpdate::default()
        },
        TeamUpdate {
            name: Some("Renamed too".to_owned()),
            lead: Some("m1".into()),
            members: Some(vec!["m1".into()]),
        },
        TeamUpdate {
            members: Some(vec!["lead".into()]),
            ..TeamUpdate::default()
        },
        TeamUpdate {
            name: Some(String::new()),
            ..TeamUpdate::default()
        },
    ];
    for update in refused {
        let err = store.update_team(&t, "core", &update).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{update:?}: {err}");
        assert_eq!(
            store.get_team(&t, "core").await.unwrap(),
            Some(replaced.clone())
        );
    }
    for update in [
        TeamUpdate {
            lead: Some("ghost".into()),
            ..TeamUpdate::default()
        },
        TeamUpdate {
            name: Some("Renamed too".to_owned()),
            members: Some(vec!["m2".into(), "ghost".into()]),
            ..TeamUpdate::default()
        },
    ] {
        let err = store.update_team(&t, "core", &update).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{update:?}: {err}");
        assert_eq!(
            store.get_team(&t, "core").await.unwrap(),
            Some(replaced.clone())
        );
    }
    let promoted = store
        .update_team(
            &t,
            "core",
            &TeamUpdate {
                lead: Some("m1".into()),
                members: Some(vec!["lead".into(), "m3".into()]),
                ..TeamUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (promoted.lead.as_str(), members(&promoted)),
        ("m1", vec!["lead", "m3"])
    );
    assert_eq!(store.get_team(&t, "core").await.unwrap(), Some(promoted));
    let err = store
        .update_team(&t, "nope", &TeamUpdate::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
}

async fn deleting_a_team_deletes_its_board_and_mailbox(store: Arc<dyn Store>) {
    let t = default_tenant();
    core_team(&*store, &t).await;
    let kept = store
        .create_team(&t, &team("kept", "m3", &["m1"]))
        .await
        .unwrap();
    for team in ["core", "kept"] {
        let task = store
            .create_task(
                &t,
                team,
                &NewTask {
                    title: "a task".to_owned(),
                    description: String::new(),
                    blocked_by: vec![],
                    created_by: "m1".into(),
                },
                1,
            )
            .await
            .unwrap();
        store
            .create_task(
                &t,
                team,
                &NewTask {
                    title: "after it".to_owned(),
                    description: String::new(),
                    blocked_by: vec![task.id],
                    created_by: "m1".into(),
                },
                2,
            )
            .await
            .unwrap();
        store
            .send_mail(&t, team, &"m1".into(), None, "hello", 3)
            .await
            .unwrap();
    }
    store
        .take_unread(&t, "core", &"m2".into(), 0)
        .await
        .unwrap();
    store.delete_team(&t, "core").await.unwrap();
    assert_eq!(store.get_team(&t, "core").await.unwrap(), None);
    let err = store.delete_team(&t, "core").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    // A new team of the same id starts empty.
    store
        .create_team(&t, &team("core", "lead", &[]))
        .await
        .unwrap();
    let board = store
        .list_tasks(&t, "core", &TaskFilter::default())
        .await
        .unwrap();
    assert!(board.is_empty(), "{board:?}");
    assert_eq!(
        store.count_unread(&t, "core", &"m2".into()).await.unwrap(),
        0
    );
    // The other team keeps its own.
    assert_eq!(store.get_team(&t, "kept").await.unwrap(), Some(kept));
    let kept_board = store
        .list_tasks(&t, "kept", &TaskFilter::default())
        .await
        .unwrap();
    assert_eq!(kept_board.len(), 2);
    assert_eq!(
        store.count_unread(&t, "kept", &"m3".into()).await.unwrap(),
        1
    );
}

async fn member_agents_leave_their_teams_and_leads_stay(store: Arc<dyn Store>) {
    let t = default_tenant();
    core_team(&*store, &t).await;
    store
        .create_team(&t, &team("other", "m3", &["m1"]))
        .await
        .unwrap();
    store.delete_agent(&t, &"m1".into()).await.unwrap();
    assert_eq!(
        members(&store.get_team(&t, "core").await.unwrap().unwrap()),
        ["m2"]
    );
    assert!(
        store
            .get_team(&t, "other")
            .await
            .unwrap()
            .unwrap()
            .members
            .is_empty()
    );

    // The lead of a team cannot be deleted: the team (and its board) stays.
    let before = store.list_teams(&t).await.unwrap();
    let err = store.delete_agent(&t, &"lead".into()).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("leads team core")),
        "{err}"
    );
    assert!(store.get_agent(&t, &"lead".into()).await.unwrap().is_some());
    assert_eq!(store.list_teams(&t).await.unwrap(), before);
    // Given another lead, it goes like any member.
    store
        .update_team(
            &t,
            "core",
            &TeamUpdate {
                lead: Some("m2".into()),
                members: Some(vec!["lead".into()]),
                ..TeamUpdate::default()
            },
        )
        .await
        .unwrap();
    store.delete_agent(&t, &"lead".into()).await.unwrap();
    let core = store.get_team(&t, "core").await.unwrap().unwrap();
    assert_eq!((core.lead.as_str(), core.members.len()), ("m2", 0));
}

async fn teams_are_tenant_isolated(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(&*store).await;
    let in_a = core_team(&*store, &a).await;
    agents(&*store, &b, &["lead", "x1"]).await;
    // b's agents, a's member names: m1 is not b's.
    let err = store
        .create_team(&b, &team("core", "lead", &["m1"]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    let in_b = store
        .create_team(&b, &team("core", "lead", &["x1"]))
        .await
        .unwrap();
    assert_eq!(
        store.get_team(&a, "core").await.unwrap(),
        Some(in_a.clone())
    );
    assert_eq!(
        store.get_team(&b, "core").await.unwrap(),
        Some(in_b.clone())
    );
    assert_eq!(
        store.list_teams(&a).await.unwrap(),
        std::slice::from_ref(&in_a)
    );
    // b's updates and deletes reach b's team only.
    store
        .update_team(
            &b,
            "core",
            &TeamUpdate {
                name: Some("B".to_owned()),
                ..TeamUpdate::default()
            },
        )
        .await
        .unwrap();
    store.delete_team(&b, "core").await.unwrap();
    assert_eq!(store.get_team(&a, "core").await.unwrap(), Some(in_a));
    assert!(store.list_teams(&b).await.unwrap().is_empty());
    assert!(store.list_teams(&tid("nope")).await.unwrap().is_empty());
    let err = store.delete_team(&b, "core").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
}
