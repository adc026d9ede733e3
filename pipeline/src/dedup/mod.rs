//! Duplicate detection over problem texts: exact (sha256 of a normalised text), near
//! duplicates with MinHash + LSH over character n-grams (NeMo Curator's defaults: 5-grams,
//! 20 bands x 13 rows, true Jaccard >= 0.8 on candidate pairs), and benchmark contamination
//! (13-gram word overlap, plus MinHash similarity). Signatures are computed in parallel.
//!
//! Which record survives a cluster is decided by id (the smallest), so the result does not
//! depend on input order.

pub mod well_formed;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use rayon::prelude::*;

/// Lower case, LaTeX spacing commands and `$` removed, whitespace collapsed.
pub fn normalize(text: &str) -> String {
    let mut t = text.to_lowercase();
    for spacing in ["\\,", "\\;", "\\:", "\\!", "\\quad", "\\qquad", "~", "$"] {
        t = t.replace(spacing, " ");
    }
    t.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The exact-duplicate key: sha256 of the normalised text.
pub fn exact_key(text: &str) -> String {
    crate::manifest::sha256_hex(normalize(text).as_bytes())
}

fn hash64(bytes: &[u8]) -> u64 {
    // FNV-1a, then a splitmix64 finaliser for well-spread bits.
    let mut h = bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Hashes of the character n-grams of the normalised text (the whole text when shorter).
pub fn char_shingles(text: &str, n: usize) -> HashSet<u64> {
    let chars: Vec<char> = normalize(text).chars().collect();
    if chars.len() <= n {
        return HashSet::from([hash64(chars.iter().collect::<String>().as_bytes())]);
    }
    chars.windows(n).map(|w| hash64(w.iter().collect::<String>().as_bytes())).collect()
}

/// Hashes of the word n-grams of the normalised text.
pub fn word_shingles(text: &str, n: usize) -> HashSet<u64> {
    let norm = normalize(text);
    let words: Vec<&str> = norm.split(' ').filter(|w| !w.is_empty()).collect();
    if words.len() < n {
        return HashSet::new();
    }
    words.windows(n).map(|w| hash64(w.join(" ").as_bytes())).collect()
}

pub fn jaccard(a: &HashSet<u64>, b: &HashSet<u64>) -> f64 {
    let inter = a.intersection(b).count();
    let union = a.len() + b.len() - inter;
    if union == 0 { 1.0 } else { inter as f64 / union as f64 }
}

const MERSENNE_61: u64 = (1 << 61) - 1;

/// MinHash with `bands * rows` universal hash functions `(a x + b) mod (2^61 - 1)`, as
/// datasketch does.
pub struct MinHasher {
    params: Vec<(u64, u64)>,
    pub bands: usize,
    pub rows: usize,
}

impl MinHasher {
    pub fn new(bands: usize, rows: usize, seed: u64) -> Self {
        let mut state = seed ^ 0x5851_f42d_4c95_7f2d;
        let mut next = || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            hash64(&state.to_le_bytes()) % MERSENNE_61
        };
        let params = (0..bands * rows).map(|_| (next().max(1), next())).collect();
        Self { params, bands, rows }
    }

    pub fn signature(&self, shingles: &HashSet<u64>) -> Vec<u64> {
        let mut sig = vec![u64::MAX; self.params.len()];
        for &s in shingles {
            let x = s % MERSENNE_61;
            for (slot, &(a, b)) in sig.iter_mut().zip(&self.params) {
                let h = ((u128::from(a) * u128::from(x) + u128::from(b)) % u128::from(MERSENNE_61)) as u64;
                if h < *slot {
                    *slot = h;
                }
            }
        }
        sig
    }

    /// One bucket key per band.
    pub fn band_keys(&self, sig: &[u64]) -> Vec<u64> {
        sig.chunks(self.rows)
            .enumerate()
            .map(|(band, rows)| {
                let mut bytes = Vec::with_capacity(8 * (rows.len() + 1));
                bytes.extend((band as u64).to_le_bytes());
                rows.iter().for_each(|r| bytes.extend(r.to_le_bytes()));
                hash64(&bytes)
            })
            .collect()
    }
}

/// A near-duplicate found: `dropped` duplicates `kept` with this true Jaccard similarity.
#[derive(Debug, Clone, PartialEq)]
pub struct Duplicate {
    pub dropped: usize,
    pub kept: usize,
    pub similarity: f64,
}

/// Semantic duplicates among unit-length `embeddings`: in `ids` order, an item whose cosine
/// similarity to an item already kept exceeds `threshold` is dropped against the most
/// similar one; otherwise it is kept. Exact search (a dot product per kept item), so the
/// result is the same on every run; fine to ~50k items.
pub fn semantic_duplicates(ids: &[&str], embeddings: &[Vec<f32>], threshold: f64) -> Vec<Duplicate> {
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by(|&a, &b| ids[a].cmp(ids[b]));
    let mut kept: Vec<usize> = Vec::new();
    let mut out = Vec::new();
    for i in order {
        let best = kept.par_iter().map(|&k| (dot(&embeddings[i], &embeddings[k]), k)).reduce(
            || (f64::NEG_INFINITY, usize::MAX),
            |a, b| if b.0 > a.0 || (b.0 == a.0 && b.1 < a.1) { b } else { a },
        );
        if best.1 != usize::MAX && best.0 > threshold {
            out.push(Duplicate { dropped: i, kept: best.1, similarity: best.0 });
        } else {
            kept.push(i);
        }
    }
    out
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum()
}

/// Near duplicates among `texts` (indices into it): candidate pairs from LSH buckets, checked
/// with true Jaccard; clusters joined transitively; in each cluster the text whose `ids` is
/// smallest survives and every other member is reported against it.
pub fn near_duplicates(
    ids: &[&str],
    texts: &[&str],
    ngram: usize,
    hasher: &MinHasher,
    threshold: f64,
) -> Vec<Duplicate> {
    let shingles: Vec<HashSet<u64>> = texts.par_iter().map(|t| char_shingles(t, ngram)).collect();
    let keys: Vec<Vec<u64>> = shingles.par_iter().map(|s| hasher.band_keys(&hasher.signature(s))).collect();
    let mut buckets: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, k) in keys.iter().enumerate() {
        for &key in k {
            buckets.entry(key).or_default().push(i);
        }
    }
    let mut candidates: BTreeSet<(usize, usize)> = BTreeSet::new();
    for members in buckets.values().filter(|m| m.len() > 1) {
        for (x, &a) in members.iter().enumerate() {
            for &b in &members[x + 1..] {
                candidates.insert((a.min(b), a.max(b)));
            }
        }
    }
    let candidates: Vec<(usize, usize)> = candidates.into_iter().collect();
    let edges: Vec<(usize, usize, f64)> = candidates
        .par_iter()
        .filter_map(|&(a, b)| {
            let j = jaccard(&shingles[a], &shingles[b]);
            (j >= threshold).then_some((a, b, j))
        })
        .collect();
    // Union-find over the confirmed pairs.
    let mut parent: Vec<usize> = (0..texts.len()).collect();
    fn find(p: &mut [usize], x: usize) -> usize {
        let mut r = x;
        while p[r] != r {
            r = p[r];
        }
        let mut x = x;
        while p[x] != r {
            let next = p[x];
            p[x] = r;
            x = next;
        }
        r
    }
    for &(a, b, _) in &edges {
        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
        if ra != rb {
            parent[ra.max(rb)] = ra.min(rb);
        }
    }
    let mut clusters: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..texts.len() {
        let r = find(&mut parent, i);
        clusters.entry(r).or_default().push(i);
    }
    let mut out = Vec::new();
    for members in clusters.values().filter(|m| m.len() > 1) {
        let &keep = members.iter().min_by_key(|&&i| ids[i]).expect("non-empty");
        for &m in members.iter().filter(|&&m| m != keep) {
            out.push(Duplicate {
                dropped: m,
                kept: keep,
                similarity: jaccard(&shingles[m], &shingles[keep]),
            });
        }
    }
    out.sort_by(|a, b| ids[a.dropped].cmp(ids[b.dropped]));
    out
}

