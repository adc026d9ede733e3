//! The report's statistics: accuracies with bootstrap intervals over problems *and* training
//! seeds, paired differences between two models on the same problems, and the exact McNemar
//! test.
//!
//! Outcomes are `[benchmark][seed][problem]` booleans, problems in the same order for every
//! model (the same ids). A replicate resamples each benchmark's problems with replacement —
//! one draw shared by both models of a comparison, which is what pairs it — and each model's
//! seeds with replacement (a model of one seed, like the baseline, keeps it); a model's
//! accuracy on a benchmark is then the mean over its drawn seeds and problems. The interval is
//! the percentile interval of the replicates; the average is the mean over benchmarks, as in
//! the paper's tables. So the interval holds both sources of variance: which problems the
//! benchmark happens to have, and which seed training happened to use.

use serde::Serialize;

use crate::seeds::{mix, unit};

/// `[benchmark][seed][problem]`.
pub type Outcomes = Vec<Vec<Vec<bool>>>;

/// A value with its interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub value: f64,
    pub ci: [f64; 2],
}

impl Interval {
    /// The interval excludes 0: the sign of the difference is resolved at this confidence.
    pub fn resolved(&self) -> bool {
        self.ci[0] > 0.0 || self.ci[1] < 0.0
    }
}

/// Replicates and the point estimates for one model or one difference.
struct Draws {
    per_benchmark: Vec<Vec<f64>>,
    average: Vec<f64>,
}

