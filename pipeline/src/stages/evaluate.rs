//! The evaluate stage: every student without fine-tuning (`baseline`, once) and after each
//! training run, on MATH500, OlympiadBench and Minerva Math (all problems, or a seeded stable
//! subset), with the paper's protocol: zero-shot, the `Question: ...\boxed{}` prompt through
//! the model's chat template, greedy decoding, `evaluate.max_new_tokens`, graded by answer
//! equivalence. Batched on the local engine, or sent to an OpenAI-compatible endpoint
//! (`evaluate.llm`, e.g. vLLM serving the exported model; see [`served_model`]). Records per problem in
//! `evaluate/<student>/<baseline|strategy>/<benchmark>.jsonl`, appended per batch, so an
//! interrupted run resumes where it stopped.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::json;
use trainer::Pretrained;
use trainer::generate::{BatchProfile, Decoder, Padding, Request};
use trainer::text::ChatMessage;

use super::{Stage, StageContext, StageError, StageOutput};
use crate::config::Config;
use crate::identity::Identify;
use vs_core::StageName;
use vs_core::jsonl::{append_file, read_jsonl, write_line};

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
    /// The identity its response was made under (see [`target_identity`]); empty in
    /// pre-identity files.
    #[serde(default)]
    pub identity: String,
    /// How `correct` was decided (see [`super::grading::label`]): a record graded otherwise
    /// is re-graded from its response, never re-generated.
    #[serde(default)]
    pub graded_by: String,
    /// Each grader's verdict under `evaluate.grader = "math_verify"` or `"both"` (`correct`
    /// is math-verify's); empty with the native grader alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grades: Vec<super::grading::Grade>,
}

/// This stage's version: 3 since responses are graded by `evaluate.extraction` with the
/// problem at hand (math-verify's extraction by default), and targets are training runs; 4
/// since decoding drops cached padding no row needs (issue 29): attention over fewer keys can
/// round a greedy step differently; 5 since prompts are prefilled in runs of similar length
/// instead of all padded to the longest (less padding, other rounding); 6 since cached attention
/// (prefill and decoding) runs libtorch's fused kernel; 7 since q/k/v and gate/up are one matmul
/// each and, on the CPU, every matmul runs over weights packed for oneDNN (other rounding).
pub const VERSION: u32 = 7;

/// What one target's responses depend on: who answers (the model's content digest in-process;
/// through an endpoint, its identity, the name the target is asked for by and the target's
/// content where it is on disk), the protocol (prompt, token budget, greedy decoding) and which
/// problems (subset and seed). Not the grading: a new grader or extraction re-grades the
/// stored responses (`graded_by`) without asking the model again.
/// What the local engine stores weights and computes in (`evaluate.dtype` on
/// `evaluate.device`).
pub fn local_precision(c: &Config) -> Result<trainer::Precision, StageError> {
    let device = super::device(&c.evaluate.device, "evaluate.device")?;
    Ok(c.evaluate.dtype.resolve(device))
}

pub fn target_identity(id: Identify<'_>, model: &Path) -> Result<serde_json::Value, StageError> {
    let c = id.config;
    let e = &c.evaluate;
    let who = match &e.llm {
        // bf16 weights answer differently; f32 keeps the identity it had before dtype was a
        // setting.
        None if e.serve.is_some() => {
            let llm = served_target(c, model, "evaluate")?;
            json!({
                "endpoint": llm.endpoint_identity(id.digests).map_err(|err| StageError::config("evaluate.serve", err))?,
                "served_model": model.display().to_string(),
                "model_sha256": if model.exists() { Some(id.model(model)?) } else { None },
            })
        }
        None => match local_precision(c)? {
            trainer::Precision::F32 => json!({ "local_model_sha256": id.model(model)? }),
            p => json!({ "local_model_sha256": id.model(model)?, "dtype": p.to_string() }),
        },
        Some(name) => {
            let llm = id.llm(name)?;
            json!({
                "endpoint": llm.endpoint_identity(id.digests).map_err(|err| StageError::config(format!("llm.{name}"), err))?,
                "served_model": served_model(e, &llm, model),
                // A model served from a path here is known by its content; one only the
                // server has (a hub name) by its name.
                "model_sha256": if model.exists() { Some(id.model(model)?) } else { None },
            })
        }
    };
    Ok(json!({
        "stage": "evaluate",
        "version": VERSION,
        "prompt_version": eval::prompt::VERSION,
        "model": who,
        "max_new_tokens": e.max_new_tokens,
        "decoding": "greedy",
        "subset": e.subset,
        "seed": c.run.seed,
    }))
}

