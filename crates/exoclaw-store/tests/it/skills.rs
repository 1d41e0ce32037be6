//! Skills: a tenant sees its own skills and the gateway's (its own shadow
//! the gateway's of the same name), never another tenant's; storing
//! replaces a skill whole; search ranks active skills only (quarantined
//! ones never come back), fusing full text and vectors; approval needs the
//! reviewed pin, and an approved pin survives a reinstall of the same
//! content; refused input writes nothing; re-embedding finds the skills
//! of every scope without a vector of the current embedder and never writes
//! a vector onto a skill replaced since it was read.

use crate::harness::*;
use exoclaw_core::store::memory::Embedding;
use exoclaw_core::store::skill::{NewSkill, SkillFile, SkillQuery, SkillStatus};
use exoclaw_core::store::{Store, StoreError};
use std::sync::Arc;

contract!(store:
    skills_crud_replaces_whole_and_reads_files,
    skills_are_namespaced_per_tenant_with_gateway_skills_shared,
    skill_search_ranks_active_skills_by_text_and_vector,
    quarantined_skills_are_listed_but_never_searched_or_read_until_approved,
    bad_skills_are_refused_and_write_nothing,
    skill_reembedding_finds_stale_vectors_of_every_scope_and_never_mixes_models,
);

const NOW: i64 = 1_800_000_000_000;

fn sha(c: char) -> String {
    std::iter::repeat_n(c, 64).collect()
}

fn skill(name: &str, description: &str, body: &str) -> NewSkill {
    NewSkill {
        name: name.to_owned(),
        description: description.to_owned(),
        version: "1.0.0".to_owned(),
        tools: vec!["exec".to_owned()],
        status: SkillStatus::Active,
        sha256: sha('a'),
        warnings: Vec::new(),
        files: vec![
            SkillFile {
                path: "SKILL.md".to_owned(),
                content: format!("---\nname: {name}\n---\n{body}"),
            },
            SkillFile {
                path: "scripts/run.sh".to_owned(),
                content: "echo hi\n".to_owned(),
            },
        ],
        search_text: format!("{name} {description} {body}"),
        embedding: None,
        installed_by: "admin".to_owned(),
    }
}

fn query(text: &str) -> SkillQuery {
    SkillQuery {
        text: text.to_owned(),
        embedding: None,
        limit: 10,
    }
}

async fn names(store: &dyn Store, tenant: &exoclaw_core::TenantId, q: &SkillQuery) -> Vec<String> {
    store
        .search_skills(tenant, q)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.skill.name)
        .collect()
}

async fn skills_crud_replaces_whole_and_reads_files(store: Arc<dyn Store>) {
    let t = default_tenant();
    let s = store
        .put_skill(
            Some(&t),
            &skill("pdf-tools", "Work with PDF files", "Use qpdf."),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(s.tenant_id.as_ref(), Some(&t));
    assert_eq!(s.files, ["SKILL.md", "scripts/run.sh"]);
    assert_eq!(s.tools, ["exec"]);
    assert_eq!(s.status, SkillStatus::Active);
    assert_eq!(s.installed_at, NOW);
    let (read, content) = store
        .read_skill_file(Some(&t), "pdf-tools", "scripts/run.sh")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.name, "pdf-tools");
    assert_eq!(content, "echo hi\n");
    assert!(
        store
            .read_skill_file(Some(&t), "pdf-tools", "missing.md")
            .await
            .unwrap()
            .is_none()
    );

    // Replacing takes the old files with it.
    let mut v2 = skill("pdf-tools", "Work with PDF files", "Use pdftk.");
    v2.version = "2.0.0".to_owned();
    v2.sha256 = sha('b');
    v2.files.truncate(1);
    let s2 = store.put_skill(Some(&t), &v2, NOW + 1).await.unwrap();
    assert_eq!(s2.version, "2.0.0");
    assert_eq!(s2.files, ["SKILL.md"]);
    assert!(
        store
            .read_skill_file(Some(&t), "pdf-tools", "scripts/run.sh")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.list_skills(Some(&t)).await.unwrap().len(), 1);

    store.delete_skill(Some(&t), "pdf-tools").await.unwrap();
    assert!(
        store
            .get_skill(Some(&t), "pdf-tools")
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        store.delete_skill(Some(&t), "pdf-tools").await,
        Err(StoreError::NotFound)
    ));
}

