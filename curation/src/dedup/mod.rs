//! Duplicate detection over problem texts: exact (sha256 of a normalised text), near
//! duplicates with MinHash + LSH over character n-grams (true Jaccard checked on every candidate
//! pair), and benchmark contamination (13-gram word overlap, plus MinHash similarity).
//!
//! The MinHash is one-permutation hashing with optimal densification (Shrivastava, ICML 2017):
//! each shingle is hashed once into one of `bands x rows` bins, and an empty bin borrows a
//! non-empty one's value along a probe sequence shared by all texts, so two texts' values in a
//! bin agree with probability equal to their Jaccard similarity, as with `bands x rows`
//! independent permutations, at the cost of one hash per shingle instead of one per shingle and
//! permutation. The bands and rows come from the threshold by datasketch's rule (minimise the
//! weighted areas of false positives below it and false negatives above it, see [`lsh_params`]),
//! so the recall/work trade-off is a stated weight, not a fixed 20 x 13.
//!
//! Which record survives a cluster is decided by id (the smallest), so the result does not
//! depend on input order.

pub mod well_formed;

use std::collections::{BTreeMap, BTreeSet, HashMap};

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
    vs_core::digest::sha256_hex(normalize(text).as_bytes())
}

fn hash64(bytes: &[u8]) -> u64 {
    // FNV-1a, then a splitmix64 finaliser for well-spread bits.
    let h = bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    finalize(h)
}

fn finalize(mut h: u64) -> u64 {
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// A text's shingle hashes, sorted and distinct.
pub type Shingles = Vec<u64>;

fn sorted(mut v: Vec<u64>) -> Shingles {
    v.sort_unstable();
    v.dedup();
    v
}

/// Hashes of the character n-grams of the normalised text (the whole text when shorter).
pub fn char_shingles(text: &str, n: usize) -> Shingles {
    let norm = normalize(text);
    let bytes = norm.as_bytes();
    let bounds: Vec<usize> = norm.char_indices().map(|(i, _)| i).chain([bytes.len()]).collect();
    let chars = bounds.len() - 1;
    if chars <= n {
        return vec![hash64(bytes)];
    }
    sorted((0..=chars - n).map(|i| hash64(&bytes[bounds[i]..bounds[i + n]])).collect())
}

/// Hashes of the word n-grams of the normalised text.
pub fn word_shingles(text: &str, n: usize) -> Shingles {
    let norm = normalize(text);
    // Words are separated by exactly one space after normalising: an n-gram is a slice.
    let starts: Vec<usize> = [0].into_iter().chain(norm.match_indices(' ').map(|(i, _)| i + 1)).collect();
    if norm.is_empty() || starts.len() < n || n == 0 {
        return Vec::new();
    }
    let end = |w: usize| if w + 1 < starts.len() { starts[w + 1] - 1 } else { norm.len() };
    sorted((0..=starts.len() - n).map(|i| hash64(&norm.as_bytes()[starts[i]..end(i + n - 1)])).collect())
}

/// Jaccard similarity of two sorted, distinct shingle lists.
pub fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    let (mut i, mut j, mut inter) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                inter += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = a.len() + b.len() - inter;
    if union == 0 { 1.0 } else { inter as f64 / union as f64 }
}

/// LSH banding for a Jaccard `threshold` with at most `num_perm` signature values: the
/// `(bands, rows)` minimising `fp_weight x` (probability of becoming a candidate, integrated
/// over similarities below the threshold) `+ fn_weight x` (probability of being missed,
/// integrated above it), with `fp_weight = 1 - fn_weight`. datasketch's `_optimal_param`, the
/// same rule and the same weights' meaning; its default is `fn_weight = 0.5`.
pub fn lsh_params(threshold: f64, num_perm: usize, fn_weight: f64) -> (usize, usize) {
    let candidate = |s: f64, b: usize, r: usize| 1.0 - (1.0 - s.powi(r as i32)).powi(b as i32);
    let integrate = |f: &dyn Fn(f64) -> f64, lo: f64, hi: f64| {
        // Composite Simpson, 200 intervals: far finer than the curves' features.
        let n = 200;
        let h = (hi - lo) / n as f64;
        let inner: f64 = (1..n).map(|i| f(lo + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 }).sum();
        (f(lo) + f(hi) + inner) * h / 3.0
    };
    let mut best = (f64::INFINITY, (1, 1));
    for b in 1..=num_perm {
        for r in 1..=num_perm / b {
            let fp = integrate(&|s| candidate(s, b, r), 0.0, threshold);
            let fneg = integrate(&|s| 1.0 - candidate(s, b, r), threshold, 1.0);
            let error = (1.0 - fn_weight) * fp + fn_weight * fneg;
            if error < best.0 {
                best = (error, (b, r));
            }
        }
    }
    best.1
}

/// MinHash signatures of `bands x rows` values by one-permutation hashing with optimal
/// densification (see the module docs).
pub struct MinHasher {
    pub bands: usize,
    pub rows: usize,
    seed: u64,
}

