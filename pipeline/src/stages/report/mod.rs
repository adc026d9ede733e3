//! The report stage: `report/report.json` and `report/report.md` from the run's records and
//! manifests. It answers "does data from strategy X beat Direct (and no fine-tuning), by how
//! much, and how sure are we?":
//!
//! 1. The headline: each strategy against Direct on the same items and problems: diversity on
//!    *all generated items* (the paper's measure; dedup would erase the collapse it shows) and
//!    on the kept ones, and accuracy per curation, each difference with its interval and
//!    "resolved" or "not resolved".
//! 2. Per student, the paper's Table 4 layout (baseline and every arm, strategy × curation):
//!    accuracy per benchmark and on average with 95% bootstrap intervals over problems and
//!    training seeds, the spread over seeds, the paired difference to the baseline and to
//!    Direct of the same curation (interval and exact McNemar p).
//! 3. The data: the funnel per strategy (generated, degenerate, deduplicated, decontaminated,
//!    verified per curation, trained on after budget matching), diversity with intervals,
//!    tokens and calls per verified problem; wall time per stage.
//!
//! The statistics are in [`stats`].

pub mod plots;
pub mod stats;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Value, json};

use super::arms::{Source, seeds, sources};
use super::evaluate::EvalRecord;
use super::jsonl::read_jsonl;
use super::{Stage, StageContext, StageError, StageName, StageOutput};
use crate::config::Config;
use crate::manifest::Manifest;
use crate::seeds::{mix, text_key};
use stats::{Interval, McNemar, Outcomes};

pub struct Report;

fn read_manifest(root: &Path, stage: &str) -> Option<Manifest> {
    Manifest::read(&root.join(stage).join("manifest.json")).ok().flatten()
}

fn pct(x: f64) -> String {
    format!("{:.1}", 100.0 * x)
}

fn signed(x: f64) -> String {
    format!("{:+.1}", 100.0 * x)
}

fn interval_pct(i: &Interval) -> String {
    format!("{} [{}, {}]", pct(i.value), pct(i.ci[0]), pct(i.ci[1]))
}

fn diff_pct(i: &Interval) -> String {
    format!("{} [{}, {}]", signed(i.value), signed(i.ci[0]), signed(i.ci[1]))
}

fn verdict(i: &Interval) -> &'static str {
    if i.resolved() { "resolved" } else { "not resolved" }
}

