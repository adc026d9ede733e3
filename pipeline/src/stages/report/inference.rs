//! The report's one decision rule for accuracy: a paired score-type test whose variance has a
//! problem part and a training-run part, and the interval that inverts the same test (so the
//! two cannot disagree).
//!
//! Outcomes are `[benchmark][run][problem]` booleans, problems in the same order for every
//! model. A statistic is a weighted sum of benchmark accuracies, `theta = sum_k c_k acc_k`: one
//! benchmark (`c = 1` there) or the mean of benchmark means (`c_k = 1/K`, the paper's average),
//! so the average is tested exactly as it is estimated. A model's accuracy on a benchmark is the
//! mean over its training runs (seeds) and problems.
//!
//! For `A - B`, with `d_i` the per-problem difference of the run-averaged outcomes and
//! `w_k = (c_k / n_k)^2`:
//!
//! - problem part at a hypothesised difference `delta`:
//!   `V_P(delta) = sum_k w_k [ sum_i (d_i - delta)^2 + 1 + delta^2 ]`. The sum is the paired
//!   (McNemar-type) variance, taken about `delta`: at `delta = 0` with one benchmark and one run
//!   per model it is `b + c`, and `z^2 = (b - c)^2 / (b + c + 1)` is McNemar's asymptotic
//!   statistic (the form Fagerland, Lydersen & Laake, BMC Med Res Methodol 13:91, 2013, found
//!   rarely above its nominal size) with Agresti & Min's (Biometrics 61, 2005) half
//!   pseudo-observation in each discordant cell (the `1 + delta^2`), which keeps the interval of
//!   positive width when two models agree on every problem;
//! - training part `V_T = sigma_T^2 * (1/S_A + 1/S_B)` (a side that was not trained, the
//!   baseline, contributes nothing): `sigma_T^2` is the variance of the statistic from one
//!   training run to the next beyond the per-problem noise, pooled over every trained arm of the
//!   student ([`TrainingVariance`]), a random effect of the run. Per-problem noise of runs is
//!   already in `V_P`; `V_T` adds what moves all problems of a run together (a good or a bad
//!   seed), which no problem-level resampling can see.
//!
//! `z(delta) = (estimate - delta) / sqrt(V_P(delta) + V_T)` is referred to Student's t with the
//! Satterthwaite degrees of freedom of the variance at `delta = 0`, the training part counted
//! with the pooled degrees of freedom (normal when no arm has two runs). The p-value is that of
//! `z(0)`; the interval at level `1 - a` is `{delta : |z(delta)| <= t_{1-a/2}}`, the roots of a
//! quadratic, clipped to `[-1, 1]`. It excludes 0 exactly when `p < a`.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// `[benchmark][run][problem]`.
pub type Outcomes = Vec<Vec<Vec<bool>>>;

/// Degrees of freedom above which Student's t is taken as the normal.
const NORMAL_DF: f64 = 1e7;

/// `P(|T| >= |z|)` for Student's t with `df` degrees of freedom (normal when infinite).
pub fn two_sided_p(z: f64, df: f64) -> f64 {
    if !z.is_finite() {
        return if z.is_nan() { 1.0 } else { 0.0 };
    }
    let tail = if df >= NORMAL_DF {
        Normal::standard().sf(z.abs())
    } else {
        StudentsT::new(0.0, 1.0, df.max(1.0)).expect("valid t").sf(z.abs())
    };
    (2.0 * tail).min(1.0)
}

/// The `1 - alpha/2` quantile: the critical value of a two-sided test at level `alpha`.
pub fn critical(alpha: f64, df: f64) -> f64 {
    let p = 1.0 - alpha / 2.0;
    if df >= NORMAL_DF {
        Normal::standard().inverse_cdf(p)
    } else {
        StudentsT::new(0.0, 1.0, df.max(1.0)).expect("valid t").inverse_cdf(p)
    }
}

/// The one-sided quantile at `power` (for minimum detectable differences).
fn quantile(p: f64, df: f64) -> f64 {
    if df >= NORMAL_DF {
        Normal::standard().inverse_cdf(p)
    } else {
        StudentsT::new(0.0, 1.0, df.max(1.0)).expect("valid t").inverse_cdf(p)
    }
}

