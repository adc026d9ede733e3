//! The `train` stage: one supervised fine-tuning run per (student, arm, seed) over the arm's
//! verified pairs (`verify/<strategy>/<curation>/train.jsonl`), or over `train.data` when set.
//!
//! Arms are budget-matched first, within each curation (the paper arm of VS-Multi against the
//! paper arm of Direct, never against a curated arm): every arm of a curation trains on the same
//! number of examples (`train.budget = "examples"`, the paper's choice: the same number of
//! optimizer steps) or of supervised tokens of the student's tokenizer (`"tokens"`: curated
//! solutions are shorter). The subsample is drawn per training seed (pairs ranked by a hash of
//! the seed and their id, the first ones taken: nested, a larger budget contains a smaller one),
//! so the variance between seeds includes which problems an arm happened to keep. Files:
//! `train/budget/<student>/<strategy>/<curation>/seed-<s>.jsonl`; what was matched:
//! `train/budget/budget.json` (also in the manifest).
//!
//! Each run writes `train/<student>/<strategy>/<curation>/seed-<s>/` with `metrics.jsonl`, its
//! latest checkpoint, and `model/`, an HF folder (safetensors, config, tokenizer, chat
//! template) that transformers, vLLM and our own loader read. An interrupted run resumes from
//! its checkpoint when nothing it depends on changed (the options and the data are recorded
//! next to the checkpoints).

use std::path::{Path, PathBuf};

use serde_json::json;
use trainer::model::ModelConfig;
use trainer::sft::data::{EncodeStats, Encoded, SftRecord, encode_all};
use trainer::sft::memory::{MemoryPlan, PlanInput};
use trainer::sft::train::{TrainOptions, latest_checkpoint, total_steps, train, training_rows};
use trainer::{DeviceSpec, Pretrained};

use super::arms::Source;
use super::{Stage, StageContext, StageError, StageOutput};
use crate::config::{BudgetKeyword, BudgetUnit, Config, ExamplesPerArm, TrainConfig};
use crate::identity::Identify;
use vs_core::StageName;
use vs_core::digest::sha256_hex;
use vs_core::jsonl::JsonlError;

pub struct Train;

/// This stage's version: 5 since the budget is matched within each curation and drawn per
/// seed, in examples or tokens.
pub const VERSION: u32 = 5;

/// What one training run's weights depend on besides its options, data and model (its
/// `run.json`): unchanged by how the budget chose the data, which the data's digest records.
const RUN_VERSION: u32 = 4;

/// One verified pair of an arm, as the budget sees it.
struct Pair {
    id: String,
    line: String,
    /// Supervised tokens: the completion and its EOS, before any truncation at `max_seq_len`.
    tokens: Option<usize>,
    agreement: Option<f64>,
}

/// The data file of each training run, by (student, source label, seed).
pub type BudgetFiles = std::collections::BTreeMap<(String, String, u64), PathBuf>;

