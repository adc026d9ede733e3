//! The evaluate stage: every student without fine-tuning (`baseline`, once) and after each
//! training run, on MATH500, OlympiadBench and Minerva Math (all problems, or a seeded stable
//! subset), with the paper's protocol: zero-shot, the `Question: ...\boxed{}` prompt through
//! the model's chat template, greedy decoding, `evaluate.max_new_tokens`, graded by answer
//! equivalence. Batched on the local engine. Records per problem in
//! `evaluate/<student>/<baseline|strategy>/<benchmark>.jsonl`, appended per batch, so an
//! interrupted run resumes where it stopped.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::json;
use trainer::generate::Request;
use trainer::text::ChatMessage;
use trainer::{DeviceSpec, Pretrained};

use super::jsonl::{append_file, read_jsonl, write_line};
use super::{Stage, StageContext, StageError, StageName, StageOutput};
use crate::config::Config;
use crate::stages::dedup::BENCHMARKS_DIR;
use crate::stages::train::CUSTOM;

pub struct Evaluate;

/// A line of `<benchmark>.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    pub id: String,
    pub response: String,
    pub extracted: Option<String>,
    pub gold: String,
    pub correct: bool,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    /// `stop` or `length`.
    pub finish: String,
}

/// The models to evaluate: `(student, label, model path)`.
fn targets(config: &Config, run_root: &Path) -> Vec<(String, String, PathBuf)> {
    let mut out = Vec::new();
    let labels: Vec<String> = match &config.train.data {
        Some(_) => vec![CUSTOM.to_owned()],
        None => config.generate.strategies.iter().map(|s| s.as_str().to_owned()).collect(),
    };
    for (student, s) in &config.train.students {
        if config.evaluate.baseline {
            out.push((student.clone(), "baseline".to_owned(), s.model_path.clone()));
        }
        for label in &labels {
            out.push((
                student.clone(),
                label.clone(),
                run_root.join("train").join(student).join(label).join("model"),
            ));
        }
    }
    out
}

/// A seeded, stable subset: the `k` problems whose (seed, id) hash is smallest, in benchmark
/// order. The same ids for every model and every run with the same seed.
pub fn subset(problems: Vec<eval::Problem>, k: Option<usize>, seed: u64) -> Vec<eval::Problem> {
    let Some(k) = k else { return problems };
    let rank = |id: &str| crate::seeds::text_key(&format!("{seed}:{id}"));
    let mut ranked: Vec<(u64, usize)> = problems.iter().enumerate().map(|(i, p)| (rank(&p.id), i)).collect();
    ranked.sort_unstable();
    let chosen: BTreeSet<usize> = ranked.into_iter().take(k).map(|(_, i)| i).collect();
    problems.into_iter().enumerate().filter(|(i, _)| chosen.contains(i)).map(|(_, p)| p).collect()
}

impl Stage for Evaluate {
    fn name(&self) -> StageName {
        StageName::Evaluate
    }

    fn config_slice(&self, config: &Config) -> serde_json::Value {
        json!({ "evaluate": config.evaluate, "seed": config.run.seed, "students": config.train.students,
                "train_data": config.train.data.is_some(), "strategies": config.generate.strategies })
    }

