//! Simulated experiments for the report's decision rule: how often it calls a difference
//! "resolved" when there is none (family-wise, over the primary family, Holm), how often it
//! finds a planted one, and how often its interval covers the truth. The settings are the
//! paper's: three benchmarks of the real sizes (MATH500 500, OlympiadBench 675, Minerva 272),
//! Direct and six other strategies, three training seeds with a seed effect.
//!
//! Each problem has a difficulty `L_i ~ N(-0.85, 2^2)` on the logit scale (mean accuracy 37 %,
//! two runs of the same model disagree on ~26 % of problems); each training run of an arm gets
//! an effect `u ~ N(0, tau^2)` shared by all benchmarks plus `N(0, tau_b^2)` per benchmark;
//! a run solves problem i with probability `sigmoid(L_i + u + shift_arm)`. Under the null every
//! arm has the same per-problem probabilities (`shift = 0`).

use super::inference::{Outcomes, PairedTest, TrainingTerm, TrainingVariance, weights};
use super::multiplicity::holm;
use crate::config::TrainingVarianceMode;
use vs_core::seeds::{mix, unit};

struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 = mix(self.0, 0x51u64);
        unit(self.0)
    }

    /// Box-Muller.
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform().max(1e-300), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

pub struct Setting {
    pub sizes: Vec<usize>,
    pub arms: usize,
    pub seeds: usize,
    pub tau: f64,
    pub tau_benchmark: f64,
    /// Logit shift of each arm (arm 0 is Direct).
    pub shift: Vec<f64>,
    /// Each arm's seed effect is this multiple of `tau` (and `tau_benchmark`): arms that
    /// vary unalike.
    pub tau_scale: Vec<f64>,
}

impl Setting {
    /// The paper's sizes, Direct and six strategies, three seeds, seed effect 0.1 + 0.05.
    pub fn paper(shift: Vec<f64>) -> Self {
        Setting {
            sizes: PAPER_SIZES.to_vec(),
            arms: 7,
            seeds: 3,
            tau: 0.1,
            tau_benchmark: 0.05,
            shift,
            tau_scale: vec![1.0; 7],
        }
    }
}

pub const PAPER_SIZES: [usize; 3] = [500, 675, 272];
const MEAN_LOGIT: f64 = -0.85;
const SD_LOGIT: f64 = 2.0;