fn p_value(p: f64) -> String {
    if p < 0.001 { "<0.001".to_owned() } else { format!("{p:.3}") }
}

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
                    return Err(StageError::Failed(format!(
                        "{}: no record for problem {id}, which other targets were graded on; \
                         rerun `evaluate` so every model is compared on the same problems",
                        path.display()
                    )));
                }
            }
        }
        if by_id.len() != wanted.len() {
            return Err(StageError::Failed(format!(
                "{}: {} problems where the other targets have {}; rerun `evaluate`",
                path.display(),
                by_id.len(),
                wanted.len()
            )));
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

/// A comparison of two models on the same problems.
struct Comparison {
    per: Vec<Interval>,
    average: Interval,
    mcnemar: Vec<McNemar>,
    mcnemar_average: McNemar,
}

impl Comparison {
    fn new(a: &Outcomes, b: &Outcomes, config: &Config, key: &str) -> Self {
        let r = &config.report;
        let (per, average) =
            stats::paired(a, b, r.bootstrap_samples, r.confidence, mix(config.run.seed, text_key(key)));
        let (mcnemar, mcnemar_average) = stats::mcnemar(a, b);
        Self { per, average, mcnemar, mcnemar_average }
    }

    fn json(&self, benchmarks: &[&str], against: &str) -> Value {
        let cell = |i: &Interval, m: &McNemar| {
            json!({ "difference": i.value, "ci": i.ci, "resolved": i.resolved(), "mcnemar_p": m.p,
                    "only_this_right": m.a_only, "only_other_right": m.b_only })
        };
        let mut m = serde_json::Map::new();
        m.insert("against".into(), json!(against));
        for ((b, i), mc) in benchmarks.iter().zip(&self.per).zip(&self.mcnemar) {
            m.insert((*b).to_owned(), cell(i, mc));
        }
        m.insert("average".into(), cell(&self.average, &self.mcnemar_average));
        Value::Object(m)
    }

    fn cell(&self) -> String {
        format!(
            "{} ({}, p={})",
            diff_pct(&self.average),
            verdict(&self.average),
            p_value(self.mcnemar_average.p)
        )
    }
}

/// One row of a student's table.
struct Row {
    label: String,
    source: Option<Source>,
    outcomes: Outcomes,
    per: Vec<Interval>,
    average: Interval,
    seeds: Vec<u64>,
    seed_spread: Option<f64>,
}

/// Standard deviation over seeds of the average accuracy (None with one seed).
fn seed_spread(outcomes: &Outcomes) -> Option<f64> {
    let seeds = outcomes.first().map_or(0, Vec::len);
    if seeds < 2 {
        return None;
    }
    let avgs: Vec<f64> = (0..seeds)
        .map(|s| {
            outcomes.iter().map(|b| stats::accuracy(&b[s..=s])).sum::<f64>() / outcomes.len().max(1) as f64
        })
        .collect();
    let mean = avgs.iter().sum::<f64>() / seeds as f64;
    Some((avgs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (seeds - 1) as f64).sqrt())
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
        3
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
        let benchmarks: Vec<&str> = config.evaluate.benchmarks.iter().map(|b| b.as_str()).collect();
        let train_seeds = seeds(config);
        let dedup = read_manifest(root, "dedup");

        // Every student's rows and comparisons.
        let mut student_tables: Vec<StudentTable> = Vec::new();
        for student in config.train.students.keys() {
            let eval_dir = root.join("evaluate").join(student);
            let mut targets: Vec<(String, Option<Source>, Vec<std::path::PathBuf>)> = Vec::new();
            if config.evaluate.baseline {
                targets.push(("baseline".into(), None, vec![eval_dir.join("baseline")]));
            }
            for source in sources(config) {
                let dirs = train_seeds
                    .iter()
                    .map(|s| eval_dir.join(source.label()).join(format!("seed-{s}")))
                    .collect();
                targets.push((source.label(), Some(source), dirs));
            }
            let Some(first) = targets.first().and_then(|t| t.2.first()) else { continue };
            let ids = problem_ids(first, &benchmarks)?;
            let mut rows = Vec::new();
            for (label, source, dirs) in targets {
                let per_seed =
                    dirs.iter().map(|d| load_target(d, &benchmarks, &ids)).collect::<Result<Vec<_>, _>>()?;
                let outcomes = by_benchmark(per_seed);
                let key = format!("{student}/{label}");
                let (per, average) = stats::estimate(
                    &outcomes,
                    r.bootstrap_samples,
                    r.confidence,
                    mix(config.run.seed, text_key(&key)),
                );
                let seeds_used = if source.is_some() { train_seeds.clone() } else { Vec::new() };
                rows.push(Row {
                    label,
                    source,
                    seed_spread: seed_spread(&outcomes),
                    outcomes,
                    per,
                    average,
                    seeds: seeds_used,
                });
            }
            let mut comparisons = BTreeMap::new();
            for row in rows.iter().filter(|r| r.source.is_some()) {
                let vs_baseline = rows.iter().find(|b| b.label == "baseline").map(|b| {
                    Comparison::new(
                        &row.outcomes,
                        &b.outcomes,
                        config,
                        &format!("{student}/{}-baseline", row.label),
                    )
                });
                let vs_direct = match &row.source {
                    Some(Source::Arm(arm)) if !arm.origin.is_direct() => rows
                        .iter()
                        .find(|d| matches!(&d.source, Some(Source::Arm(a)) if a.origin.is_direct() && a.curation == arm.curation))
                        .map(|d| Comparison::new(&row.outcomes, &d.outcomes, config, &format!("{student}/{}-{}", row.label, d.label))),
                    _ => None,
                };
                comparisons.insert(row.label.clone(), (vs_baseline, vs_direct));
            }
            student_tables.push((student.clone(), rows, comparisons));
        }

        let mut md = format!("# Report: run `{}`\n\n", config.run.name);
        let headline = headline(config, dedup.as_ref(), &student_tables, &benchmarks, &mut md);

        // The accuracy tables.
        let mut students = serde_json::Map::new();
        for (student, rows, comparisons) in &student_tables {
            let _ = writeln!(md, "## Accuracy: student `{student}`\n");
            let header: Vec<String> = benchmarks.iter().map(|b| format!("{b} (%)")).collect();
            let _ = writeln!(
                md,
                "| data | {} | average (%) | seed spread | vs baseline (avg, points) | vs direct (avg, points) |",
                header.join(" | ")
            );
            let _ = writeln!(md, "|---|{}---:|---:|---|---|", "---:|".repeat(benchmarks.len()));
            let mut json_rows = Vec::new();
            for row in rows {
                let cells: Vec<String> = row
                    .per
                    .iter()
                    .zip(&row.outcomes)
                    .map(|(e, o)| format!("{} (n={})", interval_pct(e), o.first().map_or(0, Vec::len)))
                    .collect();
                let (vs_b, vs_d) =
                    comparisons.get(&row.label).map_or((None, None), |(b, d)| (b.as_ref(), d.as_ref()));
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} |",
                    row.label,
                    cells.join(" | "),
                    interval_pct(&row.average),
                    row.seed_spread.map_or("-".to_owned(), |s| format!(
                        "±{} ({} seeds)",
                        pct(s),
                        row.seeds.len()
                    )),
                    vs_b.map_or("".to_owned(), Comparison::cell),
                    vs_d.map_or("".to_owned(), Comparison::cell),
                );
                let (strategy, curation) = match &row.source {
                    Some(Source::Arm(a)) => (json!(a.origin.as_str()), json!(a.curation.as_str())),
                    _ => (Value::Null, Value::Null),
                };
                json_rows.push(json!({
                    "data": row.label,
                    "strategy": strategy,
                    "curation": curation,
                    "seeds": row.seeds,
                    "benchmarks": benchmarks.iter().zip(&row.per).zip(&row.outcomes).map(|((b, e), o)| (b.to_string(), json!({"accuracy": e.value, "ci": e.ci, "n": o.first().map_or(0, Vec::len)}))).collect::<serde_json::Map<_, _>>(),
                    "average": {"accuracy": row.average.value, "ci": row.average.ci},
                    "seed_spread": row.seed_spread,
                    "vs_baseline": vs_b.map(|c| c.json(&benchmarks, "baseline")),
                    "vs_direct": vs_d.map(|c| c.json(&benchmarks, "direct")),
                }));
            }
            let _ = writeln!(
                md,
                "\nAccuracy in %, greedy decoding, answers read with `evaluate.extraction = \"{}\"`; [low, high] is the {:.0}% percentile bootstrap interval ({} resamples of the problems and of the training seeds); n is the number of problems. Differences are paired (the same problems for both models, the same resample in each replicate), in points, with the exact McNemar p-value (pooled over benchmarks for the average; with several seeds the largest over seed-matched runs). \"not resolved\": the interval contains 0, so this run cannot tell the sign of the difference.\n",
                serde_json::to_value(config.evaluate.extraction)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                100.0 * r.confidence,
                r.bootstrap_samples
            );
            students.insert(student.clone(), Value::Array(json_rows));
        }

        let funnel = if config.train.data.is_none() {
            data_tables(config, root, &mut md)
        } else {
            serde_json::Map::new()
        };
        let mut times = serde_json::Map::new();
        let _ = writeln!(md, "## Wall time per stage\n\n| stage | seconds |\n|---|---:|");
        for stage in StageName::FLOW.iter().filter(|&&s| s != StageName::Report) {
            if let Some(m) = read_manifest(root, stage.as_str()) {
                let _ = writeln!(md, "| {} | {:.1} |", stage.as_str(), m.wall_seconds);
                times.insert(stage.as_str().to_owned(), json!(m.wall_seconds));
            }
        }
        let budget = read_manifest(root, "train").and_then(|m| m.counts.get("budget").cloned());
        let report = json!({ "run": config.run.name, "headline": headline, "students": students, "data": funnel,
                             "budget": budget, "wall_seconds": times,
                             "bootstrap": {"samples": r.bootstrap_samples, "confidence": r.confidence,
                                           "over": "problems and training seeds"},
                             "extraction": config.evaluate.extraction, "train_seeds": train_seeds });
        let dir = &ctx.dir;
        std::fs::create_dir_all(dir).map_err(|source| StageError::Io { path: dir.clone(), source })?;
        let mut output = StageOutput::default();
        if r.plots {
            let files = plots::draw_all(&report, &benchmarks, dir).map_err(StageError::Failed)?;
            let _ = writeln!(md, "\n## Plots\n");
            for file in files.iter().filter(|f| f.extension().is_some_and(|x| x == "png")) {
                let name = file.file_name().expect("a file").to_string_lossy();
                let _ = writeln!(md, "![{name}]({name})");
            }
            let _ = writeln!(md, "\n(each also as SVG beside it)");
            output.outputs.extend(files);
        }
        for (name, text) in
            [("report.json", serde_json::to_string_pretty(&report).expect("JSON") + "\n"), ("report.md", md)]
        {
            let path = dir.join(name);
            crate::manifest::write_atomic(&path, text.as_bytes())
                .map_err(|source| StageError::Io { path: path.clone(), source })?;
        }
        output.outputs.push(dir.join("report.json"));
        output.outputs.push(dir.join("report.md"));
        Ok(output)
    }
}