/// The LLM that serves one target under `evaluate.serve`: greedy, the evaluation's token budget,
/// `evaluate.batch_size` requests in flight, the target's path as its served name.
pub fn served_target(c: &Config, model: &Path, name: &str) -> Result<crate::config::ResolvedLlm, StageError> {
    let e = &c.evaluate;
    let serve =
        e.serve.clone().map(|s| crate::config::ServeConfig { model: Some(model.display().to_string()), ..s });
    let section = crate::config::LlmConfig {
        provider: crate::config::Provider::Openai,
        model: Some(model.display().to_string()),
        max_concurrency: e.batch_size.max(1),
        timeout_s: 3600.0,
        deadline_s: 4.0 * 3600.0,
        max_retries: 2,
        temperature: 0.0,
        max_tokens: e.max_new_tokens,
        serve,
        ..crate::config::LlmConfig::default()
    };
    crate::config::ResolvedLlm::new(name, &section).map_err(|e| StageError::config("evaluate", e))
}

/// The models to evaluate: `(student, label, model path)`; labels are `baseline` and each
/// training run's (`vs_multi/curated/seed-42`).
fn targets(config: &Config, run_root: &Path) -> Vec<(String, String, PathBuf)> {
    let mut out = Vec::new();
    let labels: Vec<String> = super::arms::training_runs(config).iter().map(|r| r.label()).collect();
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

/// One student's baseline on a sample of one arm's training problems.
struct Probe {
    student: String,
    /// `vs_multi/curated`.
    arm: String,
    /// The file stem: `training_probe.<origin>.<curation>.<digest of its problems>`, so a
    /// changed sample (or gold) never mixes with records of another.
    name: String,
    problems: Vec<eval::Problem>,
}

/// With `evaluate.training_probe = N`: per student and arm, a seeded sample of N problems of
/// what the arm's first training seed trains on (`train/budget/...`), gold the answer verify
/// kept.
fn training_probes(config: &Config, run_root: &Path) -> Result<Vec<Probe>, StageError> {
    let n = config.evaluate.training_probe;
    if n == 0 || !config.evaluate.baseline || config.train.data.is_some() {
        return Ok(Vec::new());
    }
    let seed = super::arms::seeds(config)[0];
    let mut out = Vec::new();
    for student in config.train.students.keys() {
        for source in super::arms::sources(config) {
            let super::arms::Source::Arm(arm) = source else { continue };
            let path = run_root
                .join("train/budget")
                .join(student)
                .join(arm.path())
                .join(format!("seed-{seed}.jsonl"));
            let pairs: Vec<super::verify::VerifiedPair> = read_jsonl(&path)?;
            let problems: Vec<eval::Problem> = pairs
                .into_iter()
                .map(|p| eval::Problem {
                    problem: eval::prompt::question_of(&p.prompt).unwrap_or(&p.prompt).to_owned(),
                    id: p.id,
                    gold: p.answer,
                    unit: None,
                })
                .collect();
            let problems = subset(problems, Some(n), config.run.seed);
            let digest: String = problems.iter().map(|p| format!("{}\t{}\n", p.id, p.gold)).collect();
            let digest = &vs_core::digest::sha256_hex(digest.as_bytes())[..12];
            out.push(Probe {
                student: student.clone(),
                name: format!("training_probe.{}.{}.{digest}", arm.origin.as_str(), arm.curation.as_str()),
                arm: arm.label(),
                problems,
            });
        }
    }
    Ok(out)
}

/// A seeded, stable subset: the `k` problems whose (seed, id) hash is smallest, in benchmark
/// order. The same ids for every model and every run with the same seed.
pub fn subset(problems: Vec<eval::Problem>, k: Option<usize>, seed: u64) -> Vec<eval::Problem> {
    let Some(k) = k else { return problems };
    let rank = |id: &str| vs_core::seeds::text_key(&format!("{seed}:{id}"));
    let mut ranked: Vec<(u64, usize)> = problems.iter().enumerate().map(|(i, p)| (rank(&p.id), i)).collect();
    ranked.sort_unstable();
    let chosen: BTreeSet<usize> = ranked.into_iter().take(k).map(|(_, i)| i).collect();
    problems.into_iter().enumerate().filter(|(i, _)| chosen.contains(i)).map(|(_, p)| p).collect()
}

impl Stage for Evaluate {
    fn name(&self) -> StageName {
        StageName::Evaluate
    }

    fn shardable(&self) -> bool {
        true
    }

    fn version(&self) -> u32 {
        VERSION
    }

    fn config_slice(&self, id: Identify<'_>) -> Result<serde_json::Value, StageError> {
        // Trained targets enter through train's output digests (upstream); baselines here.
        let c = id.config;
        let mut baselines = serde_json::Map::new();
        if c.evaluate.baseline {
            for (name, s) in &c.train.students {
                baselines.insert(name.clone(), target_identity(id, &s.model_path)?);
            }
        }
        let evaluate = crate::identity::reads::EvaluateReads::new(&c.evaluate);
        let mut slice = json!({ "evaluate": evaluate, "seed": c.run.seed, "baselines": baselines,
                   "grading": super::grading::label(&c.evaluate),
                   "train_data": c.train.data.is_some(), "strategies": crate::stages::arms::origin_names(c) });
        let precision = local_precision(c)?;
        if c.evaluate.llm.is_none() && precision != trainer::Precision::F32 {
            slice["dtype"] = json!(precision.to_string());
        }
        Ok(slice)
    }

    fn external_inputs(&self, config: &Config) -> Vec<PathBuf> {
        let mut inputs: Vec<PathBuf> = Vec::new();
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

    fn embedded_inputs(&self, config: &Config) -> Vec<(PathBuf, &'static [u8])> {
        config.evaluate.benchmarks.iter().map(|b| (b.vendored_path(), b.embedded().as_bytes())).collect()
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutput, StageError> {
        let e = &ctx.config.evaluate;
        // A running server for every target (`evaluate.llm`); or one started per target
        // (`evaluate.serve`), below.
        let shared = match &e.llm {
            Some(name) => {
                let llm = ctx.identify().llm(name)?;
                let (client, runtime, server) = super::llm_client(ctx, &llm)?;
                Some((client, runtime, llm, server))
            }
            None => None,
        };
        let device = super::device(&e.device, "evaluate.device")?;
        let mut benchmarks = Vec::new();
        for &b in &e.benchmarks {
            let problems = b.load_embedded()?;
            benchmarks.push((b.as_str().to_owned(), subset(problems, e.subset, ctx.config.run.seed)));
        }
        let probes = training_probes(ctx.config, ctx.run_dir.root())?;
        let precision = local_precision(ctx.config)?;
        let mut graders = super::grading::Graders::new(e);
        graders.ready()?;
        let mut output = StageOutput::default();
        // Where in-process decoding's time went, per target (endpoints meter their own calls).
        let mut decoding = serde_json::Map::new();
        for (student, label, path) in targets(ctx.config, ctx.run_dir.root()) {
            let about = target_identity(ctx.identify(), &path)?;
            let identity = crate::identity::short(&about);
            // Started for this target alone; stopped when the next one starts.
            let own = match &e.serve {
                Some(_) => {
                    let name = format!("evaluate-{student}-{}", label.replace('/', "-"));
                    let llm = served_target(ctx.config, &path, &name)?;
                    let (client, runtime, server) = super::llm_client(ctx, &llm)?;
                    Some((client, runtime, llm, server))
                }
                None => None,
            };
            let engine = match shared.as_ref().or(own.as_ref()) {
                Some((client, runtime, llm, _)) => Engine::Endpoint {
                    client,
                    runtime,
                    model: served_model(e, llm, &path),
                    // Each target (and each content of it) is its own arm: no target is ever
                    // answered from another's cached replies. The subset and seed stay out:
                    // growing the subset re-asks nothing already answered.
                    arm: format!("evaluate/{student}/{label}/{}", crate::identity::short(&about["model"])),
                },
                None => Engine::Local(Box::new(
                    Pretrained::load(&path, &device.device())
                        .and_then(|m| m.stored_in(precision))
                        .map_err(|err| StageError::model(format!("{student}/{label}"), err))?,
                )),
            };
            let dir = ctx.dir.join(&student).join(&label);
            prepare_dir(&dir, &about, &identity, ctx.force, ctx.shard.is_some())?;
            // (file name, counts key, problems): the benchmarks, and for the baseline the
            // arms' training probes.
            let mut named: Vec<(&str, String, &[eval::Problem])> = benchmarks
                .iter()
                .map(|(b, problems)| (b.as_str(), format!("{student}/{label}/{b}"), &problems[..]))
                .collect();
            if label == "baseline" {
                for probe in probes.iter().filter(|p| p.student == student) {
                    let key = format!("{student}/baseline/training_probe/{}", probe.arm);
                    named.push((probe.name.as_str(), key, &probe.problems[..]));
                }
            }
            let mut sets = Vec::with_capacity(named.len());
            for (b, _, problems) in &named {
                let main = dir.join(format!("{b}.jsonl"));
                // A shard evaluates its range into its own file, named with the identity so a
                // later merge never folds in records of another model or setting.
                sets.push(match ctx.shard {
                    Some(shard) => (
                        &problems[shard.range(problems.len())],
                        dir.join(format!("{b}.{}.{}.jsonl", &identity[..12], shard.tag())),
                    ),
                    None => {
                        merge_shards(&dir, b, &identity, problems, &main)?;
                        (&problems[..], main)
                    }
                });
            }
            let total = sets.iter().map(|(p, _)| p.len()).sum::<usize>() as u64;
            let bar = ctx.reporter.bar(&format!("{student}/{label}"), total);
            let (results, profile) = evaluate_target(
                &engine,
                &sets,
                &identity,
                e.batch_size,
                e.max_new_tokens as usize,
                &mut graders,
                &*bar,
            )?;
            bar.finish();
            if let Some(profile) = profile.filter(|p| p.rows > 0) {
                let tokens = results.iter().flatten().map(|r| r.completion_tokens).sum::<usize>();
                let about = profile_json(&profile, tokens);
                tracing::info!("evaluate {student}/{label}: decoding {about}");
                decoding.insert(format!("{student}/{label}"), about);
            }
            for ((_, key, _), (records, (_, out))) in named.iter().zip(results.into_iter().zip(sets)) {
                let correct = records.iter().filter(|r| r.correct).count();
                output.counts.insert(
                    key.clone(),
                    json!({ "problems": records.len(), "correct": correct,
                            "accuracy": correct as f64 / records.len().max(1) as f64,
                            "truncated": records.iter().filter(|r| r.finish == "length").count(),
                            "completion_tokens": records.iter().map(|r| r.completion_tokens).sum::<usize>() }),
                );
                output.outputs.push(out);
            }
        }
        if !decoding.is_empty() {
            output.metrics.insert("decoding".to_owned(), decoding.into());
        }
        Ok(output)
    }
}

/// Records `about` (the target's identity) beside its records. An unsharded run keeps only
/// records made under `identity` (none under `--force`) and drops other identities' shard
/// files; shards only write their own files, which carry the identity in their names.
fn prepare_dir(
    dir: &Path,
    about: &serde_json::Value,
    identity: &str,
    force: bool,
    sharded: bool,
) -> Result<(), StageError> {
    std::fs::create_dir_all(dir).map_err(|source| StageError::Io { path: dir.to_owned(), source })?;
    if sharded {
        return Ok(());
    }
    let current_shard = format!(".{}.shard-", &identity[..12]);
    for entry in std::fs::read_dir(dir).map_err(|source| StageError::Io { path: dir.to_owned(), source })? {
        let p = entry.map_err(|source| StageError::Io { path: dir.to_owned(), source })?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if !name.ends_with(".jsonl") {
            continue;
        }
        if name.contains(".shard-") {
            if force || !name.contains(&current_shard) {
                std::fs::remove_file(&p).map_err(|source| StageError::Io { path: p.clone(), source })?;
            }
        } else if force {
            vs_core::jsonl::write_all::<EvalRecord>(&p, &[])?;
        } else {
            vs_core::jsonl::keep_identity::<EvalRecord>(
                &p,
                identity,
                &format!("evaluate {}", dir.display()),
                |r| &r.identity,
            )?;
        }
    }
    let path = dir.join("identity.json");
    let text = serde_json::to_string_pretty(&json!({ "identity": identity, "about": about }))
        .expect("json serializes");
    vs_core::fs::write_atomic(&path, text.as_bytes()).map_err(|source| StageError::Io { path, source })
}

/// Folds the records of this identity's shard files (`<benchmark>.<identity>.shard-*.jsonl`)
/// that `main` lacks into `main`, keeping only current problems.
fn merge_shards(
    dir: &Path,
    benchmark: &str,
    identity: &str,
    problems: &[eval::Problem],
    main: &Path,
) -> Result<usize, StageError> {
    let prefix = format!("{benchmark}.{}.shard-", &identity[..12]);
    let mut shards: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| StageError::Io { path: dir.to_owned(), source })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".jsonl"))
        })
        .collect();
    shards.sort();
    let wanted: BTreeSet<&str> = problems.iter().map(|p| p.id.as_str()).collect();
    let mut have: BTreeSet<String> = read_jsonl::<EvalRecord>(main)?.into_iter().map(|r| r.id).collect();
    let mut file = append_file(main)?;
    let mut merged = 0;
    for shard in &shards {
        for record in read_jsonl::<EvalRecord>(shard)? {
            if record.identity == identity
                && wanted.contains(record.id.as_str())
                && have.insert(record.id.clone())
            {
                write_line(&mut file, main, &record)?;
                merged += 1;
            }
        }
    }
    file.sync_data().map_err(|source| StageError::Io { path: main.to_owned(), source })?;
    if merged > 0 {
        tracing::info!("{}: merged {merged} records from {} shard file(s)", main.display(), shards.len());
    }
    Ok(merged)
}

