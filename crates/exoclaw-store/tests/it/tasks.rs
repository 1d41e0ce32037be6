//! Task boards: a task is `pending`, or `blocked` while a task it waits for
//! (of its own team, nothing else) is not done; finishing one unblocks
//! exactly the dependents whose dependencies are all done (a chain unblocks
//! one link at a time), also for dependents created while it finishes; of
//! 30 concurrent claimers exactly one wins, also through two stores on one
//! database; only the owner finishes, once; listings filter, search and
//! page (by the last task of a page, none skipped); comments come back
//! oldest first; and another tenant's or team's tasks are not found.
//! Refused input changes nothing.

use crate::harness::*;
use crate::teams::{core_team, team};
use exoclaw_core::store::teams::{NewTask, Task, TaskComment, TaskFilter, TaskOutcome, TaskStatus};
use exoclaw_core::store::{Store, StoreError};
use exoclaw_core::{AgentId, TenantId};
use exoclaw_store::{PgStore, SqliteOptions, SqliteStore};
use std::sync::Arc;

contract!(store:
    tasks_start_pending_or_blocked,
    finishing_unblocks_a_chain_one_link_at_a_time,
    tasks_created_while_their_dependency_finishes_are_not_stranded,
    claims_and_finishes_are_checked,
    one_of_thirty_claimers_wins,
    tasks_list_filter_and_search,
    comments_come_back_oldest_first,
    tasks_are_tenant_and_team_isolated,
);
contract!(db: claimers_on_two_stores_win_once);

pub fn task(title: &str, blocked_by: &[&str]) -> NewTask {
    NewTask {
        title: title.to_owned(),
        description: format!("about {title}"),
        blocked_by: blocked_by.iter().map(|s| (*s).to_owned()).collect(),
        created_by: "lead".into(),
    }
}

fn outcome(agent: &str, status: TaskStatus, result: &str) -> TaskOutcome {
    TaskOutcome {
        agent: agent.into(),
        status,
        result: result.to_owned(),
    }
}

async fn add(store: &dyn Store, t: &TenantId, title: &str, deps: &[&str], at: i64) -> Task {
    store
        .create_task(t, "core", &task(title, deps), at)
        .await
        .unwrap()
}

async fn status(store: &dyn Store, t: &TenantId, id: &str) -> TaskStatus {
    store.get_task(t, "core", id).await.unwrap().unwrap().status
}

/// Claims and finishes a task as `agent`.
async fn complete(store: &dyn Store, t: &TenantId, id: &str, agent: &str, status: TaskStatus) {
    store
        .claim_task(t, "core", id, &agent.into(), 10)
        .await
        .unwrap();
    store
        .finish_task(t, "core", id, &outcome(agent, status, "result"), 20)
        .await
        .unwrap();
}