/// Weights of a statistic: `c_k` per benchmark.
pub fn weights(benchmarks: usize, only: Option<usize>) -> Vec<f64> {
    match only {
        Some(k) => (0..benchmarks).map(|j| if j == k { 1.0 } else { 0.0 }).collect(),
        None => vec![1.0 / benchmarks.max(1) as f64; benchmarks],
    }
}

fn runs(o: &Outcomes) -> usize {
    o.first().map_or(0, Vec::len)
}

fn problems(o: &Outcomes, k: usize) -> usize {
    o[k].first().map_or(0, Vec::len)
}

/// Per problem, the share of runs that got it right.
fn run_means(o: &Outcomes, k: usize) -> Vec<f64> {
    let s = o[k].len().max(1) as f64;
    (0..problems(o, k)).map(|i| o[k].iter().filter(|run| run[i]).count() as f64 / s).collect()
}

/// The statistic's value for one model: `sum_k c_k acc_k`, runs and problems averaged.
pub fn statistic(o: &Outcomes, c: &[f64]) -> f64 {
    c.iter()
        .enumerate()
        .filter(|(_, ck)| **ck != 0.0)
        .map(|(k, ck)| {
            let m = run_means(o, k);
            ck * m.iter().sum::<f64>() / m.len().max(1) as f64
        })
        .sum()
}

/// The statistic of each run of a model.
fn per_run(o: &Outcomes, c: &[f64]) -> Vec<f64> {
    (0..runs(o))
        .map(|s| {
            c.iter()
                .enumerate()
                .filter(|(_, ck)| **ck != 0.0)
                .map(|(k, ck)| {
                    let run = &o[k][s];
                    ck * run.iter().filter(|&&x| x).count() as f64 / run.len().max(1) as f64
                })
                .sum()
        })
        .collect()
}

/// Residual mean square of the runs x problems table of one benchmark (two-way, no
/// interaction): the per-problem noise of a run once the run's and the problem's means are
/// taken out.
fn residual_mean_square(runs: &[Vec<bool>]) -> f64 {
    let (s, n) = (runs.len(), runs.first().map_or(0, Vec::len));
    if s < 2 || n < 2 {
        return 0.0;
    }
    let y = |r: usize, i: usize| f64::from(u8::from(runs[r][i]));
    let row: Vec<f64> = (0..s).map(|r| (0..n).map(|i| y(r, i)).sum::<f64>() / n as f64).collect();
    let col: Vec<f64> = (0..n).map(|i| (0..s).map(|r| y(r, i)).sum::<f64>() / s as f64).collect();
    let grand = row.iter().sum::<f64>() / s as f64;
    let mut sum = 0.0;
    for (r, row_mean) in row.iter().enumerate() {
        for (i, col_mean) in col.iter().enumerate() {
            let e = y(r, i) - row_mean - col_mean + grand;
            sum += e * e;
        }
    }
    sum / ((s - 1) * (n - 1)) as f64
}

/// How much a statistic moves from one training run to the next beyond per-problem noise: the
/// method-of-moments (ANOVA) estimate of a run random effect, of one arm or pooled over a
/// student's arms (each with its own mean; pooling assumes the arms vary alike).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrainingVariance {
    /// The run effect's variance `sigma_T^2` (0 when the between-run variance does not exceed
    /// what per-problem noise explains).
    pub sigma2: f64,
    /// The between-run variance of the statistic, per-problem noise included.
    pub between: f64,
    /// Its degrees of freedom: `sum (S_a - 1)`.
    pub df: f64,
}

impl TrainingVariance {
    /// One arm's (`None` with fewer than two runs).
    pub fn of_arm(arm: &Outcomes, c: &[f64]) -> Option<Self> {
        Self::pooled(&[arm], c)
    }

