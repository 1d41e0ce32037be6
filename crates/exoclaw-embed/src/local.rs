//! [`LocalEmbedder`]: a BERT sentence model (all-MiniLM-L6-v2 and its
//! kind) in pure Rust. The directory holds `config.json` (read when the
//! embedder is built, for its size), `tokenizer.json` and
//! `model.safetensors` (read on the first `embed`, so an idle gateway never
//! holds the weights). A sentence is tokenised (truncated at
//! [`MAX_TOKENS`], padded to the longest of its batch), run through the
//! encoder, its token vectors averaged under the attention mask (mean
//! pooling) and the average scaled to unit length: what
//! sentence-transformers does for these models.

mod bert;

use async_trait::async_trait;
use bert::{Bert, Config};
use candle_core::{DType, Device, Tensor};
use exoclaw_core::embed::{EmbedError, Embedder};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// The longest input in tokens (sentence-transformers' `max_seq_length`
/// of all-MiniLM-L6-v2); longer text is truncated.
pub const MAX_TOKENS: usize = 256;
/// Texts per call.
pub const MAX_BATCH: usize = 64;

struct Loaded {
    model: Bert,
    tokenizer: Tokenizer,
}

/// A BERT sentence embedder over a model directory.
pub struct LocalEmbedder {
    id: String,
    dims: usize,
    /// Shared with the blocking thread each call runs on.
    model: Arc<Model>,
}

/// The model directory and, after the first use, its weights.
struct Model {
    dir: PathBuf,
    config: Config,
    id: String,
    loaded: Mutex<Option<Arc<Loaded>>>,
}

fn model_error(what: &str, e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Model(format!("{what}: {e}"))
}

impl LocalEmbedder {
    /// Reads `config.json` of `dir` (the weights wait for the first use).
    pub fn new(dir: &Path) -> Result<Self, EmbedError> {
        let text = std::fs::read_to_string(dir.join("config.json"))
            .map_err(|e| model_error(&format!("cannot read {}/config.json", dir.display()), e))?;
        let config: Config = serde_json::from_str(&text)
            .map_err(|e| model_error("config.json is not a BERT configuration", e))?;
        let dims = config.hidden_size;
        let name = dir
            .file_name()
            .map_or_else(|| "model".to_owned(), |n| n.to_string_lossy().into_owned());
        let id = format!("local:{name}:{dims}");
        Ok(Self {
            id: id.clone(),
            dims,
            model: Arc::new(Model {
                dir: dir.to_path_buf(),
                config,
                id,
                loaded: Mutex::new(None),
            }),
        })
    }

    /// Whether the weights are in memory (they are read on first use).
    pub fn is_loaded(&self) -> bool {
        self.model
            .loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// The vectors of `texts` (blocking: the model runs on this thread).
    pub fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.model.embed(texts)
    }
}

impl Model {
    fn load(&self) -> Result<Arc<Loaded>, EmbedError> {
        let mut slot = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(l) = slot.as_ref() {
            return Ok(l.clone());
        }
        let mut tokenizer = Tokenizer::from_file(self.dir.join("tokenizer.json"))
            .map_err(|e| model_error("cannot read tokenizer.json", e))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..TruncationParams::default()
            }))
            .map_err(|e| model_error("tokenizer truncation", e))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..PaddingParams::default()
        }));
        let weights = std::fs::read(self.dir.join("model.safetensors"))
            .map_err(|e| model_error("cannot read model.safetensors", e))?;
        let tensors = candle_core::safetensors::load_buffer(&weights, &Device::Cpu)
            .map_err(|e| model_error("model.safetensors", e))?;
        drop(weights);
        let model = Bert::load(tensors, &self.config)
            .map_err(|e| model_error("model.safetensors does not fit config.json", e))?;
        let loaded = Arc::new(Loaded { model, tokenizer });
        *slot = Some(loaded.clone());
        tracing::info!(model = %self.id, "local embedding model loaded");
        Ok(loaded)
    }

    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.len() > MAX_BATCH {
            return Err(EmbedError::Invalid(format!(
                "at most {MAX_BATCH} texts per call"
            )));
        }
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let l = self.load()?;
        let run = |e: candle_core::Error| EmbedError::Model(format!("inference failed: {e}"));
        let encodings = l
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EmbedError::Invalid(format!("cannot tokenise: {e}")))?;
        let rows = |f: fn(&tokenizers::Encoding) -> &[u32]| -> Result<Tensor, EmbedError> {
            let all: Vec<Tensor> = encodings
                .iter()
                .map(|e| Tensor::new(f(e), &Device::Cpu))
                .collect::<Result<_, _>>()
                .map_err(run)?;
            Tensor::stack(&all, 0).map_err(run)
        };
        let ids = rows(tokenizers::Encoding::get_ids)?;
        let types = rows(tokenizers::Encoding::get_type_ids)?;
        let mask = rows(tokenizers::Encoding::get_attention_mask)?;
        let hidden = l.model.forward(&ids, &types, &mask).map_err(run)?;
        // Mean pooling under the mask, then unit length.
        let mask = mask
            .to_dtype(DType::F32)
            .map_err(run)?
            .unsqueeze(2)
            .map_err(run)?;
        let summed = hidden
            .broadcast_mul(&mask)
            .map_err(run)?
            .sum(1)
            .map_err(run)?;
        let counts = mask
            .sum(1)
            .map_err(run)?
            .clamp(1e-9, f64::MAX)
            .map_err(run)?;
        let mean = summed.broadcast_div(&counts).map_err(run)?;
        let norms = mean
            .sqr()
            .map_err(run)?
            .sum_keepdim(1)
            .map_err(run)?
            .sqrt()
            .map_err(run)?
            .clamp(1e-12, f64::MAX)
            .map_err(run)?;
        mean.broadcast_div(&norms)
            .map_err(run)?
            .to_vec2::<f32>()
            .map_err(run)
    }
}

#[async_trait]
impl Embedder for LocalEmbedder {
    fn id(&self) -> &str {
        &self.id
    }

    fn dims(&self) -> usize {
        self.dims
    }

    /// On a blocking thread: loading the weights and a forward pass take
    /// milliseconds to seconds, which an async worker must not spend.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let model = self.model.clone();
        let texts = texts.to_vec();
        tokio::task::spawn_blocking(move || model.embed(&texts))
            .await
            .map_err(|e| EmbedError::Model(format!("the embedding thread failed: {e}")))?
    }
}