async fn tasks_start_pending_or_blocked(store: Arc<dyn Store>) {
    let t = default_tenant();
    core_team(&*store, &t).await;
    let a = add(&*store, &t, "A", &[], 100).await;
    assert_eq!(
        (
            a.status,
            a.owner.as_ref(),
            a.result.as_ref(),
            a.created_by.as_str()
        ),
        (TaskStatus::Pending, None, None, "lead")
    );
    assert_eq!(
        (a.team_id.as_str(), a.created_at, a.updated_at),
        ("core", 100, 100)
    );
    assert_eq!(
        store.get_task(&t, "core", &a.id).await.unwrap(),
        Some(a.clone())
    );
    let x = add(&*store, &t, "X", &[], 101).await;
    let b = add(&*store, &t, "B", &[&x.id, &a.id], 102).await;
    assert_eq!(b.status, TaskStatus::Blocked);
    let mut deps = vec![a.id.clone(), x.id.clone()];
    deps.sort();
    assert_eq!(b.blocked_by, deps, "dependencies by id");
    assert_eq!(
        store.get_task(&t, "core", &b.id).await.unwrap(),
        Some(b.clone())
    );
    // A task waiting only for done tasks starts pending.
    complete(&*store, &t, &a.id, "m1", TaskStatus::Done).await;
    let c = add(&*store, &t, "C", &[&a.id], 103).await;
    assert_eq!(c.status, TaskStatus::Pending);
    // ... and one waiting for a failed task stays blocked.
    complete(&*store, &t, &x.id, "m1", TaskStatus::Failed).await;
    let d = add(&*store, &t, "D", &[&a.id, &x.id], 104).await;
    assert_eq!(d.status, TaskStatus::Blocked);

    // What blocked_by may name: tasks of this team only, each once.
    store
        .create_team(&t, &team("side", "m3", &[]))
        .await
        .unwrap();
    let elsewhere = store
        .create_task(&t, "side", &task("S", &[]), 105)
        .await
        .unwrap();
    let before = store
        .list_tasks(&t, "core", &TaskFilter::default())
        .await
        .unwrap();
    let too_many: Vec<String> = (0..101).map(|i| format!("t{i}")).collect();
    let cases: Vec<(NewTask, &str)> = vec![
        (task("E", &["nope"]), "not a task of team core"),
        (task("E", &[&elsewhere.id]), "not a task of team core"),
        (task("E", &[&a.id, &a.id]), "listed twice"),
        (task("E", &[""]), "blocked_by"),
        (
            NewTask {
                blocked_by: too_many,
                ..task("E", &[])
            },
            "at most 100",
        ),
        (task(" ", &[]), "task title"),
        (task(&"t".repeat(201), &[]), "task title"),
        (
            NewTask {
                description: "d".repeat(16 * 1024 + 1),
                ..task("E", &[])
            },
            "task description",
        ),
        (
            NewTask {
                created_by: "Lead".into(),
                ..task("E", &[])
            },
            "task creator agent",
        ),
    ];
    for (bad, what) in cases {
        let err = store.create_task(&t, "core", &bad, 106).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Invalid(m) if m.contains(what)),
            "{what}: {err}"
        );
    }
    let err = store
        .create_task(&t, "nope", &task("E", &[]), 106)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    assert_eq!(
        store
            .list_tasks(&t, "core", &TaskFilter::default())
            .await
            .unwrap(),
        before
    );
    // The limits themselves are allowed.
    let longest = NewTask {
        title: "é".repeat(200),
        description: "d".repeat(16 * 1024),
        ..task("E", &[])
    };
    store.create_task(&t, "core", &longest, 107).await.unwrap();
}

async fn finishing_unblocks_a_chain_one_link_at_a_time(store: Arc<dyn Store>) {
    let t = default_tenant();
    core_team(&*store, &t).await;
    // A <- B <- C, and D waiting for A and X.
    let a = add(&*store, &t, "A", &[], 1).await;
    let b = add(&*store, &t, "B", &[&a.id], 2).await;
    let c = add(&*store, &t, "C", &[&b.id], 3).await;
    let x = add(&*store, &t, "X", &[], 4).await;
    let d = add(&*store, &t, "D", &[&a.id, &x.id], 5).await;
    let states = |store: Arc<dyn Store>, t: TenantId, ids: Vec<String>| async move {
        let mut out = Vec::new();
        for id in ids {
            out.push(status(&*store, &t, &id).await);
        }
        out
    };
    let ids = vec![
        a.id.clone(),
        b.id.clone(),
        c.id.clone(),
        x.id.clone(),
        d.id.clone(),
    ];
    use TaskStatus::{Blocked, Done, Failed, Pending};
    assert_eq!(
        states(store.clone(), t.clone(), ids.clone()).await,
        [Pending, Blocked, Blocked, Pending, Blocked]
    );
    // A blocked task cannot be claimed.
    let err = store
        .claim_task(&t, "core", &b.id, &"m1".into(), 5)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("blocked")),
        "{err}"
    );

    store
        .claim_task(&t, "core", &a.id, &"m1".into(), 6)
        .await
        .unwrap();
    let a_done = store
        .finish_task(&t, "core", &a.id, &outcome("m1", Done, "shipped"), 7)
        .await
        .unwrap();
    assert_eq!(
        (a_done.status, a_done.result.as_deref(), a_done.updated_at),
        (Done, Some("shipped"), 7)
    );
    assert_eq!(
        states(store.clone(), t.clone(), ids.clone()).await,
        [Done, Pending, Blocked, Pending, Blocked],
        "B is unblocked, C still waits for B, D for X"
    );
    let b_now = store.get_task(&t, "core", &b.id).await.unwrap().unwrap();
    assert_eq!(
        b_now.updated_at, 7,
        "unblocked in the finishing transaction"
    );

    // A failed dependency unblocks nothing.
    complete(&*store, &t, &x.id, "m2", Failed).await;
    assert_eq!(status(&*store, &t, &d.id).await, Blocked);

    store
        .claim_task(&t, "core", &b.id, &"m2".into(), 8)
        .await
        .unwrap();
    assert_eq!(status(&*store, &t, &c.id).await, Blocked, "B in progress");
    store
        .finish_task(&t, "core", &b.id, &outcome("m2", Done, ""), 9)
        .await
        .unwrap();
    assert_eq!(
        states(store.clone(), t.clone(), ids.clone()).await,
        [Done, Done, Pending, Failed, Blocked]
    );
    complete(&*store, &t, &c.id, "m1", Done).await;
    assert_eq!(
        states(store.clone(), t.clone(), ids).await,
        [Done, Done, Done, Failed, Blocked]
    );
}

