//! Store backups: a SQLite `VACUUM INTO` copy and a PostgreSQL JSON-lines
//! export each carry every table, job runs and the orchestration and team
//! tables included (read back through the ports, row for row), the PostgreSQL import refuses a non-empty database
//! and leaves an empty one after a cut-off export, and imported sequences
//! continue past the imported rows.

use crate::harness::*;
use exoclaw_core::model::{AuditFilter, NewAuditEvent, SecretRecord, SessionFilter, VaultCheck};
use exoclaw_core::provider::Usage;
use exoclaw_core::store::orchestration::{
    DelegationEnd, DelegationFilter, DelegationKind, DelegationMode, DelegationStatus,
    LinkDirection, NewDelegation,
};
use exoclaw_core::store::teams::{Handoff, TaskComment, TaskFilter};
use exoclaw_core::store::{SchemaStore, Store, StoreError};
use exoclaw_core::trace::{NewSpan, NewTrace, SpanKind, TraceFilter, UsageEntry};
use exoclaw_core::{AgentId, TenantId, UserId};
use exoclaw_store::backup::check_export;
use exoclaw_store::{PgStore, SqliteOptions, SqliteStore, check_sqlite_snapshot};

/// One row in every table, in two tenants.
async fn populate(store: &dyn Store) {
    let (a, b) = two_tenants(store).await;
    for t in [&a, &b] {
        store.create_user(t, &new_user("alice")).await.unwrap();
        store.create_agent(t, &new_agent("a1")).await.unwrap();
        let s = store
            .get_or_create_session(t, &scope("a1", "alice", "p1"))
            .await
            .unwrap();
        for text in ["hello", "wörld \u{1f980} \"quoted\" \\ back"] {
            store
                .append_message(t, &s.id, &text_message(text))
                .await
                .unwrap();
        }
        store
            .put_secret(&SecretRecord {
                tenant_id: t.clone(),
                owner: "tenant".to_owned(),
                name: "api-key".to_owned(),
                key_id: "0011223344556677".to_owned(),
                nonce: vec![0, 1, 2, 255, 254, 92, 120],
                ciphertext: vec![0xde, 0xad, 0xbe, 0xef, 0, b'\\', b'x'],
                created_at: 1_700_000_000_000,
                updated_at: 1_700_000_000_001,
            })
            .await
            .unwrap();
        let trace = store
            .create_trace(&NewTrace {
                tenant_id: t.clone(),
                agent_id: Some(AgentId::new("a1")),
                user_id: Some(UserId::new("alice")),
                session_id: Some(s.id.clone()),
                name: "chat".to_owned(),
                owner: Some("gw-1".to_owned()),
            })
            .await
            .unwrap();
        store
            .add_span(&NewSpan {
                trace_id: trace.id.clone(),
                tenant_id: t.clone(),
                kind: SpanKind::Llm,
                name: "model".to_owned(),
                provider: Some("openai".to_owned()),
                status: "ok".to_owned(),
                error: None,
                started_at: 1_700_000_000_000,
                latency_ms: 12,
                usage: Usage::default(),
                cost_micros: 3,
                attributes: serde_json::json!({"k": [1, 2, {"n": null}]}),
            })
            .await
            .unwrap();
        store
            .record_usage(&UsageEntry {
                tenant_id: t.clone(),
                provider: "openai".to_owned(),
                model: "m".to_owned(),
                agent_id: None,
                user_id: Some(UserId::new("alice")),
                usage: Usage::default(),
                cost_micros: 9_007_199_254_740_993, // beyond f64's exact integers
            })
            .await
            .unwrap();
        for action in ["secret.put", "auth.failure"] {
            store.append_audit(&audit(t, action)).await.unwrap();
        }
        let due = 1_700_000_000_000;
        for occurrence in [due, due + 86_400_000] {
            assert!(
                store
                    .claim_job_run(t, "backup.daily", occurrence, "gw-1", occurrence + 3)
                    .await
                    .unwrap()
            );
        }
        store
            .finish_job_run(t, "backup.daily", due, "ok", Some("backup-1"), due + 90)
            .await
            .unwrap();
        populate_orchestration(store, t).await;
        let job = exoclaw_core::store::cron::NewCronJob {
            agent_id: "default".into(),
            user_id: "admin".into(),
            name: "news".to_owned(),
            schedule: "cron 0 9 * * * in Europe/Berlin".to_owned(),
            message: "the news".to_owned(),
            delivery: exoclaw_core::store::cron::Delivery::Webhook {
                url: "https://example.com/hook".to_owned(),
            },
            missed: exoclaw_core::store::cron::MissedPolicy::RunOnce,
            jitter_ms: 5_000,
            next_run_at: Some(due),
            created_by: "api".to_owned(),
        };
        let created = store.create_cron_job(t, &job, 10, due).await.unwrap();
        store
            .disable_cron_job(t, &created.id, "agent_deleted", due + 1)
            .await
            .unwrap();
    }
    store
        .set_vault_check(&VaultCheck {
            key_id: "0011223344556677".to_owned(),
            nonce: vec![9; 12],
            ciphertext: vec![7; 40],
        })
        .await
        .unwrap();
    store
        .seed_gateway_token("digest-1", 1_700_000_000_000)
        .await
        .unwrap();
}