    fn external_inputs(&self, config: &Config) -> Vec<PathBuf> {
        let mut inputs: Vec<PathBuf> = config
            .evaluate
            .benchmarks
            .iter()
            .map(|b| Path::new(BENCHMARKS_DIR).join(b.file_name()))
            .collect();
        if config.evaluate.baseline {
            inputs.extend(
                config
                    .train
                    .students
                    .values()
                    .filter(|s| s.model_path.is_file())
                    .map(|s| s.model_path.clone()),
            );
        }
        inputs
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutput, StageError> {
        let e = &ctx.config.evaluate;
        if let Some(name) = &e.llm {
            return Err(StageError::Failed(format!(
                "evaluate.llm = \"{name}\": evaluating through an endpoint is not implemented yet; remove it to use the local engine"
            )));
        }
        let device: DeviceSpec = e
            .device
            .parse()
            .map_err(|err: trainer::DeviceSpecError| StageError::Failed(format!("evaluate.device: {err}")))?;
        let mut benchmarks = Vec::new();
        for &b in &e.benchmarks {
            let problems =
                b.load(Path::new(BENCHMARKS_DIR)).map_err(|err| StageError::Failed(err.to_string()))?;
            benchmarks.push((b, subset(problems, e.subset, ctx.config.run.seed)));
        }
        let mut output = StageOutput::default();
        for (student, label, path) in targets(ctx.config, ctx.run_dir.root()) {
            let model = Pretrained::load(&path, &device.device())
                .map_err(|err| StageError::Failed(format!("{student}/{label}: {err}")))?;
            for (b, problems) in &benchmarks {
                let dir = ctx.dir.join(&student).join(&label);
                std::fs::create_dir_all(&dir)
                    .map_err(|source| StageError::Io { path: dir.clone(), source })?;
                let out = dir.join(format!("{}.jsonl", b.as_str()));
                let bar =
                    ctx.reporter.bar(&format!("{student}/{label} {}", b.as_str()), problems.len() as u64);
                let records =
                    evaluate_one(&model, problems, &out, e.batch_size, e.max_new_tokens as usize, &*bar)?;
                bar.finish();
                let correct = records.iter().filter(|r| r.correct).count();
                output.counts.insert(
                    format!("{student}/{label}/{}", b.as_str()),
                    json!({ "problems": records.len(), "correct": correct,
                            "accuracy": correct as f64 / records.len().max(1) as f64,
                            "truncated": records.iter().filter(|r| r.finish == "length").count(),
                            "completion_tokens": records.iter().map(|r| r.completion_tokens).sum::<usize>() }),
                );
                output.outputs.push(out);
            }
        }
        Ok(output)
    }
}

/// Generates and grades what `out` does not hold yet, in batches of similar prompt length.
fn evaluate_one(
    model: &Pretrained,
    problems: &[eval::Problem],
    out: &Path,
    batch_size: usize,
    max_new_tokens: usize,
    bar: &dyn crate::progress::Progress,
) -> Result<Vec<EvalRecord>, StageError> {
    let done: BTreeSet<String> = read_jsonl::<EvalRecord>(out)?.into_iter().map(|r| r.id).collect();
    bar.inc(done.len() as u64);
    let failed = |err: trainer::ModelError| StageError::Failed(format!("{}: {err}", out.display()));
    let mut pending = Vec::new();
    for p in problems.iter().filter(|p| !done.contains(&p.id)) {
        let prompt = model
            .chat_prompt(&[ChatMessage::new("user", &eval::prompt::math_prompt(&p.problem))])
            .map_err(failed)?;
        pending.push((p, prompt));
    }
    pending.sort_by_key(|(_, prompt)| prompt.len());
    let mut file = append_file(out)?;
    for chunk in pending.chunks(batch_size.max(1)) {
        let requests: Vec<Request> =
            chunk.iter().map(|(_, prompt)| Request::greedy(prompt.clone(), max_new_tokens)).collect();
        let generations = model.generate(&requests, &mut |_, _| {}).map_err(failed)?;
        for ((p, _), g) in chunk.iter().zip(generations) {
            let verdict = eval::grader::grade(&p.gold, &g.text);
            let record = EvalRecord {
                id: p.id.clone(),
                extracted: eval::grader::answer_of(&g.text).map(str::to_owned),
                response: g.text,
                gold: p.gold.clone(),
                correct: verdict.equal,
                prompt_tokens: g.prompt_tokens,
                completion_tokens: g.tokens.len(),
                finish: serde_json::to_value(g.finish)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
            };
            write_line(&mut file, out, &record)?;
            bar.inc(1);
        }
        file.sync_data().map_err(|source| StageError::Io { path: out.to_owned(), source })?;
    }
    // In benchmark order, whatever order they were generated in.
    let by_id: std::collections::HashMap<String, EvalRecord> =
        read_jsonl::<EvalRecord>(out)?.into_iter().map(|r| (r.id.clone(), r)).collect();
    Ok(problems.iter().filter_map(|p| by_id.get(&p.id).cloned()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(n: usize) -> Vec<eval::Problem> {
        (0..n)
            .map(|i| eval::Problem {
                id: format!("p{i}"),
                problem: format!("q{i}"),
                gold: "1".into(),
                unit: None,
            })
            .collect()
    }

    #[test]
    fn subsets_are_seeded_stable_and_nested() {
        let ids = |v: Vec<eval::Problem>| v.into_iter().map(|p| p.id).collect::<Vec<_>>();
        let a = ids(subset(problems(100), Some(10), 7));
        assert_eq!(a.len(), 10);
        assert_eq!(a, ids(subset(problems(100), Some(10), 7)));
        assert_ne!(a, ids(subset(problems(100), Some(10), 8)));
        // A larger subset contains the smaller one: growing `subset` only adds problems.
        let b = ids(subset(problems(100), Some(20), 7));
        assert!(a.iter().all(|x| b.contains(x)));
        // Benchmark order is kept.
        let positions: Vec<usize> = a.iter().map(|x| x[1..].parse().unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(subset(problems(5), None, 7).len(), 5);
    }
}
