//! The training loop: in-place AdamW (decoupled weight decay, as PyTorch; `adamw`), warmup +
//! decay schedule, gradient accumulation with a token-level mean over the window, global-norm
//! clipping, epochs or max steps over seeded length-grouped batches. Checkpoints hold the
//! weights and AdamW's moments (safetensors) and the data position; resuming from one
//! continues bit for bit as if never stopped (CPU; tested).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use serde::{Deserialize, Serialize};

use super::adamw::{AdamW, AdamWSettings};
use super::data::{Encoded, collate, collate_packed, epoch_batches, pack};
use super::parallel::{reduce, run_workers};
use super::schedule::{Schedule, ScheduleKind};
use super::step::StepSettings;
use crate::backend::DeviceSpec;
use crate::error::ModelError;
use crate::load::safetensors::SafetensorsSource;
use crate::model::CausalLm;
use crate::precision::Precision;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    pub epochs: u64,
    /// Overrides `epochs` when set.
    pub max_steps: Option<u64>,
    pub learning_rate: f64,
    pub schedule: ScheduleKind,
    pub warmup_ratio: f64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    pub batch_size: usize,
    pub grad_accum_steps: usize,
    pub max_grad_norm: Option<f64>,
    pub seed: u64,
    pub log_every: u64,
    /// Also at the end, always.
    pub checkpoint_every: Option<u64>,
    /// Pack short examples into rows of at most this many tokens (attention kept within each
    /// example); one example per row when absent.
    #[serde(default)]
    pub packing: Option<usize>,
    /// What the matmuls compute in; master weights and AdamW state stay f32.
    #[serde(default)]
    pub precision: Precision,
    /// Recompute each decoder layer's activations in the backward instead of keeping them.
    #[serde(default)]
    pub checkpoint_activations: bool,
    /// Supervised positions whose logits exist at once in the loss.
    #[serde(default = "default_loss_chunk")]
    pub loss_chunk_tokens: usize,
    /// Data parallel workers, one per device (the first holds the model and the optimizer);
    /// one worker on the model's device when empty. A step is the same whatever the number
    /// of workers (they share its `grad_accum_steps` micro-batches) up to floating-point
    /// order, which is why the devices are part of a run's identity: weights say what made them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceSpec>,
}

/// One epoch of plain AdamW with PyTorch's defaults (betas 0.9 and 0.999, epsilon 1e-8), a
/// constant learning rate of 1e-5, no warmup, no weight decay, gradients clipped at norm 1,
/// batch 1, f32: a base that tests and benchmarks override field by field. The pipeline sets
/// every field from `[train]` instead.
impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            epochs: 1,
            max_steps: None,
            learning_rate: 1e-5,
            schedule: ScheduleKind::Constant,
            warmup_ratio: 0.0,
            weight_decay: 0.0,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            batch_size: 1,
            grad_accum_steps: 1,
            max_grad_norm: Some(1.0),
            seed: 0,
            log_every: 1,
            checkpoint_every: None,
            packing: None,
            precision: Precision::F32,
            checkpoint_activations: false,
            loss_chunk_tokens: default_loss_chunk(),
            devices: Vec::new(),
        }
    }
}

/// 1,024 positions: 200 MB of f32 logits at SmolLM2's vocabulary, 620 MB at Qwen's.
pub fn default_loss_chunk() -> usize {
    1024
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepLog {
    pub step: u64,
    pub total_steps: u64,
    pub epoch: u64,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub tokens: usize,
    pub elapsed_s: f64,
}

/// Where the data stream stands: what a checkpoint must hold besides weights and optimizer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Optimizer steps done.
    pub step: u64,
    pub epoch: u64,
    /// Next batch of `epoch` to use.
    pub batch: usize,
}

#[derive(Debug)]
pub struct TrainOutcome {
    pub model: CausalLm,
    pub steps: u64,
    pub first_loss: Option<f64>,
    pub last_loss: Option<f64>,
    pub resumed_from: Option<u64>,
    pub checkpoint: Option<PathBuf>,
    pub tokens: u64,
    pub seconds: f64,
}

/// Rows of training examples: packed, or one example each.
pub fn training_rows(data: &[Encoded], opts: &TrainOptions) -> Vec<Vec<usize>> {
    match opts.packing {
        Some(capacity) => pack(data, capacity),
        None => (0..data.len()).map(|i| vec![i]).collect(),
    }
}

/// Optimizer steps for `rows` rows of data.
pub fn total_steps(rows: usize, opts: &TrainOptions) -> u64 {
    let batches = rows.div_ceil(opts.batch_size.max(1)) as u64;
    let per_epoch = batches.div_ceil(opts.grad_accum_steps.max(1) as u64);
    opts.max_steps.unwrap_or(opts.epochs * per_epoch)
}