/// Budget-matches the arms within each curation, per student and training seed: writes each
/// run's subsample under `dir/budget/` and returns the files and what was decided.
fn budget(
    config: &Config,
    run_root: &Path,
    dir: &Path,
) -> Result<(BudgetFiles, serde_json::Value), StageError> {
    let seeds = super::arms::seeds(config);
    let t = &config.train;
    let mut files = BudgetFiles::new();
    let sources = super::arms::sources(config);
    if let Some(Source::Custom(path)) = sources.first() {
        for student in t.students.keys() {
            for &seed in &seeds {
                files.insert((student.clone(), sources[0].label(), seed), path.clone());
            }
        }
        let decided = json!({ "unit": "all", "custom": true });
        let path = dir.join("budget").join("budget.json");
        std::fs::create_dir_all(dir.join("budget"))
            .map_err(|source| StageError::Io { path: dir.join("budget"), source })?;
        vs_core::fs::write_atomic(&path, decided.to_string().as_bytes())
            .map_err(|source| StageError::Io { path, source })?;
        return Ok((files, decided));
    }
    let mut arms = Vec::new();
    for source in &sources {
        let Source::Arm(arm) = source else { continue };
        let path = run_root.join("verify").join(arm.path()).join("train.jsonl");
        let text =
            std::fs::read_to_string(&path).map_err(|source| StageError::Io { path: path.clone(), source })?;
        let mut pairs = Vec::new();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).map_err(|source| JsonlError::Parse {
                path: path.clone(),
                line: i + 1,
                source,
            })?;
            let id = v["id"].as_str().map_or_else(|| format!("line-{}", i + 1), str::to_owned);
            pairs.push((
                id,
                line.to_owned(),
                v["completion"].as_str().unwrap_or_default().to_owned(),
                v["agreement"].as_f64(),
            ));
        }
        arms.push((arm.clone(), pairs));
    }
    let mut students = serde_json::Map::new();
    for (student, student_config) in &t.students {
        // The student's tokenizer counts supervised tokens (needed to match them; reported
        // either way, so a reader sees when equal examples are unequal tokens).
        let tokenizer = match trainer::pretrained::tokenizer(&student_config.model_path) {
            Ok(tok) => Some(tok),
            Err(e) if t.budget == BudgetUnit::Examples => {
                tracing::warn!("{student}: no tokenizer to count the budget's tokens ({e})");
                None
            }
            Err(e) => {
                return Err(StageError::config(
                    "train.budget",
                    format!(
                        "\"tokens\" needs the tokenizer of train.students.{student} ({}): {e}",
                        student_config.model_path.display()
                    ),
                ));
            }
        };
        let mut counted: Vec<(&super::arms::Arm, Vec<Pair>)> = Vec::new();
        for (arm, raw) in &arms {
            let pairs = raw
                .iter()
                .map(|(id, line, completion, agreement)| {
                    let tokens = match &tokenizer {
                        Some(tok) => Some(
                            tok.encode(completion, false)
                                .map_err(|e| StageError::model(format!("{student}: tokenizing {id}"), e))?
                                .len()
                                + 1,
                        ),
                        None => None,
                    };
                    Ok(Pair { id: id.clone(), line: line.clone(), tokens, agreement: *agreement })
                })
                .collect::<Result<Vec<_>, StageError>>()?;
            counted.push((arm, pairs));
        }
        let mut targets = serde_json::Map::new();
        let mut per_arm = serde_json::Map::new();
        for curation in &config.verify.curation {
            let group: Vec<&(&super::arms::Arm, Vec<Pair>)> =
                counted.iter().filter(|(a, _)| a.curation == *curation).collect();
            let sizes = || {
                serde_json::Value::Object(
                    group.iter().map(|(a, p)| (a.label(), json!(p.len()))).collect::<serde_json::Map<_, _>>(),
                )
            };
            let total_tokens = |p: &[Pair]| p.iter().map(|x| x.tokens.unwrap_or(0)).sum::<usize>();
            // The target per arm of this curation: examples, or supervised tokens.
            let target: Option<usize> = match (t.budget, t.examples_per_arm) {
                (_, ExamplesPerArm::Keyword(BudgetKeyword::All)) => None,
                (BudgetUnit::Examples, ExamplesPerArm::Keyword(BudgetKeyword::Min)) => {
                    group.iter().map(|(_, p)| p.len()).min()
                }
                (BudgetUnit::Examples, ExamplesPerArm::Count(n)) => {
                    if let Some((a, p)) = group.iter().find(|(_, p)| p.len() < n) {
                        return Err(StageError::config(
                            "train.examples_per_arm",
                            format!(
                                "{n}, but arm {} has only {} verified examples (arms: {}); \
                                 lower it, or use \"min\" to match the smallest arm of its curation",
                                a.label(),
                                p.len(),
                                sizes()
                            ),
                        ));
                    }
                    Some(n)
                }
                (BudgetUnit::Tokens, _) => group.iter().map(|(_, p)| total_tokens(p)).min(),
            };
            if target == Some(0) {
                let empty: Vec<String> =
                    group.iter().filter(|(_, p)| p.is_empty()).map(|(a, _)| a.label()).collect();
                return Err(StageError::Insufficient(format!(
                    "arm(s) {empty:?} have no verified examples, so the {} budget of curation `{}` leaves every arm \
                     empty (arms: {}); generate more problems, loosen verify, or drop the empty arm's strategy",
                    t.budget.as_str(),
                    curation.as_str(),
                    sizes()
                )));
            }
            targets.insert(curation.as_str().to_owned(), target.map_or(json!("all"), |n| json!(n)));
            for (arm, pairs) in group {
                let mut runs = serde_json::Map::new();
                for &seed in &seeds {
                    let chosen: Vec<&Pair> = match (target, t.budget) {
                        (None, _) => pairs.iter().collect(),
                        (Some(n), BudgetUnit::Examples) => nested(pairs, seed, |taken, _| taken < n),
                        (Some(tokens), BudgetUnit::Tokens) => nested(pairs, seed, |_, sum| sum <= tokens),
                    };
                    let file =
                        dir.join("budget").join(student).join(arm.path()).join(format!("seed-{seed}.jsonl"));
                    if let Some(parent) = file.parent() {
                        std::fs::create_dir_all(parent)
                            .map_err(|source| StageError::Io { path: parent.to_owned(), source })?;
                    }
                    let mut text: String =
                        chosen.iter().map(|p| p.line.as_str()).collect::<Vec<_>>().join("\n");
                    if !text.is_empty() {
                        text.push('\n');
                    }
                    vs_core::fs::write_atomic(&file, text.as_bytes())
                        .map_err(|source| StageError::Io { path: file.clone(), source })?;
                    files.insert((student.clone(), arm.label(), seed), file);
                    let n = chosen.len().max(1) as f64;
                    let tokens: Option<usize> =
                        tokenizer.as_ref().map(|_| chosen.iter().map(|p| p.tokens.unwrap_or(0)).sum());
                    let agreements: Vec<f64> = chosen.iter().filter_map(|p| p.agreement).collect();
                    runs.insert(
                        seed.to_string(),
                        json!({
                            "examples": chosen.len(),
                            "supervised_tokens": tokens,
                            "mean_solution_tokens": tokens.map(|x| x as f64 / n),
                            "mean_agreement": (!agreements.is_empty())
                                .then(|| agreements.iter().sum::<f64>() / agreements.len() as f64),
                        }),
                    );
                }
                per_arm.insert(
                    arm.label(),
                    json!({
                        "available": { "examples": pairs.len(),
                                       "supervised_tokens": tokenizer.as_ref().map(|_| total_tokens(pairs)) },
                        "seeds": runs,
                    }),
                );
            }
        }
        students.insert(student.clone(), json!({ "targets": targets, "arms": per_arm }));
    }
    let decided = json!({
        "unit": t.budget.as_str(),
        "rule": t.examples_per_arm,
        "matched_within": "curation",
        "drawn_per_seed": true,
        "students": students,
    });
    let path = dir.join("budget").join("budget.json");
    vs_core::fs::write_atomic(&path, serde_json::to_string_pretty(&decided).expect("json").as_bytes())
        .map_err(|source| StageError::Io { path, source })?;
    Ok((files, decided))
}

