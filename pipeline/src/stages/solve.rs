//! The solve stage: `solve.num_solutions` solutions for every generated problem from the
//! solver LLM, with the paper's prompt (`Question: ...\nPlease reason step by step, and put
//! your final answer within \boxed{}.`, temperature 0.6, top-p 0.95), each answer extracted
//! with the grader's extraction. Output: `runs/<name>/solve/<strategy>/solutions.jsonl`, one
//! record per problem in problem order.
//!
//! Records carry the identity they were made under (solver endpoint, the solve settings, the
//! seed, the prompt's and this stage's versions); problem ids carry generation's. A rerun keeps
//! only records of the current identity whose problems are current, and asks again for the
//! problems whose calls failed. Resumable like generation: records are appended (in problem
//! order, whatever order the replies come in) and fsync'd about once a second, and every call is cached (by endpoint, strategy and request), so nothing paid is
//! paid twice.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::generate::ProblemRecord;
use super::{Stage, StageContext, StageError, StageOutput};
use crate::config::ResolvedLlm;
use crate::identity::Identify;
use llm::Client;
use vs_core::ChatRequest;
use vs_core::Origin;
use vs_core::StageName;
use vs_core::jsonl::{append_file, read_jsonl, write_line};
use vs_core::seeds::mix;
use vs_core::{Message, Role};

pub struct Solve;

/// One solution of a problem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Solution {
    pub text: String,
    /// The final answer the solution commits to (`\boxed{}` or "final answer is ..."), if
    /// any, as the solve stage read it: for the record and its counts. The verify vote reads
    /// the answer from `text` again with `verify.extraction` (the grader's one entry point), so
    /// a newer grader never votes on a stale reading.
    pub answer: Option<String>,
    pub completion_tokens: u64,
    /// `stop`, `length` (cut by the token budget: its answer is not trusted) or the server's.
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// A line of `solutions.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SolvedProblem {
    pub id: String,
    /// The strategy that made the problem, or the imported set it comes from.
    pub strategy: String,
    pub question: String,
    pub solutions: Vec<Solution>,
    /// Calls that failed for good (after retries); their solutions are missing, and the next
    /// run asks for them again.
    pub failed_calls: Vec<String>,
    /// The identity it was made under (see [`unit_identity`]); empty in pre-identity files.
    #[serde(default)]
    pub identity: String,
}

/// This stage's version: 2 since records carry their identity and solutions their finish reason.
pub const VERSION: u32 = 2;

/// What one strategy's solutions depend on (besides its problems, whose ids carry theirs).
pub fn unit_identity(id: Identify<'_>, strategy: &Origin) -> Result<serde_json::Value, StageError> {
    let c = id.config;
    let llm = solver(id)?;
    let s = &c.solve;
    Ok(json!({
        "stage": "solve",
        "version": VERSION,
        "prompt_version": eval::prompt::VERSION,
        "strategy": strategy,
        "num_solutions": s.num_solutions,
        "temperature": s.temperature,
        "top_p": s.top_p,
        "max_tokens": s.max_tokens.unwrap_or(llm.sampling.max_tokens),
        "seed": c.run.seed,
        "endpoint": llm.endpoint_identity(id.digests).map_err(|e| StageError::config(format!("llm.{}", llm.name), e))?,
    }))
}

fn solver(id: Identify<'_>) -> Result<ResolvedLlm, StageError> {
    id.llm(id.config.solve.llm.as_deref().unwrap_or(&id.config.generate.llm))
}

/// A stable call key for solution `j` of problem `id`, from the problem's place in its
/// strategy's generation (the id without its identity part). The cache key adds the question
/// itself, the solver endpoint and the strategy, so a key reused under a new identity only
/// ever replays a reply to the very same question from the very same solver.
fn call_key(id: &str, j: usize) -> u64 {
    let place = id.split_once('-').and_then(|(strategy, rest)| {
        rest.split_once('-').filter(|(ident, _)| ident.len() == 8).map(|(_, place)| (strategy, place))
    });
    let key = match place {
        Some((strategy, place)) => format!("{strategy}-{place}"),
        None => id.to_owned(),
    };
    mix(vs_core::seeds::text_key(&key), j as u64)
}

