//! The solve stage: `solve.num_solutions` solutions for every generated problem from the
//! solver LLM, with the paper's prompt (`Question: ...\nPlease reason step by step, and put
//! your final answer within \boxed{}.`, temperature 0.6, top-p 0.95), each answer extracted
//! with the grader's extraction. Output: `runs/<name>/solve/<strategy>/solutions.jsonl`, one
//! record per problem in problem order.
//!
//! Resumable like generation: records are appended and fsync'd per wave, finished problem ids
//! are skipped on rerun, and every call is cached by its request, so nothing paid is paid twice.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::generate::ProblemRecord;
use super::jsonl::{append_file, read_jsonl, write_line};
use super::{Stage, StageContext, StageError, StageName, StageOutput};
use crate::config::{Config, LlmConfig};
use crate::llm::{ChatRequest, Client};
use crate::seeds::mix;
use crate::strategy::{Message, Role, Strategy};

pub struct Solve;

/// One solution of a problem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Solution {
    pub text: String,
    /// The extracted final answer (`\boxed{}` or "final answer is ..."), if any.
    pub answer: Option<String>,
    pub completion_tokens: u64,
}

/// A line of `solutions.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SolvedProblem {
    pub id: String,
    pub strategy: Strategy,
    pub question: String,
    pub solutions: Vec<Solution>,
    /// Calls that failed for good (after retries); their solutions are missing.
    pub failed_calls: Vec<String>,
}

fn solver_of(config: &Config) -> Result<(&str, &LlmConfig), StageError> {
    let name = config.solve.llm.as_deref().unwrap_or(&config.generate.llm);
    let llm = config.llm.get(name).ok_or_else(|| StageError::Failed(format!("no [llm.{name}] section")))?;
    Ok((name, llm))
}

/// A stable call key for solution `j` of problem `id`.
fn call_key(id: &str, j: usize) -> u64 {
    mix(crate::seeds::text_key(id), j as u64)
}

impl Stage for Solve {
    fn name(&self) -> StageName {
        StageName::Solve
    }

    fn config_slice(&self, config: &Config) -> serde_json::Value {
        let llm = solver_of(config).ok().map(|(_, l)| l);
        json!({
            "solve": config.solve,
            "seed": config.run.seed,
            "strategies": config.generate.strategies,
            "llm": llm.map(|l| json!({
                "provider": l.provider, "base_url": l.base_url, "model": l.model,
                "model_path": l.model_path, "max_tokens": l.max_tokens,
            })),
        })
    }

