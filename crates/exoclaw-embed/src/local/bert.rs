//! The BERT encoder [`super::LocalEmbedder`] runs, on candle's tensors:
//! the computation of candle-transformers' `BertModel` (absolute
//! positions, post-norm layers, the attention mask as `f32::MIN` on padded
//! keys) written for one CPU core's speed (BENCHMARKS.md, issue 14):
//!
//! - each linear layer's weight is kept transposed (`[in, out]`, contiguous),
//!   the matrix gemm reads in place; laid out as the file has it (`[out,
//!   in]`), gemm repacked the whole matrix, an element at a time, on every
//!   call;
//! - the query, key and value projections are one product with their
//!   weights side by side;
//! - softmax is candle's fused last-dimension kernel;
//! - GELU's `erf` is a rational approximation (Eigen's and XLA's
//!   `erf` for `f32`, within 5e-7 of the exact value), computed in a loop
//!   the compiler vectorises for the CPU found at run time, instead of
//!   `libm`'s scalar `erff`, which took a sixth of the time.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor, bail};
use serde::Deserialize;
use std::collections::HashMap;

/// What the encoder reads of the model's `config.json` (Hugging Face's
/// names; other keys are ignored).
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Config {
    vocab_size: usize,
    pub(super) hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    hidden_act: HiddenAct,
    max_position_embeddings: usize,
    type_vocab_size: usize,
    layer_norm_eps: f64,
    /// Only absolute positions (the default) are supported.
    #[serde(default)]
    #[expect(dead_code, reason = "read to refuse other kinds of positions")]
    position_embedding_type: PositionEmbedding,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum PositionEmbedding {
    #[default]
    Absolute,
}

/// The feed-forward activation.
#[derive(Debug, Clone, Copy, Deserialize)]
enum HiddenAct {
    /// Exact GELU, with `erf` (BERT's and all-MiniLM's).
    #[serde(rename = "gelu")]
    Gelu,
    /// GELU's tanh approximation.
    #[serde(rename = "gelu_new", alias = "gelu_pytorch_tanh")]
    GeluTanh,
    #[serde(rename = "relu")]
    Relu,
}

/// A linear layer: `x · w_t + b` with `w_t` `[in, out]` and contiguous.
struct Linear {
    w_t: Tensor,
    b: Tensor,
}

impl Linear {
    /// `x`: `[rows, in]`, contiguous.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.w_t)?.broadcast_add(&self.b)
    }
}

struct LayerNorm {
    w: Tensor,
    b: Tensor,
    eps: f32,
}

impl LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        candle_nn::ops::layer_norm(&x.contiguous()?, &self.w, &self.b, self.eps)
    }
}

struct Layer {
    qkv: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

/// The encoder's weights, loaded from a checkpoint's tensors.
pub(super) struct Bert {
    words: Tensor,
    positions: Tensor,
    token_types: Tensor,
    embeddings_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    hidden: usize,
    act: HiddenAct,
}

/// Takes the tensors of a checkpoint by name (under a prefix found once).
struct Weights {
    tensors: HashMap<String, Tensor>,
    prefix: String,
}

impl Weights {
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let full = format!("{}{name}", self.prefix);
        let Some(t) = self.tensors.remove(&full) else {
            bail!("no tensor {full}")
        };
        if t.dims() != shape {
            bail!("{full} is {:?}, expected {shape:?}", t.dims());
        }
        t.to_dtype(DType::F32)
    }

    fn norm(&mut self, name: &str, size: usize, eps: f64) -> Result<LayerNorm> {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "candle's layer-norm kernel takes its epsilon as f32"
        )]
        let eps = eps as f32;
        Ok(LayerNorm {
            w: self.take(&format!("{name}.weight"), &[size])?,
            b: self.take(&format!("{name}.bias"), &[size])?,
            eps,
        })
    }

    /// Linear layers `names` with the same input, side by side: the
    /// weight `[in, Σ out]` (each file weight is `[out, in]`), the biases
    /// one after the other.
    fn linear(&mut self, names: &[String], input: usize, output: usize) -> Result<Linear> {
        let mut ws = Vec::with_capacity(names.len());
        let mut bs = Vec::with_capacity(names.len());
        for name in names {
            ws.push(self.take(&format!("{name}.weight"), &[output, input])?);
            bs.push(self.take(&format!("{name}.bias"), &[output])?);
        }
        Ok(Linear {
            w_t: Tensor::cat(&ws, 0)?.t()?.contiguous()?,
            b: Tensor::cat(&bs, 0)?,
        })
    }
}

