//! Diversity with bootstrap intervals and standard errors, on any set of items (all generated
//! items, as the paper measures, or the kept ones).
//!
//! Items come in clusters: the items of one generation conversation (VS-Multi's k items of a
//! call, the turns of a multi-turn conversation) are not independent, so each replicate
//! resamples whole clusters with replacement. distinct-n is a mean over items, so a replicate
//! is the ratio of the drawn clusters' sums to their item counts. ROUGE-L and semantic
//! diversity are means over *pairs of different items* (U-statistics): a replicate weighs a
//! pair across two clusters by the product of their multiplicities and a pair inside one
//! cluster by the cluster's multiplicity, and leaves out the pairs between two copies of one
//! cluster (and so of an item with its own copy), which would otherwise pull every replicate
//! towards "alike" (replicate means then match the value; see the tests). The quadratic
//! measures use a seeded random subset of whole clusters of at most `max_pairwise` items.
//! Fewer than two clusters give a value but no interval and no standard error.
//!
//! Replicate `r` draws from its own stream (`seed`, `r`), so the result does not depend on
//! how many threads compute it.

use rayon::prelude::*;
use serde::Serialize;

/// A measure, its percentile interval and bootstrap standard error (absent below two
/// clusters), and how many items and clusters it rests on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Measured {
    pub value: f64,
    pub ci: Option<[f64; 2]>,
    pub se: Option<f64>,
    pub n: usize,
    pub clusters: usize,
}