/// The pairs ranked by the `(seed, id)` hash, taken while `keep(taken, tokens so far incl.
/// this one)` holds, in their original order: nested in the budget, the same for the same seed.
fn nested(pairs: &[Pair], seed: u64, keep: impl Fn(usize, usize) -> bool) -> Vec<&Pair> {
    let mut ranked: Vec<(u64, usize)> = pairs
        .iter()
        .enumerate()
        .map(|(i, p)| (vs_core::seeds::text_key(&format!("{seed}:{}", p.id)), i))
        .collect();
    ranked.sort_unstable();
    let (mut chosen, mut tokens) = (Vec::new(), 0usize);
    for (_, i) in ranked {
        tokens += pairs[i].tokens.unwrap_or(0);
        if !keep(chosen.len(), tokens) {
            break;
        }
        chosen.push(i);
    }
    chosen.sort_unstable();
    chosen.into_iter().map(|i| &pairs[i]).collect()
}

impl Stage for Train {
    fn name(&self) -> StageName {
        StageName::Train
    }

    fn upstream(&self, config: &Config) -> Vec<StageName> {
        // Training on a given file needs nothing from earlier stages.
        if config.train.data.is_some() { Vec::new() } else { vec![StageName::Verify] }
    }

    fn version(&self) -> u32 {
        VERSION
    }