/// Who answers: the model in-process, or an OpenAI-compatible server.
enum Engine<'a> {
    Local(Box<Pretrained>),
    Endpoint {
        client: &'a std::sync::Arc<llm::Client>,
        runtime: &'a tokio::runtime::Runtime,
        /// The `model` sent: see [`served_model`].
        model: String,
        /// The call-cache arm: the target and its identity.
        arm: String,
    },
}

/// The `model` name an endpoint serves a target under (`evaluate.endpoint_model`): the
/// target's path as given, which is what `vllm serve <path>` serves it as (start the server
/// from the pipeline's directory), or the endpoint's configured `model`.
pub fn served_model(
    e: &crate::config::EvaluateConfig,
    llm: &crate::config::ResolvedLlm,
    path: &Path,
) -> String {
    match (e.endpoint_model, &llm.endpoint) {
        (crate::config::EndpointModel::Configured, crate::config::Endpoint::Openai { model, .. }) => {
            model.clone()
        }
        _ => path.display().to_string(),
    }
}

/// One reply, whoever wrote it.
struct Answer {
    text: String,
    prompt_tokens: usize,
    completion_tokens: usize,
    finish: String,
}

/// What an [`Engine`] hands over as replies finish: (index into the problems, reply).
type Deliver<'d> = dyn FnMut(Vec<(usize, Answer)>) -> Result<(), StageError> + 'd;