async fn tasks_created_while_their_dependency_finishes_are_not_stranded(store: Arc<dyn Store>) {
    let t = default_tenant();
    core_team(&*store, &t).await;
    for round in 0..3 {
        let a = add(&*store, &t, &format!("A{round}"), &[], round).await;
        store
            .claim_task(&t, "core", &a.id, &"m1".into(), 1)
            .await
            .unwrap();
        let go = Arc::new(tokio::sync::Barrier::new(21));
        let mut creators = tokio::task::JoinSet::new();
        for i in 0..20 {
            let (store, t, a, go) = (store.clone(), t.clone(), a.id.clone(), go.clone());
            creators.spawn(async move {
                go.wait().await;
                let new = task(&format!("after {i}"), &[&a]);
                store.create_task(&t, "core", &new, 2).await.unwrap().id
            });
        }
        go.wait().await;
        store
            .finish_task(&t, "core", &a.id, &outcome("m1", TaskStatus::Done, "ok"), 3)
            .await
            .unwrap();
        while let Some(joined) = creators.join_next().await {
            let id = joined.unwrap();
            assert_eq!(
                status(&*store, &t, &id).await,
                TaskStatus::Pending,
                "round {round}"
            );
        }
    }
}

async fn claims_and_finishes_are_checked(store: Arc<dyn Store>) {
    let t = default_tenant();
    core_team(&*store, &t).await;
    let a = add(&*store, &t, "A", &[], 1).await;
    let claimed = store
        .claim_task(&t, "core", &a.id, &"m1".into(), 5)
        .await
        .unwrap();
    assert_eq!(
        (
            claimed.status,
            claimed.owner.as_ref().map(AgentId::as_str),
            claimed.updated_at
        ),
        (TaskStatus::InProgress, Some("m1"), 5)
    );
    let err = store
        .claim_task(&t, "core", &a.id, &"m2".into(), 6)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("claimed by m1")),
        "{err}"
    );
    // Only the owner finishes it, as done or failed.
    let err = store
        .finish_task(
            &t,
            "core",
            &a.id,
            &outcome("m2", TaskStatus::Done, "mine"),
            7,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("owned by m1")),
        "{err}"
    );
    for bad in [
        TaskStatus::Pending,
        TaskStatus::Blocked,
        TaskStatus::InProgress,
    ] {
        let err = store
            .finish_task(&t, "core", &a.id, &outcome("m1", bad, "x"), 7)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{bad:?}: {err}");
    }
    let err = store
        .finish_task(
            &t,
            "core",
            &a.id,
            &outcome("m1", TaskStatus::Done, &"r".repeat(16 * 1024 + 1)),
            7,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(m) if m.contains("task result")),
        "{err}"
    );
    assert_eq!(
        store.get_task(&t, "core", &a.id).await.unwrap(),
        Some(claimed)
    );
    let done = store
        .finish_task(&t, "core", &a.id, &outcome("m1", TaskStatus::Done, "ok"), 8)
        .await
        .unwrap();
    assert_eq!(done.status, TaskStatus::Done);
    // Finished: neither finished again nor claimed.
    let err = store
        .finish_task(
            &t,
            "core",
            &a.id,
            &outcome("m1", TaskStatus::Failed, "no"),
            9,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("is done")),
        "{err}"
    );
    let err = store
        .claim_task(&t, "core", &a.id, &"m2".into(), 9)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_eq!(store.get_task(&t, "core", &a.id).await.unwrap(), Some(done));
    // A pending task cannot be finished before it is claimed.
    let b = add(&*store, &t, "B", &[], 2).await;
    let err = store
        .finish_task(&t, "core", &b.id, &outcome("m1", TaskStatus::Done, "x"), 9)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("pending")),
        "{err}"
    );
    // Unknown tasks and teams.
    for (team, id) in [("core", "nope"), ("nope", a.id.as_str())] {
        let err = store
            .claim_task(&t, team, id, &"m1".into(), 9)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err}");
        let err = store
            .finish_task(&t, team, id, &outcome("m1", TaskStatus::Done, "x"), 9)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err}");
    }
    let err = store
        .claim_task(&t, "core", &b.id, &"M1".into(), 9)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert_eq!(status(&*store, &t, &b.id).await, TaskStatus::Pending);
}

