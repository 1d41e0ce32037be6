//! The rules of long-term memory above the SQL: what a memory may hold
//! (refused as `Invalid`, the limit named), the digest that finds exact
//! duplicates, the words a full-text query is built from, what counts as a
//! near duplicate, and the stored form of a vector.

use exoclaw_core::embed::cosine;
use exoclaw_core::store::memory::{MAX_CONTENT_BYTES, MAX_IMPORTANCE, MemoryQuery, NewMemory};
use exoclaw_core::store::{StoreError, StoreResult};
use sha2::Digest as _;
use std::collections::BTreeSet;

/// Most words of a query that reach the full-text index.
pub(crate) const MAX_QUERY_WORDS: usize = 32;
/// Word-set overlap (Jaccard) at or above which two texts are one memory.
pub(crate) const NEAR_DUPLICATE_WORDS: f64 = 0.8;
/// Cosine similarity at or above which two texts are one memory.
pub(crate) const NEAR_DUPLICATE_COSINE: f32 = 0.97;
/// Full-text candidates looked at for a near duplicate.
pub(crate) const DUPLICATE_CANDIDATES: i64 = 5;
/// Most hits one search returns.
pub(crate) const MAX_HITS: u32 = 100;
/// A query word that matches at least this many memories of the namespace
/// is common: left out of the full-text query while a rarer word is in it
/// (so the list ranks a bounded set, not every memory with "project").
pub(crate) const COMMON_WORD_MATCHES: i64 = 200;
/// Most full-text matches ranked for one list: the namespace's newest
/// matches of the query, when there are more.
pub(crate) const TEXT_CANDIDATES: i64 = 400;
/// Vector-index candidates (by the sign bits' Hamming distance on SQLite,
/// by HNSW on PostgreSQL) per hit asked, and at least, that are then
/// ordered by the exact cosine.
pub(crate) const VECTOR_OVERSAMPLING: i64 = 20;
pub(crate) const MIN_VECTOR_CANDIDATES: i64 = 200;

/// Which memories a full-text list may return: a namespace's (tenant,
/// agent, and the user's own), and the agent's shared ones when `shared`
/// (a search by a user sees both; a save compares with its own namespace
/// only, where the shared one is the one of no user).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scope<'a> {
    pub(crate) tenant: &'a str,
    pub(crate) agent: &'a str,
    pub(crate) user: Option<&'a str>,
    pub(crate) shared: bool,
}

impl Scope<'_> {
    /// The namespace tokens SQLite's `memories_fts.ns` holds for the
    /// memories in scope (schema 24: `'n' || hex(tenant) || 'x' ||
    /// hex(agent) || 'x' || hex(user or '')`).
    pub(crate) fn tokens(&self) -> Vec<String> {
        let token = |user: &str| {
            format!(
                "n{}x{}x{}",
                hex::encode_upper(self.tenant),
                hex::encode_upper(self.agent),
                hex::encode_upper(user)
            )
        };
        let mut out = Vec::with_capacity(2);
        if let Some(u) = self.user {
            out.push(token(u));
        }
        if self.shared || self.user.is_none() {
            out.push(token(""));
        }
        out
    }

    /// Whether the shared memories (no user) are in scope.
    pub(crate) fn has_shared(&self) -> bool {
        self.shared || self.user.is_none()
    }
}

/// Vector candidates for a list of `pool`.
pub(crate) fn vector_candidates(pool: i64) -> i64 {
    (pool * VECTOR_OVERSAMPLING).max(MIN_VECTOR_CANDIDATES)
}

/// The words a full-text list is built from, given each word's matches in
/// the scope (counted up to [`COMMON_WORD_MATCHES`]): the rare ones, any
/// of them; when every word is common, all of them together. `true` when
/// all must match.
pub(crate) fn text_terms(words: &[String], matches: &[i64]) -> (Vec<String>, bool) {
    let rare: Vec<String> = words
        .iter()
        .zip(matches)
        .filter(|(_, n)| **n < COMMON_WORD_MATCHES)
        .map(|(w, _)| w.clone())
        .collect();
    if rare.is_empty() {
        (words.to_vec(), true)
    } else {
        (rare, false)
    }
}