/// One synthetic experiment: `[arm]` outcomes.
fn experiment(s: &Setting, rng: &mut Rng) -> Vec<Outcomes> {
    let difficulty: Vec<Vec<f64>> =
        s.sizes.iter().map(|&n| (0..n).map(|_| MEAN_LOGIT + SD_LOGIT * rng.normal()).collect()).collect();
    (0..s.arms)
        .map(|a| {
            let scale = s.tau_scale[a];
            let common: Vec<f64> = (0..s.seeds).map(|_| scale * s.tau * rng.normal()).collect();
            difficulty
                .iter()
                .map(|problems| {
                    (0..s.seeds)
                        .map(|r| {
                            let u = common[r] + scale * s.tau_benchmark * rng.normal() + s.shift[a];
                            problems.iter().map(|l| rng.uniform() < sigmoid(l + u)).collect()
                        })
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// The expected gain in accuracy of a logit shift over the difficulty distribution.
pub fn expected_gain(shift: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, Normal};
    let normal = Normal::standard();
    let grid = 20_000;
    (0..grid)
        .map(|i| {
            let l = MEAN_LOGIT + SD_LOGIT * normal.inverse_cdf((i as f64 + 0.5) / grid as f64);
            sigmoid(l + shift) - sigmoid(l)
        })
        .sum::<f64>()
        / grid as f64
}

/// The logit shift whose expected gain is `gain`.
pub fn shift_for(gain: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, 3.0);
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        if expected_gain(mid) < gain { lo = mid } else { hi = mid }
    }
    (lo + hi) / 2.0
}

/// Outcome of many experiments: per experiment, the primary comparisons (each arm against arm
/// 0 on the benchmark average) decided with Holm at `alpha`.
#[derive(Debug, Default)]
pub struct Rates {
    /// Share of experiments with at least one true-null comparison resolved.
    pub familywise_false: f64,
    /// Per arm 1.., share resolved.
    pub resolved: Vec<f64>,
    /// Per arm 1.., share of 95 % intervals (unadjusted) that hold the expected difference.
    pub covered: Vec<f64>,
}

/// The rates of both ways of counting training variance, on the same experiments:
/// `[pooled, per_comparison]`.
pub fn run(s: &Setting, experiments: usize, seed: u64, alpha: f64) -> [Rates; 2] {
    const MODES: [TrainingVarianceMode; 2] =
        [TrainingVarianceMode::Pooled, TrainingVarianceMode::PerComparison];
    let mut rng = Rng(seed);
    let c = weights(s.sizes.len(), None);
    let truth: Vec<f64> = s.shift.iter().map(|&x| expected_gain(x) - expected_gain(s.shift[0])).collect();
    let others = s.arms - 1;
    let mut counts =
        [(0usize, vec![0usize; others], vec![0usize; others]), (0, vec![0; others], vec![0; others])];
    for _ in 0..experiments {
        let arms = experiment(s, &mut rng);
        let refs: Vec<&Outcomes> = arms.iter().collect();
        let pooled = TrainingVariance::pooled(&refs, &c);
        for (mode, (false_any, resolved, covered)) in MODES.iter().zip(counts.iter_mut()) {
            let tests: Vec<PairedTest> = (1..s.arms)
                .map(|a| {
                    let term = match mode {
                        TrainingVarianceMode::Pooled => {
                            pooled.and_then(|p| TrainingTerm::pooled(&p, &[s.seeds, s.seeds]))
                        }
                        TrainingVarianceMode::PerComparison => {
                            TrainingTerm::per_comparison(&[(&arms[a], true), (&arms[0], true)], &c)
                        }
                    };
                    PairedTest::new(&arms[a], &arms[0], &c, term)
                })
                .collect();
            let p: Vec<f64> = tests.iter().map(PairedTest::p).collect();
            let mut any_false = false;
            for (j, (t, d)) in tests.iter().zip(holm(&p, alpha)).enumerate() {
                if d.resolved {
                    resolved[j] += 1;
                    any_false |= s.shift[j + 1] == s.shift[0];
                }
                let [lo, hi] = t.interval(0.05);
                covered[j] += usize::from(lo <= truth[j + 1] && truth[j + 1] <= hi);
            }
            *false_any += usize::from(any_false);
        }
    }
    let share = |x: usize| x as f64 / experiments as f64;
    counts.map(|(false_any, resolved, covered)| Rates {
        familywise_false: share(false_any),
        resolved: resolved.into_iter().map(share).collect(),
        covered: covered.into_iter().map(share).collect(),
    })
}

/// Two Monte Carlo standard errors of a 5 % rate over `n` experiments.
fn slack(n: usize) -> f64 {
    2.0 * (0.05f64 * 0.95 / n as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2,000 null experiments at the paper's sizes: the family-wise rate of a false "resolved"
    /// among the six primary comparisons stays at or below 5 % (plus two Monte Carlo standard
    /// errors), each way of counting training variance; then a planted 5-point gain for one
    /// strategy, whose power is printed (README).
    #[test]
    fn familywise_error_under_the_null_and_power_for_a_planted_five_points() {
        let [pooled, own] = run(&Setting::paper(vec![0.0; 7]), 2000, 17, 0.05);
        for (name, r) in [("pooled", &pooled), ("per comparison", &own)] {
            eprintln!(
                "null, 2000 experiments, {name}: family-wise false resolved {:.4}; per comparison {:?}; coverage {:?}",
                r.familywise_false, r.resolved, r.covered
            );
            assert!(r.familywise_false <= 0.05 + slack(2000), "{name}: {r:?}");
            assert!(r.covered.iter().all(|&c| c >= 0.95 - slack(2000)), "{name}: {r:?}");
        }
        let shift = shift_for(0.05);
        assert!((expected_gain(shift) - 0.05).abs() < 1e-6);
        let mut shifts = vec![0.0; 7];
        shifts[6] = shift;
        let [pooled, own] = run(&Setting::paper(shifts), 1000, 23, 0.05);
        for (name, r) in [("pooled", &pooled), ("per comparison", &own)] {
            eprintln!(
                "planted +5 points (logit shift {shift:.3}) on one of six, 1000 experiments, {name}: power {:.3}; \
                 family-wise false resolved among the five nulls {:.3}; 95% coverage {:.3}",
                r.resolved[5], r.familywise_false, r.covered[5]
            );
            assert!(r.covered[5] >= 0.95 - slack(1000), "{name}: {r:?}");
        }
        assert!(pooled.resolved[5] > 0.4, "pooling finds a real gain often: {pooled:?}");
        assert!(own.resolved[5] < pooled.resolved[5], "two arms' own seeds give less power");
    }

    /// Arms that do not vary alike (Direct's seed effect twice the others'): pooling
    /// understates Direct's variance and resolves too often; per-comparison variances do not.
    #[test]
    fn when_direct_varies_twice_as_much_only_per_comparison_variances_hold_the_rate() {
        let mut s = Setting::paper(vec![0.0; 7]);
        s.tau_scale[0] = 2.0;
        let [pooled, own] = run(&s, 1000, 29, 0.05);
        eprintln!(
            "null, Direct's seed effect 2x, 1000 experiments: family-wise false resolved pooled {:.3}, per comparison {:.3}",
            pooled.familywise_false, own.familywise_false
        );
        assert!(own.familywise_false <= 0.05 + slack(1000), "{own:?}");
        assert!(pooled.familywise_false > 0.06, "the failure the README states: {pooled:?}");
    }

    /// One training run per arm at the paper's sizes with the same seed effect: the tests
    /// cannot see it, and resolve null comparisons far too often (what the report's ¹ says).
    #[test]
    fn one_seed_cannot_see_the_seed_effect() {
        let mut s = Setting::paper(vec![0.0; 7]);
        s.seeds = 1;
        let [r, _] = run(&s, 1000, 31, 0.05);
        let single =
            run(&Setting { arms: 2, shift: vec![0.0; 2], tau_scale: vec![1.0; 2], ..s }, 1000, 37, 0.05)[0]
                .resolved[0];
        eprintln!(
            "null, one seed, seed effect as above, 1000 experiments: family-wise false resolved {:.3} (six comparisons), \
             {single:.3} (one comparison)",
            r.familywise_false
        );
        assert!(r.familywise_false > 0.2 && single > 0.1, "{r:?} {single}");
    }

    /// The default run's size: 20 problems per benchmark, one training run per arm, one
    /// comparison; without a seed effect (what one run can be valid for), and with one.
    #[test]
    fn size_at_the_default_runs_twenty_problems_per_benchmark() {
        let s = Setting {
            sizes: vec![20, 20, 20],
            arms: 2,
            seeds: 1,
            tau: 0.0,
            tau_benchmark: 0.0,
            shift: vec![0.0; 2],
            tau_scale: vec![1.0; 2],
        };
        let r = &run(&s, 4000, 5, 0.05)[0];
        let with = &run(&Setting { tau: 0.3, tau_benchmark: 0.15, ..s }, 4000, 7, 0.05)[0];
        eprintln!(
            "n = 20 x 3, one run, 4000 null experiments: false resolved {:.4} without a seed effect, {:.4} with 0.3 + 0.15",
            r.resolved[0], with.resolved[0]
        );
        assert!(r.resolved[0] <= 0.05 + slack(4000), "{r:?}");
    }

    /// Two arms of two seeds: the pooled run variance rests on two degrees of freedom.
    #[test]
    fn few_degrees_of_freedom_for_the_run_effect() {
        let s = Setting {
            arms: 2,
            seeds: 2,
            tau: 0.2,
            tau_benchmark: 0.1,
            shift: vec![0.0; 2],
            tau_scale: vec![1.0; 2],
            ..Setting::paper(vec![0.0; 7])
        };
        let [r, _] = run(&s, 2000, 41, 0.05);
        eprintln!(
            "two arms x two seeds, seed effect 0.2 + 0.1, 2000 null experiments: false resolved {:.4}",
            r.resolved[0]
        );
        assert!(r.resolved[0] <= 0.05 + slack(2000), "{r:?}");
    }
}
