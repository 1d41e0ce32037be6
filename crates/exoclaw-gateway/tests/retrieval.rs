//! Retrieval quality of memory search on the labelled set
//! `memory_retrieval.json` (part 1: 50 paraphrased queries, 15 keyword
//! queries; part 2: 32 queries by an exact identifier, error code, file
//! name, person's or place's name or rare word; 279 memories): recall@5 of
//! full text alone, vectors alone (the local embedder) and the store's
//! hybrid search, through the real SQLite store. Hybrid must be at least
//! as good as either alone on each part, and better than both over the
//! whole set. Needs the model directory (`EXOCLAW_TEST_EMBED_MODEL_DIR`, set by
//! `cargo xtask test`); prints the figures BENCHMARKS.md quotes.

#![cfg(feature = "local-embedder")]
#![allow(
    clippy::unwrap_used,
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code: a panic is the failure; it reads its model directory from the environment and prints its figures"
)]

use exoclaw_core::embed::Embedder;
use exoclaw_core::store::memory::{Embedding, MemoryQuery, NewMemory, Retention};
use exoclaw_core::store::{MemoryStore, SchemaStore};
use exoclaw_core::{AgentId, TenantId};
use exoclaw_store::{SqliteOptions, SqliteStore};
use std::collections::HashMap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hybrid_recall_at_5_beats_each_alone_overall() {
    let Ok(dir) = std::env::var("EXOCLAW_TEST_EMBED_MODEL_DIR") else {
        assert!(
            std::env::var("REQUIRE_EMBED_MODEL").as_deref() != Ok("1"),
            "REQUIRE_EMBED_MODEL=1 but EXOCLAW_TEST_EMBED_MODEL_DIR is unset"
        );
        eprintln!("skipping: EXOCLAW_TEST_EMBED_MODEL_DIR not set (run `cargo xtask test`)");
        return;
    };
    let set: serde_json::Value =
        serde_json::from_str(include_str!("memory_retrieval.json")).unwrap();
    let embedder = exoclaw_embed::LocalEmbedder::new(std::path::Path::new(&dir)).unwrap();
    let tmp = std::env::temp_dir().join(format!("exoclaw-retrieval-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let path = tmp.join("exoclaw.db");
    let _ = std::fs::remove_file(&path);
    let store = SqliteStore::open(SqliteOptions::new(&path)).await.unwrap();
    let latest = store.schema_status().await.unwrap().latest;
    store.migrate_to(latest).await.unwrap();
    let tenant = TenantId::new(exoclaw_core::DEFAULT_TENANT);
    let agent = AgentId::new("a");
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut merged = 0;
    let docs = set["documents"].as_array().unwrap();
    let texts: Vec<String> = docs
        .iter()
        .map(|d| d["text"].as_str().unwrap().to_owned())
        .collect();
    let mut vectors = Vec::new();
    for chunk in texts.chunks(32) {
        vectors.extend(embedder.embed(chunk).await.unwrap());
    }
    for (i, (d, v)) in docs.iter().zip(vectors).enumerate() {
        let new = NewMemory {
            agent_id: agent.clone(),
            user_id: None,
            content: texts[i].clone(),
            untrusted: false,
            importance: 5,
            embedding: Some(Embedding {
                model: embedder.id().to_owned(),
                vector: v,
            }),
        };
        let saved = store
            .save_memory(&tenant, &new, &Retention::default(), 1_000 + i as i64)
            .await
            .unwrap();
        if saved.merged {
            merged += 1;
            eprintln!("{} merged into an earlier memory", d["id"]);
        } else {
            ids.insert(saved.memory.id, d["id"].as_str().unwrap().to_owned());
        }
    }
    let queries = set["queries"].as_array().unwrap();
    // Per part: [full text, vector, hybrid, queries]; part 1 the
    // paraphrased and keyword queries, part 2 the exact-token ones.
    let mut parts = [[0usize; 4]; 2];
    for q in queries {
        let part = &mut parts[usize::from(q["kind"] == "exact")];
        part[3] += 1;
        let query = q["query"].as_str().unwrap();
        let want = q["relevant"].as_str().unwrap();
        let v = embedder.embed(&[query.to_owned()]).await.unwrap().remove(0);
        let e = Embedding {
            model: embedder.id().to_owned(),
            vector: v,
        };
        let run = |embedding: Option<Embedding>, words: bool| MemoryQuery {
            agent: agent.clone(),
            user: None,
            // Vectors alone: a query of no words reaches no full-text hit.
            text: if words {
                query.to_owned()
            } else {
                String::new()
            },
            embedding,
            limit: 5,
        };
        let found = |hits: Vec<exoclaw_core::store::memory::MemoryHit>| {
            hits.iter()
                .any(|h| ids.get(&h.memory.id).is_some_and(|id| id == want))
        };
        let got = [
            found(
                store
                    .search_memories(&tenant, &run(None, true))
                    .await
                    .unwrap(),
            ),
            found(
                store
                    .search_memories(&tenant, &run(Some(e.clone()), false))
                    .await
                    .unwrap(),
            ),
            found(
                store
                    .search_memories(&tenant, &run(Some(e), true))
                    .await
                    .unwrap(),
            ),
        ];
        for (i, (hit, how)) in got
            .iter()
            .zip(["full text", "vector", "hybrid"])
            .enumerate()
        {
            part[i] += usize::from(*hit);
            if !hit && got.iter().any(|g| *g) {
                eprintln!("{how} misses {want} for {query:?}");
            }
        }
    }
    let recall = |p: [usize; 4]| {
        let n = p[3] as f64;
        (p[0] as f64 / n, p[1] as f64 / n, p[2] as f64 / n)
    };
    let all = [0, 1, 2, 3].map(|i| parts[0][i] + parts[1][i]);
    println!(
        "{} memories ({merged} merged as near duplicates); recall@5 (full text, vector, hybrid):",
        docs.len()
    );
    for (name, p) in [("part 1", parts[0]), ("part 2", parts[1]), ("overall", all)] {
        let (t, v, h) = recall(p);
        println!("  {name} ({} queries): {t:.3} {v:.3} {h:.3}", p[3]);
    }
    let (t, v, h) = recall(all);
    store.close().await;
    let _ = std::fs::remove_dir_all(&tmp);
    // On each part hybrid is at least as good as either alone; over the
    // whole set it beats both (BENCHMARKS.md reports the figures).
    for (name, p) in [("part 1", parts[0]), ("part 2", parts[1])] {
        let (t, v, h) = recall(p);
        assert!(
            h >= v && h >= t,
            "{name}: hybrid {h} vs full text {t} and vector {v}"
        );
    }
    assert!(
        h > v && h > t,
        "overall: hybrid {h} vs full text {t} and vector {v}"
    );
}