type StudentTable = (String, Vec<Row>, BTreeMap<String, (Option<Comparison>, Option<Comparison>)>);

/// Diversity measures shown in the headline and the data table, with their labels.
const MEASURES: [(&str, &str); 3] = [
    ("semantic", "semantic diversity"),
    ("rouge_l", "pairwise ROUGE-L (%, lower = more diverse)"),
    ("distinct_2", "distinct-2 (%)"),
];

fn measured(v: &Value) -> Option<Interval> {
    Some(Interval { value: v["value"].as_f64()?, ci: [v["ci"][0].as_f64()?, v["ci"][1].as_f64()?] })
}

fn plain(i: &Interval) -> String {
    format!("{:.1} [{:.1}, {:.1}]", i.value, i.ci[0], i.ci[1])
}

fn plain_diff(i: &Interval) -> String {
    format!("{:+.1} [{:+.1}, {:+.1}]", i.value, i.ci[0], i.ci[1])
}

/// The first table: every strategy against Direct, diversity then accuracy, and a plain
/// statement of what this run can and cannot resolve.
fn headline(
    config: &Config,
    dedup: Option<&Manifest>,
    tables: &[StudentTable],
    benchmarks: &[&str],
    md: &mut String,
) -> Value {
    let strategies = crate::stages::arms::origins(config);
    if config.train.data.is_some() || !strategies.iter().any(|s| s.is_direct()) || strategies.len() < 2 {
        let _ = writeln!(
            md,
            "(No strategy-vs-Direct comparison: the run does not generate with `direct` and another strategy.)\n"
        );
        return Value::Null;
    }
    let mut out = Vec::new();
    for strategy in strategies.iter().filter(|s| !s.is_direct()) {
        let s = strategy.as_str();
        let _ = writeln!(md, "## `{s}` vs `direct`, on the same problems\n");
        let _ = writeln!(md, "| measure | {s} | direct | difference [95% interval] | |");
        let _ = writeln!(md, "|---|---:|---:|---:|---|");
        let metric = |strategy: &str| {
            dedup
                .and_then(|m| m.metrics.get(&format!("diversity/{strategy}")))
                .cloned()
                .unwrap_or(Value::Null)
        };
        let (mine, direct) = (metric(s), metric("direct"));
        let diffs = dedup
            .and_then(|m| m.metrics.get(&format!("diversity_vs_direct/{s}")))
            .cloned()
            .unwrap_or(Value::Null);
        let (mut resolved, mut unresolved) = (Vec::new(), Vec::new());
        let mut rows = Vec::new();
        for set in ["all", "kept"] {
            for (key, name) in MEASURES {
                let (Some(a), Some(b), Some(d)) =
                    (measured(&mine[set][key]), measured(&direct[set][key]), measured(&diffs[set][key]))
                else {
                    continue;
                };
                let what = format!("{name}, {} items", if set == "all" { "all generated" } else { "kept" });
                let n =
                    (mine[set][key]["n"].as_u64().unwrap_or(0), direct[set][key]["n"].as_u64().unwrap_or(0));
                let _ = writeln!(
                    md,
                    "| {what} (n={}/{}) | {} | {} | {} | {} |",
                    n.0,
                    n.1,
                    plain(&a),
                    plain(&b),
                    plain_diff(&d),
                    verdict(&d)
                );
                if d.resolved() {
                    resolved.push(format!("{what} ({})", plain_diff(&d)))
                } else {
                    unresolved.push(what.clone())
                }
                rows.push(json!({ "measure": key, "items": set, "strategy": a, "direct": b, "difference": d, "resolved": d.resolved(), "n": [n.0, n.1] }));
            }
        }
        let mut accuracy = Vec::new();
        for (student, table_rows, comparisons) in tables {
            for &curation in &config.verify.curation {
                let label = format!("{s}/{}", curation.as_str());
                let Some((_, Some(c))) = comparisons.get(&label) else { continue };
                let find = |l: &str| table_rows.iter().find(|r| r.label == l);
                let (Some(a), Some(d)) = (find(&label), find(&format!("direct/{}", curation.as_str())))
                else {
                    continue;
                };
                for (k, b) in benchmarks
                    .iter()
                    .enumerate()
                    .map(|(k, b)| (Some(k), *b))
                    .chain(std::iter::once((None, "average")))
                {
                    let (ia, id, diff, p) = match k {
                        Some(k) => (a.per[k], d.per[k], c.per[k], c.mcnemar[k].p),
                        None => (a.average, d.average, c.average, c.mcnemar_average.p),
                    };
                    let what = format!("accuracy `{student}`, {} data, {b}", curation.as_str());
                    let _ = writeln!(
                        md,
                        "| {what} (%) | {} | {} | {} (McNemar p={}) | {} |",
                        interval_pct(&ia),
                        interval_pct(&id),
                        diff_pct(&diff),
                        p_value(p),
                        verdict(&diff)
                    );
                    if diff.resolved() {
                        resolved.push(format!("{what} ({} points)", diff_pct(&diff)))
                    } else {
                        unresolved.push(what)
                    }
                    accuracy.push(json!({ "student": student, "curation": curation.as_str(), "benchmark": b,
                                          "strategy": ia, "direct": id, "difference": diff, "mcnemar_p": p, "resolved": diff.resolved() }));
                }
            }
        }
        let _ = writeln!(
            md,
            "\nDiversity is measured on every item the generator produced (what the paper measures: dedup would erase the collapse) and on the items dedup kept; its intervals resample the items (pairs of an item with its own copy left out). Accuracy differences are paired over the same benchmark problems. \"not resolved\": the interval contains 0.\n"
        );
        let _ = writeln!(
            md,
            "**Resolved at {:.0}%:** {}.\n",
            100.0 * config.report.confidence,
            if resolved.is_empty() { "nothing".to_owned() } else { resolved.join("; ") }
        );
        let _ = writeln!(
            md,
            "**Not resolved at this size:** {}.\n",
            if unresolved.is_empty() { "nothing".to_owned() } else { unresolved.join("; ") }
        );
        out.push(json!({ "strategy": s, "against": "direct", "diversity": rows, "accuracy": accuracy,
                          "resolved": resolved, "not_resolved": unresolved }));
    }
    Value::Array(out)
}

