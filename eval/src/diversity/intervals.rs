//! Diversity with bootstrap intervals, on any set of items (all generated items, as the paper
//! measures, or the kept ones), and the difference between two strategies' sets.
//!
//! Each replicate resamples the items with replacement. distinct-n is a mean over items, so a
//! replicate is the weighted mean. ROUGE-L and semantic diversity are means over *pairs of
//! different items* (U-statistics): a replicate weighs pair (i, j) by w_i·w_j and leaves out the
//! pairs of an item with its own copies, which would otherwise pull every replicate towards
//! "identical" and bias the interval. A difference between strategies resamples each set on its
//! own (they are different items) and takes the percentile interval of the replicate
//! differences. The quadratic measures use the first `max_pairwise` items (the generator's
//! order, so an unbiased sample).

use serde::Serialize;

/// A measure, its percentile interval and how many items it rests on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Measured {
    pub value: f64,
    pub ci: [f64; 2],
    pub n: usize,
}

/// The measures of one set, with the replicates kept for differences.
#[derive(Debug, Clone)]
pub struct DiversityEstimate {
    /// `(name, point value, replicate values, items)`, e.g. `("semantic", 41.2, [...], 200)`.
    pub measures: Vec<(&'static str, f64, Vec<f64>, usize)>,
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

/// Multiplicities of `n` items drawn `n` times with replacement.
fn weights(n: usize, state: &mut u64) -> Vec<f64> {
    let mut w = vec![0.0; n];
    for _ in 0..n {
        w[(splitmix(state) % n as u64) as usize] += 1.0;
    }
    w
}

fn item_mean(values: &[f64], w: &[f64]) -> f64 {
    let total: f64 = w.iter().sum();
    values.iter().zip(w).map(|(v, w)| v * w).sum::<f64>() / total.max(1e-12)
}

/// Mean of `pair[i][j]` (i < j) weighted by w_i·w_j.
fn pair_mean(pair: &[Vec<f64>], w: &[f64]) -> f64 {
    let (mut sum, mut weight) = (0.0, 0.0);
    for i in 0..pair.len() {
        if w[i] == 0.0 {
            continue;
        }
        for j in i + 1..pair.len() {
            let ww = w[i] * w[j];
            sum += ww * pair[i][j];
            weight += ww;
        }
    }
    if weight == 0.0 { f64::NAN } else { sum / weight }
}

fn upper(n: usize, f: impl Fn(usize, usize) -> f64) -> Vec<Vec<f64>> {
    (0..n).map(|i| (0..n).map(|j| if j > i { f(i, j) } else { 0.0 }).collect()).collect()
}

/// distinct-1/2/3 (%), pairwise ROUGE-L (%) and, with embeddings of the same texts, the
/// paper's semantic diversity, each with its replicates.
pub fn estimate(texts: &[&str], embeddings: Option<&[Vec<f32>]>, r: Resampling) -> DiversityEstimate {
    let mut state = r.seed ^ 0xD1CE_5EED;
    let mut measures = Vec::new();
    for (name, n) in [("distinct_1", 1), ("distinct_2", 2), ("distinct_3", 3)] {
        let per: Vec<f64> =
            texts.iter().filter_map(|t| super::distinct_n(&[t], n)).map(|x| 100.0 * x).collect();
        if per.is_empty() {
            continue;
        }
        let all = vec![1.0; per.len()];
        let reps = (0..r.replicates).map(|_| item_mean(&per, &weights(per.len(), &mut state))).collect();
        measures.push((name, item_mean(&per, &all), reps, per.len()));
    }
    let m = texts.len().min(r.max_pairwise);
    if m >= 2 {
        let rouge = upper(m, |i, j| 100.0 * super::rouge_l(texts[i], texts[j]));
        measures.push(pairwise("rouge_l", &rouge, r, &mut state));
        if let Some(e) = embeddings {
            let norms: Vec<f64> =
                e[..m].iter().map(|v| v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt()).collect();
            let sem = upper(m, |i, j| {
                let dot: f64 = e[i].iter().zip(&e[j]).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum();
                100.0 * (1.0 - (dot / (norms[i] * norms[j]).max(1e-12)).max(0.0))
            });
            measures.push(pairwise("semantic", &sem, r, &mut state));
        }
    }
    DiversityEstimate { measures }
}

fn pairwise(
    name: &'static str,
    pair: &[Vec<f64>],
    r: Resampling,
    state: &mut u64,
) -> (&'static str, f64, Vec<f64>, usize) {
    let n = pair.len();
    let value = pair_mean(pair, &vec![1.0; n]);
    let reps =
        (0..r.replicates).map(|_| pair_mean(pair, &weights(n, state))).filter(|x| x.is_finite()).collect();
    (name, value, reps, n)
}

fn percentile(mut xs: Vec<f64>, confidence: f64) -> [f64; 2] {
    xs.retain(|x| x.is_finite());
    if xs.is_empty() {
        return [f64::NAN, f64::NAN];
    }
    xs.sort_by(f64::total_cmp);
    let q = |p: f64| xs[((xs.len() as f64 - 1.0) * p).round() as usize];
    let tail = (1.0 - confidence) / 2.0;
    [q(tail), q(1.0 - tail)]
}

impl DiversityEstimate {
    /// Every measure with its interval.
    pub fn measured(&self, confidence: f64) -> Vec<(&'static str, Measured)> {
        self.measures
            .iter()
            .map(|(name, value, reps, n)| {
                (*name, Measured { value: *value, ci: percentile(reps.clone(), confidence), n: *n })
            })
            .collect()
    }

    /// `self - other` per shared measure, with the interval of the replicate differences.
    pub fn minus(&self, other: &DiversityEstimate, confidence: f64) -> Vec<(&'static str, Measured)> {
        self.measures
            .iter()
            .filter_map(|(name, value, reps, n)| {
                let (_, v2, r2, _) = other.measures.iter().find(|m| m.0 == *name)?;
                let diffs: Vec<f64> = reps.iter().zip(r2).map(|(a, b)| a - b).collect();
                Some((*name, Measured { value: value - v2, ci: percentile(diffs, confidence), n: *n }))
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

    #[test]
    fn identical_items_have_no_pairwise_diversity_and_a_degenerate_interval() {
        let texts = vec!["the same problem text here"; 20];
        let e = estimate(&texts, Some(&vec![vec![1.0, 0.0]; 20]), R);
        assert_eq!(get(&e, "rouge_l").value, 100.0);
        assert_eq!(get(&e, "rouge_l").ci, [100.0, 100.0]);
        assert_eq!(get(&e, "semantic").value, 0.0);
    }

    #[test]
    fn intervals_bracket_the_value_and_separate_different_sets() {
        let varied: Vec<String> = (0..60)
            .map(|i| format!("problem {i} about topic{} with words w{} w{}", i % 7, i * 3, i * 5))
            .collect();
        let collapsed: Vec<String> =
            (0..60).map(|i| format!("find x such that x plus {} equals ten", i % 3)).collect();
        let v: Vec<&str> = varied.iter().map(String::as_str).collect();
        let c: Vec<&str> = collapsed.iter().map(String::as_str).collect();
        let (ev, ec) = (estimate(&v, None, R), estimate(&c, None, R));
        let rv = get(&ev, "rouge_l");
        assert!(rv.ci[0] <= rv.value && rv.value <= rv.ci[1], "{rv:?}");
        let d = ev.minus(&ec, 0.95).into_iter().find(|m| m.0 == "rouge_l").unwrap().1;
        assert!(d.value < 0.0 && d.ci[1] < 0.0, "the varied set overlaps less: {d:?}");
        // Seeded: the same numbers every time.
        assert_eq!(get(&estimate(&v, None, R), "distinct_2"), get(&ev, "distinct_2"));
    }
}