    /// Pooled over the arms; `None` when no arm has two runs.
    pub fn pooled(arms: &[&Outcomes], c: &[f64]) -> Option<Self> {
        let (mut between, mut residual, mut df) = (0.0, 0.0, 0usize);
        for arm in arms {
            let s = runs(arm);
            if s < 2 {
                continue;
            }
            let theta = per_run(arm, c);
            let mean = theta.iter().sum::<f64>() / s as f64;
            between += theta.iter().map(|t| (t - mean).powi(2)).sum::<f64>();
            let noise: f64 = c
                .iter()
                .enumerate()
                .filter(|(_, ck)| **ck != 0.0)
                .map(|(k, ck)| ck * ck / problems(arm, k).max(1) as f64 * residual_mean_square(&arm[k]))
                .sum();
            residual += (s - 1) as f64 * noise;
            df += s - 1;
        }
        if df == 0 {
            return None;
        }
        let (between, residual) = (between / df as f64, residual / df as f64);
        Some(Self { sigma2: (between - residual).max(0.0), between, df: df as f64 })
    }
}

/// Bartlett's test that the arms' between-run variances (each [`TrainingVariance::of_arm`])
/// are equal, what pooling assumes: `(statistic, degrees of freedom, p)`; `None` with fewer
/// than two arms of two runs, or a variance of exactly 0.
pub fn heterogeneity(per: &[TrainingVariance]) -> Option<(f64, f64, f64)> {
    if per.len() < 2 || per.iter().any(|v| v.between <= 0.0) {
        return None;
    }
    let n: f64 = per.iter().map(|v| v.df).sum();
    let pooled = per.iter().map(|v| v.df * v.between).sum::<f64>() / n;
    let k = per.len() as f64;
    let stat = (n * pooled.ln() - per.iter().map(|v| v.df * v.between.ln()).sum::<f64>())
        / (1.0 + (per.iter().map(|v| 1.0 / v.df).sum::<f64>() - 1.0 / n) / (3.0 * (k - 1.0)));
    let chi = statrs::distribution::ChiSquared::new(k - 1.0).expect("k >= 2");
    Some((stat, k - 1.0, chi.sf(stat)))
}

/// The training part of a comparison's variance, `V_T`, and what its uncertainty contributes
/// to the Satterthwaite denominator.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrainingTerm {
    pub variance: f64,
    /// `sum_j (coefficient_j * between_j)^2 / df_j` over the variance estimates it uses.
    pub uncertainty: f64,
}

impl TrainingTerm {
    /// From the student's pooled run variance: `sigma_T^2 (1/S_A + 1/S_B)` over the trained
    /// sides (their numbers of runs).
    pub fn pooled(pooled: &TrainingVariance, trained_runs: &[usize]) -> Option<Self> {
        let m: f64 = trained_runs.iter().map(|&s| 1.0 / s.max(1) as f64).sum();
        (m > 0.0).then(|| Self {
            variance: m * pooled.sigma2,
            uncertainty: (m * pooled.between).powi(2) / pooled.df,
        })
    }

    /// `(V_T, Satterthwaite degrees of freedom of V_problems + V_T)` for an optional term, the
    /// problem part taken as exact (`(0, inf)` without one). The run part's uncertainty is that
    /// of the between-run variance: a truncated-at-zero `sigma_T^2` is uncertain, not absent.
    pub fn split(term: Option<Self>, problems: f64) -> (f64, f64) {
        match term {
            Some(t) => {
                let v = problems + t.variance;
                (t.variance, if t.uncertainty > 0.0 { v * v / t.uncertainty } else { f64::INFINITY })
            }
            None => (0.0, f64::INFINITY),
        }
    }

    /// From the two compared arms' own run variances (Welch): `sigma_A^2/S_A + sigma_B^2/S_B`
    /// over the trained sides; `None` when a trained side has one run.
    pub fn per_comparison(sides: &[(&Outcomes, bool)], c: &[f64]) -> Option<Self> {
        let (mut variance, mut uncertainty, mut any) = (0.0, 0.0, false);
        for (o, trained) in sides {
            if !trained {
                continue;
            }
            let v = TrainingVariance::of_arm(o, c)?;
            let s = runs(o) as f64;
            variance += v.sigma2 / s;
            uncertainty += (v.between / s).powi(2) / v.df;
            any = true;
        }
        any.then_some(Self { variance, uncertainty })
    }
}