/// A link, a binding, a finished and announced delegation, a team with a
/// task that waits for another and a comment, a broadcast read by one
/// member, and a handoff.
async fn populate_orchestration(store: &dyn Store, t: &TenantId) {
    store.create_agent(t, &new_agent("a2")).await.unwrap();
    store
        .create_link(
            t,
            &crate::links::link("a1", "a2", LinkDirection::Bidirectional),
        )
        .await
        .unwrap();
    store
        .create_binding(
            t,
            &crate::links::binding(Some("telegram"), None, None, "a2"),
        )
        .await
        .unwrap();
    let delegation = store
        .create_delegation(
            t,
            &NewDelegation {
                kind: DelegationKind::Delegate,
                mode: DelegationMode::Async,
                caller_agent: "a1".into(),
                user_id: UserId::new("alice"),
                caller_session: None,
                target_agent: "a2".into(),
                parent_id: None,
                task_digest: "0".repeat(64),
                parent_trace_id: None,
                owner: "gw-1".to_owned(),
            },
            1_700_000_000_000,
        )
        .await
        .unwrap();
    store
        .finish_delegation(
            t,
            &delegation.id,
            &DelegationEnd {
                status: DelegationStatus::Done,
                child_trace_id: None,
                child_session: None,
                input_tokens: 1,
                output_tokens: 2,
                cost_micros: 3,
                error_code: None,
            },
            1_700_000_000_100,
        )
        .await
        .unwrap();
    assert!(store.mark_announced(t, &delegation.id).await.unwrap());
    store
        .create_team(t, &crate::teams::team("crew", "a1", &["a2"]))
        .await
        .unwrap();
    let first = store
        .create_task(t, "crew", &crate::tasks::task("first", &[]), 5)
        .await
        .unwrap();
    let second = store
        .create_task(t, "crew", &crate::tasks::task("second", &[&first.id]), 6)
        .await
        .unwrap();
    store
        .comment_task(
            t,
            "crew",
            &second.id,
            &TaskComment {
                author: "a2".into(),
                text: "waiting \u{1f980}".to_owned(),
                at: 7,
            },
        )
        .await
        .unwrap();
    store
        .send_mail(t, "crew", &"a1".into(), None, "hello crew", 8)
        .await
        .unwrap();
    assert_eq!(
        store
            .take_unread(t, "crew", &"a2".into(), 0)
            .await
            .unwrap()
            .len(),
        1
    );
    store
        .send_mail(t, "crew", &"a2".into(), Some(&"a1".into()), "unread", 9)
        .await
        .unwrap();
    store
        .set_handoff(&Handoff {
            tenant_id: t.clone(),
            channel: "telegram".to_owned(),
            peer: "p1".to_owned(),
            user_id: UserId::new("alice"),
            from_agent: "a1".into(),
            to_agent: "a2".into(),
            reason: "billing".to_owned(),
            created_at: 10,
            last_active_at: 11,
        })
        .await
        .unwrap();
}

fn audit(t: &TenantId, action: &str) -> NewAuditEvent {
    NewAuditEvent {
        tenant_id: t.clone(),
        actor: "cli".to_owned(),
        action: action.to_owned(),
        resource: "r".to_owned(),
        decision: "allow".to_owned(),
        reason: String::new(),
        request_id: Some("req-1".to_owned()),
        agent_id: Some("a1".into()),
        session_id: None,
        detail: serde_json::json!({"x": 1, "f": 2.5}),
    }
}

