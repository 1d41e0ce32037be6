//! The memory indexes of schema 24 (sqlite-vec and FTS5 with namespace
//! tokens; pgvector HNSW and a stored `tsvector`): searches through them
//! keep namespaces (another user's memories never, shared ones always),
//! every write keeps them in step (save, merge, delete, retention,
//! re-embedding), a vector of a dimension without an index is still found,
//! the migration indexes memories stored before it, common words do not
//! unbound the full-text list, and a restored backup searches the same.
//! On PostgreSQL, schema 26's per-namespace lexeme counts stay equal to the
//! memories' own through all of it.

use crate::harness::*;
use crate::memory::{contents, mem, query};
use exoclaw_core::AgentId;
use exoclaw_core::store::memory::{Embedding, MemoryQuery, NewMemory, Retention};
use exoclaw_core::store::{SchemaStore as _, Store};
use exoclaw_store::{PgStore, SqliteOptions, SqliteStore};

contract!(db:
    indexed_vectors_keep_namespaces,
    the_index_follows_every_write,
    a_vector_of_another_dimension_is_found,
    common_words_do_not_unbound_full_text,
);

contract!(fresh: the_migration_indexes_stored_memories);

const NOW: i64 = 1_800_000_000_000;
const DIMS: usize = 384;
const MODEL: &str = "test-embedder";

/// A deterministic unit vector of `dims` numbers for `seed`.
fn vector(seed: u64, dims: usize) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v: Vec<f32> = (0..dims)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            #[allow(clippy::cast_precision_loss, reason = "test data")]
            let f = (x % 2001) as f32 / 1000.0 - 1.0;
            f
        })
        .collect();
    let norm = v.iter().map(|f| f * f).sum::<f32>().sqrt();
    v.iter_mut().for_each(|f| *f /= norm);
    v
}

fn embedding(v: Vec<f32>) -> Option<Embedding> {
    Some(Embedding {
        model: MODEL.to_owned(),
        vector: v,
    })
}

fn embedded(agent: &str, user: Option<&str>, content: &str, v: Vec<f32>) -> NewMemory {
    NewMemory {
        embedding: embedding(v),
        ..mem(agent, user, content)
    }
}

fn by_vector(agent: &str, user: Option<&str>, v: Vec<f32>, limit: u32) -> MemoryQuery {
    MemoryQuery {
        embedding: embedding(v),
        limit,
        ..query(agent, user, "")
    }
}

fn by_text(agent: &str, user: Option<&str>, text: &str, limit: u32) -> MemoryQuery {
    MemoryQuery {
        limit,
        ..query(agent, user, text)
    }
}

/// Index entries that do not match their memory (or memories of an
/// indexed dimension without one): 0 when the index is in step.
async fn out_of_step(db: &TestDb) -> i64 {
    let sql = match db.raw {
        Raw::Sqlite(_) => {
            "SELECT (SELECT count(*) FROM memories_vec_384 WHERE rowid NOT IN \
             (SELECT num FROM memories WHERE length(embedding) = 1536)) \
             + (SELECT count(*) FROM memories WHERE length(embedding) = 1536 \
             AND num NOT IN (SELECT rowid FROM memories_vec_384)) \
             + (SELECT count(*) FROM memories_vec_384 v JOIN memories m ON m.num = v.rowid \
             WHERE v.embedder <> m.embedder OR v.owner <> coalesce('u:' || m.user_id, '') \
             OR v.agent_id <> m.agent_id OR v.tenant_id <> m.tenant_id)"
        }
        // And schema 26's lexeme counts against the memories' own.
        Raw::Postgres(_) => {
            "WITH want AS (SELECT m.tenant_id, m.agent_id, coalesce(m.user_id, '') AS user_key, \
             l.lexeme, count(*) AS n FROM memories m, unnest(m.tsv) AS l GROUP BY 1, 2, 3, 4), \
             have AS (SELECT tenant_id, agent_id, user_key, lexeme, n FROM memory_terms) \
             SELECT (SELECT count(*) FROM memories WHERE embedding_v IS DISTINCT FROM \
             memory_vector(embedding) OR tsv IS DISTINCT FROM to_tsvector('english', content)) \
             + (SELECT count(*) FROM ((SELECT * FROM want EXCEPT SELECT * FROM have) \
             UNION ALL (SELECT * FROM have EXCEPT SELECT * FROM want)) d)"
        }
    };
    db.raw.count(sql).await.unwrap()
}