impl MinHasher {
    pub fn new(bands: usize, rows: usize, seed: u64) -> Self {
        Self { bands: bands.max(1), rows: rows.max(1), seed: finalize(seed ^ 0x5851_f42d_4c95_7f2d) }
    }

    pub fn len(&self) -> usize {
        self.bands * self.rows
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn signature(&self, shingles: &[u64]) -> Vec<u64> {
        let k = self.len();
        let mut sig = vec![u64::MAX; k];
        for &s in shingles {
            let h = finalize(s ^ self.seed);
            // The bins are ranges of h, so a bin's minimum is a permutation's minimum within it,
            // and values from different bins never coincide.
            let bin = ((u128::from(h) * k as u128) >> 64) as usize;
            if h < sig[bin] {
                sig[bin] = h;
            }
        }
        if shingles.is_empty() {
            return sig;
        }
        let empty: Vec<usize> = (0..k).filter(|&j| sig[j] == u64::MAX).collect();
        for j in empty {
            // The same probe sequence for every text: two texts borrow from the same bin
            // whenever it is non-empty in both.
            let mut attempt = 0u64;
            loop {
                attempt += 1;
                let probe = finalize(self.seed ^ ((j as u64) << 32) ^ attempt);
                let from = ((u128::from(probe) * k as u128) >> 64) as usize;
                let value = sig[from];
                // Borrow only from bins filled by the text itself, never from a borrowed value.
                if value != u64::MAX && ((u128::from(value) * k as u128) >> 64) as usize == from {
                    sig[j] = value;
                    break;
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
                rows.iter().fold(finalize(band as u64 ^ self.seed), |h, &r| finalize(h ^ r).wrapping_add(r))
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

/// Buckets bigger than this link each member to the first one only (checked pairs grow
/// linearly, not quadratically, in a bucket of copies of one text).
const ALL_PAIRS_UP_TO: usize = 64;

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
    // Only the band keys are kept for every text; shingles are recomputed for the few texts
    // in candidate pairs, so memory stays at a few words per text.
    let keys: Vec<Vec<u64>> =
        texts.par_iter().map(|t| hasher.band_keys(&hasher.signature(&char_shingles(t, ngram)))).collect();
    let per_band: Vec<Vec<(usize, usize)>> = (0..hasher.bands)
        .into_par_iter()
        .map(|band| {
            let mut column: Vec<(u64, u32)> =
                keys.iter().enumerate().map(|(i, k)| (k[band], i as u32)).collect();
            column.sort_unstable();
            let mut pairs = Vec::new();
            for run in column.chunk_by(|a, b| a.0 == b.0).filter(|r| r.len() > 1) {
                let members: Vec<usize> = run.iter().map(|&(_, i)| i as usize).collect();
                if members.len() <= ALL_PAIRS_UP_TO {
                    for (x, &a) in members.iter().enumerate() {
                        pairs.extend(members[x + 1..].iter().map(|&b| (a.min(b), a.max(b))));
                    }
                } else {
                    pairs.extend(members[1..].iter().map(|&b| (members[0].min(b), members[0].max(b))));
                }
            }
            pairs
        })
        .collect();
    let mut candidates: Vec<(usize, usize)> = per_band.into_iter().flatten().collect();
    candidates.par_sort_unstable();
    candidates.dedup();
    let involved: BTreeSet<usize> = candidates.iter().flat_map(|&(a, b)| [a, b]).collect();
    let involved: Vec<usize> = involved.into_iter().collect();
    let shingles: HashMap<usize, Shingles> =
        involved.par_iter().map(|&i| (i, char_shingles(texts[i], ngram))).collect();
    let edges: Vec<(usize, usize)> = candidates
        .par_iter()
        .filter(|&&(a, b)| jaccard(&shingles[&a], &shingles[&b]) >= threshold)
        .copied()
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
    for &(a, b) in &edges {
        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
        if ra != rb {
            parent[ra.max(rb)] = ra.min(rb);
        }
    }
    let mut clusters: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &i in &involved {
        let r = find(&mut parent, i);
        clusters.entry(r).or_default().push(i);
    }
    let mut out: Vec<Duplicate> = clusters
        .par_iter()
        .filter(|(_, m)| m.len() > 1)
        .flat_map_iter(|(_, members)| {
            let &keep = members.iter().min_by_key(|&&i| ids[i]).expect("non-empty");
            let shingles = &shingles;
            members.iter().filter(move |&&m| m != keep).map(move |&m| Duplicate {
                dropped: m,
                kept: keep,
                similarity: jaccard(&shingles[&m], &shingles[&keep]),
            })
        })
        .collect();
    out.sort_by(|a, b| ids[a.dropped].cmp(ids[b.dropped]));
    out
}

/// Benchmark problems indexed for contamination checks.
pub struct ContaminationIndex {
    word_ngrams: HashMap<u64, usize>,
    /// (benchmark name, problem id) per indexed problem.
    pub sources: Vec<(String, String)>,
    char_shingles: Vec<Shingles>,
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
        let word_sets: Vec<Shingles> =
            problems.par_iter().map(|(_, _, t)| word_shingles(t, ngram_words)).collect();
        let char_sets: Vec<Shingles> =
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