async fn skills_are_namespaced_per_tenant_with_gateway_skills_shared(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(store.as_ref()).await;
    store
        .put_skill(
            None,
            &skill("git-flow", "Branching with git", "gateway text"),
            NOW,
        )
        .await
        .unwrap();
    store
        .put_skill(
            Some(&a),
            &skill("tenant-a-only", "Invoices of tenant a", "ledger"),
            NOW,
        )
        .await
        .unwrap();
    store
        .put_skill(
            Some(&a),
            &skill("git-flow", "Branching with git", "tenant a text"),
            NOW,
        )
        .await
        .unwrap();

    let list_a = store.list_skills(Some(&a)).await.unwrap();
    let seen: Vec<(String, bool)> = list_a
        .iter()
        .map(|s| (s.name.clone(), s.is_gateway()))
        .collect();
    assert_eq!(
        seen,
        [
            ("git-flow".to_owned(), false),
            ("tenant-a-only".to_owned(), false)
        ]
    );
    let list_b = store.list_skills(Some(&b)).await.unwrap();
    let seen: Vec<(String, bool)> = list_b
        .iter()
        .map(|s| (s.name.clone(), s.is_gateway()))
        .collect();
    assert_eq!(seen, [("git-flow".to_owned(), true)]);
    assert_eq!(store.list_skills(None).await.unwrap().len(), 1);

    // Reading: a's own shadows the gateway's; b reads the gateway's.
    let (_, text) = store
        .read_skill_file(Some(&a), "git-flow", "SKILL.md")
        .await
        .unwrap()
        .unwrap();
    assert!(text.contains("tenant a text"));
    let (_, text) = store
        .read_skill_file(Some(&b), "git-flow", "SKILL.md")
        .await
        .unwrap()
        .unwrap();
    assert!(text.contains("gateway text"));

    // Another tenant's skill is not found, by any call.
    assert!(
        store
            .get_skill(Some(&b), "tenant-a-only")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .read_skill_file(Some(&b), "tenant-a-only", "SKILL.md")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        names(store.as_ref(), &b, &query("invoices ledger"))
            .await
            .is_empty()
    );
    assert!(matches!(
        store.delete_skill(Some(&b), "tenant-a-only").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .approve_skill(Some(&b), "tenant-a-only", &sha('a'), "x", NOW)
            .await,
        Err(StoreError::NotFound)
    ));
    // Search: b finds the gateway's, a its own in its place (once).
    let hits = store
        .search_skills(&b, &query("branching git"))
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert!(hits[0].skill.is_gateway());
    let hits = store
        .search_skills(&a, &query("branching git"))
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert!(!hits[0].skill.is_gateway());
}

fn vector(x: f32, y: f32) -> Vec<f32> {
    let n = (x * x + y * y).sqrt();
    vec![x / n, y / n]
}