async fn indexed_vectors_keep_namespaces(db: &TestDb) {
    let store = db.store.as_ref();
    let t = default_tenant();
    let none = Retention::default();
    for (i, (agent, user, content)) in [
        ("a1", Some("alice"), "alice likes green tea"),
        ("a1", Some("bob"), "bob likes black coffee"),
        ("a1", None, "the office opens at nine"),
        ("a2", Some("alice"), "another agent's note about tea"),
    ]
    .into_iter()
    .enumerate()
    {
        let seed = u64::try_from(i).unwrap() + 1;
        store
            .save_memory(
                &t,
                &embedded(agent, user, content, vector(seed, DIMS)),
                &none,
                NOW,
            )
            .await
            .unwrap();
    }
    // Bob's own vector, asked by alice: the nearest she may see, never his.
    let hits = contents(store, &by_vector("a1", Some("alice"), vector(2, DIMS), 10)).await;
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert!(!hits.iter().any(|h| h.contains("bob")), "{hits:?}");
    assert!(hits.contains(&"the office opens at nine".to_owned()));
    // Her own vector: her memory first, then the shared one.
    let hits = contents(store, &by_vector("a1", Some("alice"), vector(1, DIMS), 10)).await;
    assert_eq!(hits, ["alice likes green tea", "the office opens at nine"]);
    // Bob sees his and the shared one; no user sees only the shared one.
    let hits = contents(store, &by_vector("a1", Some("bob"), vector(2, DIMS), 10)).await;
    assert_eq!(hits, ["bob likes black coffee", "the office opens at nine"]);
    let hits = contents(store, &by_vector("a1", None, vector(1, DIMS), 10)).await;
    assert_eq!(hits, ["the office opens at nine"]);
    // Full text keeps the same namespaces.
    let hits = contents(
        store,
        &by_text("a1", Some("alice"), "coffee tea office", 10),
    )
    .await;
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert!(
        !hits
            .iter()
            .any(|h| h.contains("bob") || h.contains("another"))
    );
    // Another tenant's identical memory is not seen.
    let (_, other) = two_tenants(store).await;
    store
        .save_memory(
            &other,
            &embedded(
                "a1",
                Some("alice"),
                "alice likes green tea",
                vector(1, DIMS),
            ),
            &none,
            NOW,
        )
        .await
        .unwrap();
    let hits = contents(store, &by_vector("a1", Some("alice"), vector(1, DIMS), 10)).await;
    assert_eq!(hits.len(), 2, "{hits:?}");
    // The nearest of many: a near copy of one vector among 300 is first.
    for i in 0..300u64 {
        store
            .save_memory(
                &t,
                &embedded("a3", None, &format!("filler {i}"), vector(1000 + i, DIMS)),
                &none,
                NOW,
            )
            .await
            .unwrap();
    }
    let mut near = vector(1123, DIMS);
    near.iter_mut()
        .zip(vector(7, DIMS))
        .for_each(|(a, b)| *a += 0.2 * b);
    let hits = contents(store, &by_vector("a3", None, near, 3)).await;
    assert_eq!(hits[0], "filler 123", "{hits:?}");
    assert_eq!(out_of_step(db).await, 0);
}

