//! The `train` stage: one supervised fine-tuning run per (student, arm, seed) over the arm's
//! verified pairs (`verify/<strategy>/<curation>/train.jsonl`), or over `train.data` when set.
//!
//! Arms are budget-matched first (`train.examples_per_arm`): every arm trains on the same
//! number of examples, a seeded subsample that is nested (the pairs are ranked by a hash of
//! `run.seed` and their id, and the first N taken), so every arm takes the same number of
//! optimizer steps and only the data differs. The subsamples are `train/budget/<arm>.jsonl`
//! and their sizes `train/budget/budget.json`.
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
use trainer::sft::train::{
    ScheduleKindSerde, TrainOptions, latest_checkpoint, total_steps, train, training_rows,
};
use trainer::{DeviceSpec, Pretrained};

use super::arms::Source;
use super::{Stage, StageContext, StageError, StageName, StageOutput};
use crate::config::{BudgetKeyword, Config, ExamplesPerArm, LrSchedule, TrainConfig};
use crate::identity::Identify;
use crate::manifest::sha256_hex;

pub struct Train;

/// This stage's version: 3 since arms are budget-matched and trained once per seed.
pub const VERSION: u32 = 4;

/// The label of the run over `train.data`.
pub const CUSTOM: &str = "custom";

/// Budget-matches the arms: writes each arm's subsample under `dir` (`budget/<arm>.jsonl`) and
/// returns `(source label, data file)` per source, plus what was decided.
fn budget(
    config: &Config,
    run_root: &Path,
    dir: &Path,
) -> Result<(Vec<(String, PathBuf)>, serde_json::Value), StageError> {
    let sources = super::arms::sources(config);
    let mut available = Vec::new();
    for source in &sources {
        match source {
            Source::Custom(path) => {
                return Ok((
                    vec![(source.label(), path.clone())],
                    json!({ "examples_per_arm": "all", "custom": true }),
                ));
            }
            Source::Arm(arm) => {
                let path = run_root.join("verify").join(arm.path()).join("train.jsonl");
                let text = std::fs::read_to_string(&path)
                    .map_err(|source| StageError::Io { path: path.clone(), source })?;
                let mut lines: Vec<(String, String)> = Vec::new();
                for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                    let v: serde_json::Value = serde_json::from_str(line)
                        .map_err(|e| StageError::Failed(format!("{}:{}: {e}", path.display(), i + 1)))?;
                    let id = v["id"].as_str().map_or_else(|| format!("line-{}", i + 1), str::to_owned);
                    lines.push((id, line.to_owned()));
                }
                available.push((arm.label(), arm.path(), lines));
            }
        }
    }
    let sizes: serde_json::Map<String, serde_json::Value> =
        available.iter().map(|(label, _, lines)| (label.clone(), json!(lines.len()))).collect();
    let n = match config.train.examples_per_arm {
        ExamplesPerArm::Keyword(BudgetKeyword::All) => None,
        ExamplesPerArm::Keyword(BudgetKeyword::Min) => available.iter().map(|(_, _, l)| l.len()).min(),
        ExamplesPerArm::Count(n) => {
            if let Some((label, _, lines)) = available.iter().find(|(_, _, l)| l.len() < n) {
                return Err(StageError::Failed(format!(
                    "train.examples_per_arm = {n}, but arm {label} has only {} verified examples (arms: {}); \
                     lower it, or use \"min\" to match the smallest arm",
                    lines.len(),
                    serde_json::Value::Object(sizes.clone())
                )));
            }
            Some(n)
        }
    };
    if n == Some(0) {
        let empty: Vec<&String> =
            available.iter().filter(|(_, _, l)| l.is_empty()).map(|(label, _, _)| label).collect();
        return Err(StageError::Failed(format!(
            "arm(s) {empty:?} have no verified examples, so train.examples_per_arm = \"min\" leaves every arm empty \
             (arms: {}); generate more problems, loosen verify, or drop the empty arm's strategy",
            serde_json::Value::Object(sizes)
        )));
    }
    let mut out = Vec::new();
    for (label, path, lines) in &available {
        let chosen = match n {
            Some(n) => nested_subsample(lines, n, config.run.seed),
            None => lines.iter().map(|(_, l)| l.as_str()).collect(),
        };
        let file = dir.join("budget").join(path).with_extension("jsonl");
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|source| StageError::Io { path: parent.to_owned(), source })?;
        }
        let mut text = chosen.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        crate::manifest::write_atomic(&file, text.as_bytes())
            .map_err(|source| StageError::Io { path: file.clone(), source })?;
        out.push((label.clone(), file));
    }
    let decided = json!({
        "examples_per_arm": n.map_or(json!("all"), |n| json!(n)),
        "rule": config.train.examples_per_arm,
        "available": sizes,
    });
    let path = dir.join("budget").join("budget.json");
    crate::manifest::write_atomic(&path, serde_json::to_string_pretty(&decided).expect("json").as_bytes())
        .map_err(|source| StageError::Io { path, source })?;
    Ok((out, decided))
}

