//! What a primary comparison can detect: the minimum detectable difference (MDD) at the
//! configured power, before the run from stated assumptions (`pipeline validate`), after it
//! from the observed variance (the report). Both use the decision rule's own variance and
//! degrees of freedom ([`super::inference`]); the bar is Holm's first step (`alpha / m`, the
//! smallest level a primary comparison may be tested at) and its last (`alpha`).

use serde::{Deserialize, Serialize};

use super::doc::{Comparison, Power};
use super::inference::{PairedTest, minimum_detectable};
use crate::config::Config;

pub fn observed(record: &Comparison, test: &PairedTest, primary: usize, alpha: f64, power: f64) -> Power {
    Power {
        comparison: record.id.clone(),
        power,
        detectable_first_step: test.minimum_detectable(alpha / primary.max(1) as f64, power),
        detectable_last_step: test.minimum_detectable(alpha, power),
        sd: test.variance(0.0).sqrt(),
        df: test.df.is_finite().then_some(test.df),
        discordance: record.discordance,
    }
}

/// The planned power of one primary comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Planned {
    pub comparison: String,
    pub sd: f64,
    pub df: Option<f64>,
    pub detectable_first_step: f64,
    pub detectable_last_step: f64,
    /// With `report.power.target_points`: the seeds (same problems) and the factor of problems
    /// (same seeds) at which the target is detectable at Holm's first step.
    pub seeds_for_target: Option<usize>,
    pub problems_factor_for_target: Option<f64>,
}

/// The design of a primary comparison, enough to plan it.
struct Design {
    /// `c_k^2 / n_k` summed over the statistic's benchmarks.
    inverse_size: f64,
    seeds: usize,
    /// Sides that were trained (1 against the baseline, else 2).
    trained_sides: usize,
    /// Trained arms of the student (the pooled seed variance's arms).
    arms: usize,
}

/// Variance and degrees of freedom under the assumptions: per-problem disagreement `r`
/// between single runs of the two sides, taken as run-to-run noise that averaging over `S`
/// seeds reduces (`r / S` between two trained arms; against the baseline, evaluated once, half
/// of it stays: `r (1 + 1/S) / 2`); a systematic arm-by-problem disagreement would not average
/// down, so this is optimistic when arms differ problem by problem. Plus a seed effect of `sd`
/// on the statistic per run, pooled over the student's arms.
fn variance(d: &Design, problems_factor: f64, seeds: usize, r: f64, seed_sd: f64) -> (f64, f64) {
    let s = seeds.max(1) as f64;
    let inverse_size = d.inverse_size / problems_factor;
    let per_problem = if d.trained_sides == 2 { r / s } else { r * (1.0 + 1.0 / s) / 2.0 };
    let problems = inverse_size * per_problem;
    if seeds < 2 {
        // One run per arm: the test has no training term (and says so).
        return (problems, f64::INFINITY);
    }
    let m = d.trained_sides as f64 / s;
    let training = m * seed_sd * seed_sd;
    let v = problems + training;
    // The pooled between-run variance of one run's statistic: seed effect plus per-problem noise.
    let between = seed_sd * seed_sd + inverse_size * r / 2.0;
    let df = (d.arms * (seeds - 1)) as f64;
    (v, v * v / ((m * between).powi(2) / df))
}

/// Problems each benchmark will be evaluated on (its size, or `evaluate.subset`).
fn benchmark_sizes(config: &Config) -> Vec<usize> {
    let e = &config.evaluate;
    e.benchmarks
        .iter()
        .map(|b| {
            let n = b.load_embedded().map_or(0, |p| p.len());
            e.subset.map_or(n, |s| s.min(n))
        })
        .collect()
}

