//! Multiplicity: Holm's step-down procedure over the primary comparisons (family-wise error at
//! most `alpha`), Benjamini-Hochberg over the exploratory ones (false discovery rate at most
//! `alpha`, under independence or positive dependence), and for each comparison the level of
//! the interval that agrees with the decision.
//!
//! A comparison is "resolved" when its adjusted p-value is below `alpha`. The interval shown
//! is the test's own interval at level `1 - a`, with `a` chosen so that it excludes 0 exactly
//! when the comparison is resolved:
//! - Holm: `a = alpha / (m - j + 1)` for the j-th smallest p-value if it is resolved, and for
//!   every comparison after the first one that is not, the level at which the procedure
//!   stopped;
//! - Benjamini-Hochberg: `a = R alpha / m` (R resolved, or `alpha / m` when none): Benjamini &
//!   Yekutieli's (JASA 2005) false-coverage-rate intervals.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Adjustment {
    Holm,
    BenjaminiHochberg,
}

impl Adjustment {
    pub fn describe(self) -> &'static str {
        match self {
            Adjustment::Holm => "Holm (family-wise error)",
            Adjustment::BenjaminiHochberg => "Benjamini-Hochberg (false discovery rate)",
        }
    }
}

/// One comparison's decision.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Holm-adjusted p-value or Benjamini-Hochberg q-value.
    pub p_adjusted: f64,
    /// The level `a` of the interval shown (its confidence is `1 - a`).
    pub interval_alpha: f64,
    pub resolved: bool,
}

/// Indices of `p` from smallest to largest (ties in input order).
fn order(p: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..p.len()).collect();
    idx.sort_by(|&i, &j| p[i].total_cmp(&p[j]).then(i.cmp(&j)));
    idx
}

pub fn adjust(p: &[f64], alpha: f64, how: Adjustment) -> Vec<Decision> {
    match how {
        Adjustment::Holm => holm(p, alpha),
        Adjustment::BenjaminiHochberg => benjamini_hochberg(p, alpha),
    }
}

/// The largest float below `alpha`.
fn below(alpha: f64) -> f64 {
    f64::from_bits(alpha.to_bits() - 1)
}

/// The adjusted p-value agreeing with the decision to the last bit: the decision compares raw
/// p-values with the levels (as the intervals do), the adjusted value multiplies instead, and the
/// two can round apart exactly at the boundary.
fn agreeing(adjusted: f64, resolved: bool, alpha: f64) -> f64 {
    if resolved { adjusted.min(below(alpha)) } else { adjusted.max(alpha) }
}

pub fn holm(p: &[f64], alpha: f64) -> Vec<Decision> {
    let m = p.len();
    let mut out = vec![Decision { p_adjusted: 1.0, interval_alpha: alpha, resolved: false }; m];
    let mut running: f64 = 0.0;
    let mut stopped: Option<f64> = None;
    for (j, &i) in order(p).iter().enumerate() {
        let step = alpha / (m - j) as f64;
        running = running.max(((m - j) as f64 * p[i]).min(1.0));
        // Resolved while every smaller p-value (and this one) is below its step's level.
        if stopped.is_none() && p[i] >= step {
            stopped = Some(step);
        }
        let resolved = stopped.is_none();
        out[i] = Decision {
            p_adjusted: agreeing(running, resolved, alpha),
            interval_alpha: stopped.unwrap_or(step),
            resolved,
        };
    }
    out
}

