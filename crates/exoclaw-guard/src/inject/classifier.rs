//! The second layer of the injection scanner (issue 17.3): a linear
//! classifier (logistic regression) over hashed word unigrams and bigrams
//! and character 4-grams of the normalised text. It catches paraphrases
//! the rules' phrases miss: personas, forged turns, claimed authority,
//! requests for hidden configuration, instructions hidden in data.
//!
//! The weights are data (`model.txt`), trained reproducibly from the
//! development half of the labelled corpus by `tests/it/classifier.rs`
//! (`UPDATE_MODEL=1` rewrites the file; without it the test retrains and
//! fails when the file differs). Scoring is one pass over the text with no
//! allocation per feature: a 4 KB message costs a few microseconds.

use std::sync::OnceLock;

/// Feature buckets (a power of two).
pub const BUCKETS: usize = 1 << 13;
/// Longest window scored at once, in bytes of normalised text; longer text
/// is scored window by window (half overlapping) and the highest counts.
const WINDOW_BYTES: usize = 600;
/// Most normalised text scored, in bytes: the classifier stays cheap on
/// hostile input (the rules still see everything).
const MAX_BYTES: usize = 64 * 1024;
/// Weights are stored as integers in these units.
pub const WEIGHT_SCALE: f64 = 10_000.0;

/// A trained model: a bias, one weight per bucket and the decision
/// threshold on the score (a logit).
#[derive(Debug, Clone, PartialEq)]
pub struct Classifier {
    pub bias: f64,
    pub threshold: f64,
    pub weights: Vec<f64>,
}

/// The model checked in beside this file.
pub fn builtin() -> &'static Classifier {
    static MODEL: OnceLock<Classifier> = OnceLock::new();
    MODEL.get_or_init(|| {
        Classifier::from_text(include_str!("model.txt")).expect("the checked-in model parses")
    })
}

impl Classifier {
    /// Parse the model file: `bias B`, `threshold T`, then `weights` and
    /// the integer weights (units of 1/[`WEIGHT_SCALE`]), whitespace
    /// separated; `#` lines are comments.
    pub fn from_text(text: &str) -> Result<Self, String> {
        let mut bias = None;
        let mut threshold = None;
        let mut weights = Vec::with_capacity(BUCKETS);
        let mut in_weights = false;
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            if in_weights {
                for w in line.split_whitespace() {
                    let w: i64 = w.parse().map_err(|_| format!("bad weight {w:?}"))?;
                    weights.push(w as f64 / WEIGHT_SCALE);
                }
                continue;
            }
            match line.split_once(' ') {
                Some(("bias", v)) => bias = v.trim().parse().ok(),
                Some(("threshold", v)) => threshold = v.trim().parse().ok(),
                _ if line.trim() == "weights" => in_weights = true,
                _ if line.trim().is_empty() => {}
                _ => return Err(format!("unexpected line {line:?}")),
            }
        }
        if weights.len() != BUCKETS {
            return Err(format!("{} weights, expected {BUCKETS}", weights.len()));
        }
        Ok(Classifier {
            bias: bias.ok_or("no bias")?,
            threshold: threshold.ok_or("no threshold")?,
            weights,
        })
    }

    /// The model file text (what [`Classifier::from_text`] reads).
    pub fn to_text(&self) -> String {
        let mut out = String::from(
            "# exoclaw prompt-injection classifier (crates/exoclaw-guard/src/inject/classifier.rs):\n\
             # logistic regression over hashed word and character n-grams, trained from\n\
             # tests/corpus/injection_classes_dev.txt and the rule corpora by\n\
             # tests/it/classifier.rs. Regenerate: UPDATE_MODEL=1 cargo nextest run -p exoclaw-guard --test it classifier\n",
        );
        out.push_str(&format!(
            "bias {:.4}\nthreshold {:.4}\nweights\n",
            self.bias, self.threshold
        ));
        for row in self.weights.chunks(32) {
            let cells: Vec<String> = row
                .iter()
                .map(|w| format!("{}", (w * WEIGHT_SCALE).round() as i64))
                .collect();
            out.push_str(&cells.join(" "));
            out.push('\n');
        }
        out
    }

    /// The score of already-normalised text (the highest of its windows)
    /// and the byte offset of that window. Windows do not overlap: one
    /// pass over the text, a bit set for the distinct features.
    pub fn score_normal(&self, normal: &str) -> (f64, usize) {
        let text = prefix(normal, MAX_BYTES);
        let mut best = (f64::NEG_INFINITY, 0);
        let mut seen = [0u64; BUCKETS / 64];
        let mut squeezed = Vec::with_capacity(WINDOW_BYTES + 8);
        let mut start = 0;
        loop {
            let end = window_end(text, start);
            seen.fill(0);
            let (mut sum, mut n) = (0.0f64, 0usize);
            for_each_feature(&text[start..end], &mut squeezed, |f| {
                let (word, bit) = (f as usize / 64, 1u64 << (f % 64));
                if seen[word] & bit == 0 {
                    seen[word] |= bit;
                    sum += self.weights[f as usize];
                    n += 1;
                }
            });
            let s = if n == 0 {
                self.bias
            } else {
                self.bias + sum / (n as f64).sqrt()
            };
            if s > best.0 {
                best = (s, start);
            }
            if end >= text.len() {
                break;
            }
            start = end;
        }
        best
    }

    /// `bias + Σ w / √n` over the distinct features.
    pub fn logit(&self, feats: &[u32]) -> f64 {
        if feats.is_empty() {
            return self.bias;
        }
        let sum: f64 = feats.iter().map(|&f| self.weights[f as usize]).sum();
        self.bias + sum / (feats.len() as f64).sqrt()
    }
}