/// Every student's primary comparisons, planned from `report.power`.
pub fn planned(config: &Config) -> Vec<Planned> {
    let r = &config.report;
    let alpha = r.alpha();
    let sizes = benchmark_sizes(config);
    let names: Vec<&str> = config.evaluate.benchmarks.iter().map(|b| b.as_str()).collect();
    let seeds = crate::stages::arms::seeds(config).len();
    let arms = crate::stages::arms::sources(config).len();
    let keys: Vec<(String, String, String, String)> = config
        .train
        .students
        .keys()
        .flat_map(|s| {
            super::comparisons::primary_keys(config, s).into_iter().map(move |(a, b, c)| (s.clone(), a, b, c))
        })
        .collect();
    let m = keys.len();
    let w = &r.power;
    let seed_sd = w.seed_sd_points / 100.0;
    keys.into_iter()
        .map(|(student, arm, against, benchmark)| {
            let ks: Vec<usize> = match names.iter().position(|b| *b == benchmark) {
                Some(k) => vec![k],
                None => (0..names.len()).collect(),
            };
            let c = 1.0 / ks.len() as f64;
            let design = Design {
                inverse_size: ks.iter().map(|&k| c * c / sizes[k].max(1) as f64).sum(),
                seeds,
                trained_sides: if against == "baseline" { 1 } else { 2 },
                arms,
            };
            let at = |factor: f64, s: usize, level: f64| {
                let (v, df) = variance(&design, factor, s, w.discordance, seed_sd);
                (minimum_detectable(v, df, level, w.power), v, df)
            };
            let (first, v, df) = at(1.0, design.seeds, alpha / m.max(1) as f64);
            let (last, _, _) = at(1.0, design.seeds, alpha);
            let target = w.target_points.map(|t| t / 100.0);
            let seeds_for_target =
                target.and_then(|t| (2..=200).find(|&s| at(1.0, s, alpha / m.max(1) as f64).0 <= t));
            let problems_factor_for_target = target.and_then(|t| {
                let ok = |f: f64| at(f, design.seeds, alpha / m.max(1) as f64).0 <= t;
                if !ok(1000.0) {
                    return None;
                }
                let (mut lo, mut hi): (f64, f64) = (0.01, 1000.0);
                for _ in 0..100 {
                    let mid = (lo * hi).sqrt();
                    if ok(mid) { hi = mid } else { lo = mid }
                }
                Some(hi)
            });
            Planned {
                comparison: super::comparisons::accuracy_id(&student, &arm, &against, &benchmark),
                sd: v.sqrt(),
                df: df.is_finite().then_some(df),
                detectable_first_step: first,
                detectable_last_step: last,
                seeds_for_target,
                problems_factor_for_target,
            }
        })
        .collect()
}

/// `pipeline validate`'s lines about power.
pub fn describe(config: &Config) -> Vec<String> {
    let plans = planned(config);
    if plans.is_empty() {
        return vec!["no primary comparison (nothing to plan)".into()];
    }
    let r = &config.report;
    let w = &r.power;
    let seeds = crate::stages::arms::seeds(config).len();
    let sizes: Vec<String> = config
        .evaluate
        .benchmarks
        .iter()
        .zip(benchmark_sizes(config))
        .map(|(b, n)| format!("{} {n}", b.as_str()))
        .collect();
    let mut out = vec![format!(
        "{} primary comparison(s), Holm at alpha = {:.3}; assumed: two single runs disagree on {:.0}% of problems \
         (report.power.discordance), seed sd {:.1} points (report.power.seed_sd_points), {} seed(s), {}",
        plans.len(),
        r.alpha(),
        100.0 * w.discordance,
        w.seed_sd_points,
        seeds,
        sizes.join(", ")
    )];
    if seeds < 2 {
        out.push(
            "one seed: the tests cannot count training variance (a good or bad run as a whole), so their \
             false-positive rate is far above alpha when seeds matter (in our simulation at the paper's sizes with a \
             ~1.5-point seed sd: 26% for one null comparison, 42% over six); the numbers below leave the seed \
             effect out; train.seeds = [a, b, c] lets the tests count it"
                .into(),
        );
    }
    out.push(
        "the disagreement is taken as run-to-run noise that more seeds average away; a systematic arm-by-problem \
         disagreement would not, so these figures are optimistic when arms differ problem by problem"
            .into(),
    );
    // Comparisons of the same design plan alike: one line per distinct plan.
    let mut groups: Vec<(&Planned, Vec<&str>)> = Vec::new();
    for p in &plans {
        let same = |q: &Planned| {
            (q.sd, q.df, q.detectable_first_step, q.seeds_for_target, q.problems_factor_for_target)
                == (p.sd, p.df, p.detectable_first_step, p.seeds_for_target, p.problems_factor_for_target)
        };
        match groups.iter_mut().find(|(q, _)| same(q)) {
            Some((_, ids)) => ids.push(&p.comparison),
            None => groups.push((p, vec![&p.comparison])),
        }
    }
    for (p, ids) in groups {
        let who = match ids.as_slice() {
            [one] => (*one).to_owned(),
            [first, .., last] => format!("each of {} ({first} ... {last})", ids.len()),
            [] => String::new(),
        };
        let mut line = format!(
            "{who}: sd {:.2} points{}; detectable with {:.0}% power: {:.1} points at Holm's first step (alpha/{}), {:.1} at alpha",
            100.0 * p.sd,
            p.df.map_or(String::new(), |d| format!(" (t, {d:.0} df)")),
            100.0 * w.power,
            100.0 * p.detectable_first_step,
            plans.len(),
            100.0 * p.detectable_last_step,
        );
        if let Some(t) = w.target_points {
            let reach = if p.detectable_first_step * 100.0 <= t {
                "detectable".to_owned()
            } else {
                format!(
                    "not detectable at the first step; {}, or {}",
                    p.seeds_for_target.map_or("no number of seeds up to 200 would".to_owned(), |s| format!(
                        "{s} seeds would"
                    )),
                    p.problems_factor_for_target.map_or("no benchmark size would".to_owned(), |f| format!(
                        "{f:.1}x the problems would"
                    ))
                )
            };
            line.push_str(&format!("; target {t:.1} points: {reach}"));
        }
        out.push(line);
    }
    out
}