impl Engine<'_> {
    /// Answers every problem, at most `batch_size` at a time, handing replies to `deliver` as
    /// they finish. In-process, rows join the decoding batch as others finish (a static batch
    /// waited for its longest reply with its finished rows' slots empty); returns where that
    /// decoding's time went. An endpoint is sent `batch_size` problems at a time.
    fn answer_all(
        &self,
        problems: &[&eval::Problem],
        max_new_tokens: usize,
        batch_size: usize,
        target: &str,
        deliver: &mut Deliver<'_>,
    ) -> Result<Option<BatchProfile>, StageError> {
        let prompt = |p: &eval::Problem| eval::prompt::math_prompt(&p.problem);
        let batch_size = batch_size.max(1);
        match self {
            Engine::Local(model) => {
                let failed = |p: &eval::Problem, e: trainer::ModelError| {
                    StageError::Other(format!("evaluate {target}, {}: {e}", p.id).into())
                };
                let broke = |e: trainer::ModelError| {
                    StageError::Other(format!("evaluate {target}: the model failed: {e}").into())
                };
                let mut queue = std::collections::VecDeque::with_capacity(problems.len());
                for (i, p) in problems.iter().enumerate() {
                    let ids = model
                        .chat_prompt(&[ChatMessage::new("user", &prompt(p))])
                        .map_err(|e| failed(p, e))?;
                    queue.push_back((i, Request::greedy(ids, max_new_tokens)));
                }
                let mut decoder = Decoder::new(&model.model, &model.tokenizer);
                let mut hand_over = |answers: Vec<trainer::generate::Answer>| {
                    let mut done = Vec::with_capacity(answers.len());
                    for (i, g) in answers {
                        let g = g.map_err(|e| failed(problems[i], e))?;
                        done.push((
                            i,
                            Answer {
                                prompt_tokens: g.prompt_tokens,
                                completion_tokens: g.tokens.len(),
                                finish: g.finish.as_str().to_owned(),
                                text: g.text,
                            },
                        ));
                    }
                    if done.is_empty() { Ok(()) } else { deliver(done) }
                };
                while !(queue.is_empty() && decoder.is_empty()) {
                    let free = batch_size.saturating_sub(decoder.len()).min(queue.len());
                    if free > 0 {
                        let joining: Vec<(usize, Request)> = queue.drain(..free).collect();
                        let answered = decoder.admit(joining, Padding::Left).map_err(broke)?;
                        hand_over(answered)?;
                    }
                    if !decoder.is_empty() {
                        let answered = decoder.step(&mut |_, _| {}).map_err(broke)?;
                        hand_over(answered)?;
                    }
                }
                Ok(Some(decoder.take_profile()))
            }
            Engine::Endpoint { client, runtime, model, arm } => {
                for (c, chunk) in problems.chunks(batch_size).enumerate() {
                    let answers = runtime.block_on(async {
                        let mut tasks = tokio::task::JoinSet::new();
                        for (i, p) in chunk.iter().enumerate() {
                            let request = vs_core::ChatRequest {
                                model: model.clone(),
                                messages: vec![vs_core::Message::new(vs_core::Role::User, prompt(p))],
                                temperature: 0.0,
                                top_p: 1.0,
                                max_tokens: max_new_tokens as u32,
                                seed: Some(0),
                                response_format: None,
                            };
                            let (client, arm) = (std::sync::Arc::clone(client), arm.clone());
                            let key = vs_core::seeds::text_key(&p.id);
                            tasks.spawn(async move { (i, client.chat(&request, &arm, key).await) });
                        }
                        let mut answers = Vec::with_capacity(chunk.len());
                        while let Some(joined) = tasks.join_next().await {
                            let (i, reply) = joined.map_err(|e| {
                                StageError::Other(format!("an evaluation task failed: {e}").into())
                            })?;
                            let r = reply.map_err(|e| {
                                StageError::Other(format!("evaluate {target}, {}: {e}", chunk[i].id).into())
                            })?;
                            answers.push((
                                c * batch_size + i,
                                Answer {
                                    text: r.content,
                                    prompt_tokens: r.usage.prompt_tokens as usize,
                                    completion_tokens: r.usage.completion_tokens as usize,
                                    finish: r.finish_reason.unwrap_or_default(),
                                },
                            ));
                        }
                        answers.sort_by_key(|(i, _)| *i);
                        Ok::<_, StageError>(answers)
                    })?;
                    deliver(answers)?;
                }
                Ok(None)
            }
        }
    }
}