impl Bert {
    /// The encoder of `tensors` (a BERT checkpoint, its names with or
    /// without a `bert.`-like prefix) for `config`.
    pub(super) fn load(tensors: HashMap<String, Tensor>, config: &Config) -> Result<Self> {
        const WORDS: &str = "embeddings.word_embeddings.weight";
        let Some(prefix) = tensors
            .keys()
            .find_map(|k| k.strip_suffix(WORDS).map(str::to_owned))
        else {
            bail!("no tensor {WORDS}")
        };
        let mut w = Weights { tensors, prefix };
        let h = config.hidden_size;
        let heads = config.num_attention_heads;
        if heads == 0 || !h.is_multiple_of(heads) {
            bail!("hidden_size {h} is not a multiple of num_attention_heads {heads}");
        }
        let inner = config.intermediate_size;
        let eps = config.layer_norm_eps;
        let words = w.take(WORDS, &[config.vocab_size, h])?;
        let positions = w.take(
            "embeddings.position_embeddings.weight",
            &[config.max_position_embeddings, h],
        )?;
        let token_types = w.take(
            "embeddings.token_type_embeddings.weight",
            &[config.type_vocab_size, h],
        )?;
        let embeddings_norm = w.norm("embeddings.LayerNorm", h, eps)?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                let p = format!("encoder.layer.{i}");
                let s = format!("{p}.attention.self");
                Ok(Layer {
                    qkv: w.linear(
                        &[
                            format!("{s}.query"),
                            format!("{s}.key"),
                            format!("{s}.value"),
                        ],
                        h,
                        h,
                    )?,
                    attention_out: w.linear(&[format!("{p}.attention.output.dense")], h, h)?,
                    attention_norm: w.norm(&format!("{p}.attention.output.LayerNorm"), h, eps)?,
                    intermediate: w.linear(&[format!("{p}.intermediate.dense")], h, inner)?,
                    output: w.linear(&[format!("{p}.output.dense")], inner, h)?,
                    output_norm: w.norm(&format!("{p}.output.LayerNorm"), h, eps)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            words,
            positions,
            token_types,
            embeddings_norm,
            layers,
            heads,
            hidden: h,
            act: config.hidden_act,
        })
    }

    /// The last layer's token vectors, `[batch, tokens, hidden]`, of
    /// `ids`, `types` and `mask` (`[batch, tokens]`, `u32`; mask 1 for a
    /// token, 0 for padding).
    pub(super) fn forward(&self, ids: &Tensor, types: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (batch, len) = ids.dims2()?;
        let h = self.hidden;
        let rows = batch * len;
        let words = self.words.index_select(&ids.flatten_all()?, 0)?;
        let types = self.token_types.index_select(&types.flatten_all()?, 0)?;
        let x = (words + types)?
            .reshape((batch, len, h))?
            .broadcast_add(&self.positions.narrow(0, 0, len)?)?;
        let mut x = self.embeddings_norm.forward(&x)?.reshape((rows, h))?;
        // 0 on a token, f32::MIN on padding, added to every query's scores.
        let mask = mask.to_dtype(DType::F32)?.reshape((batch, 1, 1, len))?;
        let mask = (mask.ones_like()? - &mask)?.affine(f64::from(f32::MIN), 0.)?;
        let d = h / self.heads;
        let heads = |t: Tensor| -> Result<Tensor> {
            t.reshape((batch, len, self.heads, d))?
                .transpose(1, 2)?
                .contiguous()
        };
        for layer in &self.layers {
            let qkv = layer.qkv.forward(&x)?;
            let q = heads(qkv.narrow(1, 0, h)?)?;
            let k = heads(qkv.narrow(1, h, h)?)?;
            let v = heads(qkv.narrow(1, 2 * h, h)?)?;
            #[expect(clippy::cast_precision_loss, reason = "a head's width, far below 2^52")]
            let scale = (d as f64).sqrt();
            let scores = (q.matmul(&k.t()?)? / scale)?.broadcast_add(&mask)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores)?;
            let context = probs
                .matmul(&v)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((rows, h))?;
            let attended = layer.attention_out.forward(&context)?;
            x = layer.attention_norm.forward(&(attended + &x)?)?;
            let inner = layer.intermediate.forward(&x)?;
            let inner = match self.act {
                HiddenAct::Gelu => inner.apply_op1_no_bwd(&GeluErf)?,
                HiddenAct::GeluTanh => inner.gelu()?,
                HiddenAct::Relu => inner.relu()?,
            };
            let out = layer.output.forward(&inner)?;
            x = layer.output_norm.forward(&(out + &x)?)?;
        }
        x.reshape((batch, len, h))
    }
}