/// The `n` lines of smallest `(seed, id)` hash, in their original order: the same seed gives
/// the same choice, and a larger `n` contains a smaller one.
pub fn nested_subsample(lines: &[(String, String)], n: usize, seed: u64) -> Vec<&str> {
    let mut ranked: Vec<(u64, usize)> = lines
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (crate::seeds::text_key(&format!("{seed}:{id}")), i))
        .collect();
    ranked.sort_unstable();
    let mut keep: Vec<usize> = ranked.into_iter().take(n).map(|(_, i)| i).collect();
    keep.sort_unstable();
    keep.into_iter().map(|i| lines[i].1.as_str()).collect()
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
        let mut train = serde_json::to_value(&c.train).expect("config serializes");
        // How often it logs and checkpoints changes no weight (a resume is exact).
        // Nor does the memory limit; `auto` counts as what it resolves to on this machine.
        let train_obj = train.as_object_mut().expect("an object");
        train_obj.retain(|k, _| {
            !matches!(k.as_str(), "students" | "log_every" | "checkpoint_every" | "memory_limit_gb")
        });
        let device = main_device(&c.train)?;
        train_obj.insert("dtype".into(), json!(c.train.dtype.resolve(device).to_string()));
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
            return Err(StageError::Failed("train.students is empty: nothing to train".into()));
        }
        let device = main_device(t)?;
        let opts = TrainOptions {
            epochs: u64::from(t.epochs),
            max_steps: t.max_steps,
            learning_rate: t.learning_rate,
            schedule: match t.lr_schedule {
                LrSchedule::Constant => ScheduleKindSerde::Constant,
                LrSchedule::Linear => ScheduleKindSerde::Linear,
                LrSchedule::Cosine => ScheduleKindSerde::Cosine,
            },
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
        // The arms' subsamples (a custom file is the user's, outside the run).
        for (_, file) in data.iter().filter(|(_, f)| f.starts_with(&ctx.dir)) {
            output.outputs.push(file.clone());
        }
        for (student, student_config) in &t.students {
            for run in super::arms::training_runs(config) {
                let label = run.label();
                let source = run.source.label();
                let data_path = &data.iter().find(|(l, _)| *l == source).expect("every source is budgeted").1;
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
        let failed = |m: String| StageError::Failed(format!("{} on {}: {m}", self.student, self.label));
        let (records, data_hash) = read_pairs(self.data_path)?;
        std::fs::create_dir_all(dir).map_err(|source| StageError::Io { path: dir.to_owned(), source })?;
        let pretrained = Pretrained::load(self.model_path, &device.training_device())
            .map_err(|e| failed(e.to_string()))?;
        let (encoded, stats) = self.tokenized(&pretrained, &records, &data_hash, dir, max_seq_len)?;
        let pretrained_config = pretrained.model.config.clone();
        if encoded.is_empty() {
            return Err(failed(format!("no usable examples in {}", self.data_path.display())));
        }
        // Resume only a run of the very same options, data and model (by content: a student
        // replaced at the same path starts over) and code.
        let outputs_only = TrainOptions { log_every: 0, checkpoint_every: None, ..opts.clone() };
        let identity = json!({ "options": outputs_only, "data_sha256": data_hash, "model_sha256": model_sha256,
                               "max_seq_len": max_seq_len, "version": VERSION });
        let identity_path = dir.join("run.json");
        let same = std::fs::read_to_string(&identity_path)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .is_some_and(|v| v == identity);
        if !same || ctx.force {
            let _ = std::fs::remove_dir_all(dir.join("checkpoints"));
        }
        crate::manifest::write_atomic(&identity_path, identity.to_string().as_bytes())
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
                trainer::Precision::F32 => "f32",
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
        .map_err(|e| failed(e.to_string()))?;
        bar.finish();
        let trained = Pretrained { model: outcome.model, tokenizer, template, source };
        trainer::export::save_hf(&trained, &dir.join("model")).map_err(|e| failed(e.to_string()))?;
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
            .map_err(|e| StageError::Failed(format!("{} on {}: {e}", self.student, self.label)))?;
        let text = serde_json::to_string(&encoded).expect("token ids serialize");
        crate::manifest::write_atomic(&path, text.as_bytes())
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
        return Err(StageError::Failed(format!(
            "{who}: the memory plan needs {:.1} GB, more than {what} ({limit:.1} GB), and the f32 weights, \
             gradients and AdamW state alone take {:.1} GB (16 bytes per parameter): no setting of \
             batch, length or checkpointing makes this fit. It needs a device with more memory \
             (train.memory_limit_gb) or the optimizer state sharded over several devices (ZeRO-3, \
             what the paper's LLaMA-Factory runs used; not implemented here)\n{}",
            plan.total_gb(),
            state as f64 / 1e9,
            plan.table()
        )));
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
    Err(StageError::Failed(format!(
        "{who}: the memory plan needs {:.1} GB, more than {what} ({limit:.1} GB); training would not fit. \
         Change: {}\n{}",
        plan.total_gb(),
        keys.join("; "),
        plan.table()
    )))
}

/// Every line a pair; blank lines skipped; a bad line is an error naming file and line.
fn read_pairs(path: &Path) -> Result<(Vec<SftRecord>, String), StageError> {
    let bytes = std::fs::read(path).map_err(|source| StageError::Io { path: path.to_owned(), source })?;
    let text = String::from_utf8(bytes.clone())
        .map_err(|_| StageError::Failed(format!("{}: not UTF-8", path.display())))?;
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let r: SftRecord = serde_json::from_str(line)
            .map_err(|e| StageError::Failed(format!("{}:{}: {e}", path.display(), i + 1)))?;
        if r.prompt.is_empty() && r.messages.is_none() {
            return Err(StageError::Failed(format!(
                "{}:{}: needs `prompt` or `messages`",
                path.display(),
                i + 1
            )));
        }
        records.push(r);
    }
    Ok((records, sha256_hex(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::nested_subsample;

    fn lines(n: usize) -> Vec<(String, String)> {
        (0..n).map(|i| (format!("p{i}"), format!("{{\"id\": \"p{i}\"}}"))).collect()
    }

    #[test]
    fn budget_subsamples_are_seeded_nested_and_in_order() {
        let all = lines(50);
        let small = nested_subsample(&all, 10, 42);
        let large = nested_subsample(&all, 30, 42);
        assert_eq!((small.len(), large.len()), (10, 30));
        // Nested: a larger budget contains the smaller one.
        assert!(small.iter().all(|l| large.contains(l)));
        // Seeded: the same choice every time, another under another seed.
        assert_eq!(small, nested_subsample(&all, 10, 42));
        assert_ne!(small, nested_subsample(&all, 10, 43));
        // In the arm's own order, and the whole arm when the budget covers it.
        let position = |l: &str| all.iter().position(|(_, x)| x == l).unwrap();
        assert!(large.windows(2).all(|w| position(w[0]) < position(w[1])));
        assert_eq!(nested_subsample(&all, 50, 1).len(), 50);
    }
}
