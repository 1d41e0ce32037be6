//! [`OpenAiEmbedder`]: `POST {base_url}/embeddings` with `{"model",
//! "input": [...]}`, answered by `{"data": [{"index", "embedding"}]}`.
//! Through the egress client it is given (SSRF policy, the provider's
//! origin allowed explicitly); rate limits (429) and server errors are
//! retried with backoff, a few times; vectors are L2-normalised.

use async_trait::async_trait;
use exoclaw_core::Secret;
use exoclaw_core::embed::{EmbedError, Embedder, l2_normalize};
use exoclaw_egress::EgressClient;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Attempts per call (the first and the retries).
const ATTEMPTS: u32 = 3;
/// The first wait before a retry (doubled each time).
const BACKOFF: Duration = Duration::from_millis(250);
/// Per request.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer read.
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;
/// Texts per request.
pub const MAX_BATCH: usize = 256;

/// An OpenAI-compatible embeddings endpoint.
pub struct OpenAiEmbedder {
    client: EgressClient,
    url: String,
    key: Option<Secret>,
    model: String,
    id: String,
    dims: AtomicUsize,
}

impl OpenAiEmbedder {
    /// `base_url` as the provider's (`https://api.openai.com/v1`);
    /// `provider` names it in the embedder's identity.
    pub fn new(
        client: EgressClient,
        provider: &str,
        base_url: &str,
        key: Option<Secret>,
        model: &str,
    ) -> Self {
        Self {
            client,
            url: format!("{}/embeddings", base_url.trim_end_matches('/')),
            key,
            model: model.to_owned(),
            id: format!("{provider}:{model}"),
            dims: AtomicUsize::new(0),
        }
    }

    async fn once(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, (EmbedError, bool)> {
        let body = serde_json::json!({"model": self.model, "input": texts});
        let mut req = self
            .client
            .request(reqwest::Method::POST, &self.url)
            .map_err(|r| {
                (
                    EmbedError::Unavailable(format!("egress refused: {r}")),
                    false,
                )
            })?
            .timeout(TIMEOUT)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        if let Some(key) = &self.key {
            req = req.bearer_auth(key.expose());
        }
        let resp = req.send().await.map_err(|e| {
            (
                EmbedError::Unavailable(format!("request failed: {e}")),
                true,
            )
        })?;
        let status = resp.status();
        if !status.is_success() {
            let retry = status.as_u16() == 429 || status.is_server_error();
            return Err((
                EmbedError::Unavailable(format!("the embeddings endpoint answered {status}")),
                retry,
            ));
        }
        let body = resp.bytes().await.map_err(|e| {
            (
                EmbedError::Unavailable(format!("unreadable answer: {e}")),
                true,
            )
        })?;
        if body.len() > MAX_ANSWER_BYTES {
            return Err((
                EmbedError::Unavailable(format!("an answer over {MAX_ANSWER_BYTES} bytes")),
                false,
            ));
        }
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
            (
                EmbedError::Unavailable(format!("unreadable answer: {e}")),
                false,
            )
        })?;
        parse(&v, texts.len()).map_err(|e| (e, false))
    }
}

/// The vectors of an answer, in input order.
fn parse(v: &serde_json::Value, n: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
    let bad = |why: &str| EmbedError::Unavailable(format!("unexpected answer: {why}"));
    let data = v["data"].as_array().ok_or_else(|| bad("no data"))?;
    if data.len() != n {
        return Err(bad("a vector per input expected"));
    }
    let mut out = vec![Vec::new(); n];
    for (i, item) in data.iter().enumerate() {
        let index = item["index"]
            .as_u64()
            .and_then(|x| usize::try_from(x).ok())
            .unwrap_or(i);
        let slot = out
            .get_mut(index)
            .ok_or_else(|| bad("index out of range"))?;
        let numbers = item["embedding"]
            .as_array()
            .ok_or_else(|| bad("no embedding"))?;
        #[allow(
            clippy::cast_possible_truncation,
            reason = "f64 to f32 is the vector's precision"
        )]
        let mut vec: Vec<f32> = numbers
            .iter()
            .map(|x| x.as_f64().map(|f| f as f32))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("an embedding of non-numbers"))?;
        l2_normalize(&mut vec);
        *slot = vec;
    }
    Ok(out)
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    fn id(&self) -> &str {
        &self.id
    }

    fn dims(&self) -> usize {
        self.dims.load(Ordering::Relaxed)
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.len() > MAX_BATCH {
            return Err(EmbedError::Invalid(format!(
                "at most {MAX_BATCH} texts per call"
            )));
        }
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let mut wait = BACKOFF;
        let mut attempt = 1;
        loop {
            match self.once(texts).await {
                Ok(v) => {
                    if let Some(first) = v.first() {
                        self.dims.store(first.len(), Ordering::Relaxed);
                    }
                    return Ok(v);
                }
                Err((e, true)) if attempt < ATTEMPTS => {
                    tracing::debug!(error = %e, attempt, "embeddings call failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                    attempt += 1;
                }
                Err((e, _)) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn answers_are_put_in_input_order_and_normalised() {
        let v = serde_json::json!({"data": [
            {"index": 1, "embedding": [0.0, 2.0]},
            {"index": 0, "embedding": [3.0, 4.0]}
        ]});
        let out = parse(&v, 2).unwrap();
        assert_eq!(out[1], [0.0, 1.0]);
        assert!((out[0][0] - 0.6).abs() < 1e-6);
        assert!(parse(&v, 3).is_err());
        assert!(parse(&serde_json::json!({"error": "x"}), 1).is_err());
    }
}
