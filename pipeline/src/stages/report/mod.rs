//! The report stage: `report/report.json` (a [`doc::ReportDoc`]) and `report/report.md`,
//! rendered from it. It answers "does data from strategy X beat Direct (and no fine-tuning), by
//! how much, and how sure are we?", with one decision rule per comparison:
//!
//! - accuracy differences: a paired score-type test whose variance counts the problems and the
//!   training runs (seeds as a random effect, pooled over the student's arms), its interval
//!   the inversion of the same test ([`inference`]);
//! - diversity differences: bootstrap standard errors over generation conversations and a
//!   normal reference (the dedup stage resamples);
//! - families: the primary comparisons (`report.primary`, by default each strategy against
//!   Direct on the benchmark average) under Holm, every other comparison exploratory under
//!   Benjamini-Hochberg ([`multiplicity`]). "resolved" means the adjusted p-value is below
//!   `alpha = 1 - report.confidence`, and the interval shown is the one at the level that
//!   agrees with that decision.

pub mod comparisons;
pub mod data;
pub mod doc;
pub mod grading;
pub mod inference;
pub mod markdown;
pub mod multiplicity;
pub mod plots;
pub mod power;
#[cfg(test)]
mod simulation;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use super::arms::{Source, seeds, sources};
use super::evaluate::EvalRecord;
use super::{Stage, StageContext, StageError, StageOutput};
use crate::config::{Config, PrimaryComparison, TrainingVarianceMode};
use crate::manifest::Manifest;
use comparisons::{MEASURES, accuracy_id, primary_keys};
use data::read_manifest;
use doc::{
    Accuracy, Comparison, Family, FamilyName, Headline, Kind, ReportDoc, Row, Seeds, Summary,
    TrainingVarianceNote, Variance,
};
use inference::{Outcomes, PairedTest, TrainingVariance, weights};
use multiplicity::Adjustment;
use vs_core::StageName;
use vs_core::jsonl::read_jsonl;

pub struct Report;

/// This stage's version: 4 since one decision rule, families and seeds as a random effect.
pub const VERSION: u32 = 4;

/// Outcomes of one evaluation target folder, per benchmark, in the order of `ids`.
fn load_target(dir: &Path, benchmarks: &[&str], ids: &[Vec<String>]) -> Result<Vec<Vec<bool>>, StageError> {
    let mut out = Vec::new();
    for (b, wanted) in benchmarks.iter().zip(ids) {
        let path = dir.join(format!("{b}.jsonl"));
        let records: Vec<EvalRecord> = read_jsonl(&path)?;
        let by_id: BTreeMap<&str, bool> = records.iter().map(|r| (r.id.as_str(), r.correct)).collect();
        let mut v = Vec::with_capacity(wanted.len());
        for id in wanted {
            match by_id.get(id.as_str()) {
                Some(&c) => v.push(c),
                None => {
                    return Err(StageError::Inconsistent {
                        path,
                        message: format!(
                            "no record for problem {id}, which other targets were graded on; \
                             rerun `evaluate` so every model is compared on the same problems"
                        ),
                    });
                }
            }
        }
        if by_id.len() != wanted.len() {
            return Err(StageError::Inconsistent {
                message: format!(
                    "{} problems where the other targets have {}; rerun `evaluate`",
                    by_id.len(),
                    wanted.len()
                ),
                path,
            });
        }
        out.push(v);
    }
    Ok(out)
}

/// The problem ids of each benchmark, from the first target's files (sorted).
fn problem_ids(dir: &Path, benchmarks: &[&str]) -> Result<Vec<Vec<String>>, StageError> {
    benchmarks
        .iter()
        .map(|b| {
            let records: Vec<EvalRecord> = read_jsonl(&dir.join(format!("{b}.jsonl")))?;
            let mut ids: Vec<String> = records.into_iter().map(|r| r.id).collect();
            ids.sort();
            ids.dedup();
            Ok(ids)
        })
        .collect()
}