const CLAIMERS: usize = 30;

/// `CLAIMERS` agents, spread over `stores`, claim one task at once; the
/// agents that won.
async fn race(stores: &[Arc<dyn Store>], t: &TenantId, id: &str) -> Vec<String> {
    let go = Arc::new(tokio::sync::Barrier::new(CLAIMERS));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..CLAIMERS {
        let store = stores[i % stores.len()].clone();
        let (t, id, go) = (t.clone(), id.to_owned(), go.clone());
        tasks.spawn(async move {
            let agent = AgentId::new(format!("m{}", i % 3 + 1));
            go.wait().await;
            match store.claim_task(&t, "core", &id, &agent, 50).await {
                Ok(task) => {
                    assert_eq!(task.owner.as_ref(), Some(&agent));
                    Some(format!("{i}"))
                }
                Err(StoreError::Conflict(m)) => {
                    assert!(m.contains("claimed by"), "{m}");
                    None
                }
                Err(e) => panic!("claimer {i}: {e}"),
            }
        });
    }
    let mut winners = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        winners.extend(joined.unwrap());
    }
    winners
}

async fn race_rounds(stores: &[Arc<dyn Store>]) {
    let t = default_tenant();
    core_team(&*stores[0], &t).await;
    for round in 0..4 {
        let a = add(&*stores[0], &t, &format!("task {round}"), &[], round).await;
        let winners = race(stores, &t, &a.id).await;
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        let now = stores[0]
            .get_task(&t, "core", &a.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(now.status, TaskStatus::InProgress);
    }
}

async fn one_of_thirty_claimers_wins(store: Arc<dyn Store>) {
    race_rounds(&[store]).await;
}

async fn claimers_on_two_stores_win_once(db: &TestDb) {
    if let Some(sqlite) = db.sqlite_store() {
        let second = SqliteStore::open(SqliteOptions::new(sqlite.path()))
            .await
            .unwrap();
        race_rounds(&[db.store.clone(), Arc::new(second.clone())]).await;
        second.close().await;
    } else {
        let options = db.pg_options().expect("a PostgreSQL test db");
        let second = PgStore::connect(options).await.unwrap();
        race_rounds(&[db.store.clone(), Arc::new(second.clone())]).await;
        second.close().await;
    }
}

async fn tasks_list_filter_and_search(store: Arc<dyn Store>) {
    let t = default_tenant();
    core_team(&*store, &t).await;
    let specs = [
        ("Fix the Login page", "Users see a 500 after SSO"),
        ("Write release notes", "Summarise the login fixes"),
        ("Ünïcode TITLE", "straße and 100%_done"),
        ("Unrelated", "nothing to see"),
    ];
    let mut ids = Vec::new();
    for (i, (title, description)) in specs.iter().enumerate() {
        let new = NewTask {
            title: (*title).to_owned(),
            description: (*description).to_owned(),
            ..task("", &[])
        };
        let at = 1_000 - i64::try_from(i).unwrap(); // created newest first
        ids.push(store.create_task(&t, "core", &new, at).await.unwrap().id);
    }
    let blocked = add(&*store, &t, "Blocked one", &[&ids[3]], 2_000).await;
    store
        .claim_task(&t, "core", &ids[1], &"m2".into(), 5)
        .await
        .unwrap();
    let list = |filter: TaskFilter| {
        let (store, t, ids) = (store.clone(), t.clone(), ids.clone());
        async move {
            store
                .list_tasks(&t, "core", &filter)
                .await
                .unwrap()
                .into_iter()
                .map(|task| {
                    assert!(task.comments.is_empty(), "no comments in listings");
                    ids.iter().position(|i| *i == task.id).unwrap_or(99)
                })
                .collect::<Vec<_>>()
        }
    };
    let query = |q: &str| TaskFilter {
        query: Some(q.to_owned()),
        ..TaskFilter::default()
    };
    assert_eq!(
        list(TaskFilter::default()).await,
        [3, 2, 1, 0, 99],
        "oldest first"
    );
    assert_eq!(list(query("login")).await, [1, 0], "title or description");
    assert_eq!(
        list(query("LOGIN fix")).await,
        [1, 0],
        "all words, any case"
    );
    assert_eq!(list(query("login page")).await, [0]);
    assert_eq!(list(query("login nothing")).await, Vec::<usize>::new());
    assert_eq!(list(query("ÜNÏCODE STRASSE")).await, Vec::<usize>::new());
    assert_eq!(
        list(query("ünïcode Title STRAßE")).await,
        [2],
        "Unicode case"
    );
    assert_eq!(list(query("100%_")).await, [2], "% and _ are literal");
    assert_eq!(list(query("1%0")).await, Vec::<usize>::new());
    assert_eq!(
        list(query("   ")).await,
        [3, 2, 1, 0, 99],
        "no words: no filter"
    );
    let err = store
        .list_tasks(&t, "core", &query("a b c d e f g h i"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    let status = |s: TaskStatus| TaskFilter {
        status: Some(s),
        ..TaskFilter::default()
    };
    assert_eq!(list(status(TaskStatus::Pending)).await, [3, 2, 0]);
    assert_eq!(list(status(TaskStatus::InProgress)).await, [1]);
    assert_eq!(list(status(TaskStatus::Blocked)).await, [99]);
    let owned = TaskFilter {
        owner: Some("m2".into()),
        ..TaskFilter::default()
    };
    assert_eq!(list(owned).await, [1]);
    let two = TaskFilter {
        limit: 2,
        ..TaskFilter::default()
    };
    assert_eq!(list(two).await, [3, 2]);
    // The blocked task's dependency comes along in the listing.
    let listed = store
        .list_tasks(&t, "core", &status(TaskStatus::Blocked))
        .await
        .unwrap();
    assert_eq!(listed, [blocked]);
    // 0 is a page of 100, at most 1,000 whatever is asked.
    for i in 0..100 {
        add(&*store, &t, &format!("bulk {i}"), &[], 3_000 + i).await;
    }
    let page = store
        .list_tasks(&t, "core", &TaskFilter::default())
        .await
        .unwrap();
    assert_eq!(page.len(), 100);
    let all = TaskFilter {
        limit: u32::MAX,
        ..TaskFilter::default()
    };
    assert_eq!(store.list_tasks(&t, "core", &all).await.unwrap().len(), 105);
    // Paging by the last task of a page skips none, even of one millisecond.
    for i in 0..5 {
        add(&*store, &t, &format!("same ms {i}"), &[], 9_000).await;
    }
    let everything: Vec<String> = store
        .list_tasks(&t, "core", &all)
        .await
        .unwrap()
        .into_iter()
        .map(|task| task.id)
        .collect();
    assert_eq!(everything.len(), 110);
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_tasks(
                &t,
                "core",
                &TaskFilter {
                    limit: 3,
                    after: after.clone(),
                    ..TaskFilter::default()
                },
            )
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some((last.created_at, last.id.clone()));
        paged.extend(page.into_iter().map(|task| task.id));
    }
    assert_eq!(
        paged, everything,
        "pages in board order, none skipped or repeated"
    );
    let err = store
        .list_tasks(&t, "nope", &TaskFilter::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
}

async fn comments_come_back_oldest_first(store: Arc<dyn Store>) {
    let t = default_tenant();
    core_team(&*store, &t).await;
    let a = add(&*store, &t, "A", &[], 1).await;
    let comment = |author: &str, text: &str, at: i64| TaskComment {
        author: author.into(),
        text: text.to_owned(),
        at,
    };
    let written = [
        comment("m1", "first, later clock", 20),
        comment("lead", "second", 10),
        comment("m2", "third, same ms", 20),
        comment("m1", "fourth, same ms", 20),
    ];
    for c in &written {
        store.comment_task(&t, "core", &a.id, c).await.unwrap();
    }
    let got = store.get_task(&t, "core", &a.id).await.unwrap().unwrap();
    assert_eq!(
        got.comments,
        [
            written[1].clone(),
            written[0].clone(),
            written[2].clone(),
            written[3].clone()
        ],
        "by time, then in the order written"
    );
    let before = got.comments.clone();
    for (bad, what) in [
        (comment("m1", " ", 30), "comment text"),
        (
            comment("m1", &"c".repeat(16 * 1024 + 1), 30),
            "comment text",
        ),
        (comment("M1", "hi", 30), "comment author agent"),
    ] {
        let err = store
            .comment_task(&t, "core", &a.id, &bad)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Invalid(m) if m.contains(what)),
            "{what}: {err}"
        );
    }
    for (team, id) in [("core", "nope"), ("nope", a.id.as_str())] {
        let err = store
            .comment_task(&t, team, id, &comment("m1", "hi", 30))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err}");
    }
    let again = store.get_task(&t, "core", &a.id).await.unwrap().unwrap();
    assert_eq!(again.comments, before);
}

