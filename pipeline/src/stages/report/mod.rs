//! The report stage: `report/report.json` and `report/report.md` from the run's records and
//! manifests. Per student, the paper's Table 4 layout (rows: baseline and each strategy;
//! columns: each benchmark, their average, the gain over the baseline), every accuracy with a
//! 95% bootstrap interval over problems and the number of problems it rests on; the data
//! funnel per strategy (generated -> deduplicated -> decontaminated -> verified); diversity;
//! tokens and calls per verified problem; wall time per stage.

pub mod plots;

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Value, json};

use super::evaluate::EvalRecord;
use super::jsonl::read_jsonl;
use super::{Stage, StageContext, StageError, StageName, StageOutput};
use crate::config::Config;
use crate::manifest::Manifest;
use crate::seeds::{mix, unit};

pub struct Report;

/// An accuracy with its bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub value: f64,
    pub low: f64,
    pub high: f64,
    pub n: usize,
}

/// Mean of `correct` per benchmark, averaged over benchmarks, with a percentile bootstrap:
/// each replicate resamples every benchmark's problems with replacement (seeded).
pub fn bootstrap(
    benchmarks: &[Vec<bool>],
    samples: usize,
    confidence: f64,
    seed: u64,
) -> (Vec<Estimate>, Estimate) {
    let acc = |v: &[bool]| {
        if v.is_empty() { 0.0 } else { v.iter().filter(|&&c| c).count() as f64 / v.len() as f64 }
    };
    let mut per: Vec<Vec<f64>> = vec![Vec::with_capacity(samples); benchmarks.len()];
    let mut avg = Vec::with_capacity(samples);
    let mut state = seed;
    for _ in 0..samples {
        let mut total = 0.0;
        for (b, v) in benchmarks.iter().enumerate() {
            let mut hits = 0usize;
            for _ in 0..v.len() {
                state = mix(state, 0x0b00_7577);
                hits += usize::from(v[(unit(state) * v.len() as f64) as usize % v.len()]);
            }
            let a = if v.is_empty() { 0.0 } else { hits as f64 / v.len() as f64 };
            per[b].push(a);
            total += a;
        }
        avg.push(total / benchmarks.len().max(1) as f64);
    }
    let interval = |mut xs: Vec<f64>, value: f64, n: usize| {
        xs.sort_by(f64::total_cmp);
        let q = |p: f64| xs.get(((xs.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(value);
        let tail = (1.0 - confidence) / 2.0;
        Estimate { value, low: q(tail), high: q(1.0 - tail), n }
    };
    let estimates: Vec<Estimate> =
        benchmarks.iter().zip(per).map(|(v, xs)| interval(xs, acc(v), v.len())).collect();
    let mean = estimates.iter().map(|e| e.value).sum::<f64>() / estimates.len().max(1) as f64;
    let n = benchmarks.iter().map(Vec::len).sum();
    (estimates, interval(avg, mean, n))
}

fn read_manifest(root: &Path, stage: &str) -> Option<Manifest> {
    Manifest::read(&root.join(stage).join("manifest.json")).ok().flatten()
}

fn pct(x: f64) -> String {
    format!("{:.1}", 100.0 * x)
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
        2
    }

    fn config_slice(&self, id: crate::identity::Identify<'_>) -> Result<Value, StageError> {
        let c = id.config;
        // What the report reads and how it labels it: benchmarks, strategies, students.
        Ok(json!({ "report": c.report, "seed": c.run.seed, "benchmarks": c.evaluate.benchmarks,
                   "strategies": c.generate.strategies, "students": c.train.students.keys().collect::<Vec<_>>(),
                   "baseline": c.evaluate.baseline, "custom_data": c.train.data.is_some() }))
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutput, StageError> {
        let config = ctx.config;
        let root = ctx.run_dir.root();
        let r = &config.report;
        let labels: Vec<String> = match &config.train.data {
            Some(_) => vec![super::train::CUSTOM.to_owned()],
            None => config.generate.strategies.iter().map(|s| s.as_str().to_owned()).collect(),
        };
        let benchmarks: Vec<&str> = config.evaluate.benchmarks.iter().map(|b| b.as_str()).collect();
        let mut md = format!("# Report: run `{}`\n\n", config.run.name);
        let mut students = serde_json::Map::new();
        for student in config.train.students.keys() {
            let rows: Vec<String> = config
                .evaluate
                .baseline
                .then(|| "baseline".to_owned())
                .into_iter()
                .chain(labels.iter().cloned())
                .collect();
            let mut table = Vec::new();
            let mut baseline_avg = None;
            for label in &rows {
                let mut correct = Vec::new();
                for b in &benchmarks {
                    let path = root.join("evaluate").join(student).join(label).join(format!("{b}.jsonl"));
                    let records: Vec<EvalRecord> = read_jsonl(&path)?;
                    correct.push(records.iter().map(|x| x.correct).collect::<Vec<bool>>());
                }
                let seed = mix(config.run.seed, crate::seeds::text_key(&format!("{student}/{label}")));
                let (per, avg) = bootstrap(&correct, r.bootstrap_samples, r.confidence, seed);
                if label == "baseline" {
                    baseline_avg = Some(avg.value);
                }
                table.push((label.clone(), per, avg));
            }
            let _ = writeln!(md, "## Student `{student}`\n");
            let header: Vec<String> = benchmarks.iter().map(|b| format!("{b} (%)")).collect();
            let _ = writeln!(md, "| data | {} | average (%) | gain |", header.join(" | "));
            let _ = writeln!(md, "|---|{}---:|---:|", "---:|".repeat(benchmarks.len()));
            let mut json_rows = Vec::new();
            for (label, per, avg) in &table {
                let cells: Vec<String> = per
                    .iter()
                    .map(|e| format!("{} [{}, {}] (n={})", pct(e.value), pct(e.low), pct(e.high), e.n))
                    .collect();
                let gain = match (label.as_str(), baseline_avg) {
                    ("baseline", _) | (_, None) => "".to_owned(),
                    (_, Some(b)) => format!("{:+.1}", 100.0 * (avg.value - b)),
                };
                let _ = writeln!(
                    md,
                    "| {label} | {} | {} [{}, {}] | {gain} |",
                    cells.join(" | "),
                    pct(avg.value),
                    pct(avg.low),
                    pct(avg.high)
                );
                json_rows.push(json!({
                    "data": label,
                    "benchmarks": benchmarks.iter().zip(per).map(|(b, e)| (b.to_string(), json!({"accuracy": e.value, "ci": [e.low, e.high], "n": e.n}))).collect::<serde_json::Map<_, _>>(),
                    "average": {"accuracy": avg.value, "ci": [avg.low, avg.high]},
                    "gain_over_baseline": baseline_avg.filter(|_| label != "baseline").map(|b| avg.value - b),
                }));
            }
            let _ = writeln!(
                md,
                "\nAccuracy in %, greedy decoding; [low, high] is the {:.0}% percentile bootstrap interval ({} resamples of the problems); n is the number of problems it rests on. Small n means wide intervals: read them before the point estimates.\n",
                100.0 * r.confidence,
                r.bootstrap_samples
            );
            students.insert(student.clone(), Value::Array(json_rows));
        }

        // The data funnel and diversity, per strategy (absent when training on given data).
        let mut funnel = serde_json::Map::new();
        if config.train.data.is_none() {
            let (g, s, d, v) = (
                read_manifest(root, "generate"),
                read_manifest(root, "solve"),
                read_manifest(root, "dedup"),
                read_manifest(root, "verify"),
            );
            let _ = writeln!(md, "## Data per strategy\n");
            let _ = writeln!(
                md,
                "| strategy | generated | after dedup | after decontamination | verified | distinct answers | distinct-1 | ROUGE-L | semantic | calls / verified | tokens / verified |"
            );
            let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            for label in &labels {
                let count = |m: &Option<Manifest>, key: &str| {
                    m.as_ref()
                        .and_then(|m| m.counts.get(label))
                        .and_then(|c| c.get(key))
                        .cloned()
                        .unwrap_or(Value::Null)
                };
                let generated = count(&g, "kept").as_u64().unwrap_or(0);
                let dropped = count(&d, "dropped");
                let dup = ["exact", "near"]
                    .iter()
                    .filter_map(|k| dropped.get(*k).and_then(Value::as_u64))
                    .sum::<u64>();
                let after_dedup = count(&d, "input").as_u64().unwrap_or(0).saturating_sub(dup);
                let after_decontam = count(&d, "kept").as_u64().unwrap_or(0);
                let verified = count(&v, "kept").as_u64().unwrap_or(0);
                let calls = ["calls_sent", "calls_cached"]
                    .iter()
                    .map(|k| count(&g, k).as_u64().unwrap_or(0) + count(&s, k).as_u64().unwrap_or(0))
                    .sum::<u64>();
                let tokens = count(&g, "completion_tokens").as_u64().unwrap_or(0)
                    + count(&s, "completion_tokens").as_u64().unwrap_or(0);
                let div = d
                    .as_ref()
                    .and_then(|m| m.metrics.get(&format!("diversity/{label}")))
                    .cloned()
                    .unwrap_or(Value::Null);
                let per_verified = |x: u64| {
                    if verified == 0 { "-".to_owned() } else { format!("{:.1}", x as f64 / verified as f64) }
                };
                let num = |v: &Value, scale: f64| {
                    v.as_f64().map_or("-".to_owned(), |x| format!("{:.1}", scale * x))
                };
                let _ = writeln!(
                    md,
                    "| {label} | {generated} | {after_dedup} | {after_decontam} | {verified} | {} | {} | {} | {} | {} | {} |",
                    count(&v, "distinct_answers"),
                    num(&div["distinct_1"], 100.0),
                    num(&div["pairwise_rouge_l"], 100.0),
                    num(&div["semantic"], 1.0),
                    per_verified(calls),
                    per_verified(tokens)
                );
                funnel.insert(label.clone(), json!({
                    "generated": generated, "after_dedup": after_dedup, "after_decontamination": after_decontam,
                    "verified": verified, "distinct_answers": count(&v, "distinct_answers"), "diversity": div,
                    "calls": calls, "completion_tokens": tokens,
                }));
            }
            let source = funnel
                .values()
                .find_map(|v| v["diversity"]["semantic_source"].as_str())
                .map_or("not measured (dedup.embeddings.provider = \"none\")".to_owned(), |s| {
                    format!("embeddings from {s}")
                });
            let _ = writeln!(
                md,
                "\ndistinct-1 and ROUGE-L in % (ROUGE-L: mean pairwise F1, lower is more diverse); semantic: the paper's 100 x mean(1 - max(cos, 0)) over the problems dedup kept, {source}; calls and tokens (completion) of generation and solving per verified problem.\n"
            );
        }
        let mut times = serde_json::Map::new();
        let _ = writeln!(md, "## Wall time per stage\n\n| stage | seconds |\n|---|---:|");
        for stage in StageName::FLOW.iter().filter(|&&s| s != StageName::Report) {
            if let Some(m) = read_manifest(root, stage.as_str()) {
                let _ = writeln!(md, "| {} | {:.1} |", stage.as_str(), m.wall_seconds);
                times.insert(stage.as_str().to_owned(), json!(m.wall_seconds));
            }
        }
        let report = json!({ "run": config.run.name, "students": students, "data": funnel, "wall_seconds": times,
                             "bootstrap": {"samples": r.bootstrap_samples, "confidence": r.confidence} });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_intervals_bracket_the_estimate_and_shrink_with_n() {
        let small: Vec<bool> = (0..20).map(|i| i % 2 == 0).collect();
        let large: Vec<bool> = (0..2000).map(|i| i % 2 == 0).collect();
        let (s, _) = bootstrap(&[small], 1000, 0.95, 1);
        let (l, _) = bootstrap(&[large], 1000, 0.95, 1);
        assert_eq!((s[0].value, s[0].n), (0.5, 20));
        assert!(s[0].low < 0.5 && s[0].high > 0.5);
        assert!(l[0].high - l[0].low < (s[0].high - s[0].low) / 4.0);
        // Seeded: the same interval every time.
        assert_eq!(
            bootstrap(&[vec![true, false, true]], 200, 0.9, 3).1,
            bootstrap(&[vec![true, false, true]], 200, 0.9, 3).1
        );
        // The average is the mean of the benchmarks.
        let (_, avg) = bootstrap(&[vec![true; 10], vec![false; 10]], 100, 0.95, 1);
        assert_eq!(avg.value, 0.5);
        assert_eq!((avg.low, avg.high), (0.5, 0.5));
    }
}