fn boundary(s: &str, mut i: usize) -> usize {
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i.min(s.len())
}

/// The end of the window starting at `start`: about [`WINDOW_BYTES`] on,
/// moved forward to the next blank so no word is cut.
fn window_end(text: &str, start: usize) -> usize {
    let mut end = boundary(text, (start + WINDOW_BYTES).min(text.len()));
    if let Some(blank) = text[end..].find(char::is_whitespace).filter(|b| *b < 64) {
        end += blank;
    }
    end
}

fn prefix(s: &str, max: usize) -> &str {
    &s[..boundary(s, max.min(s.len()))]
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

fn bucket(h: u64) -> u32 {
    // The high bits mix better than FNV's low ones.
    ((h ^ (h >> 29)) as usize % BUCKETS) as u32
}

/// The distinct feature buckets of normalised text, sorted: words
/// (`[a-z0-9_']` runs), word bigrams, and character 4-grams of the text
/// with runs of blanks as one space.
pub fn features(normal: &str, out: &mut Vec<u32>) {
    let mut squeezed = Vec::with_capacity(normal.len());
    for_each_feature(normal, &mut squeezed, |f| out.push(f));
    out.sort_unstable();
    out.dedup();
}

/// Every feature bucket of `normal`, repeats included; `squeezed` is a
/// scratch buffer.
fn for_each_feature(normal: &str, squeezed: &mut Vec<u8>, mut emit: impl FnMut(u32)) {
    let word_seed = fnv(FNV_OFFSET, b"w");
    let pair_seed = fnv(FNV_OFFSET, b"b");
    let gram_seed = fnv(FNV_OFFSET, b"c");
    let mut prev: Option<&str> = None;
    for word in normal
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '\''))
        .filter(|w| !w.is_empty())
    {
        emit(bucket(fnv(word_seed, word.as_bytes())));
        if let Some(p) = prev {
            let h = fnv(fnv(pair_seed, p.as_bytes()), b" ");
            emit(bucket(fnv(h, word.as_bytes())));
        }
        prev = Some(word);
    }
    squeezed.clear();
    for b in normal.bytes() {
        let b = if b.is_ascii_whitespace() { b' ' } else { b };
        if !(b == b' ' && squeezed.last() == Some(&b' ')) {
            squeezed.push(b);
        }
    }
    for gram in squeezed.windows(4) {
        emit(bucket(fnv(gram_seed, gram)));
    }
}
