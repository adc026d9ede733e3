//! `bench train`: training throughput of full fine-tuning steps.

use std::path::PathBuf;

use clap::Args;
use trainer::DeviceSpec;

use crate::model::{ModelArgs, synthetic_prompt};

#[derive(Args)]
pub struct TrainArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[arg(long, default_value_t = 256)]
    seq: usize,
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// Timed steps (after one warm-up step).
    #[arg(long, default_value_t = 5)]
    steps: u64,
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
    /// Data parallel over these devices (`cuda:0,cuda:1`; replaces --device): each takes one
    /// micro-batch of --batch rows per step.
    #[arg(long, value_delimiter = ',')]
    devices: Vec<DeviceSpec>,
    /// `f32`, `bf16` or `auto`.
    #[arg(long, default_value = "f32")]
    dtype: trainer::PrecisionChoice,
    /// Recompute each layer's activations in the backward.
    #[arg(long)]
    checkpoint_activations: bool,
    #[arg(long, default_value_t = trainer::sft::train::default_loss_chunk())]
    loss_chunk_tokens: usize,
    /// Print the memory plan too (compare its total with the peak RSS of this process).
    #[arg(long)]
    plan: bool,
    #[arg(long)]
    json: bool,
}

pub fn train(a: &TrainArgs) -> anyhow::Result<()> {
    use trainer::sft::data::Encoded;
    use trainer::sft::train::TrainOptions;

    let device = a.devices.first().copied().unwrap_or(a.device);
    let workers = a.devices.len().max(1);
    let model = a.model.load(device, true)?;
    let vocab = model.model.config.vocab_size;
    let precision = a.dtype.resolve(device);
    let plan = trainer::sft::memory::MemoryPlan::new(&trainer::sft::memory::PlanInput {
        config: &model.model.config,
        precision,
        batch_size: a.batch,
        seq_len: a.seq,
        checkpoint_activations: a.checkpoint_activations,
        loss_chunk_tokens: a.loss_chunk_tokens,
        grad_accum_steps: 1,
    });
    // Every token but the first is supervised, as a causal-LM loss over the whole sequence.
    let data: Vec<Encoded> = (0..a.batch * workers)
        .map(|r| Encoded { ids: synthetic_prompt(r, a.seq + 1, vocab), prompt_len: 1 })
        .collect();
    let opts = TrainOptions {
        max_steps: Some(a.steps + 1),
        batch_size: a.batch,
        grad_accum_steps: workers,
        precision,
        checkpoint_activations: a.checkpoint_activations,
        loss_chunk_tokens: a.loss_chunk_tokens,
        devices: a.devices.clone(),
        ..TrainOptions::default()
    };
    let scratch = tempfile_dir()?;
    let mut marks = Vec::new();
    let pad = model.tokenizer.pad;
    let parameters = model.model.config.num_parameters();
    let mut losses = Vec::new();
    trainer::sft::train::train(model.model, &data, pad, &opts, &scratch, false, &mut |log| {
        marks.push(log.elapsed_s);
        losses.push(log.loss);
        true
    })?;
    let _ = std::fs::remove_dir_all(&scratch);
    // From the end of the warm-up step to the end of the last one.
    let seconds = marks[marks.len() - 1] - marks[0];
    let tokens = (a.steps as usize * a.batch * workers * a.seq) as f64;
    let tps = tokens / seconds;
    let peak_gb = peak_rss_gb();
    let ckpt = if a.checkpoint_activations { "on" } else { "off" };
    if a.json {
        println!(
            "{}",
            serde_json::json!({"engine": "ours", "seq": a.seq, "batch": a.batch, "devices": workers, "steps": a.steps,
                "dtype": precision.to_string(), "checkpoint_activations": a.checkpoint_activations,
                "seconds": seconds, "tokens_per_s": tps, "peak_rss_gb": peak_gb, "plan_gb": plan.total_gb(),
                "parameters": parameters, "losses": losses})
        );
    } else {
        println!(
            "| engine | dtype | checkpointing | seq | batch | steps | seconds | tokens/s | peak RSS GB | plan GB |"
        );
        println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|");
        println!(
            "| ours (burn + libtorch) | {precision} | {ckpt} | {} | {} | {} | {seconds:.2} | {tps:.1} | {} | {:.2} |",
            a.seq,
            a.batch,
            a.steps,
            peak_gb.map_or("?".into(), |g| format!("{g:.2}")),
            plan.total_gb()
        );
        if a.plan {
            println!("\nmemory plan:\n{}", plan.table());
        }
    }
    Ok(())
}

/// This process's peak resident memory so far (Linux `VmHWM`), in GB.
fn peak_rss_gb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 =
        status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0 / 1e9)
}

/// A fresh directory for the run's metrics and final checkpoint, removed afterwards.
fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("pipeline-bench-train-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