/// One measure of a set: `(name, point value, replicates, items, clusters)`.
pub type Measure = (&'static str, f64, Vec<f64>, usize, usize);

/// The measures of one set, with their replicates.
#[derive(Debug, Clone)]
pub struct DiversityEstimate {
    pub measures: Vec<Measure>,
    /// Items the pairwise measures used (a subset when capped).
    pub pairwise_items: usize,
}

/// Options: replicates, confidence, seed, cap on the items of pairwise measures.
#[derive(Debug, Clone, Copy)]
pub struct Resampling {
    pub replicates: usize,
    pub confidence: f64,
    pub seed: u64,
    pub max_pairwise: usize,
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Multiplicities of `g` clusters drawn `g` times with replacement, for replicate `r`.
fn draw(g: usize, seed: u64, r: usize) -> Vec<f64> {
    let mut state = seed ^ (r as u64).wrapping_mul(0xA076_1D64_78BD_642F);
    splitmix(&mut state);
    let mut w = vec![0.0; g];
    for _ in 0..g {
        w[(splitmix(&mut state) % g as u64) as usize] += 1.0;
    }
    w
}

/// Labels as dense indices `0..g` (in order of first appearance), and g.
fn dense<T: Eq + std::hash::Hash>(labels: impl IntoIterator<Item = T>) -> (Vec<usize>, usize) {
    let mut seen: std::collections::HashMap<T, usize> = std::collections::HashMap::new();
    let idx = labels
        .into_iter()
        .map(|l| {
            let next = seen.len();
            *seen.entry(l).or_insert(next)
        })
        .collect();
    (idx, seen.len())
}

fn replicates(r: Resampling, clusters: usize, salt: u64, f: impl Fn(&[f64]) -> f64 + Sync) -> Vec<f64> {
    if clusters < 2 {
        return Vec::new();
    }
    (0..r.replicates)
        .into_par_iter()
        .map(|i| f(&draw(clusters, r.seed ^ salt, i)))
        .filter(|x| x.is_finite())
        .collect()
}

/// Sums and counts of the pair values between clusters: `[a][b]` (a <= b) over the pairs of
/// different items with one in `a` and one in `b`. A replicate then costs clusters^2, not
/// items^2 (VS-Multi's conversations hold ~15 items each).
struct ClusterPairs {
    sums: Vec<Vec<f64>>,
    counts: Vec<Vec<f64>>,
    /// `g / (g - 1)`: two different clusters are drawn together `(g - 1) / g` times on average
    /// (a multinomial of g draws over g clusters), a cluster once; this keeps every pair's
    /// expected weight at 1, so replicates centre on the value.
    across: f64,
}

impl ClusterPairs {
    fn new(pair: &[Vec<f64>], cluster: &[usize], g: usize) -> Self {
        let (mut sums, mut counts) = (vec![vec![0.0; g]; g], vec![vec![0.0; g]; g]);
        for i in 0..pair.len() {
            for j in i + 1..pair.len() {
                let (a, b) = (cluster[i].min(cluster[j]), cluster[i].max(cluster[j]));
                sums[a][b] += pair[i][j];
                counts[a][b] += 1.0;
            }
        }
        Self { sums, counts, across: if g > 1 { g as f64 / (g - 1) as f64 } else { 1.0 } }
    }

    /// The mean over every pair of different items.
    fn value(&self) -> f64 {
        let total = |m: &[Vec<f64>]| m.iter().flatten().sum::<f64>();
        let count = total(&self.counts);
        if count == 0.0 { f64::NAN } else { total(&self.sums) / count }
    }

    /// The mean pair value of a replicate that drew cluster `a` `w[a]` times. Pairs across two
    /// clusters count `w[a] w[b] g/(g-1)` times; pairs inside a cluster count once per drawn copy
    /// (`w[a]`). A pair between two copies of one cluster is left out: it would be a pair of
    /// different draws scored with a within-conversation similarity, pulling replicates towards
    /// "alike" (and an item is never paired with its own copy).
    fn mean(&self, w: &[f64]) -> f64 {
        let (mut sum, mut weight) = (0.0, 0.0);
        for (a, &wa) in w.iter().enumerate() {
            if wa == 0.0 {
                continue;
            }
            let (sums, counts) = (&self.sums[a], &self.counts[a]);
            sum += wa * sums[a];
            weight += wa * counts[a];
            // Branch-free over the later clusters (an undrawn one weighs 0), so it vectorizes.
            let (mut s, mut c) = (0.0, 0.0);
            for b in a + 1..w.len() {
                s += w[b] * sums[b];
                c += w[b] * counts[b];
            }
            sum += self.across * wa * s;
            weight += self.across * wa * c;
        }
        if weight == 0.0 { f64::NAN } else { sum / weight }
    }
}

fn upper(items: &[usize], f: impl Fn(usize, usize) -> f64) -> Vec<Vec<f64>> {
    let n = items.len();
    (0..n).map(|i| (0..n).map(|j| if j > i { f(items[i], items[j]) } else { 0.0 }).collect()).collect()
}

/// A seeded random subset of whole clusters holding at most `cap` items (all when they fit):
/// item indices, in their original order.
fn subset(cluster: &[usize], clusters: usize, cap: usize, seed: u64) -> Vec<usize> {
    if cluster.len() <= cap {
        return (0..cluster.len()).collect();
    }
    let mut size = vec![0usize; clusters];
    for &c in cluster {
        size[c] += 1;
    }
    let mut state = seed ^ 0x5EED_5EB5;
    let mut order: Vec<(u64, usize)> = (0..clusters).map(|c| (splitmix(&mut state), c)).collect();
    order.sort_unstable();
    let (mut chosen, mut total) = (vec![false; clusters], 0);
    for (_, c) in order {
        if total + size[c] <= cap {
            chosen[c] = true;
            total += size[c];
        }
    }
    (0..cluster.len()).filter(|&i| chosen[cluster[i]]).collect()
}

/// distinct-1/2/3 (%), pairwise ROUGE-L (%) and, with embeddings of the same texts, the
/// paper's semantic diversity, each with its replicates. `clusters[i]` names the generation
/// conversation of `texts[i]`.
pub fn estimate(
    texts: &[&str],
    clusters: &[&str],
    embeddings: Option<&[Vec<f32>]>,
    r: Resampling,
) -> DiversityEstimate {
    assert_eq!(texts.len(), clusters.len(), "one cluster label per text");
    let (cluster, g) = dense(clusters);
    let mut measures = Vec::new();
    for (salt, (name, n)) in [("distinct_1", 1), ("distinct_2", 2), ("distinct_3", 3)].into_iter().enumerate()
    {
        // Items with at least n words, with their cluster.
        let per: Vec<(f64, usize)> = texts
            .iter()
            .zip(&cluster)
            .filter_map(|(t, &c)| super::distinct_n(&[t], n).map(|x| (100.0 * x, c)))
            .collect();
        if per.is_empty() {
            continue;
        }
        let (mut sums, mut counts) = (vec![0.0; g], vec![0.0; g]);
        for &(v, c) in &per {
            sums[c] += v;
            counts[c] += 1.0;
        }
        let used = counts.iter().filter(|&&x| x > 0.0).count();
        let value = sums.iter().sum::<f64>() / per.len() as f64;
        let reps = if used < 2 {
            Vec::new()
        } else {
            replicates(r, g, salt as u64, |w| {
                let (s, c) = w
                    .iter()
                    .enumerate()
                    .fold((0.0, 0.0), |(s, c), (k, wk)| (s + wk * sums[k], c + wk * counts[k]));
                s / c
            })
        };
        measures.push((name, value, reps, per.len(), used));
    }
    let items = subset(&cluster, g, r.max_pairwise, r.seed);
    let m = items.len();
    if m >= 2 {
        let (sub_cluster, sub_g) = dense(items.iter().map(|&i| cluster[i]));
        let rouge = upper(&items, |i, j| 100.0 * super::rouge_l(texts[i], texts[j]));
        measures.push(pairwise("rouge_l", &rouge, &sub_cluster, sub_g, r, 11));
        if let Some(e) = embeddings {
            let norms: Vec<f64> =
                e.iter().map(|v| v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt()).collect();
            let sem = upper(&items, |i, j| {
                let dot: f64 = e[i].iter().zip(&e[j]).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum();
                100.0 * (1.0 - (dot / (norms[i] * norms[j]).max(1e-12)).max(0.0))
            });
            measures.push(pairwise("semantic", &sem, &sub_cluster, sub_g, r, 13));
        }
    }
    DiversityEstimate { measures, pairwise_items: m }
}

fn pairwise(
    name: &'static str,
    pair: &[Vec<f64>],
    cluster: &[usize],
    g: usize,
    r: Resampling,
    salt: u64,
) -> Measure {
    let pairs = ClusterPairs::new(pair, cluster, g);
    let value = pairs.value();
    let reps = replicates(r, g, salt, |w| pairs.mean(w));
    (name, value, reps, pair.len(), g)
}

fn percentile(xs: &[f64], confidence: f64) -> [f64; 2] {
    let mut xs = xs.to_vec();
    xs.sort_by(f64::total_cmp);
    let q = |p: f64| xs[((xs.len() as f64 - 1.0) * p).round() as usize];
    let tail = (1.0 - confidence) / 2.0;
    [q(tail), q(1.0 - tail)]
}

fn sd(xs: &[f64]) -> f64 {
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (xs.len().max(2) - 1) as f64).sqrt()
}

impl DiversityEstimate {
    /// Every measure with its interval and standard error (none below two clusters).
    pub fn measured(&self, confidence: f64) -> Vec<(&'static str, Measured)> {
        self.measures
            .iter()
            .map(|(name, value, reps, n, clusters)| {
                let resampled = reps.len() >= 2;
                (
                    *name,
                    Measured {
                        value: *value,
                        ci: resampled.then(|| percentile(reps, confidence)),
                        se: resampled.then(|| sd(reps)),
                        n: *n,
                        clusters: *clusters,
                    },
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: Resampling = Resampling { replicates: 400, confidence: 0.95, seed: 7, max_pairwise: 300 };

    fn get(e: &DiversityEstimate, name: &str) -> Measured {
        e.measured(0.95).into_iter().find(|m| m.0 == name).unwrap().1
    }

    fn own(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c{i}")).collect()
    }

    fn refs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }

    #[test]
    fn identical_items_have_no_pairwise_diversity() {
        let texts = vec!["the same problem text here"; 20];
        let labels = own(20);
        let e = estimate(&texts, &refs(&labels), Some(&vec![vec![1.0, 0.0]; 20]), R);
        assert_eq!(get(&e, "rouge_l").value, 100.0);
        let [lo, hi] = get(&e, "rouge_l").ci.unwrap();
        assert!((lo - 100.0).abs() < 1e-9 && (hi - 100.0).abs() < 1e-9);
        assert!(get(&e, "rouge_l").se.unwrap() < 1e-9);
        assert_eq!(get(&e, "semantic").value, 0.0);
    }

    #[test]
    fn intervals_bracket_the_value_and_are_seeded() {
        let varied: Vec<String> = (0..60)
            .map(|i| format!("problem {i} about topic{} with words w{} w{}", i % 7, i * 3, i * 5))
            .collect();
        let v: Vec<&str> = varied.iter().map(String::as_str).collect();
        let labels = own(60);
        let ev = estimate(&v, &refs(&labels), None, R);
        let rv = get(&ev, "rouge_l");
        let [lo, hi] = rv.ci.unwrap();
        assert!(lo <= rv.value && rv.value <= hi, "{rv:?}");
        assert!(rv.se.unwrap() > 0.0);
        assert_eq!(get(&estimate(&v, &refs(&labels), None, R), "distinct_2"), get(&ev, "distinct_2"));
    }

    #[test]
    fn one_cluster_gets_a_value_but_no_interval() {
        let texts = ["find the sum of two numbers", "compute the area of a circle", "solve for x in a line"];
        let e = estimate(&texts, &["c0", "c0", "c0"], None, R);
        for (_, m) in e.measured(0.95) {
            assert!(m.value.is_finite());
            assert_eq!((m.ci, m.se, m.clusters), (None, None, 1), "{m:?}");
        }
    }

    #[test]
    fn resampling_whole_clusters_widens_the_interval_of_correlated_items() {
        // 20 conversations of 5 items; how repetitive an item is depends on its conversation.
        let texts: Vec<String> = (0..100)
            .map(|i| {
                let c = i / 5;
                format!("{} end{i} fin{i}", format!("w{c} ").repeat(c % 5 + 1))
            })
            .collect();
        let t: Vec<&str> = texts.iter().map(String::as_str).collect();
        let by_conversation: Vec<String> = (0..100).map(|i| format!("c{}", i / 5)).collect();
        let items = own(100);
        // distinct-n is a mean over items: the items of one conversation move together.
        let clustered = get(&estimate(&t, &refs(&by_conversation), None, R), "distinct_1");
        let independent = get(&estimate(&t, &refs(&items), None, R), "distinct_1");
        assert!((clustered.value - independent.value).abs() < 1e-9);
        assert_eq!(clustered.clusters, 20);
        assert!(clustered.se.unwrap() > 1.5 * independent.se.unwrap(), "{clustered:?} {independent:?}");
    }

    #[test]
    fn cluster_sums_weigh_pairs_as_the_items_would() {
        // Item-level definition: pair (i, j), i < j, weighted w_c(i) w_c(j) across clusters and
        // w_c(i) inside one.
        let n = 9;
        let cluster = [0, 0, 1, 2, 2, 2, 3, 1, 0];
        let pair: Vec<Vec<f64>> =
            (0..n).map(|i| (0..n).map(|j| ((i * 7 + j * 3) % 11) as f64).collect()).collect();
        let pairs = ClusterPairs::new(&pair, &cluster, 4);
        for w in [[1.0, 1.0, 1.0, 1.0], [2.0, 0.0, 1.0, 1.0], [0.0, 3.0, 0.0, 1.0], [4.0, 0.0, 0.0, 0.0]] {
            let (mut sum, mut weight) = (0.0, 0.0);
            for i in 0..n {
                for j in i + 1..n {
                    // g = 4 clusters: across-cluster pairs get 4/3.
                    let ww = if cluster[i] == cluster[j] {
                        w[cluster[i]]
                    } else {
                        4.0 / 3.0 * w[cluster[i]] * w[cluster[j]]
                    };
                    sum += ww * pair[i][j];
                    weight += ww;
                }
            }
            assert!((pairs.mean(&w) - sum / weight).abs() < 1e-12, "{w:?}");
        }
    }

    #[test]
    fn replicates_of_clustered_pairs_centre_on_the_value() {
        // 26 conversations of 15 items: alike inside a conversation (similarity 35), less across
        // (20). Replicates must not drift towards the within-conversation similarity.
        let n = 26 * 15;
        let cluster: Vec<usize> = (0..n).map(|i| i / 15).collect();
        let pair: Vec<Vec<f64>> = (0..n)
            .map(|i| (0..n).map(|j| if cluster[i] == cluster[j] { 35.0 } else { 20.0 }).collect())
            .collect();
        let r = Resampling { replicates: 2000, confidence: 0.95, seed: 3, max_pairwise: 400 };
        let (_, value, reps, _, _) = pairwise("x", &pair, &cluster, 26, r, 1);
        let mean = reps.iter().sum::<f64>() / reps.len() as f64;
        assert!((mean - value).abs() < 0.1 * sd(&reps), "value {value}, replicate mean {mean}");
        let [lo, hi] = percentile(&reps, 0.95);
        assert!(lo < value && value < hi, "[{lo}, {hi}] around {value}");
    }

    #[test]
    fn the_pairwise_subset_takes_whole_clusters_up_to_the_cap() {
        let cluster: Vec<usize> = (0..100).map(|i| i / 10).collect();
        let chosen = subset(&cluster, 10, 35, 1);
        assert_eq!(chosen.len(), 30);
        let mut taken: Vec<usize> = chosen.iter().map(|&i| cluster[i]).collect();
        taken.dedup();
        assert_eq!(taken.len(), 3);
        assert_ne!(subset(&cluster, 10, 35, 2), chosen, "another seed, another subset");
        assert_eq!(subset(&cluster, 10, 1000, 1).len(), 100);
    }
}