async fn skill_search_ranks_active_skills_by_text_and_vector(store: Arc<dyn Store>) {
    let t = default_tenant();
    let emb = |x, y| {
        Some(Embedding {
            model: "m1".to_owned(),
            vector: vector(x, y),
        })
    };
    let mut a = skill("alpha", "Deploy containers to kubernetes", "kubectl apply");
    a.embedding = emb(1.0, 0.0);
    let mut b = skill(
        "beta",
        "Write release notes",
        "changelog release kubernetes",
    );
    b.embedding = emb(0.0, 1.0);
    let mut c = skill("gamma", "Bake bread", "flour water salt");
    c.embedding = emb(0.9, 0.1);
    for s in [&a, &b, &c] {
        store.put_skill(Some(&t), s, NOW).await.unwrap();
    }
    // Full text alone: the better keyword match first.
    assert_eq!(
        names(store.as_ref(), &t, &query("deploy kubernetes containers")).await,
        ["alpha", "beta"]
    );
    // With a vector: gamma comes in by meaning; alpha (in both) leads.
    let mut q = query("deploy kubernetes containers");
    q.embedding = emb(1.0, 0.05);
    let hits = store.search_skills(&t, &q).await.unwrap();
    let got: Vec<&str> = hits.iter().map(|h| h.skill.name.as_str()).collect();
    assert_eq!(got[0], "alpha");
    assert!(got.contains(&"gamma"));
    assert_eq!((hits[0].text_rank, hits[0].vector_rank), (Some(1), Some(1)));
    // A vector of another embedder ranks nothing.
    q.embedding = Some(Embedding {
        model: "other".to_owned(),
        vector: vector(1.0, 0.0),
    });
    q.text = "nothing matches these words".to_owned();
    assert!(store.search_skills(&t, &q).await.unwrap().is_empty());
    // Limit.
    let mut q = query("kubernetes");
    q.limit = 1;
    assert_eq!(store.search_skills(&t, &q).await.unwrap().len(), 1);
}

async fn quarantined_skills_are_listed_but_never_searched_or_read_until_approved(
    store: Arc<dyn Store>,
) {
    let t = default_tenant();
    let mut s = skill("shady", "Install helper tools", "curl something");
    s.status = SkillStatus::Quarantined;
    s.warnings = vec!["shell: download_exec in SKILL.md".to_owned()];
    store.put_skill(Some(&t), &s, NOW).await.unwrap();
    let listed = store.list_skills(Some(&t)).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, SkillStatus::Quarantined);
    assert_eq!(listed[0].warnings.len(), 1);
    assert!(
        names(store.as_ref(), &t, &query("install helper tools"))
            .await
            .is_empty()
    );

    // Approval needs the reviewed pin.
    assert!(matches!(
        store
            .approve_skill(Some(&t), "shady", &sha('f'), "admin", NOW)
            .await,
        Err(StoreError::Conflict(_))
    ));
    let ok = store
        .approve_skill(Some(&t), "shady", &sha('a'), "admin", NOW + 5)
        .await
        .unwrap();
    assert_eq!(ok.status, SkillStatus::Active);
    assert_eq!(ok.approved_by.as_deref(), Some("admin"));
    assert_eq!(ok.approved_at, Some(NOW + 5));
    assert_eq!(
        names(store.as_ref(), &t, &query("install helper tools")).await,
        ["shady"]
    );

    // The same content reinstalled stays approved; other content does not.
    let again = store.put_skill(Some(&t), &s, NOW + 6).await.unwrap();
    assert_eq!(again.status, SkillStatus::Active);
    let mut changed = s.clone();
    changed.sha256 = sha('c');
    let changed = store.put_skill(Some(&t), &changed, NOW + 7).await.unwrap();
    assert_eq!(changed.status, SkillStatus::Quarantined);
    assert!(changed.approved_by.is_none());
    assert!(
        names(store.as_ref(), &t, &query("install helper tools"))
            .await
            .is_empty()
    );
}

async fn bad_skills_are_refused_and_write_nothing(store: Arc<dyn Store>) {
    let t = default_tenant();
    let mut bad_name = skill("Bad Name", "x", "y");
    bad_name.name = "Bad Name".to_owned();
    let mut no_skill_md = skill("nomd", "x", "y");
    no_skill_md.files.remove(0);
    let mut escaping = skill("escape", "x", "y");
    escaping.files[1].path = "../etc/passwd".to_owned();
    let mut absolute = skill("absolute", "x", "y");
    absolute.files[1].path = "/etc/passwd".to_owned();
    let mut bad_sha = skill("badsha", "x", "y");
    bad_sha.sha256 = "zz".to_owned();
    for s in [bad_name, no_skill_md, escaping, absolute, bad_sha] {
        assert!(
            matches!(
                store.put_skill(Some(&t), &s, NOW).await,
                Err(StoreError::Invalid(_))
            ),
            "{}",
            s.name
        );
    }
    assert!(store.list_skills(Some(&t)).await.unwrap().is_empty());
    let mut q = query("x");
    q.limit = 0;
    assert!(matches!(
        store.search_skills(&t, &q).await,
        Err(StoreError::Invalid(_))
    ));
}

