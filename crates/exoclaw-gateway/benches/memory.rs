//! `memory_search` with 100,000 memories in the namespace (issue 14):
//! `cargo bench -p exoclaw-gateway --bench memory`. Seeds one namespace
//! (the default tenant, agent `bench`, user `u1`) with [`MEMORIES`]
//! memories in bulk (one transaction of plain `INSERT`s, the store's own
//! triggers and indexes doing their work: FTS, and schema 24's vector
//! index, filled by triggers on both backends; not 100,000 saves), then times
//! `MemoryBank::search` as the `memory_search` tool calls it (limit 5:
//! embed the query, full-text list, vector list, fusion) and, apart, the
//! store's `search_memories` alone and the full-text and vector parts.
//!
//! The embedder is [`Hashed`], a deterministic stand-in (words hashed into
//! 384 signed buckets, L2-normalised) with the local model's dimension, so
//! the vector part does the work it does with the model while the figure
//! leaves the model's own time out (that is `exoclaw-embed`'s `embed`
//! bench). Texts are drawn from a 5,000-word synthetic vocabulary with
//! Zipf frequencies (12 to 30 words a memory, 3 to 8 a query), so common
//! query words match many memories, as in English.
//!
//! SQLite always (a temp file); PostgreSQL too when
//! `EXOCLAW_TEST_POSTGRES_DSN` names a superuser DSN (a database is created
//! and dropped; `cargo xtask pg` starts one). Arguments after `--`:
//! `--memories N` (default 100,000), `--searches N` (default 50),
//! `--sqlite-only`, `--postgres-only`, `--seed-into PATH` (seed the SQLite database of an
//! existing data dir with the agent's shared memories instead, for `cargo
//! xtask bench memory` to time the binary from outside; `--model ID` labels
//! the vectors with that embedder's id so the gateway's own embedder ranks
//! them, `--queries-into PATH` writes the queries, one a line; `--keep-postgres`
//! leaves the PostgreSQL database behind, named, to look into its plans;
//! `--postgres-database NAME` measures such a database again, not seeding).

#![allow(
    clippy::disallowed_macros,
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a benchmark: it prints what it measures and a panic is its failure"
)]

use async_trait::async_trait;
use exoclaw_core::embed::{EmbedError, Embedder};
use exoclaw_core::store::Store;
use exoclaw_core::store::memory::{Embedding, MemoryQuery};
use exoclaw_core::{AgentId, DEFAULT_TENANT, Secret, TenantId, UserId};
use exoclaw_gateway::config::memory::MemoryConfig;
use exoclaw_gateway::memory::{MemoryBank, Reader};
use exoclaw_store::{PgOptions, PgStore, SqliteOptions, SqliteStore};
use sqlx::Connection as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MEMORIES: usize = 100_000;
const SEARCHES: usize = 50;
const WARMUP: usize = 5;
const DIMS: usize = 384;
const VOCABULARY: usize = 5_000;
const AGENT: &str = "bench";
const USER: &str = "u1";
const LIMIT: u32 = 5;
const HASHED_ID: &str = "bench:hashed:384";

/// A deterministic embedder: each word adds ±1 to one of [`DIMS`]
/// buckets (FNV-1a of the word), then the sum is scaled to unit length.
struct Hashed {
    id: String,
}