impl Stage for Solve {
    fn name(&self) -> StageName {
        StageName::Solve
    }

    fn version(&self) -> u32 {
        VERSION
    }

    fn config_slice(&self, id: Identify<'_>) -> Result<serde_json::Value, StageError> {
        Ok(json!({ "units": super::strategy_identities(id, unit_identity)? }))
    }

    fn shardable(&self) -> bool {
        true
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutput, StageError> {
        let config = ctx.config;
        let llm = solver(ctx.identify())?;
        let (client, runtime, _server) = super::llm_client(ctx, &llm)?;
        let meter = super::CallMeter::start(&client);
        let mut output = StageOutput::default();
        let mut jobs = Vec::new();
        for strategy in super::arms::origins(config) {
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
            let identity = crate::identity::short(&unit_identity(ctx.identify(), &strategy)?);
            jobs.push((strategy, problems, out_path, identity));
        }
        // The strategies are solved at once: an engine's batch fills with the calls of all of
        // them (one strategy's 2 x 24 calls left a 64-row batch a quarter empty as it drained).
        let runs = jobs.iter().map(|(strategy, problems, out_path, identity)| {
            let job = SolveJob { ctx, llm: &llm, client: &client, strategy, identity };
            async move {
                let started = std::time::Instant::now();
                let counts = job.run(problems, out_path).await?;
                Ok::<_, StageError>((counts, started.elapsed().as_secs_f64()))
            }
        });
        let results = runtime.block_on(futures_util::future::try_join_all(runs))?;
        let mut walls = serde_json::Map::new();
        for ((strategy, _, out_path, _), (counts, wall)) in jobs.iter().zip(results) {
            output.outputs.push(out_path.clone());
            output.counts.insert(strategy.as_str().to_owned(), counts);
            walls.insert(strategy.as_str().to_owned(), json!((wall * 1000.0).round() / 1000.0));
        }
        output.metrics.insert("wall_s".to_owned(), walls.into());
        output.metrics.insert("llm".to_owned(), meter.to_json(&client));
        Ok(output)
    }
}

struct SolveJob<'a> {
    ctx: &'a StageContext<'a>,
    llm: &'a ResolvedLlm,
    client: &'a Arc<Client>,
    strategy: &'a Origin,
    identity: &'a str,
}