/// The funnel and diversity per strategy.
fn data_tables(config: &Config, root: &Path, md: &mut String) -> serde_json::Map<String, Value> {
    let (g, s, d, v, t) = (
        read_manifest(root, "generate"),
        read_manifest(root, "solve"),
        read_manifest(root, "dedup"),
        read_manifest(root, "verify"),
        read_manifest(root, "train"),
    );
    let trained = t
        .as_ref()
        .and_then(|m| m.counts.get("budget"))
        .map(|b| b["examples_per_arm"].clone())
        .unwrap_or(Value::Null);
    let curations: Vec<&str> = config.verify.curation.iter().map(|c| c.as_str()).collect();
    let _ = writeln!(md, "## Data per strategy\n");
    let verified_cols: Vec<String> = curations.iter().map(|c| format!("verified ({c})")).collect();
    let _ = writeln!(
        md,
        "| strategy | generated | degenerate | after dedup | after decontamination | {} | trained on per arm | calls / verified | tokens / verified |",
        verified_cols.join(" | ")
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|{}---:|---:|---:|", "---:|".repeat(curations.len()));
    let mut funnel = serde_json::Map::new();
    for strategy in &crate::stages::arms::origins(config) {
        let label = strategy.as_str();
        let count = |m: &Option<Manifest>, key: &str, what: &str| {
            m.as_ref()
                .and_then(|m| m.counts.get(key))
                .and_then(|c| c.get(what))
                .cloned()
                .unwrap_or(Value::Null)
        };
        let generated = count(&g, label, "kept").as_u64().unwrap_or(0);
        let dropped = count(&d, label, "dropped");
        let removed =
            |keys: &[&str]| keys.iter().filter_map(|k| dropped.get(*k).and_then(Value::as_u64)).sum::<u64>();
        let input = count(&d, label, "input").as_u64().unwrap_or(0);
        let after_dedup = input.saturating_sub(removed(&["degenerate", "exact", "near"]));
        let after_decontam = count(&d, label, "kept").as_u64().unwrap_or(0);
        let degenerate = count(&d, label, "degenerate");
        let verified: Vec<(String, u64)> = curations
            .iter()
            .map(|c| ((*c).to_owned(), count(&v, &format!("{label}/{c}"), "kept").as_u64().unwrap_or(0)))
            .collect();
        let calls = ["calls_sent", "calls_cached"]
            .iter()
            .map(|k| count(&g, label, k).as_u64().unwrap_or(0) + count(&s, label, k).as_u64().unwrap_or(0))
            .sum::<u64>();
        let tokens = count(&g, label, "completion_tokens").as_u64().unwrap_or(0)
            + count(&s, label, "completion_tokens").as_u64().unwrap_or(0);
        let denominator = verified.last().map_or(0, |x| x.1);
        let per_verified = |x: u64| {
            if denominator == 0 { "-".to_owned() } else { format!("{:.1}", x as f64 / denominator as f64) }
        };
        let share = degenerate["share"].as_f64();
        let _ = writeln!(
            md,
            "| {label} | {generated} | {} | {after_dedup} | {after_decontam} | {} | {} | {} | {} |",
            share.map_or("-".to_owned(), |x| format!("{}% ({})", pct(x), degenerate["total"])),
            verified.iter().map(|x| x.1.to_string()).collect::<Vec<_>>().join(" | "),
            trained,
            per_verified(calls),
            per_verified(tokens)
        );
        let diversity = d
            .as_ref()
            .and_then(|m| m.metrics.get(&format!("diversity/{label}")))
            .cloned()
            .unwrap_or(Value::Null);
        funnel.insert(label.to_owned(), json!({
            "generated": generated, "degenerate": degenerate, "after_dedup": after_dedup,
            "after_decontamination": after_decontam,
            "verified": verified.iter().map(|(c, n)| (c.clone(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "trained_per_arm": trained, "diversity": diversity, "calls": calls, "completion_tokens": tokens,
        }));
    }
    let _ = writeln!(
        md,
        "\ndegenerate: items that are not problems (too short, markup, template placeholders, repetition loops), as a share of everything generated; the curated arm drops them, the paper arm keeps them. Calls and tokens (completion) of generation and solving per verified problem ({}).\n",
        curations.last().copied().unwrap_or("curated")
    );
    let _ = writeln!(md, "### Diversity per strategy\n");
    let _ = writeln!(
        md,
        "| strategy | items | {} |",
        MEASURES.iter().map(|m| m.1).collect::<Vec<_>>().join(" | ")
    );
    let _ = writeln!(md, "|---|---|{}", "---:|".repeat(MEASURES.len()));
    for (label, f) in &funnel {
        for set in ["all", "kept"] {
            let cells: Vec<String> = MEASURES
                .iter()
                .map(|(k, _)| measured(&f["diversity"][set][*k]).map_or("-".to_owned(), |i| plain(&i)))
                .collect();
            let n = f["diversity"][set]["distinct_1"]["n"].as_u64().unwrap_or(0);
            let _ = writeln!(
                md,
                "| {label} | {} ({n}) | {} |",
                if set == "all" { "all generated" } else { "kept" },
                cells.join(" | ")
            );
        }
    }
    let source = funnel
        .values()
        .find_map(|v| v["diversity"]["semantic_source"].as_str())
        .map_or("semantic: not measured (dedup.embeddings.provider = \"none\")".to_owned(), |s| {
            format!("semantic: the paper's 100 x mean(1 - max(cos, 0)) over pairs, embeddings from {s}")
        });
    let _ = writeln!(
        md,
        "\n[low, high]: {:.0}% bootstrap interval over items. {source}; ROUGE-L and semantic over the first {} items of a set.\n",
        100.0 * config.report.confidence,
        funnel.values().find_map(|v| v["diversity"]["pairwise_over_first"].as_u64()).unwrap_or(0)
    );
    funnel
}