fn percentile(mut xs: Vec<f64>, confidence: f64, value: f64) -> Interval {
    xs.sort_by(f64::total_cmp);
    let q = |p: f64| xs.get(((xs.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(value);
    let tail = (1.0 - confidence) / 2.0;
    Interval { value, ci: [q(tail), q(1.0 - tail)] }
}

/// Mean accuracy over seeds and problems.
pub fn accuracy(seeds: &[Vec<bool>]) -> f64 {
    let (hits, total) =
        seeds.iter().fold((0usize, 0usize), |(h, t), s| (h + s.iter().filter(|&&c| c).count(), t + s.len()));
    if total == 0 { 0.0 } else { hits as f64 / total as f64 }
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = mix(self.0, 0x0b00_7577);
        (unit(self.0) * n as f64) as usize % n.max(1)
    }
}

/// Replicates of `sign_a · acc(a) + sign_b · acc(b)` (b optional): one model's accuracy, or a
/// paired difference when both are given.
fn draw(a: &Outcomes, b: Option<&Outcomes>, samples: usize, seed: u64) -> Draws {
    let mut rng = Rng(seed);
    let benchmarks = a.len();
    let mut per_benchmark = vec![Vec::with_capacity(samples); benchmarks];
    let mut average = Vec::with_capacity(samples);
    let mut picks: Vec<usize> = Vec::new();
    for _ in 0..samples {
        let mut total = 0.0;
        for (k, slot) in per_benchmark.iter_mut().enumerate() {
            let n = a[k].first().map_or(0, Vec::len);
            picks.clear();
            picks.extend((0..n).map(|_| rng.below(n)));
            let model = |o: &Vec<Vec<bool>>, rng: &mut Rng| -> f64 {
                let s = o.len();
                let chosen: Vec<usize> = (0..s).map(|_| rng.below(s)).collect();
                let hits: usize = chosen.iter().map(|&j| picks.iter().filter(|&&i| o[j][i]).count()).sum();
                hits as f64 / (s * n).max(1) as f64
            };
            let mut x = model(&a[k], &mut rng);
            if let Some(b) = b {
                x -= model(&b[k], &mut rng);
            }
            slot.push(x);
            total += x;
        }
        average.push(total / benchmarks.max(1) as f64);
    }
    Draws { per_benchmark, average }
}

/// One model's accuracy per benchmark and on average, with intervals.
pub fn estimate(a: &Outcomes, samples: usize, confidence: f64, seed: u64) -> (Vec<Interval>, Interval) {
    let values: Vec<f64> = a.iter().map(|b| accuracy(b)).collect();
    let avg = values.iter().sum::<f64>() / values.len().max(1) as f64;
    let d = draw(a, None, samples, seed);
    let per =
        d.per_benchmark.into_iter().zip(&values).map(|(xs, &v)| percentile(xs, confidence, v)).collect();
    (per, percentile(d.average, confidence, avg))
}

/// `a - b` on the same problems, per benchmark and on average, with paired intervals.
pub fn paired(
    a: &Outcomes,
    b: &Outcomes,
    samples: usize,
    confidence: f64,
    seed: u64,
) -> (Vec<Interval>, Interval) {
    let values: Vec<f64> = a.iter().zip(b).map(|(x, y)| accuracy(x) - accuracy(y)).collect();
    let avg = values.iter().sum::<f64>() / values.len().max(1) as f64;
    let d = draw(a, Some(b), samples, seed);
    let per =
        d.per_benchmark.into_iter().zip(&values).map(|(xs, &v)| percentile(xs, confidence, v)).collect();
    (per, percentile(d.average, confidence, avg))
}

/// Discordant pairs: (a right and b wrong, a wrong and b right).
pub fn discordant(a: &[bool], b: &[bool]) -> (u64, u64) {
    a.iter().zip(b).fold((0, 0), |(x, y), (&p, &q)| (x + u64::from(p && !q), y + u64::from(!p && q)))
}

/// The exact (binomial) two-sided McNemar p-value from the discordant counts: under "no
/// difference" each discordant pair goes either way with probability 1/2.
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    // Sum of C(n, i) / 2^n for i <= k, in logs (n reaches thousands).
    let ln2n = n as f64 * std::f64::consts::LN_2;
    let mut log_c = 0.0f64;
    let mut tail = 0.0f64;
    for i in 0..=k {
        if i > 0 {
            log_c += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        tail += (log_c - ln2n).exp();
    }
    (2.0 * tail).min(1.0)
}

/// McNemar per benchmark and pooled over all (for the average), between seed-matched runs
/// (`a`'s i-th seed against `b`'s i-th, or `b`'s only one); with several seeds, the largest
/// p-value over them (the least favourable run), with the discordant counts it came from.
pub fn mcnemar(a: &Outcomes, b: &Outcomes) -> (Vec<McNemar>, McNemar) {
    let seeds = a.first().map_or(0, Vec::len).max(b.first().map_or(0, Vec::len));
    let mut per: Vec<Option<McNemar>> = vec![None; a.len()];
    let mut pooled: Option<McNemar> = None;
    let worse = |slot: &mut Option<McNemar>, m: McNemar| {
        if slot.is_none_or(|s| m.p > s.p) {
            *slot = Some(m);
        }
    };
    for s in 0..seeds {
        let (mut pb, mut pc) = (0, 0);
        for (k, slot) in per.iter_mut().enumerate() {
            let pick = |o: &Outcomes| o[k].get(s).or(o[k].last()).cloned().unwrap_or_default();
            let (b1, c1) = discordant(&pick(a), &pick(b));
            pb += b1;
            pc += c1;
            worse(slot, McNemar { a_only: b1, b_only: c1, p: mcnemar_exact(b1, c1) });
        }
        worse(&mut pooled, McNemar { a_only: pb, b_only: pc, p: mcnemar_exact(pb, pc) });
    }
    let none = McNemar { a_only: 0, b_only: 0, p: 1.0 };
    (per.into_iter().map(|m| m.unwrap_or(none)).collect(), pooled.unwrap_or(none))
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct McNemar {
    /// Problems only the first model got right.
    pub a_only: u64,
    /// Problems only the second got right.
    pub b_only: u64,
    pub p: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(v: &[bool]) -> Outcomes {
        vec![vec![v.to_vec()]]
    }

    #[test]
    fn mcnemar_matches_hand_computed_binomial_tails() {
        // b = 0, c = 5: 2 · (1/32) = 0.0625.
        assert!((mcnemar_exact(0, 5) - 0.0625).abs() < 1e-12);
        // b = 1, c = 9: 2 · (1 + 10) / 1024.
        assert!((mcnemar_exact(1, 9) - 22.0 / 1024.0).abs() < 1e-12);
        assert_eq!(mcnemar_exact(4, 4), 1.0);
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        // Symmetric in its arguments; large counts stay finite.
        assert_eq!(mcnemar_exact(3, 12), mcnemar_exact(12, 3));
        assert!(mcnemar_exact(1500, 1600) > 0.0 && mcnemar_exact(1500, 1600) < 1.0);
    }

    #[test]
    fn mcnemar_matches_scipy() {
        // scipy.stats.binomtest(min(b, c), b + c, 0.5).pvalue, scipy 1.17.1 (tools/ scratch env).
        let text = include_str!("../../../tests/fixtures/mcnemar_scipy.json");
        let cases: Vec<(u64, u64, f64)> = serde_json::from_str(text).unwrap();
        assert!(cases.len() >= 10);
        for (b, c, p) in cases {
            let ours = mcnemar_exact(b, c);
            assert!((ours - p).abs() <= 1e-9 * p.max(1e-300) + 1e-15, "b={b} c={c}: ours {ours} scipy {p}");
        }
    }

    #[test]
    fn a_paired_interval_resolves_what_unpaired_ones_cannot() {
        // 400 problems, mostly shared outcomes; a is right on 24 problems b misses, b on 4.
        let n = 400;
        let base: Vec<bool> = (0..n).map(|i| i % 2 == 0).collect();
        let mut a = base.clone();
        let mut b = base.clone();
        for i in (1..n).step_by(2).take(24) {
            a[i] = true;
        }
        for i in (1..n).step_by(2).skip(24).take(4) {
            b[i] = true;
        }
        let (ea, eb) = (estimate(&one(&a), 2000, 0.95, 1).1, estimate(&one(&b), 2000, 0.95, 2).1);
        // Unpaired, the intervals overlap ...
        assert!(ea.ci[0] < eb.ci[1]);
        // ... paired, the difference is resolved.
        let (_, d) = paired(&one(&a), &one(&b), 2000, 0.95, 3);
        assert!((d.value - 20.0 / 400.0).abs() < 1e-12);
        assert!(d.resolved() && d.ci[0] > 0.0, "{d:?}");
        let (_, m) = mcnemar(&one(&a), &one(&b));
        assert_eq!((m.a_only, m.b_only), (24, 4));
        assert!(m.p < 0.001);
    }

    #[test]
    fn identical_models_differ_by_exactly_zero_and_seed_variance_widens_intervals() {
        let v: Vec<bool> = (0..200).map(|i| i % 3 == 0).collect();
        let (_, d) = paired(&one(&v), &one(&v), 500, 0.95, 1);
        assert_eq!((d.value, d.ci), (0.0, [0.0, 0.0]));
        assert!(!d.resolved());
        // Two seeds that disagree on many problems: wider than either seed alone.
        let s1: Vec<bool> = (0..200).map(|i| i % 2 == 0).collect();
        let s2: Vec<bool> = (0..200).map(|i| i % 4 == 0).collect();
        let both: Outcomes = vec![vec![s1.clone(), s2.clone()]];
        let (_, with_seeds) = paired(&both, &one(&v), 2000, 0.95, 5);
        let (_, one_seed) = paired(&vec![vec![s1.clone(), s1]], &one(&v), 2000, 0.95, 5);
        assert!((with_seeds.value - (0.375 - accuracy(std::slice::from_ref(&v)))).abs() < 1e-12);
        assert!(with_seeds.ci[1] - with_seeds.ci[0] > one_seed.ci[1] - one_seed.ci[0]);
    }
}