    fn config_slice(&self, id: Identify<'_>) -> Result<serde_json::Value, StageError> {
        let c = id.config;
        // Each student by its content (a GGUF file's or an HF folder's), not its path.
        let mut students = serde_json::Map::new();
        for (name, s) in &c.train.students {
            students.insert(name.clone(), json!({ "model_sha256": id.model(&s.model_path)? }));
        }
        let device = main_device(&c.train)?;
        let train =
            crate::identity::reads::TrainReads::new(&c.train, c.train.dtype.resolve(device).to_string());
        Ok(json!({ "train": train, "students": students, "seed": c.run.seed,
                   "strategies": crate::stages::arms::origin_names(c) }))
    }

    fn external_inputs(&self, config: &Config) -> Vec<PathBuf> {
        config.train.data.iter().cloned().collect()
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutput, StageError> {
        let config = ctx.config;
        let t = &config.train;
        if t.students.is_empty() {
            return Err(StageError::config("train.students", "is empty: nothing to train"));
        }
        let device = main_device(t)?;
        let opts = TrainOptions {
            epochs: u64::from(t.epochs),
            max_steps: t.max_steps,
            learning_rate: t.learning_rate,
            schedule: t.lr_schedule,
            warmup_ratio: t.warmup_ratio,
            weight_decay: t.weight_decay,
            beta1: t.adam_beta1,
            beta2: t.adam_beta2,
            epsilon: t.adam_epsilon,
            batch_size: t.batch_size,
            grad_accum_steps: t.grad_accum_steps,
            max_grad_norm: t.max_grad_norm,
            seed: config.run.seed,
            log_every: t.log_every,
            checkpoint_every: t.checkpoint_every,
            packing: t.packing.then_some(t.max_seq_len),
            precision: t.dtype.resolve(device),
            checkpoint_activations: t.checkpoint_activations,
            loss_chunk_tokens: t.loss_chunk_tokens,
            devices: match train_devices(t)? {
                d if d.len() > 1 => d,
                _ => Vec::new(),
            },
        };
        let mut output = StageOutput::default();
        let (data, decided) = budget(config, ctx.run_dir.root(), &ctx.dir)?;
        output.counts.insert("budget".into(), decided);
        // The runs' subsamples (a custom file is the user's, outside the run).
        for file in data.values().filter(|f| f.starts_with(&ctx.dir)) {
            output.outputs.push(file.clone());
        }
        output.outputs.push(ctx.dir.join("budget").join("budget.json"));
        for (student, student_config) in &t.students {
            for run in super::arms::training_runs(config) {
                let label = run.label();
                let key = (student.clone(), run.source.label(), run.seed);
                let data_path = data.get(&key).expect("every run is budgeted");
                let dir = ctx.dir.join(student).join(&label);
                let opts = TrainOptions { seed: run.seed, ..opts.clone() };
                let run = Run { student, label: &label, model_path: &student_config.model_path, data_path };
                let model_sha256 = ctx.identify().model(&student_config.model_path)?;
                let counts = run.train(ctx, &dir, device, &opts, t.max_seq_len, &model_sha256)?;
                output.counts.insert(format!("{student}/{label}"), counts);
                output.outputs.push(dir.join("metrics.jsonl"));
                for f in ["model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"] {
                    output.outputs.push(dir.join("model").join(f));
                }
                // The final checkpoint, so its sha256 is in the manifest too.
                if let Some(ckpt) = latest_checkpoint(&dir) {
                    for f in ["model.safetensors", trainer::sft::train::OPTIMIZER, "position.json"] {
                        output.outputs.push(ckpt.join(f));
                    }
                }
            }
        }
        Ok(output)
    }
}

struct Run<'a> {
    student: &'a str,
    label: &'a str,
    model_path: &'a Path,
    data_path: &'a Path,
}