pub fn benjamini_hochberg(p: &[f64], alpha: f64) -> Vec<Decision> {
    let m = p.len();
    let idx = order(p);
    let level = |rank: usize| alpha * rank as f64 / m as f64;
    // R: the largest rank whose p-value is below its level; the R smallest are resolved.
    let resolved = (1..=m).rev().find(|&rank| p[idx[rank - 1]] < level(rank)).unwrap_or(0);
    let mut q = vec![1.0; m];
    let mut running: f64 = 1.0;
    for (j, &i) in idx.iter().enumerate().rev() {
        running = running.min((m as f64 * p[i] / (j + 1) as f64).min(1.0));
        q[i] = running;
    }
    let interval_alpha = level(resolved.max(1));
    let mut out = vec![Decision { p_adjusted: 1.0, interval_alpha, resolved: false }; m];
    for (rank, &i) in idx.iter().enumerate() {
        let resolved = rank < resolved;
        out[i] = Decision { p_adjusted: agreeing(q[i], resolved, alpha), interval_alpha, resolved };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holm_matches_its_definition_and_levels_agree_with_decisions() {
        // p sorted: 0.001, 0.01, 0.02, 0.04; m = 4: 0.004, 0.03, 0.04, 0.04.
        let p = [0.04, 0.001, 0.02, 0.01];
        let d = holm(&p, 0.05);
        let adj: Vec<f64> = d.iter().map(|x| x.p_adjusted).collect();
        let want = [0.04, 0.004, 0.04, 0.03];
        for (a, w) in adj.iter().zip(want) {
            assert!((a - w).abs() < 1e-12, "{adj:?}");
        }
        assert!(d.iter().all(|x| x.resolved));
        // Each resolved comparison's raw p is below its interval level.
        for (x, &pi) in d.iter().zip(&p) {
            assert!(pi < x.interval_alpha, "{x:?} {pi}");
        }
        // A stop: 0.001 (x4 = 0.004) resolved, 0.03 (x3 = 0.09) not, 0.031 not.
        let p = [0.001, 0.03, 0.031, 0.5];
        let d = holm(&p, 0.05);
        assert_eq!(d.iter().map(|x| x.resolved).collect::<Vec<_>>(), [true, false, false, false]);
        for (x, &pi) in d.iter().zip(&p) {
            assert_eq!(pi < x.interval_alpha, x.resolved, "{x:?} {pi}");
        }
    }

    #[test]
    fn benjamini_hochberg_q_values_and_levels() {
        // m = 5, p = 0.011, 0.021, 0.031, 0.041, 0.5: m p / j = 0.055, 0.0525, 0.05167, 0.05125,
        // 0.5, so q = 0.05125 for the first four (the running minimum from the largest).
        let p = [0.5, 0.011, 0.041, 0.021, 0.031];
        let d = benjamini_hochberg(&p, 0.05);
        let q: Vec<f64> = d.iter().map(|x| x.p_adjusted).collect();
        for (a, w) in q.iter().zip([0.5, 0.05125, 0.05125, 0.05125, 0.05125]) {
            assert!((a - w).abs() < 1e-12, "{q:?}");
        }
        // No q below alpha: nothing resolved, and the level is alpha/m.
        assert!(d.iter().all(|x| !x.resolved));
        assert!((d[0].interval_alpha - 0.01).abs() < 1e-12);
        let p = [0.5, 0.001, 0.039, 0.02, 0.03];
        let d = benjamini_hochberg(&p, 0.05);
        let resolved: Vec<bool> = d.iter().map(|x| x.resolved).collect();
        assert_eq!(resolved, [false, true, true, true, true], "{d:?}");
        for (x, &pi) in d.iter().zip(&p) {
            assert_eq!(pi < x.interval_alpha, x.resolved, "{x:?} {pi}");
        }
    }

    #[test]
    fn decisions_agree_to_the_last_bit_at_the_boundary() {
        // 19 x (0.05 / 19) rounds to just below 0.05, while 0.05 / 19 is not below itself.
        let p = vec![0.05 / 19.0; 19];
        for how in [Adjustment::Holm, Adjustment::BenjaminiHochberg] {
            for (x, &pi) in adjust(&p, 0.05, how).iter().zip(&p) {
                assert_eq!(x.resolved, x.p_adjusted < 0.05, "{how:?} {x:?}");
                assert_eq!(x.resolved, pi < x.interval_alpha, "{how:?} {x:?}");
            }
        }
        // And across many families whose p-values sit on the levels.
        for m in 1..60 {
            for rank in 1..=m {
                let p = vec![0.05 * rank as f64 / m as f64; m];
                let q = vec![0.05 / (m - rank + 1) as f64; m];
                for family in [&p, &q] {
                    for how in [Adjustment::Holm, Adjustment::BenjaminiHochberg] {
                        for (x, &pi) in adjust(family, 0.05, how).iter().zip(family.iter()) {
                            assert_eq!(x.resolved, x.p_adjusted < 0.05);
                            assert_eq!(x.resolved, pi < x.interval_alpha);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn decisions_and_levels_agree_on_random_families() {
        let mut state = 11u64;
        for m in 1..40 {
            for _ in 0..50 {
                let p: Vec<f64> = (0..m)
                    .map(|_| {
                        state = vs_core::seeds::mix(state, 1);
                        vs_core::seeds::unit(state).powi(3)
                    })
                    .collect();
                for how in [Adjustment::Holm, Adjustment::BenjaminiHochberg] {
                    for (x, &pi) in adjust(&p, 0.05, how).iter().zip(&p) {
                        assert_eq!(x.resolved, x.p_adjusted < 0.05);
                        assert_eq!(pi < x.interval_alpha, x.resolved, "{how:?} {p:?}");
                        assert!(x.p_adjusted >= pi - 1e-15);
                    }
                }
            }
        }
    }
}
