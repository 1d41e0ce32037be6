//! The embedder port: text to vectors, for hybrid search (memories, later
//! skills and agent cards). Implementations live in `exoclaw-embed`: an
//! OpenAI-compatible `/v1/embeddings` client and a local BERT model.
//!
//! A vector is stored with the embedder's [`Embedder::id`], so that a
//! change of model is seen and the old vectors are re-embedded instead of
//! being compared with new ones.

use async_trait::async_trait;

/// Why an embedding failed. Callers degrade to full-text search on any of
/// them: an embedder that is down never fails a turn.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The embedder cannot be reached or answered with an error; retrying
    /// later may help.
    #[error("embedder unavailable: {0}")]
    Unavailable(String),
    /// The model or its files cannot be used (missing, damaged).
    #[error("embedder cannot load its model: {0}")]
    Model(String),
    /// The input was refused (too long, too many texts).
    #[error("embedder refused the input: {0}")]
    Invalid(String),
}

/// Text to L2-normalised vectors.
#[async_trait]
pub trait Embedder: Send + Sync {
    /// The model's identity (`local:all-MiniLM-L6-v2`,
    /// `openai:text-embedding-3-small`), stored with every vector.
    fn id(&self) -> &str;
    /// The length of every vector.
    fn dims(&self) -> usize;
    /// One vector per text, in order.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// Cosine similarity of two vectors (of L2-normalised ones: their dot
/// product); 0 when the lengths differ.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    dot / (na.sqrt() * nb.sqrt())
}

/// `v` scaled to unit length (a zero vector stays zero).
pub fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in v {
            *x /= norm;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_normalised_vectors() {
        let mut a = vec![3.0, 4.0];
        l2_normalize(&mut a);
        assert!((a[0] - 0.6).abs() < 1e-6 && (a[1] - 0.8).abs() < 1e-6);
        assert!((cosine(&a, &a) - 1.0).abs() < 1e-6);
        assert!(cosine(&[1.0, 0.0], &[0.0, 1.0]).abs() < 1e-6);
        assert!(cosine(&[1.0], &[1.0, 0.0]).abs() < 1e-6);
    }
}