/// Benchmark problems indexed for contamination checks.
pub struct ContaminationIndex {
    word_ngrams: HashMap<u64, usize>,
    /// (benchmark name, problem id) per indexed problem.
    pub sources: Vec<(String, String)>,
    char_shingles: Vec<HashSet<u64>>,
    buckets: HashMap<u64, Vec<usize>>,
    ngram_words: usize,
    ngram_chars: usize,
    threshold: f64,
    hasher: MinHasher,
}

/// Why a problem counts as contaminated.
#[derive(Debug, Clone, PartialEq)]
pub struct Contamination {
    pub benchmark: String,
    pub benchmark_id: String,
    /// `ngram` (a shared word n-gram) or `minhash` (similarity at or above the threshold).
    pub how: &'static str,
    pub similarity: f64,
}

impl ContaminationIndex {
    pub fn new(
        problems: Vec<(String, String, String)>,
        ngram_words: usize,
        ngram_chars: usize,
        hasher: MinHasher,
        threshold: f64,
    ) -> Self {
        let word_sets: Vec<HashSet<u64>> =
            problems.par_iter().map(|(_, _, t)| word_shingles(t, ngram_words)).collect();
        let char_sets: Vec<HashSet<u64>> =
            problems.par_iter().map(|(_, _, t)| char_shingles(t, ngram_chars)).collect();
        let keys: Vec<Vec<u64>> =
            char_sets.par_iter().map(|s| hasher.band_keys(&hasher.signature(s))).collect();
        let mut word_ngrams = HashMap::new();
        for (i, set) in word_sets.iter().enumerate() {
            for &h in set {
                word_ngrams.entry(h).or_insert(i);
            }
        }
        let mut buckets: HashMap<u64, Vec<usize>> = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            for &key in k {
                buckets.entry(key).or_default().push(i);
            }
        }
        let sources = problems.into_iter().map(|(b, id, _)| (b, id)).collect();
        Self {
            word_ngrams,
            sources,
            char_shingles: char_sets,
            buckets,
            ngram_words,
            ngram_chars,
            threshold,
            hasher,
        }
    }

    pub fn check(&self, text: &str) -> Option<Contamination> {
        let found = |i: usize, how, similarity| {
            let (benchmark, id) = &self.sources[i];
            Contamination { benchmark: benchmark.clone(), benchmark_id: id.clone(), how, similarity }
        };
        if let Some(&i) = word_shingles(text, self.ngram_words).iter().find_map(|h| self.word_ngrams.get(h)) {
            let sim = jaccard(&char_shingles(text, self.ngram_chars), &self.char_shingles[i]);
            return Some(found(i, "ngram", sim));
        }
        let shingles = char_shingles(text, self.ngram_chars);
        let keys = self.hasher.band_keys(&self.hasher.signature(&shingles));
        let candidates: BTreeSet<usize> =
            keys.iter().filter_map(|k| self.buckets.get(k)).flatten().copied().collect();
        candidates
            .into_iter()
            .map(|i| (i, jaccard(&shingles, &self.char_shingles[i])))
            .filter(|&(_, j)| j >= self.threshold)
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(i, j)| found(i, "minhash", j))
    }
}

#[cfg(test)]
mod tests;