impl SolveJob<'_> {
    async fn run(
        &self,
        problems: &[ProblemRecord],
        out_path: &Path,
    ) -> Result<serde_json::Value, StageError> {
        let (ctx, config, llm, client, strategy) =
            (self.ctx, self.ctx.config, self.llm, self.client, self.strategy);
        let arm = format!("solve/{strategy}");
        // Keep only records of this identity, of current problems, with every call answered:
        // the rest (another solver or setting, problems no longer generated, failed calls) is
        // solved again, cached calls for free.
        let wanted: BTreeSet<&str> = problems.iter().map(|p| p.id.as_str()).collect();
        let what = format!("solve/{strategy}");
        let mut existing =
            vs_core::jsonl::keep_identity::<SolvedProblem>(out_path, self.identity, &what, |r| &r.identity)?;
        let before = existing.len();
        existing.retain(|r| wanted.contains(r.id.as_str()) && r.failed_calls.is_empty());
        if existing.len() < before {
            tracing::info!(
                "{what}: {} records dropped (problems no longer generated, or calls that failed: asked again)",
                before - existing.len()
            );
            vs_core::jsonl::write_all(out_path, &existing)?;
        }
        let done: BTreeSet<String> = existing.into_iter().map(|r| r.id).collect();
        let m = config.solve.num_solutions;
        let pending: Vec<&ProblemRecord> = problems.iter().filter(|p| !done.contains(&p.id)).collect();
        let bar = ctx.reporter.bar(&format!("solve {strategy}"), problems.len() as u64);
        bar.inc((problems.len() - pending.len()) as u64);
        let mut file = append_file(out_path)?;
        let (mut calls_sent, mut calls_cached, mut tokens) = (0u64, 0u64, 0u64);
        let mut failures = super::Failures::default();
        let planned_calls = pending.len() * m;
        // Calls flow continuously: a problem's calls are sent as soon as a slot frees, with at
        // most `window` problems in flight (memory stays bounded); records are committed in
        // problem order through a reorder buffer, and fsync'd about once a second, so a kill
        // loses at most that much of (cached) calls.
        let window = (llm.throughput.max_concurrency * 4).div_ceil(m.max(1)).max(1);
        let mut tasks = tokio::task::JoinSet::new();
        let mut replies: BTreeMap<(usize, usize), Result<vs_core::ChatResponse, llm::LlmError>> =
            BTreeMap::new();
        let (mut next, mut committed) = (0usize, 0usize);
        let mut syncer = vs_core::jsonl::Syncer::new(window);
        while committed < pending.len() {
            while next < pending.len() && next - committed < window {
                let problem = pending[next];
                for j in 0..m {
                    let key = call_key(&problem.id, j);
                    let request = ChatRequest {
                        model: client.model_name(),
                        messages: vec![Message::new(
                            Role::User,
                            eval::prompt::math_prompt(&problem.question),
                        )],
                        temperature: config.solve.temperature,
                        top_p: config.solve.top_p,
                        max_tokens: config.solve.max_tokens.unwrap_or(llm.sampling.max_tokens),
                        seed: Some(mix(config.run.seed, key) >> 1),
                        response_format: None,
                    };
                    let (client, arm) = (Arc::clone(client), arm.clone());
                    let p = next;
                    tasks.spawn(async move { (p, j, client.chat(&request, &arm, key).await) });
                }
                next += 1;
            }
            if m > 0 {
                let Some(joined) = tasks.join_next().await else { break };
                let (p, j, reply) =
                    joined.map_err(|e| StageError::Runtime(format!("a solve task failed: {e}")))?;
                match reply {
                    Err(e) if e.is_fatal() => {
                        return Err(StageError::llm(format!("llm.{}", self.llm.name), e)
                            .within(format!("solve {strategy}")));
                    }
                    reply => {
                        replies.insert((p, j), reply);
                    }
                }
            }
            while committed < next && (0..m).all(|j| replies.contains_key(&(committed, j))) {
                let problem = pending[committed];
                let mut record = SolvedProblem {
                    id: problem.id.clone(),
                    strategy: strategy.as_str().to_owned(),
                    question: problem.question.clone(),
                    solutions: Vec::with_capacity(m),
                    failed_calls: Vec::new(),
                    identity: self.identity.to_owned(),
                };
                for j in 0..m {
                    match replies.remove(&(committed, j)).expect("every call was answered") {
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
                                finish_reason: r.finish_reason,
                            });
                        }
                        Err(e) => {
                            failures.add(&e);
                            record.failed_calls.push(e.to_string().chars().take(300).collect());
                        }
                    }
                }
                write_line(&mut file, out_path, &record)?;
                if syncer.due() {
                    vs_core::jsonl::sync(&file, out_path)?;
                    syncer.synced();
                }
                bar.inc(1);
                committed += 1;
            }
            failures.check(
                &format!("solve {strategy}: calls"),
                planned_calls,
                config.run.max_failed_fraction,
            )?;
        }
        vs_core::jsonl::sync(&file, out_path)?;
        bar.finish();
        let records: Vec<SolvedProblem> = read_jsonl(out_path)?;
        let solutions: usize = records.iter().map(|r| r.solutions.len()).sum();
        let answered: usize =
            records.iter().flat_map(|r| &r.solutions).filter(|s| s.answer.is_some()).count();
        Ok(json!({
            "problems": records.len(),
            "solutions": solutions,
            "with_answer": answered,
            "failed_calls": failures.by_reason,
            "calls_sent": calls_sent,
            "calls_cached": calls_cached,
            "completion_tokens": tokens,
            "truncated": records.iter().flat_map(|r| &r.solutions).filter(|s| s.finish_reason.as_deref() == Some("length")).count(),
        }))
    }
}