    fn shardable(&self) -> bool {
        true
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutput, StageError> {
        let config = ctx.config;
        let (name, llm) = solver_of(config)?;
        let (client, runtime) = super::llm_client(ctx, name, llm)?;
        let mut output = StageOutput::default();
        for &strategy in &config.generate.strategies {
            let problems_path =
                ctx.run_dir.root().join("generate").join(strategy.as_str()).join("problems.jsonl");
            let mut problems: Vec<ProblemRecord> = read_jsonl(&problems_path)?;
            let dir = ctx.dir.join(strategy.as_str());
            std::fs::create_dir_all(&dir).map_err(|source| StageError::Io { path: dir.clone(), source })?;
            // A shard solves its range into its own file; its calls land in the call cache,
            // from which the unsharded run writes `solutions.jsonl` without sending them again.
            let out_path = match ctx.shard {
                Some(shard) => {
                    problems = problems[shard.range(problems.len())].to_vec();
                    dir.join(format!("solutions.{}.jsonl", shard.tag()))
                }
                None => dir.join("solutions.jsonl"),
            };
            let counts =
                runtime.block_on(solve_all(ctx, config, llm, &client, &problems, &out_path, strategy))?;
            output.outputs.push(out_path);
            output.counts.insert(strategy.as_str().to_owned(), counts);
        }
        Ok(output)
    }
}

async fn solve_all(
    ctx: &StageContext<'_>,
    config: &Config,
    llm: &LlmConfig,
    client: &Arc<Client>,
    problems: &[ProblemRecord],
    out_path: &Path,
    strategy: Strategy,
) -> Result<serde_json::Value, StageError> {
    // The file may hold problems a larger `num_problems` once produced: keep only current ones.
    let wanted: BTreeSet<&str> = problems.iter().map(|p| p.id.as_str()).collect();
    let mut existing: Vec<SolvedProblem> = read_jsonl(out_path)?;
    if existing.iter().any(|r| !wanted.contains(r.id.as_str())) {
        existing.retain(|r| wanted.contains(r.id.as_str()));
        let text: String =
            existing.iter().map(|r| serde_json::to_string(r).expect("records serialize") + "\n").collect();
        crate::manifest::write_atomic(out_path, text.as_bytes())
            .map_err(|source| StageError::Io { path: out_path.to_owned(), source })?;
    }
    let done: BTreeSet<String> = existing.into_iter().map(|r| r.id).collect();
    let m = config.solve.num_solutions;
    let pending: Vec<&ProblemRecord> = problems.iter().filter(|p| !done.contains(&p.id)).collect();
    let bar = ctx.reporter.bar(&format!("solve {strategy}"), problems.len() as u64);
    bar.inc((problems.len() - pending.len()) as u64);
    let mut file = append_file(out_path)?;
    let (mut calls_sent, mut calls_cached, mut failed, mut tokens) = (0u64, 0u64, 0u64, 0u64);
    // Waves keep memory bounded and let a kill lose at most one wave of (cached) calls.
    let wave = (llm.max_concurrency.max(1) * 4).div_ceil(m.max(1)).max(1);
    for chunk in pending.chunks(wave) {
        let mut tasks = tokio::task::JoinSet::new();
        for (p, problem) in chunk.iter().enumerate() {
            for j in 0..m {
                let key = call_key(&problem.id, j);
                let request = ChatRequest {
                    model: client.model_name(llm),
                    messages: vec![Message::new(Role::User, eval::prompt::math_prompt(&problem.question))],
                    temperature: config.solve.temperature,
                    top_p: config.solve.top_p,
                    max_tokens: config.solve.max_tokens.unwrap_or(llm.max_tokens),
                    seed: Some(mix(config.run.seed, key) >> 1),
                    response_format: None,
                };
                let client = client.clone();
                tasks.spawn(async move { (p, j, client.chat(&request, key).await) });
            }
        }
        let mut replies: BTreeMap<(usize, usize), _> = BTreeMap::new();
        while let Some(joined) = tasks.join_next().await {
            let (p, j, reply) =
                joined.map_err(|e| StageError::Failed(format!("a solve task failed: {e}")))?;
            replies.insert((p, j), reply);
        }
        for (p, problem) in chunk.iter().enumerate() {
            let mut record = SolvedProblem {
                id: problem.id.clone(),
                strategy,
                question: problem.question.clone(),
                solutions: Vec::with_capacity(m),
                failed_calls: Vec::new(),
            };
            for j in 0..m {
                match replies.remove(&(p, j)).expect("every call was spawned") {
                    Ok(r) => {
                        if r.cached {
                            calls_cached += 1
                        } else {
                            calls_sent += 1
                        }
                        tokens += r.usage.completion_tokens;
                        let answer = eval::grader::committed_answer(&r.content).map(str::to_owned);
                        record.solutions.push(Solution {
                            text: r.content,
                            answer,
                            completion_tokens: r.usage.completion_tokens,
                        });
                    }
                    Err(e) => {
                        failed += 1;
                        record.failed_calls.push(e.to_string().chars().take(300).collect());
                    }
                }
            }
            write_line(&mut file, out_path, &record)?;
            bar.inc(1);
        }
        file.sync_data().map_err(|source| StageError::Io { path: out_path.to_owned(), source })?;
    }
    bar.finish();
    let records: Vec<SolvedProblem> = read_jsonl(out_path)?;
    let solutions: usize = records.iter().map(|r| r.solutions.len()).sum();
    let answered: usize = records.iter().flat_map(|r| &r.solutions).filter(|s| s.answer.is_some()).count();
    Ok(json!({
        "problems": records.len(),
        "solutions": solutions,
        "with_answer": answered,
        "failed_calls": failed,
        "calls_sent": calls_sent,
        "calls_cached": calls_cached,
        "completion_tokens": tokens,
    }))
}