async fn skill_reembedding_finds_stale_vectors_of_every_scope_and_never_mixes_models(
    store: Arc<dyn Store>,
) {
    let (a, b) = two_tenants(store.as_ref()).await;
    let old = |x, y| {
        Some(Embedding {
            model: "old".to_owned(),
            vector: vector(x, y),
        })
    };
    let new = |x, y| Embedding {
        model: "new".to_owned(),
        vector: vector(x, y),
    };
    store
        .put_skill(
            None,
            &skill("git-flow", "Branching with git", "rebase"),
            NOW,
        )
        .await
        .unwrap();
    let mut k8s = skill("deploy", "Deploy containers to kubernetes", "kubectl");
    k8s.embedding = old(1.0, 0.0);
    store.put_skill(Some(&a), &k8s, NOW + 1).await.unwrap();
    let mut done = skill("bread", "Bake bread", "flour");
    done.embedding = Some(new(0.0, 1.0));
    store.put_skill(Some(&b), &done, NOW + 2).await.unwrap();

    let todo = store.skills_to_embed("new", 10).await.unwrap();
    let got: Vec<&str> = todo.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(got, ["git-flow", "deploy"], "oldest first, every scope");
    assert_eq!(store.skills_to_embed("new", 1).await.unwrap().len(), 1);
    let stats = store.skill_stats(None, Some("new")).await.unwrap();
    assert_eq!((stats.total, stats.embedded), (3, 1));
    let stats = store.skill_stats(Some(&a), Some("new")).await.unwrap();
    assert_eq!(
        (stats.total, stats.embedded),
        (2, 0),
        "its own and the gateway's"
    );
    let stats = store.skill_stats(Some(&a), None).await.unwrap();
    assert_eq!((stats.total, stats.embedded), (2, 0));

    // Before re-embedding, a query of the new embedder finds the skill
    // by full text only: its old vector is never compared with it.
    let mut q = query("kubernetes containers");
    q.embedding = Some(new(1.0, 0.0));
    let hits = store.search_skills(&a, &q).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].skill.name, "deploy");
    assert_eq!((hits[0].text_rank, hits[0].vector_rank), (Some(1), None));

    // A skill replaced since it was read is left to the next pass.
    let mut replaced = k8s.clone();
    replaced.embedding = None;
    store.put_skill(Some(&a), &replaced, NOW + 5).await.unwrap();
    assert!(
        !store
            .set_skill_embedding(&todo[1], &new(1.0, 0.0))
            .await
            .unwrap()
    );
    let todo = store.skills_to_embed("new", 10).await.unwrap();
    assert_eq!(todo.len(), 2);
    for s in &todo {
        let v = if s.name == "deploy" {
            new(1.0, 0.0)
        } else {
            new(0.0, 1.0)
        };
        assert!(store.set_skill_embedding(s, &v).await.unwrap());
        // Once embedded, a second writer (another gateway) changes nothing.
        assert!(!store.set_skill_embedding(s, &new(1.0, 1.0)).await.unwrap());
    }
    assert!(store.skills_to_embed("new", 10).await.unwrap().is_empty());
    let stats = store.skill_stats(None, Some("new")).await.unwrap();
    assert_eq!((stats.total, stats.embedded), (3, 3));
    let hits = store.search_skills(&a, &q).await.unwrap();
    assert_eq!(hits[0].skill.name, "deploy");
    assert_eq!((hits[0].text_rank, hits[0].vector_rank), (Some(1), Some(1)));
    assert_eq!(hits[0].skill.embedder.as_deref(), Some("new"));
    // Another tenant's skill is never in a's search.
    assert!(hits.iter().all(|h| h.skill.name != "bread"));
}