/// `[seed][problem]` per benchmark -> `[benchmark][seed][problem]`.
fn by_benchmark(per_seed: Vec<Vec<Vec<bool>>>) -> Outcomes {
    let benchmarks = per_seed.first().map_or(0, Vec::len);
    (0..benchmarks).map(|k| per_seed.iter().map(|s| s[k].clone()).collect()).collect()
}

/// One evaluated model of a student: the baseline or a source's runs.
struct Target {
    label: String,
    source: Option<Source>,
    seeds: Vec<u64>,
    outcomes: Outcomes,
}

/// A comparison before multiplicity: its record (decision fields still empty) and its test.
struct Pending {
    record: Comparison,
    test: Tested,
}

enum Tested {
    Accuracy(PairedTest),
    /// A difference with a bootstrap standard error, normal reference.
    Normal {
        estimate: f64,
        se: f64,
    },
    /// No test possible; the record's note says why.
    Untestable,
}

impl Tested {
    fn p(&self) -> Option<f64> {
        match self {
            Tested::Accuracy(t) => Some(t.p()),
            Tested::Normal { estimate, se } => Some(inference::two_sided_p(estimate / se, f64::INFINITY)),
            Tested::Untestable => None,
        }
    }

    fn interval(&self, alpha: f64) -> Option<[f64; 2]> {
        match self {
            Tested::Accuracy(t) => Some(t.interval(alpha)),
            Tested::Normal { estimate, se } => {
                let q = inference::critical(alpha, f64::INFINITY);
                let zero_inside = self.p().is_some_and(|p| p >= alpha);
                Some(inference::agree_with_p([estimate - q * se, estimate + q * se], *estimate, zero_inside))
            }
            Tested::Untestable => None,
        }
    }
}

/// A statistic: one benchmark (its index) or the average.
type Stat = Option<usize>;

fn stat_name(stat: Stat, benchmarks: &[&str]) -> String {
    stat.map_or(PrimaryComparison::AVERAGE.to_owned(), |k| benchmarks[k].to_owned())
}

fn diversity_id(measure: &str, items: &str, arm: &str) -> String {
    format!("diversity: {measure} ({items} items), {arm} - direct")
}

impl Stage for Report {
    fn name(&self) -> StageName {
        StageName::Report
    }

    fn upstream(&self, config: &Config) -> Vec<StageName> {
        if config.train.data.is_some() {
            vec![StageName::Train, StageName::Evaluate]
        } else {
            StageName::FLOW.into_iter().filter(|&s| s != StageName::Report).collect()
        }
    }

    fn version(&self) -> u32 {
        VERSION
    }