async fn tasks_are_tenant_and_team_isolated(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(&*store).await;
    core_team(&*store, &a).await;
    core_team(&*store, &b).await;
    store
        .create_team(&a, &team("side", "m3", &[]))
        .await
        .unwrap();
    let in_a = add(&*store, &a, "A", &[], 1).await;
    // b's board, and a's other team, do not have it.
    assert_eq!(store.get_task(&b, "core", &in_a.id).await.unwrap(), None);
    assert_eq!(store.get_task(&a, "side", &in_a.id).await.unwrap(), None);
    for (t, team) in [(&b, "core"), (&a, "side")] {
        let err = store
            .claim_task(t, team, &in_a.id, &"m1".into(), 2)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err}");
        let err = store
            .create_task(t, team, &task("dep", &[&in_a.id]), 2)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        let comment = TaskComment {
            author: "m1".into(),
            text: "hi".to_owned(),
            at: 2,
        };
        let err = store
            .comment_task(t, team, &in_a.id, &comment)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err}");
        assert!(
            store
                .list_tasks(t, team, &TaskFilter::default())
                .await
                .unwrap()
                .is_empty()
        );
    }
    assert_eq!(
        store.get_task(&a, "core", &in_a.id).await.unwrap(),
        Some(in_a)
    );
    let err = store
        .list_tasks(&tid("nope"), "core", &TaskFilter::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
}