/// Whether the rare words' matches (counted, as for [`text_terms`]) are
/// at most [`TEXT_CANDIDATES`] together, so that a full-text list of any
/// of them needs no order to stop at the newest: never when all words
/// must match (`all`: they are all common).
pub(crate) fn fit_candidates(matches: &[i64], all: bool) -> bool {
    !all && matches
        .iter()
        .filter(|n| **n < COMMON_WORD_MATCHES)
        .sum::<i64>()
        <= TEXT_CANDIDATES
}

/// A memory to save: not blank, within the size limit, a known agent id,
/// importance in range.
pub(crate) fn check_new(m: &NewMemory) -> StoreResult<()> {
    super::check_slug("agent", m.agent_id.as_str())?;
    if m.content.trim().is_empty() {
        return Err(StoreError::Invalid("a memory must not be empty".to_owned()));
    }
    if m.content.len() > MAX_CONTENT_BYTES {
        return Err(StoreError::Invalid(format!(
            "a memory is at most {MAX_CONTENT_BYTES} bytes (this one is {})",
            m.content.len()
        )));
    }
    if !(0..=MAX_IMPORTANCE).contains(&m.importance) {
        return Err(StoreError::Invalid(format!(
            "importance runs from 0 to {MAX_IMPORTANCE} (got {})",
            m.importance
        )));
    }
    if let Some(e) = &m.embedding {
        check_vector(&e.vector)?;
    }
    Ok(())
}

/// A query: a limit in range.
pub(crate) fn check_query(q: &MemoryQuery) -> StoreResult<i64> {
    if q.limit == 0 || q.limit > MAX_HITS {
        return Err(StoreError::Invalid(format!(
            "a search returns 1 to {MAX_HITS} memories (asked for {})",
            q.limit
        )));
    }
    Ok(i64::from(q.limit))
}

fn check_vector(v: &[f32]) -> StoreResult<()> {
    if v.is_empty() || v.len() > 8192 || v.iter().any(|x| !x.is_finite()) {
        return Err(StoreError::Invalid(
            "a memory's vector must have 1 to 8192 finite numbers".to_owned(),
        ));
    }
    Ok(())
}

/// The lower-case words of `text` (letters and digits), in order.
pub(crate) fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The digest exact duplicates share: the words, in order, lower case
/// (so case, punctuation and spacing do not make a second memory).
pub(crate) fn content_key(text: &str) -> String {
    hex::encode(sha2::Sha256::digest(words(text).join(" ").as_bytes()))
}

/// English words too common to rank by (PostgreSQL's `english`
/// configuration drops them too; SQLite's FTS5 does not, so they are left
/// out of the query on both).
const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "all", "am", "an", "and", "any", "are", "as", "at", "be", "been", "but",
    "by", "can", "could", "did", "do", "does", "for", "from", "had", "has", "have", "he", "her",
    "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "me", "my", "no", "not", "of",
    "on", "or", "our", "s", "she", "should", "so", "t", "than", "that", "the", "their", "them",
    "then", "there", "these", "they", "this", "to", "us", "was", "we", "were", "what", "when",
    "where", "which", "who", "whom", "why", "will", "with", "would", "you", "your",
];

/// The distinct query words for the full-text index (at most
/// [`MAX_QUERY_WORDS`], in first-seen order, stop words left out); only
/// letters and digits, so no word is an operator of either dialect's query
/// syntax.
pub(crate) fn query_words(text: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    words(text)
        .into_iter()
        .filter(|w| !STOP_WORDS.contains(&w.as_str()) && seen.insert(w.clone()))
        .take(MAX_QUERY_WORDS)
        .collect()
}