/// Everything the ports can read, for comparing two stores.
async fn dump(store: &dyn Store) -> String {
    let mut out = String::new();
    let tenants = store.list_tenants().await.unwrap();
    out.push_str(&format!("{tenants:?}\n"));
    for t in tenants.iter().map(|t| &t.id) {
        out.push_str(&format!("{:?}\n", store.list_users(t).await.unwrap()));
        out.push_str(&format!("{:?}\n", store.list_agents(t).await.unwrap()));
        let sessions = store
            .list_sessions(t, &SessionFilter::default())
            .await
            .unwrap();
        for s in &sessions {
            let messages = store.list_messages(t, &s.id, 0, 0).await.unwrap();
            out.push_str(&format!("{s:?}\n{messages:?}\n"));
        }
        let traces = store.list_traces(t, &TraceFilter::default()).await.unwrap();
        for tr in &traces {
            out.push_str(&format!(
                "{:?}\n",
                store.get_trace(t, &tr.id).await.unwrap()
            ));
        }
        out.push_str(&format!(
            "{:?}\n{:?}\n",
            store.list_job_runs(t, "backup.daily", 0).await.unwrap(),
            store.list_cron_jobs(t, None).await.unwrap()
        ));
        out.push_str(&format!(
            "{:?}\n{:?}\n{:?}\n{:?}\n",
            store.list_links(t, None).await.unwrap(),
            store.list_bindings(t).await.unwrap(),
            store
                .list_delegations(t, &DelegationFilter::default())
                .await
                .unwrap(),
            store.list_handoffs(t).await.unwrap(),
        ));
        for team in store.list_teams(t).await.unwrap() {
            out.push_str(&format!("{team:?}\n"));
            let tasks = store
                .list_tasks(t, &team.id, &TaskFilter::default())
                .await
                .unwrap();
            for task in &tasks {
                let full = store.get_task(t, &team.id, &task.id).await.unwrap();
                out.push_str(&format!("{full:?}\n"));
            }
            for agent in std::iter::once(&team.lead).chain(&team.members) {
                let unread = store.count_unread(t, &team.id, agent).await.unwrap();
                out.push_str(&format!("{agent} {unread}\n"));
            }
        }
        let all = exoclaw_core::trace::SpendScope::User(UserId::new("alice"));
        out.push_str(&format!(
            "{}\n",
            store.spend_since(t, &all, 0).await.unwrap()
        ));
    }
    for s in store.all_secrets().await.unwrap() {
        out.push_str(&format!(
            "{} {} {} {:?} {:?} {} {}\n",
            s.tenant_id, s.owner, s.name, s.nonce, s.ciphertext, s.created_at, s.updated_at
        ));
    }
    let check = store.vault_check().await.unwrap();
    out.push_str(&format!(
        "{:?}\n",
        check.map(|c| (c.key_id, c.nonce, c.ciphertext))
    ));
    let audit = store
        .list_audit(&AuditFilter {
            limit: 500,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    out.push_str(&format!("{audit:?}\n"));
    out.push_str(&format!("{:?}\n", store.gateway_tokens().await.unwrap()));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_snapshot_copies_every_table() {
    let db = TestDb::sqlite(true).await;
    populate(db.store.as_ref()).await;
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");
    let live = db.sqlite_store().expect("a SQLite test db");
    live.snapshot_to(&copy).await.unwrap();
    let again = live.snapshot_to(&copy).await.unwrap_err();
    assert!(again.to_string().contains("already exists"), "{again}");

    let info = check_sqlite_snapshot(&copy).await.unwrap();
    assert_eq!(info.schema_version, latest_version(db.store.as_ref()));
    let restored = SqliteStore::open(SqliteOptions::new(&copy)).await.unwrap();
    assert_eq!(dump(&restored).await, dump(db.store.as_ref()).await);
    restored.close().await;
    db.finish().await;

    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, b"not a database at all, just bytes".repeat(100)).unwrap();
    let err = check_sqlite_snapshot(&garbage).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
}

/// A second handle on the test database, as the concrete type.
async fn pg_store(db: &TestDb) -> PgStore {
    PgStore::connect(db.pg_options().expect("a PostgreSQL test db"))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_export_and_import_round_trip() {
    let Some(source) = TestDb::postgres("backup_round_trip", true).await else {
        return;
    };
    let Some(target) = TestDb::postgres("backup_round_trip_target", false).await else {
        return;
    };
    populate(source.store.as_ref()).await;
    let from = pg_store(&source).await;
    let mut export = Vec::new();
    let summary = from.export_jsonl(&mut export).await.unwrap();
    assert_eq!(
        summary.schema_version,
        latest_version(source.store.as_ref())
    );
    assert_eq!(summary.rows["messages"], 4);
    assert_eq!(summary.rows["job_runs"], 4);
    for (table, rows) in [
        ("agent_links", 2),
        ("delegations", 2),
        ("bindings", 2),
        ("teams", 2),
        ("team_members", 2),
        ("team_tasks", 4),
        ("team_task_deps", 2),
        ("team_task_comments", 2),
        ("team_mail", 4),
        ("team_mail_reads", 2),
        ("handoffs", 2),
        ("cron_jobs", 2),
    ] {
        assert_eq!(summary.rows[table], rows, "{table}");
    }
    assert_eq!(summary.rows["schema_migrations"], 1);
    assert_eq!(check_export(export.as_slice()).unwrap(), summary);

    let into = pg_store(&target).await;
    let imported = into.import_jsonl(export.as_slice()).await.unwrap();
    assert_eq!(imported, summary);
    assert_eq!(
        dump(target.store.as_ref()).await,
        dump(source.store.as_ref()).await
    );
    // Exported again, the copy is byte for byte the original.
    let mut again = Vec::new();
    into.export_jsonl(&mut again).await.unwrap();
    assert_eq!(
        String::from_utf8(again).unwrap(),
        String::from_utf8(export.clone()).unwrap()
    );
    // The audit sequence continues after the imported events.
    let next = target
        .store
        .append_audit(&audit(&default_tenant(), "after.restore"))
        .await
        .unwrap();
    let newest = source
        .store
        .list_audit(&AuditFilter::default())
        .await
        .unwrap();
    assert!(next.seq > newest.iter().map(|e| e.seq).max().unwrap());
    // Comments and mail continue after the imported ones, in order.
    let t = default_tenant();
    let second = target
        .store
        .list_tasks(&t, "crew", &TaskFilter::default())
        .await
        .unwrap()
        .pop()
        .unwrap();
    let later = TaskComment {
        author: "a1".into(),
        text: "after the restore".to_owned(),
        at: 7,
    };
    target
        .store
        .comment_task(&t, "crew", &second.id, &later)
        .await
        .unwrap();
    let comments = target
        .store
        .get_task(&t, "crew", &second.id)
        .await
        .unwrap()
        .unwrap()
        .comments;
    assert_eq!(comments.len(), 2);
    assert_eq!(comments[1], later, "ordered after the imported one");
    target
        .store
        .send_mail(&t, "crew", &"a1".into(), Some(&"a2".into()), "after", 8)
        .await
        .unwrap();
    let texts: Vec<String> = target
        .store
        .take_unread(&t, "crew", &"a1".into(), 0)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(texts, ["unread"]);
    // The hash chain came along and goes on.
    let verified = target.store.verify_audit(None).await.unwrap();
    assert!(verified.is_intact(), "{verified:?}");
    assert!(verified.checked() > 1);

    // A database that holds anything is refused, untouched.
    let before = dump(source.store.as_ref()).await;
    let err = from.import_jsonl(export.as_slice()).await.unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
    assert_eq!(dump(source.store.as_ref()).await, before);
    from.close().await;
    into.close().await;
    source.finish().await;
    target.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_import_of_a_cut_export_leaves_the_database_empty() {
    let Some(source) = TestDb::postgres("backup_cut_source", true).await else {
        return;
    };
    let Some(target) = TestDb::postgres("backup_cut_target", false).await else {
        return;
    };
    populate(source.store.as_ref()).await;
    let from = pg_store(&source).await;
    let mut export = Vec::new();
    from.export_jsonl(&mut export).await.unwrap();
    let text = String::from_utf8(export).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let cut = lines[..lines.len() - 3].join("\n");
    let into = pg_store(&target).await;
    let err = into.import_jsonl(cut.as_bytes()).await.unwrap_err();
    assert!(err.to_string().contains("end line is missing"), "{err}");
    assert_eq!(into.schema_status().await.unwrap().current, 0);
    // ...so the whole export still goes in afterwards.
    into.import_jsonl(text.as_bytes()).await.unwrap();
    assert_eq!(
        dump(target.store.as_ref()).await,
        dump(source.store.as_ref()).await
    );
    from.close().await;
    into.close().await;
    source.finish().await;
    target.finish().await;
}