impl Run<'_> {
    fn train(
        &self,
        ctx: &StageContext<'_>,
        dir: &Path,
        device: DeviceSpec,
        opts: &TrainOptions,
        max_seq_len: usize,
        model_sha256: &str,
    ) -> Result<serde_json::Value, StageError> {
        let unit = || format!("{} on {}", self.student, self.label);
        let (records, data_hash) = read_pairs(self.data_path)?;
        std::fs::create_dir_all(dir).map_err(|source| StageError::Io { path: dir.to_owned(), source })?;
        let pretrained = Pretrained::load(self.model_path, &device.training_device())
            .map_err(|e| StageError::model(unit(), e))?;
        let (encoded, stats) = self.tokenized(&pretrained, &records, &data_hash, dir, max_seq_len)?;
        let pretrained_config = pretrained.model.config.clone();
        if encoded.is_empty() {
            return Err(StageError::input(self.data_path, "no usable examples").within(unit()));
        }
        // Resume only a run of the very same options, data and model (by content: a student
        // replaced at the same path starts over) and code.
        let outputs_only = TrainOptions { log_every: 0, checkpoint_every: None, ..opts.clone() };
        let identity = json!({ "options": outputs_only, "data_sha256": data_hash, "model_sha256": model_sha256,
                               "max_seq_len": max_seq_len, "version": RUN_VERSION });
        let identity_path = dir.join("run.json");
        let same = std::fs::read_to_string(&identity_path)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .is_some_and(|v| v == identity);
        if !same || ctx.force {
            let _ = std::fs::remove_dir_all(dir.join("checkpoints"));
        }
        vs_core::fs::write_atomic(&identity_path, identity.to_string().as_bytes())
            .map_err(|source| StageError::Io { path: identity_path.clone(), source })?;

        let longest = match opts.packing {
            Some(capacity) => capacity,
            None => encoded.iter().map(|e| e.ids.len() - 1).max().unwrap_or(1),
        };
        let plan = memory_plan(ctx.config, &pretrained_config, longest)?;
        let who = format!("{}/{}", self.student, self.label);
        tracing::info!(
            "{who}: memory plan ({}, batch {} x {longest} tokens, activation checkpointing {}):\n{}",
            match opts.precision {
                trainer::Precision::Bf16 => "bf16 matmuls, f32 master weights",
                other => other.name(),
            },
            opts.batch_size,
            if opts.checkpoint_activations { "on" } else { "off" },
            plan.table()
        );
        check_memory(ctx.config, &plan, &who)?;
        let total = total_steps(training_rows(&encoded, opts).len(), opts);
        let bar = ctx.reporter.bar(&format!("{}/{}", self.student, self.label), total);
        if let Some(ckpt) = latest_checkpoint(dir) {
            tracing::info!("{}/{}: resuming from {}", self.student, self.label, ckpt.display());
        }
        let mut shown = None;
        let Pretrained { model, tokenizer, template, source } = pretrained;
        let pad = tokenizer.pad;
        let outcome = train(model, &encoded, pad, opts, dir, true, &mut |log| {
            // The first step after a resume jumps the bar to where the run stands.
            bar.inc(log.step - shown.unwrap_or(log.step - 1));
            shown = Some(log.step);
            if log.step % opts.log_every.max(1) == 0 {
                tracing::info!(
                    "{}/{}: step {}/{} loss {:.4} lr {:.2e} grad-norm {:.3}",
                    self.student,
                    self.label,
                    log.step,
                    log.total_steps,
                    log.loss,
                    log.lr,
                    log.grad_norm
                );
            }
            true
        })
        .map_err(|e| StageError::model(unit(), e))?;
        bar.finish();
        let trained = Pretrained { model: outcome.model, tokenizer, template, source };
        trainer::export::save_hf(&trained, &dir.join("model")).map_err(|e| StageError::model(unit(), e))?;
        Ok(json!({
            "examples": stats.examples,
            "used": encoded.len(),
            "truncated": stats.truncated,
            "dropped_too_long": stats.dropped_too_long,
            "prompt_tokens": stats.prompt_tokens,
            "completion_tokens": stats.completion_tokens,
            "steps": outcome.steps,
            "resumed_from_step": outcome.resumed_from,
            "first_loss": outcome.first_loss,
            "last_loss": outcome.last_loss,
            "trained_tokens": outcome.tokens,
            "seconds": outcome.seconds,
            "checkpoint": outcome.checkpoint,
            "dtype": opts.precision.to_string(),
            "checkpoint_activations": opts.checkpoint_activations,
            "devices": train_devices(&ctx.config.train)?.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "memory_plan": plan,
        }))
    }
}