fn fnv(word: &str) -> u64 {
    word.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn hashed_vector(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; DIMS];
    for w in text.split_whitespace() {
        let h = fnv(&w.to_lowercase());
        let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
        v[(h % DIMS as u64) as usize] += sign;
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

#[async_trait]
impl Embedder for Hashed {
    fn id(&self) -> &str {
        &self.id
    }
    fn dims(&self) -> usize {
        DIMS
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts.iter().map(|t| hashed_vector(t)).collect())
    }
}

/// xorshift64*: the same texts on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Synthetic words (consonant-vowel syllables) and a Zipf sampler over them.
struct Words {
    words: Vec<String>,
    /// Cumulative Zipf(1) weights.
    cumulative: Vec<f64>,
}

impl Words {
    fn new(rng: &mut Rng) -> Self {
        const C: &[u8] = b"bdfgklmnprstvz";
        const V: &[u8] = b"aeiou";
        let mut seen = std::collections::BTreeSet::new();
        let mut words = Vec::with_capacity(VOCABULARY);
        while words.len() < VOCABULARY {
            let syllables = 2 + rng.below(3);
            let w: String = (0..syllables)
                .flat_map(|_| [C[rng.below(C.len())], V[rng.below(V.len())]])
                .map(char::from)
                .collect();
            if seen.insert(w.clone()) {
                words.push(w);
            }
        }
        let mut total = 0.0;
        let cumulative = (1..=VOCABULARY)
            .map(|r| {
                total += 1.0 / r as f64;
                total
            })
            .collect();
        Self { words, cumulative }
    }

    fn sentence(&self, rng: &mut Rng, min: usize, max: usize) -> String {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let n = min + rng.below(max - min + 1);
        (0..n)
            .map(|_| {
                let x = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * total;
                let i = self.cumulative.partition_point(|&c| c < x);
                self.words[i.min(VOCABULARY - 1)].as_str()
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

struct Args {
    memories: usize,
    searches: usize,
    sqlite_only: bool,
    postgres_only: bool,
    seed_into: Option<PathBuf>,
    queries_into: Option<PathBuf>,
    keep_postgres: bool,
    postgres_database: Option<String>,
    model: String,
}

fn args() -> Args {
    let mut a = Args {
        memories: MEMORIES,
        searches: SEARCHES,
        sqlite_only: false,
        postgres_only: false,
        seed_into: None,
        queries_into: None,
        keep_postgres: false,
        postgres_database: None,
        model: HASHED_ID.to_owned(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--memories" => a.memories = it.next().and_then(|v| v.parse().ok()).unwrap(),
            "--searches" => a.searches = it.next().and_then(|v| v.parse().ok()).unwrap(),
            "--sqlite-only" => a.sqlite_only = true,
            "--postgres-only" => a.postgres_only = true,
            "--seed-into" => a.seed_into = it.next().map(PathBuf::from),
            "--queries-into" => a.queries_into = it.next().map(PathBuf::from),
            "--keep-postgres" => a.keep_postgres = true,
            "--postgres-database" => a.postgres_database = it.next(),
            "--model" => a.model = it.next().unwrap(),
            // `cargo bench` passes `--bench`; filters are not used.
            _ => {}
        }
    }
    a
}

#[expect(
    clippy::disallowed_methods,
    reason = "the benchmark finds its PostgreSQL like the test harness does"
)]
fn postgres_dsn() -> Option<String> {
    std::env::var("EXOCLAW_TEST_POSTGRES_DSN")
        .ok()
        .filter(|v| !v.is_empty())
}

/// One row to insert.
struct Row {
    id: String,
    content: String,
    key: String,
    importance: i64,
    vector: Vec<u8>,
    at: i64,
}

fn rows(n: usize) -> Vec<Row> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let words = Words::new(&mut rng);
    let base = 1_800_000_000_000i64;
    (0..n)
        .map(|i| {
            let content = words.sentence(&mut rng, 12, 30);
            let vector = hashed_vector(&content)
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect();
            Row {
                id: format!("bench{i:08}"),
                key: format!("{:016x}", fnv(&content) ^ i as u64),
                content,
                importance: (i % 11) as i64,
                vector,
                at: base + i as i64,
            }
        })
        .collect()
}

const INSERT: &str = "INSERT INTO memories (tenant_id, id, agent_id, user_id, content, \
     content_key, untrusted, importance, embedder, embedding, created_at, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8, ?9, ?10, ?10)";

/// Seeds `rows` into the SQLite database at `path`, as `user`'s memories
/// (`None`: the agent's shared ones).
async fn seed_sqlite(path: &std::path::Path, rows: &[Row], model: &str, user: Option<&str>) {
    let mut conn = sqlx::SqliteConnection::connect_with(
        &sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .foreign_keys(true),
    )
    .await
    .unwrap();
    let mut tx = conn.begin().await.unwrap();
    for r in rows {
        sqlx::query(INSERT)
            .bind(DEFAULT_TENANT)
            .bind(&r.id)
            .bind(AGENT)
            .bind(user)
            .bind(&r.content)
            .bind(&r.key)
            .bind(r.importance)
            .bind(model)
            .bind(&r.vector)
            .bind(r.at)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    sqlx::query("ANALYZE").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

async fn seed_postgres(dsn: &str, rows: &[Row], model: &str) {
    let mut conn = sqlx::PgConnection::connect(dsn).await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    for chunk in rows.chunks(2_000) {
        let col = |f: fn(&Row) -> String| chunk.iter().map(f).collect::<Vec<_>>();
        sqlx::query(
            "INSERT INTO memories (tenant_id, id, agent_id, user_id, content, content_key, \
             untrusted, importance, embedder, embedding, created_at, updated_at) \
             SELECT $1, id, $2, $3, content, key, FALSE, importance, $4, vector, at, at \
             FROM UNNEST($5::text[], $6::text[], $7::text[], $8::bigint[], $9::bytea[], \
             $10::bigint[]) AS u (id, content, key, importance, vector, at)",
        )
        .bind(DEFAULT_TENANT)
        .bind(AGENT)
        .bind(USER)
        .bind(model)
        .bind(col(|r| r.id.clone()))
        .bind(col(|r| r.content.clone()))
        .bind(col(|r| r.key.clone()))
        .bind(chunk.iter().map(|r| r.importance).collect::<Vec<_>>())
        .bind(chunk.iter().map(|r| r.vector.clone()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|r| r.at).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    // What autovacuum does to a table that grew by saves, done now: a bulk
    // load leaves no visibility map and no hint bits, and a search right
    // after it paid for both (15.7 ms p50 full text, 1.3 ms after: BENCHMARKS.md).
    sqlx::query("VACUUM (ANALYZE) memories, memory_terms")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

fn queries(n: usize) -> Vec<String> {
    let mut rng = Rng(0x5851_f42d_4c95_7f2d);
    let words = Words::new(&mut Rng(0x9e37_79b9_7f4a_7c15));
    (0..n).map(|_| words.sentence(&mut rng, 3, 8)).collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn report(backend: &str, what: &str, (times, cpu): &mut (Vec<Duration>, Duration)) {
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "{backend:<10} {what:<44} n={:<5} p50={:>8.3} ms p95={:>8.3} ms max={:>8.3} ms \
         cpu/search={:>7.3} ms",
        times.len(),
        ms(at(0.50)),
        ms(at(0.95)),
        ms(at(1.0)),
        ms(*cpu) / times.len() as f64,
    );
}

/// This process's CPU time so far (user and system, every thread), from
/// `/proc/self/stat` in clock ticks (100 a second on Linux); zero where
/// there is no `/proc`. PostgreSQL's own CPU is not in it.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime and
    // stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// Times `search` over the queries (after a warm-up of [`WARMUP`]), with
/// the process's CPU time over them all.
async fn time<F, Fut>(queries: &[String], mut search: F) -> (Vec<Duration>, Duration)
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for q in queries.iter().cycle().take(WARMUP) {
        search(q.clone()).await;
    }
    let mut times = Vec::with_capacity(queries.len());
    let cpu = cpu_time();
    for q in queries {
        let start = Instant::now();
        search(q.clone()).await;
        times.push(start.elapsed());
    }
    (times, cpu_time().saturating_sub(cpu))
}

async fn measure(backend: &str, store: Arc<dyn Store>, a: &Args) {
    let embedder: Arc<dyn Embedder> = Arc::new(Hashed {
        id: HASHED_ID.to_owned(),
    });
    let bank = MemoryBank::new(
        store.clone(),
        Some(embedder.clone()),
        MemoryConfig::default(),
    );
    let tenant = TenantId::new(DEFAULT_TENANT);
    let agent = AgentId::new(AGENT);
    let user = UserId::new(USER);
    let who = Reader {
        tenant: &tenant,
        agent: &agent,
        user: Some(&user),
    };
    let qs = queries(a.searches);
    let mut t = time(&qs, |q| {
        let (bank, who) = (&bank, &who);
        async move {
            let found = bank.search(who, &q, LIMIT).await.unwrap();
            assert!(!found.full_text_only);
            assert_eq!(
                found.hits.len(),
                LIMIT as usize,
                "every search finds {LIMIT}"
            );
        }
    })
    .await;
    report(backend, "memory_search (embed + store + fusion)", &mut t);
    let query = |q: String| MemoryQuery {
        agent: agent.clone(),
        user: Some(user.clone()),
        embedding: Some(Embedding {
            model: HASHED_ID.to_owned(),
            vector: hashed_vector(&q),
        }),
        text: q,
        limit: LIMIT,
    };
    let mut t = time(&qs, |q| {
        let store = &store;
        let (tenant, full) = (&tenant, query(q));
        async move {
            store.search_memories(tenant, &full).await.unwrap();
        }
    })
    .await;
    report(backend, "store search_memories (text + vector)", &mut t);
    let mut t = time(&qs, |q| {
        let store = &store;
        let tenant = &tenant;
        let text = MemoryQuery {
            embedding: None,
            ..query(q)
        };
        async move {
            store.search_memories(tenant, &text).await.unwrap();
        }
    })
    .await;
    report(backend, "  full text alone", &mut t);
    let mut t = time(&qs, |q| {
        let store = &store;
        let tenant = &tenant;
        let vector = query(q);
        let vector = MemoryQuery {
            text: String::new(),
            ..vector
        };
        async move {
            store.search_memories(tenant, &vector).await.unwrap();
        }
    })
    .await;
    report(backend, "  vector alone", &mut t);
    let mut t = time(&qs, |q| async move {
        std::hint::black_box(hashed_vector(&q));
    })
    .await;
    report(backend, "  query embedding (stand-in)", &mut t);
}

async fn latest(store: &dyn Store) {
    let v = store.migrations().last().map_or(0, |m| m.version);
    store.migrate_to(v).await.unwrap();
}

async fn run_sqlite(a: &Args, rows: &[Row]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exoclaw.db");
    let store = SqliteStore::open(SqliteOptions::new(&path)).await.unwrap();
    latest(&store).await;
    let start = Instant::now();
    seed_sqlite(&path, rows, HASHED_ID, Some(USER)).await;
    println!(
        "sqlite     seeded {} memories in {:.1} s",
        rows.len(),
        start.elapsed().as_secs_f64()
    );
    measure("sqlite", Arc::new(store.clone()), a).await;
    store.close().await;
}

async fn run_postgres(a: &Args, rows: &[Row], admin: &str) {
    if let Some(name) = &a.postgres_database {
        let dsn = with_database(admin, name);
        let store = PgStore::connect(PgOptions::new(Secret::new(dsn)))
            .await
            .unwrap();
        latest(&store).await;
        println!("postgres   the database {name}, seeded before");
        measure("postgres", Arc::new(store.clone()), a).await;
        store.close().await;
        return;
    }
    let name = format!("exoclaw_bench_{}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let dsn = with_database(admin, &name);
    let store = PgStore::connect(PgOptions::new(Secret::new(dsn.clone())))
        .await
        .unwrap();
    latest(&store).await;
    let start = Instant::now();
    seed_postgres(&dsn, rows, HASHED_ID).await;
    println!(
        "postgres   seeded {} memories in {:.1} s",
        rows.len(),
        start.elapsed().as_secs_f64()
    );
    measure("postgres", Arc::new(store.clone()), a).await;
    store.close().await;
    if a.keep_postgres {
        println!("postgres   kept the database {name} (drop it yourself)");
    } else {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    conn.close().await.unwrap();
}

/// `dsn` with its database replaced by `name` (query kept).
fn with_database(dsn: &str, name: &str) -> String {
    let start = dsn.find("://").unwrap() + 3;
    let rest = &dsn[start..];
    let path = rest.find(['/', '?']).unwrap_or(rest.len());
    let query = rest[path..].find('?').map_or("", |q| &rest[path + q..]);
    format!("{}{}/{name}{query}", &dsn[..start], &rest[..path])
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let start = Instant::now();
    let rows = rows(a.memories);
    println!(
        "generated {} memories in {:.1} s",
        rows.len(),
        start.elapsed().as_secs_f64()
    );
    rt.block_on(async {
        if let Some(path) = &a.seed_into {
            // Opening the store registers sqlite-vec, which the index's
            // triggers (schema 24) call on every insert.
            let store = SqliteStore::open(SqliteOptions::new(path)).await.unwrap();
            // Shared memories: whoever the gateway's caller is sees them.
            seed_sqlite(path, &rows, &a.model, None).await;
            store.close().await;
            if let Some(out) = &a.queries_into {
                std::fs::write(out, queries(a.searches).join("\n")).unwrap();
            }
            println!(
                "seeded {} memories (embedder {:?}) into {}",
                rows.len(),
                a.model,
                path.display()
            );
            return;
        }
        if !a.postgres_only {
            run_sqlite(&a, &rows).await;
        }
        match postgres_dsn() {
            Some(dsn) if !a.sqlite_only => run_postgres(&a, &rows, &dsn).await,
            _ => println!("postgres   skipped: EXOCLAW_TEST_POSTGRES_DSN is not set"),
        }
    });
}
