//! exoclaw's embedders, implementations of the core
//! [`exoclaw_core::embed::Embedder`] port: [`OpenAiEmbedder`] (any
//! OpenAI-compatible `/v1/embeddings`, through the egress client, retried on
//! rate limits and server errors) and, with feature `local`,
//! [`LocalEmbedder`] (a BERT sentence model such as all-MiniLM-L6-v2 in
//! pure Rust: candle and Hugging Face tokenizers, mean pooling, L2 norm;
//! the model is loaded from its directory on first use, so a gateway that
//! never embeds never pays for it).
//!
//! Layer: beside the providers (it depends on core and egress only).

#[cfg(feature = "local")]
mod local;
mod openai;

#[cfg(feature = "local")]
pub use local::LocalEmbedder;
pub use openai::OpenAiEmbedder;