impl Run<'_> {
    /// Token ids of the pairs, cached per (data, tokenizer, template, max_seq_len): reruns and
    /// resumes skip tokenization.
    fn tokenized(
        &self,
        model: &Pretrained,
        records: &[SftRecord],
        data_hash: &str,
        dir: &Path,
        max_seq_len: usize,
    ) -> Result<(Vec<Encoded>, EncodeStats), StageError> {
        let tokenizer_json = model.tokenizer.inner().to_string(false).unwrap_or_default();
        let template = model.template.as_ref().map_or("", |t| t.source());
        let key = sha256_hex(format!("{data_hash}\n{tokenizer_json}\n{template}\n{max_seq_len}").as_bytes());
        let path = dir.join(format!("tokenized-{}.json", &key[..16]));
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Ok(cached) = serde_json::from_str::<(Vec<Encoded>, EncodeStats)>(&text)
        {
            return Ok(cached);
        }
        let encoded = encode_all(model, records, max_seq_len)
            .map_err(|e| StageError::model(format!("{} on {}", self.student, self.label), e))?;
        let text = serde_json::to_string(&encoded).expect("token ids serialize");
        vs_core::fs::write_atomic(&path, text.as_bytes())
            .map_err(|source| StageError::Io { path, source })?;
        Ok(encoded)
    }
}

/// The devices training runs on: `train.devices`, or `train.device` alone.
pub fn train_devices(t: &TrainConfig) -> Result<Vec<DeviceSpec>, StageError> {
    if t.devices.is_empty() {
        return Ok(vec![super::device(&t.device, "train.device")?]);
    }
    t.devices.iter().enumerate().map(|(i, d)| super::device(d, &format!("train.devices[{i}]"))).collect()
}

/// The device that holds the model and the optimizer (the first of several).
fn main_device(t: &TrainConfig) -> Result<DeviceSpec, StageError> {
    Ok(train_devices(t)?[0])
}

/// The memory plan of training a `model`-shaped student under `config` on rows of at most
/// `seq_len` tokens.
pub fn memory_plan(config: &Config, model: &ModelConfig, seq_len: usize) -> Result<MemoryPlan, StageError> {
    let t = &config.train;
    let device = main_device(t)?;
    Ok(MemoryPlan::new(&PlanInput {
        config: model,
        precision: t.dtype.resolve(device),
        batch_size: t.batch_size,
        seq_len,
        checkpoint_activations: t.checkpoint_activations,
        loss_chunk_tokens: t.loss_chunk_tokens,
        grad_accum_steps: t.grad_accum_steps,
    }))
}