    fn config_slice(&self, id: crate::identity::Identify<'_>) -> Result<Value, StageError> {
        let c = id.config;
        // What the report reads and how it labels it: benchmarks, arms, seeds, students.
        Ok(json!({ "report": c.report, "seed": c.run.seed, "benchmarks": c.evaluate.benchmarks,
                   "strategies": crate::stages::arms::origin_names(c), "curation": c.verify.curation,
                   "train_seeds": seeds(c), "students": c.train.students.keys().collect::<Vec<_>>(),
                   "baseline": c.evaluate.baseline, "custom_data": c.train.data.is_some() }))
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutput, StageError> {
        let config = ctx.config;
        let root = ctx.run_dir.root();
        let r = &config.report;
        let alpha = r.alpha();
        let benchmarks: Vec<&str> = config.evaluate.benchmarks.iter().map(|b| b.as_str()).collect();
        let train_seeds = seeds(config);
        let dedup = read_manifest(root, "dedup");

        let mut pending: Vec<Pending> = Vec::new();
        let mut students = BTreeMap::new();
        let mut training_included = false;
        let mut diagnostics = Vec::new();
        for student in config.train.students.keys() {
            let Some(targets) = load_student(config, root, student, &benchmarks, &train_seeds)? else {
                continue;
            };
            let trained: Vec<&Outcomes> =
                targets.iter().filter(|t| t.source.is_some()).map(|t| &t.outcomes).collect();
            let stats: Vec<Stat> = (0..benchmarks.len()).map(Some).chain(std::iter::once(None)).collect();
            let training: BTreeMap<Stat, Option<TrainingVariance>> = stats
                .iter()
                .map(|&s| (s, TrainingVariance::pooled(&trained, &weights(benchmarks.len(), s))))
                .collect();
            training_included |= training.values().any(Option::is_some);
            diagnostics.push(diagnostic(config, student, &targets, &training, benchmarks.len()));
            let mut rows = Vec::new();
            for t in &targets {
                rows.push(row(config, t, &benchmarks, &training));
            }
            // The comparisons: each arm against the baseline and against Direct of its
            // curation, per benchmark and on average; then primary ones not among those.
            let mut keys: Vec<(String, String, Stat)> = Vec::new();
            for t in targets.iter().filter(|t| t.source.is_some()) {
                if targets.iter().any(|b| b.label == "baseline") {
                    keys.extend(stats.iter().map(|&s| (t.label.clone(), "baseline".to_owned(), s)));
                }
                if let Some(Source::Arm(arm)) = &t.source
                    && !arm.origin.is_direct()
                {
                    let direct = format!("direct/{}", arm.curation.as_str());
                    if targets.iter().any(|d| d.label == direct) {
                        keys.extend(stats.iter().map(|&s| (t.label.clone(), direct.clone(), s)));
                    }
                }
            }
            let primary = primary_keys(config, student);
            for (arm, against, benchmark) in &primary {
                let stat = benchmarks.iter().position(|b| b == benchmark);
                if !keys.iter().any(|(a, b, s)| a == arm && b == against && *s == stat) {
                    keys.push((arm.clone(), against.clone(), stat));
                }
            }
            for (arm, against, stat) in keys {
                let find = |label: &str| targets.iter().find(|t| t.label == label);
                let (Some(a), Some(b)) = (find(&arm), find(&against)) else {
                    return Err(StageError::config(
                        "report.primary",
                        format!(
                            "{student} has no evaluated model `{}`; rerun evaluate or fix the key",
                            if find(&arm).is_none() { &arm } else { &against }
                        ),
                    ));
                };
                let benchmark = stat_name(stat, &benchmarks);
                let family = if primary.iter().any(|(x, y, z)| *x == arm && *y == against && *z == benchmark)
                {
                    FamilyName::Primary
                } else {
                    FamilyName::Exploratory
                };
                let c = weights(benchmarks.len(), stat);
                let term = training_term(config, training[&stat].as_ref(), &[a, b], &c);
                pending.push(accuracy_comparison(student, a, b, stat, &benchmarks, term, family));
            }
            for row in &mut rows {
                if row.strategy.is_none() && row.data == "baseline" {
                    continue;
                }
                let id = |against: &str| accuracy_id(student, &row.data, against, PrimaryComparison::AVERAGE);
                let exists = |id: &str| pending.iter().any(|p| p.record.id == id);
                row.vs_baseline = Some(id("baseline")).filter(|i| exists(i));
                row.vs_direct = row
                    .curation
                    .as_ref()
                    .map(|c| id(&format!("direct/{c}")))
                    .filter(|i| exists(i) && row.strategy.as_deref() != Some("direct"));
            }
            students.insert(student.clone(), rows);
        }

        let headline = headline(config, dedup.as_ref(), &benchmarks, &mut pending);
        let (method, summary) = decide(config, &mut pending, training_included, diagnostics);
        let power: Vec<doc::Power> = pending
            .iter()
            .filter(|p| p.record.family == FamilyName::Primary)
            .filter_map(|p| match &p.test {
                Tested::Accuracy(t) => {
                    Some(power::observed(&p.record, t, method.primary.size, alpha, r.power.power))
                }
                _ => None,
            })
            .collect();
        let comparisons: Vec<Comparison> = pending.into_iter().map(|p| p.record).collect();

        let budget =
            read_manifest(root, "train").and_then(|m| m.counts.get("budget").cloned()).unwrap_or(Value::Null);
        let training_data =
            data::training_data(&budget, read_manifest(root, "evaluate").as_ref(), r.confidence);
        let funnel = if config.train.data.is_none() {
            data::funnel(config, root, &training_data)
        } else {
            BTreeMap::new()
        };
        let mut wall_seconds = BTreeMap::new();
        for stage in StageName::FLOW.iter().filter(|&&s| s != StageName::Report) {
            if let Some(m) = read_manifest(root, stage.as_str()) {
                wall_seconds.insert(stage.as_str().to_owned(), m.wall_seconds);
            }
        }
        let mut doc = ReportDoc {
            run: config.run.name.clone(),
            benchmarks: benchmarks.iter().map(|b| (*b).to_owned()).collect(),
            curations: config.verify.curation.iter().map(|c| c.as_str().to_owned()).collect(),
            method,
            summary,
            comparisons,
            headline,
            students,
            power,
            training_data,
            data: funnel,
            budget,
            wall_seconds,
            extraction: serde_json::to_value(config.evaluate.extraction).unwrap_or(Value::Null),
            grading: grading::grading(config, root, &benchmarks)?,
            train_seeds,
            plots: Vec::new(),
        };

        let dir = &ctx.dir;
        std::fs::create_dir_all(dir).map_err(|source| StageError::Io { path: dir.clone(), source })?;
        let mut output = StageOutput::default();
        if r.plots {
            let value = serde_json::to_value(&doc).expect("the report serializes");
            let files = plots::draw_all(&value, &benchmarks, dir)
                .map_err(|e| StageError::Other(format!("plots: {e}").into()))?;
            doc.plots = files
                .iter()
                .filter(|f| f.extension().is_some_and(|x| x == "png"))
                .map(|f| f.file_name().expect("a file").to_string_lossy().into_owned())
                .collect();
            output.outputs.extend(files);
        }
        let md = markdown::render(&doc);
        for (name, text) in
            [("report.json", serde_json::to_string_pretty(&doc).expect("JSON") + "\n"), ("report.md", md)]
        {
            let path = dir.join(name);
            vs_core::fs::write_atomic(&path, text.as_bytes())
                .map_err(|source| StageError::Io { path: path.clone(), source })?;
        }
        output.outputs.push(dir.join("report.json"));
        output.outputs.push(dir.join("report.md"));
        Ok(output)
    }
}

/// The baseline and every source's runs of a student, on the same problems; `None` when
/// nothing is evaluated for it.
fn load_student(
    config: &Config,
    root: &Path,
    student: &str,
    benchmarks: &[&str],
    train_seeds: &[u64],
) -> Result<Option<Vec<Target>>, StageError> {
    let eval_dir = root.join("evaluate").join(student);
    // (label, source, seeds) and the folder of each run.
    let mut dirs: Vec<(Target, Vec<std::path::PathBuf>)> = Vec::new();
    let target = |label: String, source: Option<Source>, seeds: Vec<u64>| Target {
        label,
        source,
        seeds,
        outcomes: Vec::new(),
    };
    if config.evaluate.baseline {
        dirs.push((target("baseline".into(), None, Vec::new()), vec![eval_dir.join("baseline")]));
    }
    for source in sources(config) {
        let d = train_seeds.iter().map(|s| eval_dir.join(source.label()).join(format!("seed-{s}"))).collect();
        dirs.push((target(source.label(), Some(source), train_seeds.to_vec()), d));
    }
    let Some(first) = dirs.first().and_then(|t| t.1.first()) else { return Ok(None) };
    let ids = problem_ids(first, benchmarks)?;
    let mut targets = Vec::new();
    for (mut t, folders) in dirs {
        let per_seed =
            folders.iter().map(|d| load_target(d, benchmarks, &ids)).collect::<Result<Vec<_>, _>>()?;
        t.outcomes = by_benchmark(per_seed);
        targets.push(t);
    }
    Ok(Some(targets))
}

fn row(
    config: &Config,
    t: &Target,
    benchmarks: &[&str],
    training: &BTreeMap<Stat, Option<TrainingVariance>>,
) -> Row {
    let n = |k: usize| t.outcomes[k].first().map_or(0, Vec::len);
    let acc = |stat: Stat| {
        let c = weights(benchmarks.len(), stat);
        let term = training_term(config, training[&stat].as_ref(), &[t], &c);
        let e = inference::estimate(&t.outcomes, &c, term, config.report.confidence);
        let problems = stat.map_or_else(|| (0..benchmarks.len()).map(n).sum(), n);
        Accuracy { accuracy: e.value, ci: e.ci, n: problems }
    };
    let (strategy, curation) = match &t.source {
        Some(Source::Arm(a)) => (Some(a.origin.as_str().to_owned()), Some(a.curation.as_str().to_owned())),
        _ => (None, None),
    };
    Row {
        data: t.label.clone(),
        strategy,
        curation,
        seeds: t.seeds.clone(),
        benchmarks: benchmarks.iter().enumerate().map(|(k, b)| ((*b).to_owned(), acc(Some(k)))).collect(),
        average: acc(None),
        seed_spread: inference::run_spread(&t.outcomes, &weights(benchmarks.len(), None)),
        vs_baseline: None,
        vs_direct: None,
    }
}

/// The training part of the variance for models `sides` (the baseline is not trained), by
/// `report.training_variance`: the student's pooled run effect, or the sides' own.
fn training_term(
    config: &Config,
    pooled: Option<&TrainingVariance>,
    sides: &[&Target],
    c: &[f64],
) -> Option<inference::TrainingTerm> {
    match config.report.training_variance {
        TrainingVarianceMode::Pooled => {
            let runs: Vec<usize> = sides
                .iter()
                .filter(|t| t.source.is_some())
                .map(|t| t.outcomes.first().map_or(1, Vec::len))
                .collect();
            inference::TrainingTerm::pooled(pooled?, &runs)
        }
        TrainingVarianceMode::PerComparison => {
            let sides: Vec<(&Outcomes, bool)> =
                sides.iter().map(|t| (&t.outcomes, t.source.is_some())).collect();
            inference::TrainingTerm::per_comparison(&sides, c)
        }
    }
}

/// How much whole training runs vary for a student: the pooled run effect on the average, each
/// arm's, and Bartlett's test that they are alike (what pooling assumes).
fn diagnostic(
    config: &Config,
    student: &str,
    targets: &[Target],
    training: &BTreeMap<Stat, Option<TrainingVariance>>,
    benchmarks: usize,
) -> doc::TrainingRuns {
    let c = weights(benchmarks, None);
    // Each trained arm's own run variance on the average, computed once for the table and test.
    let per_arm: Vec<(String, TrainingVariance)> = targets
        .iter()
        .filter(|t| t.source.is_some())
        .filter_map(|t| TrainingVariance::of_arm(&t.outcomes, &c).map(|v| (t.label.clone(), v)))
        .collect();
    let variances: Vec<TrainingVariance> = per_arm.iter().map(|(_, v)| *v).collect();
    doc::TrainingRuns {
        student: student.to_owned(),
        mode: config.report.training_variance,
        pooled_run_sd: training[&None].map(|t| t.sigma2.sqrt()),
        pooled_df: training[&None].map(|t| t.df),
        arms: per_arm.iter().map(|(label, v)| (label.clone(), v.sigma2.sqrt())).collect(),
        bartlett: inference::heterogeneity(&variances).map(|(statistic, df, p)| doc::Bartlett {
            statistic,
            df,
            p,
        }),
    }
}

const ACCURACY_METHOD: &str = "paired score test (McNemar-type, problems and training runs)";

fn accuracy_comparison(
    student: &str,
    a: &Target,
    b: &Target,
    stat: Stat,
    benchmarks: &[&str],
    training: Option<inference::TrainingTerm>,
    family: FamilyName,
) -> Pending {
    let c = weights(benchmarks.len(), stat);
    let test = PairedTest::new(&a.outcomes, &b.outcomes, &c, training);
    let benchmark = stat_name(stat, benchmarks);
    let ks: Vec<usize> = stat.map_or_else(|| (0..benchmarks.len()).collect(), |k| vec![k]);
    let n =
        ks.iter().map(|&k| (benchmarks[k].to_owned(), a.outcomes[k].first().map_or(0, Vec::len))).collect();
    let one_run =
        a.outcomes.first().is_none_or(|x| x.len() == 1) && b.outcomes.first().is_none_or(|x| x.len() == 1);
    // Per benchmark: problems only A's first run got right, only B's, and how many there are.
    let counts: Vec<(u64, u64, usize)> = ks
        .iter()
        .map(|&k| {
            let (x, y) = inference::discordant(&a.outcomes, &b.outcomes, k);
            (x, y, a.outcomes[k].first().map_or(0, Vec::len))
        })
        .collect();
    let discordant = one_run
        .then(|| ks.iter().zip(&counts).map(|(&k, &(x, y, _))| (benchmarks[k].to_owned(), [x, y])).collect());
    let discordance = counts.iter().map(|&(x, y, n)| (x + y) as f64 / n.max(1) as f64).sum::<f64>()
        / ks.len().max(1) as f64;
    let curation = match &a.source {
        Some(Source::Arm(arm)) => Some(arm.curation.as_str().to_owned()),
        _ => None,
    };
    let record = Comparison {
        id: accuracy_id(student, &a.label, &b.label, &benchmark),
        kind: Kind::Accuracy,
        student: Some(student.to_owned()),
        arm: a.label.clone(),
        against: b.label.clone(),
        curation,
        measure: "accuracy".into(),
        benchmark: Some(benchmark),
        items: None,
        family,
        estimate: test.estimate,
        interval: None,
        interval_confidence: None,
        interval_unadjusted: None,
        p: Some(test.p()),
        p_adjusted: None,
        adjustment: adjustment(family),
        resolved: false,
        method: ACCURACY_METHOD.into(),
        df: test.df.is_finite().then_some(test.df),
        n,
        seeds: Some(Seeds { arm: a.seeds.clone(), against: b.seeds.clone() }),
        training_variance: if test.training_included {
            TrainingVarianceNote::Included
        } else {
            TrainingVarianceNote::NotEstimable
        },
        variance: Some(Variance { problems: test.problem_variance(), training: test.training_variance }),
        discordance: Some(discordance),
        discordant,
        note: None,
    };
    Pending { record, test: Tested::Accuracy(test) }
}

fn adjustment(family: FamilyName) -> Adjustment {
    match family {
        FamilyName::Primary => Adjustment::Holm,
        FamilyName::Exploratory => Adjustment::BenjaminiHochberg,
    }
}

/// Each strategy against Direct: its diversity comparisons (added to `pending`) and the ids of
/// its accuracy comparisons.
fn headline(
    config: &Config,
    dedup: Option<&Manifest>,
    benchmarks: &[&str],
    pending: &mut Vec<Pending>,
) -> Vec<Headline> {
    let origins = crate::stages::arms::origins(config);
    if config.train.data.is_some() || !origins.iter().any(|s| s.is_direct()) || origins.len() < 2 {
        return Vec::new();
    }
    let metric = |origin: &str| {
        dedup.and_then(|m| m.metrics.get(&format!("diversity/{origin}"))).cloned().unwrap_or(Value::Null)
    };
    let direct = metric("direct");
    let mut out = Vec::new();
    for origin in origins.iter().filter(|s| !s.is_direct()) {
        let s = origin.as_str();
        let mine = metric(s);
        let mut diversity = Vec::new();
        for set in ["all", "kept"] {
            for (key, _) in MEASURES {
                let (a, b) = (&mine[set][key], &direct[set][key]);
                let (Some(va), Some(vb)) = (a["value"].as_f64(), b["value"].as_f64()) else { continue };
                let id = diversity_id(key, set, s);
                let items = |v: &Value| v["n"].as_u64().unwrap_or(0) as usize;
                let se = match (a["se"].as_f64(), b["se"].as_f64()) {
                    (Some(x), Some(y)) => Some((x * x + y * y).sqrt()),
                    _ => None,
                };
                let (test, note) = match se {
                    Some(se) if se > 0.0 && se.is_finite() => (Tested::Normal { estimate: va - vb, se }, None),
                    Some(_) => (Tested::Untestable, Some("no variation across bootstrap resamples".to_owned())),
                    None => (
                        Tested::Untestable,
                        Some("n/a: fewer than two generation conversations on a side (or a dedup manifest from before standard errors: rerun dedup)".to_owned()),
                    ),
                };
                pending.push(Pending {
                    record: Comparison {
                        id: id.clone(),
                        kind: Kind::Diversity,
                        student: None,
                        arm: s.to_owned(),
                        against: "direct".into(),
                        curation: None,
                        measure: key.to_owned(),
                        benchmark: None,
                        items: Some(set.to_owned()),
                        family: FamilyName::Exploratory,
                        estimate: va - vb,
                        interval: None,
                        interval_confidence: None,
                        interval_unadjusted: None,
                        p: test.p(),
                        p_adjusted: None,
                        adjustment: Adjustment::BenjaminiHochberg,
                        resolved: false,
                        method: "bootstrap standard error over generation conversations, normal reference"
                            .into(),
                        df: None,
                        n: [("arm".to_owned(), items(a)), ("against".to_owned(), items(b))]
                            .into_iter()
                            .collect(),
                        seeds: None,
                        training_variance: TrainingVarianceNote::NotApplicable,
                        variance: se.map(|se| Variance { problems: se * se, training: 0.0 }),
                        discordance: None,
                        discordant: None,
                        note,
                    },
                    test,
                });
                diversity.push(id);
            }
        }
        let mut accuracy = Vec::new();
        for student in config.train.students.keys() {
            for curation in &config.verify.curation {
                let arm = format!("{s}/{}", curation.as_str());
                let against = format!("direct/{}", curation.as_str());
                for b in benchmarks.iter().copied().chain(std::iter::once(PrimaryComparison::AVERAGE)) {
                    let id = accuracy_id(student, &arm, &against, b);
                    if pending.iter().any(|p| p.record.id == id) {
                        accuracy.push(id);
                    }
                }
            }
        }
        out.push(Headline { strategy: s.to_owned(), diversity, accuracy });
    }
    out
}

/// Holm over the primary family, Benjamini-Hochberg over the exploratory one; fills every
/// record's adjusted p, decision and interval.
fn decide(
    config: &Config,
    pending: &mut [Pending],
    training_included: bool,
    training_runs: Vec<doc::TrainingRuns>,
) -> (doc::Method, Summary) {
    let r = &config.report;
    let alpha = r.alpha();
    let mut families = Vec::new();
    for family in [FamilyName::Primary, FamilyName::Exploratory] {
        let members: Vec<usize> = (0..pending.len())
            .filter(|&i| pending[i].record.family == family && pending[i].test.p().is_some())
            .collect();
        let p: Vec<f64> = members.iter().map(|&i| pending[i].test.p().expect("tested")).collect();
        let decisions = multiplicity::adjust(&p, alpha, adjustment(family));
        for (&i, d) in members.iter().zip(&decisions) {
            let x = &mut pending[i];
            x.record.p_adjusted = Some(d.p_adjusted);
            x.record.resolved = d.resolved;
            x.record.interval = x.test.interval(d.interval_alpha);
            x.record.interval_confidence = Some(1.0 - d.interval_alpha);
            x.record.interval_unadjusted = x.test.interval(alpha);
        }
        families.push(Family {
            adjustment: adjustment(family),
            size: members.len(),
            resolved: decisions.iter().filter(|d| d.resolved).count(),
            chosen_by: match family {
                FamilyName::Primary if r.primary.is_empty() => {
                    "default: each strategy against Direct of its curation on the benchmark average".into()
                }
                FamilyName::Primary => "report.primary".into(),
                FamilyName::Exploratory => "every other comparison shown".into(),
            },
        });
    }
    let exploratory = families.pop().expect("two families");
    let primary = families.pop().expect("two families");
    let ids = |resolved: bool| {
        pending
            .iter()
            .filter(|x| x.record.family == FamilyName::Primary && x.record.resolved == resolved)
            .map(|x| x.record.id.clone())
            .collect()
    };
    let summary = Summary {
        resolved: ids(true),
        not_resolved: ids(false),
        exploratory_looked_at: exploratory.size,
        exploratory_resolved: exploratory.resolved,
        exploratory_untested: pending
            .iter()
            .filter(|x| x.record.family == FamilyName::Exploratory && x.record.p.is_none())
            .count(),
    };
    let method = markdown::method(config, primary, exploratory, training_included, training_runs);
    (method, summary)
}