const CHECKPOINTS: &str = "checkpoints";
/// AdamW's moments in a checkpoint (f32 safetensors by parameter id).
pub const OPTIMIZER: &str = "optimizer.safetensors";

/// The newest complete checkpoint under `dir` (its `position.json` is written last).
pub fn latest_checkpoint(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir.join(CHECKPOINTS))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("position.json").exists())
        .collect();
    found.sort();
    found.pop()
}

/// Trains `model` (built on an autodiff device) on `data`, writing `metrics.jsonl` and
/// checkpoints under `dir`. With `resume`, continues from the newest checkpoint there.
/// `on_log` sees every step; returning `false` stops (as an interruption would: progress since
/// the last checkpoint is not saved).
pub fn train(
    model: CausalLm,
    data: &[Encoded],
    pad: u32,
    opts: &TrainOptions,
    dir: &Path,
    resume: bool,
    on_log: &mut dyn FnMut(&StepLog) -> bool,
) -> Result<TrainOutcome, ModelError> {
    if data.is_empty() {
        return Err(ModelError::Generation("no training examples".into()));
    }
    if !opts.precision.trains() {
        return Err(ModelError::Generation(format!(
            "{} is for decoding only: train in f32 or bf16",
            opts.precision
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
    let mut model = model.with_precision(opts.precision);
    let settings = StepSettings {
        checkpoint_activations: opts.checkpoint_activations,
        loss_chunk_tokens: opts.loss_chunk_tokens,
    };
    let mut device = model.model.embed_tokens.weight.device();
    let workers: Vec<_> = opts.devices.iter().map(|d| d.training_device()).collect();
    if let Some(first) = workers.first()
        && *first != device
    {
        model = model.fork(first);
        device = first.clone();
    }
    let workers = if workers.is_empty() { vec![device.clone()] } else { workers };
    let rows = training_rows(data, opts);
    let total = total_steps(rows.len(), opts);
    let schedule = Schedule {
        kind: opts.schedule,
        peak: opts.learning_rate,
        warmup_steps: (opts.warmup_ratio * total as f64).ceil() as u64,
        total_steps: total,
    };
    let mut optim = AdamW::new(AdamWSettings {
        beta1: opts.beta1,
        beta2: opts.beta2,
        epsilon: opts.epsilon,
        weight_decay: opts.weight_decay,
    });
    let mut pos = Position::default();
    let mut resumed_from = None;
    let metrics_path = dir.join("metrics.jsonl");
    if resume && let Some(ckpt) = latest_checkpoint(dir) {
        let config = model.config.clone();
        model = CausalLm::build(config, &mut SafetensorsSource::open(&ckpt)?, &device)?
            .with_precision(opts.precision);
        optim.load(&ckpt.join(OPTIMIZER), &model)?;
        let p = ckpt.join("position.json");
        let text = std::fs::read_to_string(&p).map_err(|e| ModelError::io(&p, e))?;
        pos = serde_json::from_str(&text).map_err(|e| ModelError::format(&p, e.to_string()))?;
        resumed_from = Some(pos.step);
        truncate_metrics(&metrics_path, pos.step)?;
        tracing::info!("resuming from {} (step {} of {total})", ckpt.display(), pos.step);
    } else if metrics_path.exists() {
        std::fs::remove_file(&metrics_path).map_err(|e| ModelError::io(&metrics_path, e))?;
    }
    let mut metrics = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&metrics_path)
        .map_err(|e| ModelError::io(&metrics_path, e))?;

    let lengths: Vec<usize> = rows.iter().map(|r| r.iter().map(|&i| data[i].ids.len()).sum()).collect();
    let supervised = |row: &[usize]| row.iter().map(|&i| data[i].supervised()).sum::<usize>();
    let mut batches = epoch_batches(&lengths, opts.batch_size, opts.seed, pos.epoch);
    let start = Instant::now();
    let (mut first_loss, mut last_loss, mut tokens, mut checkpoint) = (None, None, 0u64, None);
    while pos.step < total {
        if pos.batch >= batches.len() {
            pos.epoch += 1;
            pos.batch = 0;
            batches = epoch_batches(&lengths, opts.batch_size, opts.seed, pos.epoch);
        }
        let window = &batches[pos.batch..(pos.batch + opts.grad_accum_steps.max(1)).min(batches.len())];
        let window_tokens: usize = window.iter().flatten().map(|&r| supervised(&rows[r])).sum();
        let make_batch = |i: usize, device: &burn::tensor::Device| {
            let batch_rows = &window[i];
            let batch = if opts.packing.is_some() {
                let packed: Vec<Vec<&Encoded>> =
                    batch_rows.iter().map(|&r| rows[r].iter().map(|&i| &data[i]).collect()).collect();
                collate_packed(&packed, pad, device)
            } else {
                let examples: Vec<&Encoded> = batch_rows.iter().map(|&r| &data[rows[r][0]]).collect();
                collate(&examples, pad, device)
            };
            // Each micro-batch's mean, weighted by its share of the window's tokens: the step
            // optimizes the token mean over the whole window.
            let share = batch.supervised as f64 / window_tokens.max(1) as f64;
            (batch, share)
        };
        let results = run_workers(&model, &workers, window.len(), settings, make_batch);
        let (loss_value, grads) = reduce(&model, &device, results);
        if !loss_value.is_finite() {
            let kept = latest_checkpoint(dir).map_or("none".to_owned(), |p| p.display().to_string());
            return Err(ModelError::Generation(format!(
                "loss became {loss_value} at step {}: training stopped; last good checkpoint: {kept}",
                pos.step + 1
            )));
        }
        let lr = schedule.at(pos.step);
        let grad_norm = optim.step(pos.step + 1, lr, &model, grads, opts.max_grad_norm);
        pos.step += 1;
        pos.batch += window.len();
        tokens += window_tokens as u64;
        first_loss.get_or_insert(loss_value);
        last_loss = Some(loss_value);
        let log = StepLog {
            step: pos.step,
            total_steps: total,
            epoch: pos.epoch,
            loss: loss_value,
            lr,
            grad_norm,
            tokens: window_tokens,
            elapsed_s: start.elapsed().as_secs_f64(),
        };
        if pos.step % opts.log_every.max(1) == 0 || pos.step == total {
            let line = serde_json::to_string(&log).expect("logs serialize");
            writeln!(metrics, "{line}").map_err(|e| ModelError::io(&metrics_path, e))?;
        }
        if !on_log(&log) {
            break;
        }
        let due = opts.checkpoint_every.is_some_and(|n| pos.step % n.max(1) == 0);
        if due || pos.step == total {
            checkpoint = Some(save_checkpoint(&model, &optim, pos, dir)?);
        }
    }
    Ok(TrainOutcome {
        model,
        steps: pos.step,
        first_loss,
        last_loss,
        resumed_from,
        checkpoint: checkpoint.or_else(|| latest_checkpoint(dir)),
        tokens,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Writes `checkpoints/step-NNNNNNN/` durably: weights and optimizer state go to temp files
/// that are fsync'd and renamed into place, `position.json` (what marks a checkpoint complete)
/// is written last the same way, the folder is fsync'd, and only then are older checkpoints
/// removed. A crash at any point leaves the previous checkpoint or the new one usable.
fn save_checkpoint(
    model: &CausalLm,
    optim: &AdamW,
    pos: Position,
    dir: &Path,
) -> Result<PathBuf, ModelError> {
    let root = dir.join(CHECKPOINTS);
    let path = root.join(format!("step-{:07}", pos.step));
    // A leftover of a crash at this very step is incomplete (no position.json): start clean.
    if path.exists() && !path.join("position.json").exists() {
        std::fs::remove_dir_all(&path).map_err(|e| ModelError::io(&path, e))?;
    }
    std::fs::create_dir_all(&path).map_err(|e| ModelError::io(&path, e))?;
    let weights = path.join("model.safetensors");
    durable(&weights, |tmp| crate::export::save_weights(model, tmp))?;
    durable(&path.join(OPTIMIZER), |tmp| optim.save(tmp))?;
    let p = path.join("position.json");
    durable(&p, |tmp| {
        std::fs::write(tmp, serde_json::to_string(&pos).expect("positions serialize"))
            .map_err(|e| ModelError::io(tmp, e))
    })?;
    sync_dir(&path)?;
    sync_dir(&root)?;
    for old in std::fs::read_dir(&root).map_err(|e| ModelError::io(&root, e))?.flatten() {
        if old.path() != path {
            let _ = std::fs::remove_dir_all(old.path());
        }
    }
    Ok(path)
}

/// Writes `target` through `write` into a unique temp file beside it, fsyncs it and renames
/// it over `target`; the temp file is removed if anything fails.
fn durable(target: &Path, write: impl FnOnce(&Path) -> Result<(), ModelError>) -> Result<(), ModelError> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(|e| ModelError::io(dir, e))?;
    write(tmp.path())?;
    std::fs::File::open(tmp.path()).and_then(|f| f.sync_all()).map_err(|e| ModelError::io(tmp.path(), e))?;
    tmp.persist(target).map_err(|e| ModelError::io(target, e.error))?;
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), ModelError> {
    std::fs::File::open(dir).and_then(|f| f.sync_all()).map_err(|e| ModelError::io(dir, e))
}

/// Drops metric lines past `step` (written after the checkpoint a resume starts from).
fn truncate_metrics(path: &Path, step: u64) -> Result<(), ModelError> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(()) };
    let kept: String = text
        .lines()
        .filter(|l| serde_json::from_str::<StepLog>(l).is_ok_and(|s| s.step <= step))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(path, kept).map_err(|e| ModelError::io(path, e))
}