/// Fails, naming the keys that shrink the plan, when `plan` exceeds `train.memory_limit_gb`
/// or the device's memory.
pub fn check_memory(config: &Config, plan: &MemoryPlan, who: &str) -> Result<(), StageError> {
    let t = &config.train;
    let device = main_device(t)?;
    let limits = [
        t.memory_limit_gb.map(|gb| (gb, "train.memory_limit_gb".to_owned())),
        trainer::sft::memory::device_memory_gb(device).map(|gb| (gb, format!("the memory of {device}"))),
    ];
    let Some((limit, what)) = limits
        .into_iter()
        .flatten()
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .filter(|(gb, _)| plan.total_gb() > *gb)
    else {
        return Ok(());
    };
    let state = plan.parameters + plan.gradients + plan.optimizer;
    if state as f64 / 1e9 > limit {
        return Err(StageError::config(
            who,
            format!(
                "the memory plan needs {:.1} GB, more than {what} ({limit:.1} GB), and the f32 weights, \
             gradients and AdamW state alone take {:.1} GB (16 bytes per parameter): no setting of \
             batch, length or checkpointing makes this fit. It needs a device with more memory \
             (train.memory_limit_gb) or the optimizer state sharded over several devices (ZeRO-3, \
             what the paper's LLaMA-Factory runs used; not implemented here)\n{}",
                plan.total_gb(),
                state as f64 / 1e9,
                plan.table()
            ),
        ));
    }
    let mut keys = Vec::new();
    if !t.checkpoint_activations {
        keys.push("train.checkpoint_activations = true".to_owned());
    }
    if t.dtype.resolve(device) == trainer::Precision::F32 {
        keys.push("train.dtype = \"bf16\" (on hardware with native bf16)".to_owned());
    }
    if t.batch_size > 1 {
        keys.push(format!(
            "a smaller train.batch_size (now {}; raise train.grad_accum_steps to keep the effective batch)",
            t.batch_size
        ));
    }
    keys.push(format!("a smaller train.max_seq_len (now {})", t.max_seq_len));
    keys.push(format!("a smaller train.loss_chunk_tokens (now {})", t.loss_chunk_tokens));
    Err(StageError::config(
        who,
        format!(
            "the memory plan needs {:.1} GB, more than {what} ({limit:.1} GB); training would not fit. \
         Change: {}\n{}",
            plan.total_gb(),
            keys.join("; "),
            plan.table()
        ),
    ))
}

/// Every line a pair; blank lines skipped; a bad line is an error naming file and line.
fn read_pairs(path: &Path) -> Result<(Vec<SftRecord>, String), StageError> {
    let bytes = std::fs::read(path).map_err(|source| StageError::Io { path: path.to_owned(), source })?;
    let text = String::from_utf8(bytes.clone()).map_err(|_| StageError::input(path, "not UTF-8"))?;
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let r: SftRecord = serde_json::from_str(line).map_err(|source| JsonlError::Parse {
            path: path.to_owned(),
            line: i + 1,
            source,
        })?;
        if r.prompt.is_empty() && r.messages.is_none() {
            return Err(StageError::input(path, format!("line {}: needs `prompt` or `messages`", i + 1)));
        }
        records.push(r);
    }
    Ok((records, sha256_hex(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::{Pair, nested};

    fn pairs(n: usize) -> Vec<Pair> {
        (0..n)
            .map(|i| Pair {
                id: format!("p{i}"),
                line: format!("{{\"id\": \"p{i}\"}}"),
                tokens: Some(10 + i),
                agreement: None,
            })
            .collect()
    }

    fn lines<'a>(v: &[&'a Pair]) -> Vec<&'a str> {
        v.iter().map(|p| p.line.as_str()).collect()
    }

    #[test]
    fn budget_subsamples_are_seeded_nested_and_in_order() {
        let all = pairs(50);
        let small = lines(&nested(&all, 42, |taken, _| taken < 10));
        let large = lines(&nested(&all, 42, |taken, _| taken < 30));
        assert_eq!((small.len(), large.len()), (10, 30));
        // Nested: a larger budget contains the smaller one.
        assert!(small.iter().all(|l| large.contains(l)));
        // Seeded: the same choice every time, another under another seed.
        assert_eq!(small, lines(&nested(&all, 42, |taken, _| taken < 10)));
        assert_ne!(small, lines(&nested(&all, 43, |taken, _| taken < 10)));
        // In the arm's own order, and the whole arm when the budget covers it.
        let position = |l: &str| all.iter().position(|p| p.line == l).unwrap();
        assert!(large.windows(2).all(|w| position(w[0]) < position(w[1])));
        assert_eq!(nested(&all, 1, |taken, _| taken < 50).len(), 50);
    }

    #[test]
    fn a_token_budget_takes_pairs_until_the_tokens_are_spent() {
        let all = pairs(50);
        let chosen = nested(&all, 7, |_, tokens| tokens <= 300);
        let spent: usize = chosen.iter().map(|p| p.tokens.unwrap()).sum();
        assert!(spent <= 300 && spent > 300 - 60, "{spent}");
        // Nested under a larger token budget.
        let more = lines(&nested(&all, 7, |_, tokens| tokens <= 600));
        assert!(lines(&chosen).iter().all(|l| more.contains(l)));
    }
}