async fn the_index_follows_every_write(db: &TestDb) {
    let store = db.store.as_ref();
    let t = default_tenant();
    let none = Retention::default();
    let first = store
        .save_memory(
            &t,
            &embedded(
                "a1",
                Some("u"),
                "the deploy key rotates monthly",
                vector(1, DIMS),
            ),
            &none,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(
        contents(store, &by_vector("a1", Some("u"), vector(1, DIMS), 5))
            .await
            .len(),
        1
    );
    // A merge (same words, new vector) moves the vector in the index.
    let merged = store
        .save_memory(
            &t,
            &embedded(
                "a1",
                Some("u"),
                "The deploy key rotates monthly!",
                vector(2, DIMS),
            ),
            &none,
            NOW + 1,
        )
        .await
        .unwrap();
    assert!(merged.merged);
    assert_eq!(out_of_step(db).await, 0);
    // Re-embedding by another model: found by that model only.
    let e = Embedding {
        model: "other".to_owned(),
        vector: vector(3, DIMS),
    };
    assert!(
        store
            .set_memory_embedding(&merged.memory, &e)
            .await
            .unwrap()
    );
    assert!(
        contents(store, &by_vector("a1", Some("u"), vector(2, DIMS), 5))
            .await
            .is_empty()
    );
    let mut q = by_vector("a1", Some("u"), vector(3, DIMS), 5);
    q.embedding = Some(e);
    assert_eq!(
        contents(store, &q).await,
        ["The deploy key rotates monthly!"]
    );
    assert_eq!(out_of_step(db).await, 0);
    // Delete: gone from both lists.
    store.delete_memory(&t, &first.memory.id).await.unwrap();
    assert!(contents(store, &q).await.is_empty());
    assert!(
        contents(store, &by_text("a1", Some("u"), "deploy key", 5))
            .await
            .is_empty()
    );
    assert_eq!(out_of_step(db).await, 0);
    // Retention by count prunes the index with the rows.
    let keep_two = Retention {
        max_age_ms: None,
        max_count: Some(2),
    };
    for i in 0..5u64 {
        let content = format!("rotation note number {i}");
        store
            .save_memory(
                &t,
                &embedded("a1", Some("u"), &content, vector(10 + i, DIMS)),
                &keep_two,
                NOW + 10 + i64::try_from(i).unwrap(),
            )
            .await
            .unwrap();
    }
    let hits = contents(store, &by_vector("a1", Some("u"), vector(10, DIMS), 10)).await;
    assert_eq!(hits.len(), 2, "{hits:?}");
    let hits = contents(store, &by_text("a1", Some("u"), "rotation note", 10)).await;
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert_eq!(out_of_step(db).await, 0);
    // A tenant's deletion cascades into the index.
    let (_, other) = two_tenants(store).await;
    store
        .save_memory(
            &other,
            &embedded("a1", None, "theirs", vector(99, DIMS)),
            &none,
            NOW,
        )
        .await
        .unwrap();
    db.raw
        .exec_sql(&format!(
            "DELETE FROM tenants WHERE id = '{}'",
            other.as_str()
        ))
        .await
        .unwrap();
    assert_eq!(out_of_step(db).await, 0);
}

async fn a_vector_of_another_dimension_is_found(db: &TestDb) {
    let store = db.store.as_ref();
    let t = default_tenant();
    let none = Retention::default();
    for (i, dims) in [(1, 100), (2, 100), (3, 768), (4, 1536), (5, 3072)] {
        store
            .save_memory(
                &t,
                &embedded(
                    "a1",
                    None,
                    &format!("memory {i} of {dims} numbers"),
                    vector(i, dims),
                ),
                &none,
                NOW,
            )
            .await
            .unwrap();
    }
    for (i, dims) in [(2, 100), (3, 768), (4, 1536), (5, 3072)] {
        let hits = contents(store, &by_vector("a1", None, vector(i, dims), 5)).await;
        assert_eq!(hits[0], format!("memory {i} of {dims} numbers"), "{dims}");
        // Through an index only vectors of its own dimension are
        // candidates (a scan scores the others 0, ranked after).
        if [768, 1536].contains(&dims) {
            assert_eq!(hits.len(), 1, "{hits:?}");
        }
    }
    assert_eq!(out_of_step(db).await, 0);
}

async fn common_words_do_not_unbound_full_text(db: &TestDb) {
    let store = db.store.as_ref();
    let t = default_tenant();
    let none = Retention::default();
    let plain = |content: String| NewMemory {
        agent_id: AgentId::new("a1"),
        user_id: None,
        content,
        untrusted: false,
        importance: 5,
        embedding: None,
    };
    // The oldest memory holds the rare word; 450 newer ones the common one.
    store
        .save_memory(
            &t,
            &plain("project ORA-01555 snapshot too old".to_owned()),
            &none,
            NOW,
        )
        .await
        .unwrap();
    for i in 0..450i64 {
        store
            .save_memory(
                &t,
                &plain(format!("project status {i} item {i}")),
                &none,
                NOW + 1 + i,
            )
            .await
            .unwrap();
    }
    let hits = contents(store, &by_text("a1", None, "project ora snapshot", 5)).await;
    assert_eq!(hits[0], "project ORA-01555 snapshot too old", "{hits:?}");
    // Only common words: still a full list, from the newest matches.
    let hits = contents(store, &by_text("a1", None, "project status", 5)).await;
    assert_eq!(hits.len(), 5, "{hits:?}");
    assert!(hits.iter().all(|h| h.starts_with("project status")));
    assert_eq!(out_of_step(db).await, 0);
}

async fn the_migration_indexes_stored_memories(db: &TestDb) {
    let store = db.store.as_ref();
    store.migrate_to(23).await.unwrap();
    let v = vector(5, DIMS);
    let hex: String = v
        .iter()
        .flat_map(|f| f.to_le_bytes())
        .map(|b| format!("{b:02x}"))
        .collect();
    let blob = match db.raw {
        Raw::Sqlite(_) => format!("X'{hex}'"),
        Raw::Postgres(_) => format!("decode('{hex}', 'hex')"),
    };
    for (id, user, content, embedding) in [
        (
            "m1",
            "NULL",
            "legacy memory stored before the index",
            blob.as_str(),
        ),
        ("m2", "'u'", "a user''s legacy note", "NULL"),
    ] {
        db.raw
            .exec_sql(&format!(
                "INSERT INTO memories (tenant_id, id, agent_id, user_id, content, content_key, \
                 untrusted, importance, embedder, embedding, created_at, updated_at) VALUES \
                 ('default', '{id}', 'a1', {user}, '{content}', '{id}', false, 5, '{MODEL}', \
                 {embedding}, {NOW}, {NOW})"
            ))
            .await
            .unwrap();
    }
    store.migrate_to(latest_version(store)).await.unwrap();
    assert_eq!(out_of_step(db).await, 0);
    if let Raw::Postgres(_) = db.raw {
        // The SQL decoding of the stored little-endian floats is exact.
        let text: Vec<String> = v.iter().map(f32::to_string).collect();
        let differ = db
            .raw
            .count(&format!(
                "SELECT count(*) FROM memories WHERE id = 'm1' \
                 AND embedding_v IS DISTINCT FROM '[{}]'::vector",
                text.join(",")
            ))
            .await
            .unwrap();
        assert_eq!(differ, 0);
    }
    let hits = contents(store, &by_vector("a1", Some("u"), v.clone(), 5)).await;
    assert_eq!(hits, ["legacy memory stored before the index"]);
    let hits = contents(store, &by_text("a1", Some("u"), "legacy", 5)).await;
    assert_eq!(hits.len(), 2, "{hits:?}");
    // Down and up again: the index is rebuilt.
    store.migrate_to(23).await.unwrap();
    store.migrate_to(latest_version(store)).await.unwrap();
    assert_eq!(
        contents(store, &by_vector("a1", None, v, 5)).await,
        ["legacy memory stored before the index"]
    );
    assert_eq!(
        contents(store, &by_text("a1", Some("u"), "note", 5)).await,
        ["a user's legacy note"]
    );
}

/// Memories in two namespaces and the searches a restored copy must
/// answer alike: (query, ids found) for each.
async fn searches(store: &dyn Store) -> Vec<(String, Vec<String>)> {
    let t = default_tenant();
    let mut out = Vec::new();
    for (user, seed, text) in [
        (Some("alice"), 1, "green tea"),
        (None, 2, "office nine"),
        (Some("bob"), 3, "coffee"),
    ] {
        for q in [
            by_vector("a1", user, vector(seed, DIMS), 5),
            by_text("a1", user, text, 5),
            MemoryQuery {
                text: text.to_owned(),
                ..by_vector("a1", user, vector(seed + 1, DIMS), 5)
            },
        ] {
            let ids = store
                .search_memories(&t, &q)
                .await
                .unwrap()
                .into_iter()
                .map(|h| h.memory.id)
                .collect();
            out.push((format!("{user:?} {text:?} {}", q.text.is_empty()), ids));
        }
    }
    out
}

async fn populate(store: &dyn Store) {
    let t = default_tenant();
    let none = Retention::default();
    for (i, (user, content)) in [
        (Some("alice"), "alice likes green tea"),
        (Some("bob"), "bob likes black coffee"),
        (None, "the office opens at nine"),
        (Some("alice"), "alice drinks tea at the office"),
    ]
    .into_iter()
    .enumerate()
    {
        let seed = u64::try_from(i).unwrap() + 1;
        store
            .save_memory(
                &t,
                &embedded("a1", user, content, vector(seed, DIMS)),
                &none,
                NOW,
            )
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_snapshot_searches_the_same() {
    let db = TestDb::sqlite(true).await;
    populate(db.store.as_ref()).await;
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");
    db.sqlite_store().unwrap().snapshot_to(&copy).await.unwrap();
    let restored = SqliteStore::open(SqliteOptions::new(&copy)).await.unwrap();
    let want = searches(db.store.as_ref()).await;
    assert!(want.iter().all(|(_, ids)| !ids.is_empty()), "{want:?}");
    assert_eq!(searches(&restored).await, want);
    restored.close().await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_import_searches_the_same() {
    let Some(source) = TestDb::postgres("memory_index_export", true).await else {
        return;
    };
    let Some(target) = TestDb::postgres("memory_index_import", false).await else {
        return;
    };
    populate(source.store.as_ref()).await;
    let from = PgStore::connect(source.pg_options().unwrap())
        .await
        .unwrap();
    let mut export = Vec::new();
    from.export_jsonl(&mut export).await.unwrap();
    let text = String::from_utf8(export.clone()).unwrap();
    assert!(
        !text.contains("\"tsv\"") && !text.contains("embedding_v"),
        "derived columns are left out"
    );
    let into = PgStore::connect(target.pg_options().unwrap())
        .await
        .unwrap();
    into.import_jsonl(export.as_slice()).await.unwrap();
    let want = searches(source.store.as_ref()).await;
    assert!(want.iter().all(|(_, ids)| !ids.is_empty()), "{want:?}");
    assert_eq!(searches(&into).await, want);
    assert_eq!(out_of_step(&target).await, 0);
    from.close().await;
    into.close().await;
    source.finish().await;
    target.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_pgvector_the_migration_stops_naming_it() {
    let Some(db) = TestDb::postgres("memory_index_no_pgvector", false).await else {
        return;
    };
    // A role that may create tables but not the extension (pgvector is not
    // a trusted extension): as on a server where it is not installed, the
    // `CREATE EXTENSION` fails, and the migration must say what to do.
    let role = format!("exoclaw_noext_{}", std::process::id());
    let name: String = match &db.raw {
        Raw::Postgres(pool) => sqlx::query_scalar("SELECT current_database()")
            .fetch_one(pool)
            .await
            .unwrap(),
        Raw::Sqlite(_) => unreachable!(),
    };
    for sql in [
        format!("CREATE ROLE {role} LOGIN"),
        format!("GRANT CONNECT, CREATE ON DATABASE {name} TO {role}"),
        format!("GRANT ALL ON SCHEMA public TO {role}"),
    ] {
        db.raw.exec_sql(&sql).await.unwrap();
    }
    #[expect(
        clippy::disallowed_methods,
        reason = "the test cluster's DSN, as the harness reads it"
    )]
    let admin = std::env::var("EXOCLAW_TEST_POSTGRES_DSN").unwrap();
    let dsn = with_database(
        &admin.replacen("://postgres@", &format!("://{role}@"), 1),
        &name,
    );
    let store = PgStore::connect(exoclaw_store::PgOptions::new(exoclaw_core::Secret::new(
        dsn,
    )))
    .await
    .unwrap();
    let err = store
        .migrate_to(latest_version(&store))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("pgvector") && err.contains("0.8"), "{err}");
    assert_eq!(
        store.schema_status().await.unwrap().current,
        23,
        "nothing of 24 stays"
    );
    store.close().await;
    db.raw
        .exec_sql(&format!("DROP OWNED BY {role}"))
        .await
        .unwrap();
    db.raw.exec_sql(&format!("DROP ROLE {role}")).await.unwrap();
    db.finish().await;
}

/// SQLite keeps a namespace's sign bits between vector searches (schema
/// 25's generations say when the copy is stale): a second search reads no
/// chunks; a save, a forget or a re-embedding in the agent's memories
/// makes the next search read them again and find what changed; another
/// agent's writes leave the copy in use; another user's search is another
/// copy. 300 memories, so that the 200 candidates are a choice and a
/// stale copy would miss the memory saved last.
#[tokio::test]
async fn sqlite_keeps_a_namespaces_vectors_until_the_agent_writes() {
    let db = TestDb::sqlite(true).await;
    let sqlite = db.sqlite_store().unwrap();
    let store = db.store.as_ref();
    let t = default_tenant();
    let none = Retention::default();
    for i in 0..300u64 {
        store
            .save_memory(
                &t,
                &embedded(
                    "a1",
                    Some("u"),
                    &format!("note {i} zq{i}"),
                    vector(100 + i, DIMS),
                ),
                &none,
                NOW + i64::try_from(i).unwrap(),
            )
            .await
            .unwrap();
    }
    let counts = |expected: (u64, u64), why: &str| {
        assert_eq!(sqlite.vector_cache_counts(), expected, "{why}");
    };
    let target = vector(7, DIMS);
    let q = by_vector("a1", Some("u"), target.clone(), 1);
    let first = contents(store, &q).await;
    counts((0, 1), "the first search reads the chunks");
    assert_eq!(contents(store, &q).await, first);
    counts((1, 1), "the second uses the copy");
    // The agent's new memory, the query's own vector: found at once.
    let saved = store
        .save_memory(
            &t,
            &embedded("a1", Some("u"), "the newest one", target.clone()),
            &none,
            NOW + 1_000,
        )
        .await
        .unwrap();
    assert_eq!(contents(store, &q).await, ["the newest one"]);
    counts((1, 2), "a save makes the copy stale");
    assert_eq!(contents(store, &q).await, ["the newest one"]);
    counts((2, 2), "and the new copy serves the next");
    // Another agent's write leaves a1's copy in use.
    store
        .save_memory(
            &t,
            &embedded("a2", None, "elsewhere", target.clone()),
            &none,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(contents(store, &q).await, ["the newest one"]);
    counts((3, 2), "another agent's save");
    // Another user: another copy (their own memories and the shared ones).
    assert!(
        contents(store, &by_vector("a1", Some("v"), target.clone(), 1))
            .await
            .is_empty()
    );
    counts((3, 3), "another user's search");
    // Re-embedding and forgetting change the copy too.
    let other = vector(8, DIMS);
    store
        .set_memory_embedding(
            &saved.memory,
            &Embedding {
                model: MODEL.to_owned(),
                vector: other.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        contents(store, &by_vector("a1", Some("u"), other, 1)).await,
        ["the newest one"]
    );
    counts((3, 4), "a re-embedding");
    store.delete_memory(&t, &saved.memory.id).await.unwrap();
    assert_eq!(contents(store, &q).await, first);
    counts((3, 5), "a forget");
    db.finish().await;
}