/// Whether `a` and `b` say the same: most of their words are shared, or
/// their vectors (of one embedder) point the same way; and the words with
/// digits (ids, amounts, dates, versions) are the same, since two memories
/// that differ only in one are two facts.
pub(crate) fn is_near_duplicate(a: &str, b: &str, vectors: Option<(&[f32], &[f32])>) -> bool {
    let numbers = |t: &str| -> BTreeSet<String> {
        words(t)
            .into_iter()
            .filter(|w| w.chars().any(|c| c.is_ascii_digit()))
            .collect()
    };
    if numbers(a) != numbers(b) {
        return false;
    }
    if let Some((x, y)) = vectors
        && cosine(x, y) >= NEAR_DUPLICATE_COSINE
    {
        return true;
    }
    let wa: BTreeSet<String> = words(a).into_iter().collect();
    let wb: BTreeSet<String> = words(b).into_iter().collect();
    let union = wa.union(&wb).count();
    if union == 0 {
        return false;
    }
    #[allow(clippy::cast_precision_loss, reason = "word counts are small")]
    let overlap = wa.intersection(&wb).count() as f64 / union as f64;
    overlap >= NEAR_DUPLICATE_WORDS
}

/// A vector as stored: little-endian `f32`s.
pub(crate) fn encode_vector(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A stored vector; `Corrupt` when its length is not a multiple of 4.
pub(crate) fn decode_vector(bytes: &[u8]) -> StoreResult<Vec<f32>> {
    if !bytes.len().is_multiple_of(4) {
        return Err(StoreError::Corrupt(format!(
            "a stored vector has {} bytes, not a multiple of 4",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// The cosine similarity of `query` and a stored vector (little-endian
/// `f32`s), read where it lies; 0 when the lengths differ, like
/// [`cosine`].
pub(crate) fn cosine_stored(query: &[f32], stored: &[u8]) -> StoreResult<f32> {
    if !stored.len().is_multiple_of(4) {
        return Err(StoreError::Corrupt(format!(
            "a stored vector has {} bytes, not a multiple of 4",
            stored.len()
        )));
    }
    if stored.len() / 4 != query.len() {
        return Ok(0.0);
    }
    let (mut dot, mut nq, mut ns) = (0.0f32, 0.0f32, 0.0f32);
    for (x, c) in query.iter().zip(stored.chunks_exact(4)) {
        let y = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        dot += x * y;
        nq += x * x;
        ns += y * y;
    }
    if nq == 0.0 || ns == 0.0 {
        return Ok(0.0);
    }
    Ok(dot / (nq.sqrt() * ns.sqrt()))
}

/// A vector's sign bits as sqlite-vec's `vec_quantize_binary` writes them:
/// bit `i % 8` of byte `i / 8` is set when element `i` is above 0.
pub(crate) fn sign_bits(v: &[f32]) -> Vec<u8> {
    let mut out = vec![0u8; v.len().div_ceil(8)];
    for (i, x) in v.iter().enumerate() {
        if *x > 0.0 {
            out[i / 8] |= 1 << (i % 8);
        }
    }
    out
}

/// The Hamming distance of a bit string to `words` (the query's, as
/// native-endian `u64`s with the last one zero-padded), eight bytes at a
/// time. Inlined into each scan, so that `count_ones` is the `popcnt`
/// instruction where the scan is compiled with it.
#[inline(always)]
fn hamming(bits: &[u8], words: &[u64]) -> u32 {
    let mut d = 0;
    let mut chunks = bits.chunks_exact(8);
    for (c, w) in (&mut chunks).zip(words) {
        let x = u64::from_ne_bytes(c.try_into().unwrap_or([0; 8]));
        d += (x ^ w).count_ones();
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut last = [0u8; 8];
        last[..tail.len()].copy_from_slice(tail);
        d += (u64::from_ne_bytes(last) ^ words.last().copied().unwrap_or(0)).count_ones();
    }
    d
}

/// `bits` as native-endian `u64`s, the last zero-padded.
fn words64(bits: &[u8]) -> Vec<u64> {
    bits.chunks(8)
        .map(|c| {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            u64::from_ne_bytes(w)
        })
        .collect()
}

/// A namespace's sign bits as read from a sqlite-vec table's chunks (each
/// a `validity` bitmap, `rowids` as native-endian `i64`s and the packed bit
/// `vectors`, one slot each): the valid slots' rowids and bits, `width`
/// bytes a vector, packed for scans and for the store's cache.
#[derive(Debug)]
pub(crate) struct Packed {
    width: usize,
    rowids: Vec<i64>,
    bits: Vec<u8>,
}

impl Packed {
    pub(crate) fn new(width: usize) -> Self {
        Self {
            width,
            rowids: Vec::new(),
            bits: Vec::new(),
        }
    }

    /// Appends the valid slots of one chunk; `Corrupt` when its parts do
    /// not fit together.
    pub(crate) fn push_chunk(
        &mut self,
        validity: &[u8],
        rowids: &[u8],
        vectors: &[u8],
    ) -> StoreResult<()> {
        let width = self.width;
        let slots = validity.len() * 8;
        if width == 0 || rowids.len() != slots * 8 || vectors.len() != slots * width {
            return Err(StoreError::Corrupt(
                "a chunk of the memory vector index does not fit its table".to_owned(),
            ));
        }
        for (slot, (bits, id)) in vectors
            .chunks_exact(width)
            .zip(rowids.chunks_exact(8))
            .enumerate()
        {
            if validity[slot / 8] >> (slot % 8) & 1 == 1 {
                let mut b = [0u8; 8];
                b.copy_from_slice(id);
                self.rowids.push(i64::from_ne_bytes(b));
                self.bits.extend_from_slice(bits);
            }
        }
        Ok(())
    }

    /// Done reading: the spare capacity given back.
    pub(crate) fn finish(mut self) -> Self {
        self.rowids.shrink_to_fit();
        self.bits.shrink_to_fit();
        self
    }

    /// The bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.rowids.len() * 8 + self.bits.len()
    }
}

/// The `k` rowids nearest to a query's sign bits by Hamming distance.
pub(crate) struct Nearest {
    query: Vec<u8>,
    words: Vec<u64>,
    k: usize,
    heap: std::collections::BinaryHeap<(u32, i64)>,
}

impl Nearest {
    pub(crate) fn new(query: &[f32], k: usize) -> Self {
        let bits = sign_bits(query);
        Self {
            words: words64(&bits),
            query: bits,
            k,
            heap: std::collections::BinaryHeap::with_capacity(k + 1),
        }
    }

    /// Scores every vector of `packed`; `Corrupt` when its vectors are not
    /// the query's width.
    pub(crate) fn scan(&mut self, packed: &Packed) -> StoreResult<()> {
        if packed.width != self.query.len() {
            return Err(StoreError::Corrupt(
                "the memory vector index's bits are not the query's width".to_owned(),
            ));
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU has the `popcnt` instruction (checked just
            // above), the only feature the function is compiled with.
            #[allow(
                unsafe_code,
                reason = "a call to a function compiled for a CPU feature detected at run time"
            )]
            unsafe {
                self.scan_with_popcnt(packed);
            }
            return Ok(());
        }
        self.scan_packed(packed);
        Ok(())
    }

    /// [`Self::scan_packed`] with the `popcnt` instruction for the bit
    /// counts (without it, `count_ones` is a dozen instructions: the scan
    /// took 15% of a search's time, BENCHMARKS.md).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "popcnt")]
    fn scan_with_popcnt(&mut self, packed: &Packed) {
        self.scan_packed(packed);
    }

    /// Keeps the vectors nearest to the query (width checked by the
    /// caller).
    #[inline(always)]
    fn scan_packed(&mut self, packed: &Packed) {
        for (bits, id) in packed.bits.chunks_exact(packed.width).zip(&packed.rowids) {
            let d = hamming(bits, &self.words);
            if self.heap.len() == self.k && self.heap.peek().is_some_and(|(top, _)| d >= *top) {
                continue;
            }
            self.heap.push((d, *id));
            if self.heap.len() > self.k {
                self.heap.pop();
            }
        }
    }

    /// The rowids kept, as a JSON array (for `json_each`).
    pub(crate) fn into_json(self) -> String {
        let ids: Vec<String> = self
            .heap
            .into_iter()
            .map(|(_, id)| id.to_string())
            .collect();
        format!("[{}]", ids.join(","))
    }
}

/// The `n` best-scored ids of a scan, kept as it goes (best first; an
/// equal score ranks after those already kept).
pub(crate) struct Best {
    n: usize,
    kept: Vec<(f32, String)>,
}

impl Best {
    pub(crate) fn new(n: usize) -> Self {
        Self {
            n,
            kept: Vec::with_capacity(n.min(128) + 1),
        }
    }

    /// Whether `score` would be kept (so the id need not be read otherwise).
    pub(crate) fn admits(&self, score: f32) -> bool {
        self.kept.len() < self.n || self.kept.last().is_some_and(|(s, _)| score > *s)
    }

    pub(crate) fn push(&mut self, score: f32, id: String) {
        if !self.admits(score) {
            return;
        }
        let at = self.kept.partition_point(|(s, _)| *s >= score);
        self.kept.insert(at, (score, id));
        self.kept.truncate(self.n);
    }

    /// The ids, best first.
    pub(crate) fn into_sorted(self) -> Vec<String> {
        self.kept.into_iter().map(|(_, id)| id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_vector_scores_like_the_decoded_one() {
        let q = [0.6f32, 0.8, 0.0];
        let v = [0.0f32, 0.6, 0.8];
        let stored = encode_vector(&v);
        let s = cosine_stored(&q, &stored).unwrap();
        assert!((s - cosine(&q, &v)).abs() < 1e-6);
        assert_eq!(cosine_stored(&q, &encode_vector(&[1.0, 0.0])).unwrap(), 0.0);
        assert!(cosine_stored(&q, &stored[..5]).is_err());
    }

    #[test]
    fn best_keeps_the_top_n_in_order_and_ties_in_arrival() {
        let mut best = Best::new(3);
        for (s, id) in [
            (0.1, "a"),
            (0.9, "b"),
            (0.5, "c"),
            (0.5, "d"),
            (0.95, "e"),
            (0.2, "f"),
        ] {
            best.push(s, id.to_owned());
        }
        assert!(!best.admits(0.5));
        assert!(best.admits(0.51));
        assert_eq!(best.into_sorted(), ["e", "b", "c"]);
        assert!(Best::new(0).into_sorted().is_empty());
    }

    #[test]
    fn exact_duplicates_ignore_case_and_punctuation() {
        assert_eq!(
            content_key("The user's dog is  called Rex."),
            content_key("the user s dog is called rex")
        );
        assert_ne!(content_key("rex"), content_key("max"));
    }

    #[test]
    fn query_words_are_plain_and_distinct() {
        assert_eq!(
            query_words("\"Rex\" OR (dog) NEAR/2 rex* -cat, the"),
            ["rex", "dog", "near", "2", "cat"]
        );
    }

    #[test]
    fn near_duplicates_by_words_or_vectors() {
        assert!(is_near_duplicate(
            "the user prefers tea over coffee in the morning",
            "The user prefers tea over coffee in the morning!",
            None
        ));
        assert!(!is_near_duplicate(
            "the user likes tea",
            "the user hates rain",
            None
        ));
        assert!(is_near_duplicate(
            "a",
            "b",
            Some((&[1.0, 0.0], &[0.99, 0.01]))
        ));
    }

    #[test]
    fn common_words_leave_the_query_while_a_rare_one_is_in_it() {
        let w = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let words = w(&["project", "ora", "deploy"]);
        let many = COMMON_WORD_MATCHES;
        assert_eq!(
            text_terms(&words, &[many, 3, many - 1]),
            (w(&["ora", "deploy"]), false)
        );
        assert_eq!(
            text_terms(&words, &[many, many, many]),
            (words.clone(), true)
        );
    }

    #[test]
    fn candidates_fit_when_the_rare_words_matches_are_few_enough() {
        let many = COMMON_WORD_MATCHES;
        // The common word's matches do not count: it is left out.
        assert!(fit_candidates(&[many, 150, many - 1], false));
        assert!(fit_candidates(&[150, 150, TEXT_CANDIDATES - 300], false));
        assert!(!fit_candidates(&[150, 150, TEXT_CANDIDATES - 299], false));
        // All common: every word must match, how many is not known.
        assert!(!fit_candidates(&[many, many], true));
    }

    #[test]
    fn a_scope_names_its_namespace_tokens() {
        let s = Scope {
            tenant: "t",
            agent: "a",
            user: Some("u"),
            shared: true,
        };
        assert_eq!(s.tokens(), ["n74x61x75", "n74x61x"]);
        assert_eq!(Scope { shared: false, ..s }.tokens(), ["n74x61x75"]);
        assert_eq!(
            Scope {
                user: None,
                shared: false,
                ..s
            }
            .tokens(),
            ["n74x61x"]
        );
    }

    #[test]
    fn hamming_counts_differing_bits_past_whole_words() {
        let a = [0xFFu8; 12];
        let mut b = a;
        b[0] = 0xFE;
        b[11] = 0x0F;
        assert_eq!(hamming(&a, &words64(&b)), 5);
        assert_eq!(hamming(&a[..8], &words64(&b[..8])), 1);
    }

    #[test]
    fn nearest_keeps_the_k_closest_valid_slots() {
        assert_eq!(
            sign_bits(&[1.0, -1.0, 1.0, -1.0, -1.0, -1.0, -1.0, 1.0]),
            [0b1000_0101]
        );
        let mut n = Nearest::new(&[1.0; 8], 2);
        // Four slots: bits 0xFF (0 away), 0x00 (8), 0x0F (4), 0xFE (1);
        // the last is not valid.
        let rowids: Vec<u8> = [10i64, 11, 12, 13]
            .iter()
            .flat_map(|r| r.to_ne_bytes())
            .collect();
        let mut rows = rowids;
        rows.extend([0u8; 32]);
        let mut packed = Packed::new(1);
        assert!(packed.push_chunk(&[0b0111], &rows, &[0xFF; 7]).is_err());
        let validity = [0b0000_0111];
        packed
            .push_chunk(&validity, &rows, &[0xFF, 0x00, 0x0F, 0xFE, 0, 0, 0, 0])
            .unwrap();
        let packed = packed.finish();
        assert_eq!(packed.bytes(), 3 * 9);
        assert!(Nearest::new(&[1.0; 16], 2).scan(&packed).is_err());
        n.scan(&packed).unwrap();
        let mut kept: Vec<i64> = serde_json::from_str(&n.into_json()).unwrap();
        kept.sort_unstable();
        assert_eq!(kept, [10, 12]);
    }

    /// The scan built for `popcnt` (where the CPU has it) and the portable
    /// one keep the same rows, on 1,000 vectors of 384 bits.
    #[test]
    fn the_popcnt_scan_keeps_what_the_portable_one_does() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (width, n) = (48usize, 1_000usize);
        let mut packed = Packed::new(width);
        let rowids: Vec<u8> = (0..n as i64).flat_map(i64::to_ne_bytes).collect();
        let vectors: Vec<u8> = (0..n * width).map(|_| next().to_le_bytes()[3]).collect();
        packed
            .push_chunk(&vec![0xFF; n / 8], &rowids, &vectors)
            .unwrap();
        #[allow(clippy::cast_precision_loss, reason = "test data")]
        let query: Vec<f32> = (0..width * 8).map(|_| next() as f32 - 9.2e18).collect();
        let mut dispatched = Nearest::new(&query, 20);
        dispatched.scan(&packed).unwrap();
        let mut portable = Nearest::new(&query, 20);
        portable.scan_packed(&packed);
        let kept = |n: Nearest| {
            let mut v: Vec<i64> = serde_json::from_str(&n.into_json()).unwrap();
            v.sort_unstable();
            v
        };
        let (a, b) = (kept(dispatched), kept(portable));
        assert_eq!(a.len(), 20);
        assert_eq!(a, b);
    }

    #[test]
    fn vectors_round_trip() {
        let v = [0.5f32, -1.25, 3.0];
        assert_eq!(decode_vector(&encode_vector(&v)).unwrap(), v);
        assert!(decode_vector(&[0, 1, 2]).is_err());
    }
}