/// The test of one paired comparison `A - B` on one statistic.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairedTest {
    pub estimate: f64,
    /// `V_P(delta) = quad[0] - 2 quad[1] delta + quad[2] delta^2`.
    quad: [f64; 3],
    /// `V_T`.
    pub training_variance: f64,
    /// Satterthwaite degrees of freedom (`f64::INFINITY`: normal).
    pub df: f64,
    /// Whether `V_T` could be estimated (some arm of the student has two runs).
    pub training_included: bool,
}

impl PairedTest {
    pub fn new(a: &Outcomes, b: &Outcomes, c: &[f64], training: Option<TrainingTerm>) -> Self {
        let mut quad = [0.0; 3];
        let mut estimate = 0.0;
        for (k, &ck) in c.iter().enumerate().filter(|(_, ck)| **ck != 0.0) {
            let (ma, mb) = (run_means(a, k), run_means(b, k));
            let n = ma.len().max(1) as f64;
            let w = (ck / n).powi(2);
            let (mut sum, mut sum2) = (0.0, 0.0);
            for (x, y) in ma.iter().zip(&mb) {
                let d = x - y;
                sum += d;
                sum2 += d * d;
            }
            estimate += ck * sum / n;
            // The +1 and the +1 on delta^2: half a pseudo-problem in each discordant direction.
            quad[0] += w * (sum2 + 1.0);
            quad[1] += w * sum;
            quad[2] += w * (n + 1.0);
        }
        let (training_variance, df) = TrainingTerm::split(training, quad[0]);
        Self { estimate, quad, training_variance, df, training_included: training.is_some() }
    }

    /// `V_P(delta) + V_T`.
    pub fn variance(&self, delta: f64) -> f64 {
        self.quad[0] - 2.0 * self.quad[1] * delta + self.quad[2] * delta * delta + self.training_variance
    }

    /// The problem part of the variance at 0.
    pub fn problem_variance(&self) -> f64 {
        self.quad[0]
    }

    pub fn z(&self, delta: f64) -> f64 {
        (self.estimate - delta) / self.variance(delta).sqrt()
    }

    /// Two-sided p-value of "no difference".
    pub fn p(&self) -> f64 {
        two_sided_p(self.z(0.0), self.df)
    }

    /// `{delta : |z(delta)| <= t_{1-alpha/2}}` within `[-1, 1]`: excludes 0 exactly when
    /// `p() < alpha`.
    pub fn interval(&self, alpha: f64) -> [f64; 2] {
        let q2 = critical(alpha, self.df).powi(2);
        let e = self.estimate;
        // (e - d)^2 = q^2 (V_P(d) + V_T) as a d^2 + b d + c = 0.
        let qa = 1.0 - q2 * self.quad[2];
        let qb = -2.0 * e + 2.0 * q2 * self.quad[1];
        let qc = e * e - q2 * (self.quad[0] + self.training_variance);
        let zero_inside = self.p() >= alpha;
        let clip = |x: f64| x.clamp(-1.0, 1.0);
        let roots = if qa > 0.0 {
            // Convex: negative at d = e, so two roots around it.
            let root = (qb * qb - 4.0 * qa * qc).max(0.0).sqrt();
            [clip((-qb - root) / (2.0 * qa)), clip((-qb + root) / (2.0 * qa))]
        } else if zero_inside {
            // Too few problems for this level (n <~ q^2): the accepted set is unbounded; all of
            // [-1, 1] when 0 is accepted (a superset of what the test accepts there).
            [-1.0, 1.0]
        } else {
            // Else the ray on the estimate's side, which excludes 0 (a line when qa is 0).
            let bound = if qa == 0.0 {
                -qc / qb
            } else {
                let root = (qb * qb - 4.0 * qa * qc).max(0.0).sqrt();
                let (r1, r2) = ((-qb - root) / (2.0 * qa), (-qb + root) / (2.0 * qa));
                if e >= r1.max(r2) { r1.max(r2) } else { r1.min(r2) }
            };
            if e >= bound { [clip(bound), 1.0] } else { [-1.0, clip(bound)] }
        };
        agree_with_p(roots, e, zero_inside)
    }

    /// The smallest true difference this design detects with probability `power` at level
    /// `alpha` (two-sided), from the variance at 0: `(t_{1-alpha/2} + t_power) * sd`.
    pub fn minimum_detectable(&self, alpha: f64, power: f64) -> f64 {
        minimum_detectable(self.variance(0.0), self.df, alpha, power)
    }
}