/// What a decoding profile says, for the manifest: rows, steps, the mean batch, tokens per
/// second, and where the time went.
fn profile_json(p: &BatchProfile, tokens: usize) -> serde_json::Value {
    let busy = p.prefill + p.forward + p.mask + p.sample + p.reshape;
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    json!({
        "rows": p.rows,
        "steps": p.steps,
        "mean_batch": round(p.row_steps as f64 / p.steps.max(1) as f64),
        "completion_tokens": tokens,
        "tokens_per_busy_s": round(tokens as f64 / busy.as_secs_f64().max(1e-9)),
        "prefilled_positions": p.prefilled,
        "prefill_s": round(p.prefill.as_secs_f64()),
        "forward_s": round(p.forward.as_secs_f64()),
        "sample_s": round(p.sample.as_secs_f64()),
        "reshape_s": round(p.reshape.as_secs_f64()),
    })
}

/// Generates and grades what each set's file does not hold yet. The benchmarks of one model
/// share batches (decoding is memory-bound: a wide batch costs little more than a narrow one),
/// and each record goes to its own benchmark's file. Returns each set's records in benchmark
/// order.
fn evaluate_target(
    engine: &Engine<'_>,
    sets: &[(&[eval::Problem], PathBuf)],
    identity: &str,
    batch_size: usize,
    max_new_tokens: usize,
    graders: &mut super::grading::Graders,
    bar: &dyn crate::progress::Progress,
) -> Result<(Vec<Vec<EvalRecord>>, Option<BatchProfile>), StageError> {
    let mut pending: Vec<(usize, &eval::Problem)> = Vec::new();
    let mut files = Vec::with_capacity(sets.len());
    let graded_by = graders.label().to_owned();
    for (i, (problems, out)) in sets.iter().enumerate() {
        let mut existing = read_jsonl::<EvalRecord>(out)?;
        if existing.iter().any(|r| graders.stale(&r.graded_by, &r.grades)) {
            // Graded by another grader or extraction: re-grade the stored responses.
            let by_id: std::collections::HashMap<&str, &eval::Problem> =
                problems.iter().map(|p| (p.id.as_str(), p)).collect();
            let stale: Vec<(usize, &eval::Problem)> = existing
                .iter()
                .enumerate()
                .filter(|(_, r)| graders.stale(&r.graded_by, &r.grades))
                .filter_map(|(k, r)| by_id.get(r.id.as_str()).map(|p| (k, *p)))
                .collect();
            let items: Vec<super::grading::Item<'_>> = stale
                .iter()
                .map(|&(k, p)| super::grading::Item {
                    gold: &p.gold,
                    response: &existing[k].response,
                    problem: &p.problem,
                })
                .collect();
            let graded = graders.grade(&items)?;
            let regraded = graded.len();
            for ((k, _), g) in stale.iter().zip(graded) {
                let r = &mut existing[*k];
                (r.correct, r.extracted, r.grades, r.graded_by) =
                    (g.correct, g.extracted, g.grades, graded_by.clone());
            }
            vs_core::jsonl::write_all(out, &existing)?;
            tracing::info!("{}: re-graded {regraded} stored responses with {graded_by}", out.display());
        }
        let done: BTreeSet<String> = existing.into_iter().map(|r| r.id).collect();
        bar.inc(done.len() as u64);
        pending.extend(problems.iter().filter(|p| !done.contains(&p.id)).map(|p| (i, p)));
        files.push(append_file(out)?);
    }
    // Similar lengths start together (less padding); stable, so the order is reproducible.
    pending.sort_by_key(|(_, p)| p.problem.len());
    let problems: Vec<&eval::Problem> = pending.iter().map(|(_, p)| *p).collect();
    let mut written = BTreeSet::new();
    let mut write = |answers: Vec<(usize, Answer)>| -> Result<(), StageError> {
        let items: Vec<super::grading::Item<'_>> = answers
            .iter()
            .map(|(k, a)| super::grading::Item {
                gold: &pending[*k].1.gold,
                response: &a.text,
                problem: &pending[*k].1.problem,
            })
            .collect();
        let graded = graders.grade(&items)?;
        for ((k, a), graded) in answers.into_iter().zip(graded) {
            let (i, p) = pending[k];
            let record = EvalRecord {
                id: p.id.clone(),
                extracted: graded.extracted,
                response: a.text,
                gold: p.gold.clone(),
                correct: graded.correct,
                grades: graded.grades,
                prompt_tokens: a.prompt_tokens,
                completion_tokens: a.completion_tokens,
                finish: a.finish,
                identity: identity.to_owned(),
                graded_by: graded_by.clone(),
            };
            write_line(&mut files[i], &sets[i].1, &record)?;
            written.insert(i);
            bar.inc(1);
        }
        // Only the files this delivery wrote (a delivery is often a single reply).
        for i in std::mem::take(&mut written) {
            files[i].sync_data().map_err(|source| StageError::Io { path: sets[i].1.clone(), source })?;
        }
        Ok(())
    };
    let target =
        sets.first().and_then(|(_, out)| out.parent()).map_or_else(String::new, |d| d.display().to_string());
    let profile = engine.answer_all(&problems, max_new_tokens, batch_size, &target, &mut write)?;
    // In benchmark order, whatever order they were generated in.
    let records = sets
        .iter()
        .map(|(problems, out)| {
            let by_id: std::collections::HashMap<String, EvalRecord> =
                read_jsonl::<EvalRecord>(out)?.into_iter().map(|r| (r.id.clone(), r)).collect();
            Ok(problems.iter().filter_map(|p| by_id.get(&p.id).cloned()).collect())
        })
        .collect::<Result<_, StageError>>()?;
    Ok((records, profile))
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