/// `erf(x)` for `f32`, within 5e-7 of the exact value: Eigen's and XLA's
/// rational approximation (odd degree-13 numerator over even degree-8
/// denominator on `[-4, 4]`; outside it `erf` is ±1 in `f32`). No branches,
/// so a loop of it vectorises.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let p = (-2.726_142_3e-10_f32).mul_add(x2, 2.770_681_4e-8);
    let p = p.mul_add(x2, -2.101_024e-6);
    let p = p.mul_add(x2, -5.692_506_4e-5);
    let p = p.mul_add(x2, -7.349_906_3e-4);
    let p = p.mul_add(x2, -2.954_6e-3);
    let p = p.mul_add(x2, -1.609_603_3e-2);
    let q = (-1.456_607_2e-5_f32).mul_add(x2, -2.133_740_6e-4);
    let q = q.mul_add(x2, -1.682_827e-3);
    let q = q.mul_add(x2, -7.373_329e-3);
    let q = q.mul_add(x2, -1.426_474e-2);
    x * p / q
}

/// GELU as BERT defines it, `x/2 · (1 + erf(x/√2))`, over a contiguous
/// `f32` tensor.
struct GeluErf;

impl CustomOp1 for GeluErf {
    fn name(&self) -> &'static str {
        "exoclaw-gelu-erf"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(all), Some((start, end))) = (storage, layout.contiguous_offsets())
        else {
            bail!("gelu: a contiguous f32 tensor expected");
        };
        let Some(xs) = all.get(start..end) else {
            bail!("gelu: the layout is outside the storage");
        };
        let mut out = vec![0f32; xs.len()];
        // Compiled for the widest vectors the CPU has (AVX-512, AVX2 or
        // the baseline), chosen at run time.
        pulp::Arch::new().dispatch(|| {
            for (o, &x) in out.iter_mut().zip(xs) {
                *o = 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
            }
        });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::erf;

    #[test]
    fn erf_is_within_5e_7_of_the_exact_value() {
        // The exact value by Simpson's rule over steps of 1e-4 (error
        // below 1e-12 at x = 6): erf(x) = 2/√π ∫₀ˣ e^(-t²) dt; erf is odd.
        let f = |t: f64| (-t * t).exp();
        let h = 1e-4;
        let mut integral = 0f64;
        let mut worst = 0f64;
        for i in 0..60_000 {
            let a = f64::from(i) * h;
            let exact = integral * 2.0 / std::f64::consts::PI.sqrt();
            #[expect(clippy::cast_possible_truncation, reason = "x is exact in f32 to 1e-8")]
            let x = a as f32;
            for (x, exact) in [(x, exact), (-x, -exact)] {
                worst = worst.max((f64::from(erf(x)) - exact).abs());
            }
            integral += h / 6.0 * (f(a) + 4.0 * f(a + h / 2.0) + f(a + h));
        }
        assert!(worst < 5e-7, "worst error {worst}");
    }
}