/// `interval` with 0 inside exactly when `zero_inside` (the p-value is at or above the level):
/// the roots and the p-value are computed apart, and where the two meet at the level they can
/// disagree in the last bit; the p-value decides, and the near end moves to 0 (or just past it).
pub fn agree_with_p([mut lo, mut hi]: [f64; 2], estimate: f64, zero_inside: bool) -> [f64; 2] {
    match (zero_inside, lo <= 0.0 && 0.0 <= hi) {
        (true, false) if lo > 0.0 => lo = 0.0,
        (true, false) => hi = 0.0,
        (false, true) if estimate >= 0.0 => lo = f64::MIN_POSITIVE,
        (false, true) => hi = -f64::MIN_POSITIVE,
        _ => {}
    }
    [lo, hi]
}

/// `(t_{1-alpha/2} + t_power) * sqrt(variance)`.
pub fn minimum_detectable(variance: f64, df: f64, alpha: f64, power: f64) -> f64 {
    (critical(alpha, df) + quantile(power, df)) * variance.max(0.0).sqrt()
}

/// One model's statistic with its interval: Wilson's score interval on the effective sample
/// size (a design-effect adjustment in the spirit of Korn & Graubard 1998, who pair it with
/// Clopper-Pearson), with a t quantile when training runs add variance; the variance counts the problems and,
/// for a trained model, the training runs. Never of zero width, also at 0 % and 100 %.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub value: f64,
    pub ci: [f64; 2],
}

pub fn estimate(o: &Outcomes, c: &[f64], training: Option<TrainingTerm>, confidence: f64) -> Estimate {
    let value = statistic(o, c);
    let mut problem = 0.0;
    // The problems are the sampling units: `1 / sum c_k^2 / n_k` of them (n for one benchmark).
    let mut inverse_size = 0.0;
    for (k, &ck) in c.iter().enumerate().filter(|(_, ck)| **ck != 0.0) {
        let m = run_means(o, k);
        let n = m.len().max(1) as f64;
        let mean = m.iter().sum::<f64>() / n;
        problem += ck * ck / n * m.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        inverse_size += ck * ck / n;
    }
    let (run, df) = TrainingTerm::split(training, problem);
    let variance = problem + run;
    let cap = if inverse_size > 0.0 { 1.0 / inverse_size } else { 1.0 };
    let n_eff = if variance > 0.0 && value > 0.0 && value < 1.0 {
        (value * (1.0 - value) / variance).clamp(1.0, cap)
    } else {
        cap
    };
    let q = critical(1.0 - confidence, df);
    let q2n = q * q / n_eff;
    let centre = (value + q2n / 2.0) / (1.0 + q2n);
    let half = q / (1.0 + q2n) * (value * (1.0 - value) / n_eff + q2n / (4.0 * n_eff)).sqrt();
    // At 0 % (100 %) the bound is exactly 0 (1), not a rounding error away from it.
    let lo = if value <= 0.0 { 0.0 } else { (centre - half).max(0.0) };
    let hi = if value >= 1.0 { 1.0 } else { (centre + half).min(1.0) };
    Estimate { value, ci: [lo, hi] }
}

/// Standard deviation over runs of the statistic (None with one run).
pub fn run_spread(o: &Outcomes, c: &[f64]) -> Option<f64> {
    let theta = per_run(o, c);
    if theta.len() < 2 {
        return None;
    }
    let mean = theta.iter().sum::<f64>() / theta.len() as f64;
    Some((theta.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / (theta.len() - 1) as f64).sqrt())
}

/// Discordant problems of a benchmark between the first runs: (only A right, only B right).
pub fn discordant(a: &Outcomes, b: &Outcomes, k: usize) -> (u64, u64) {
    let (Some(x), Some(y)) = (a[k].first(), b[k].first()) else { return (0, 0) };
    x.iter().zip(y).fold((0, 0), |(p, q), (&u, &v)| (p + u64::from(u && !v), q + u64::from(!u && v)))
}

#[cfg(test)]
mod tests;
