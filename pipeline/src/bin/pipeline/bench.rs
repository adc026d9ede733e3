//! `pipeline bench`: speed measurements that print a table (and JSON with --json), for the
//! comparisons in `tools/bench/`.

use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Subcommand};
use trainer::generate::{Padding, Request, generate};
use trainer::{DeviceSpec, Pretrained};

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Greedy generation throughput: batch x new tokens / wall time (prefill included), on
    /// synthetic prompts `tools/bench/decode.py` reproduces token for token.
    Decode(DecodeArgs),
    /// Training throughput: tokens/s of full fine-tuning steps (forward, backward, global-norm
    /// clipping, AdamW) on synthetic sequences `tools/bench/train.py` reproduces.
    Train(TrainArgs),
}

#[derive(Args)]
struct TrainArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long, default_value_t = 256)]
    seq: usize,
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// Timed steps (after one warm-up step).
    #[arg(long, default_value_t = 5)]
    steps: u64,
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct DecodeArgs {
    #[arg(long)]
    model: PathBuf,
    /// Batch sizes to measure (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    batch: Vec<usize>,
    #[arg(long, default_value_t = 64)]
    prompt_tokens: usize,
    #[arg(long, default_value_t = 128)]
    new_tokens: usize,
    /// Timed repetitions per batch size (the best is reported).
    #[arg(long, default_value_t = 2)]
    repeats: usize,
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
    /// Print one JSON object per batch size instead of the table.
    #[arg(long)]
    json: bool,
}

/// Row `r` of the synthetic prompt batch (the same formula as tools/bench/decode.py).
pub fn synthetic_prompt(r: usize, len: usize, vocab: usize) -> Vec<u32> {
    (0..len).map(|i| ((i * 7919 + r * 104_729 + 13) % (vocab - 100) + 100) as u32).collect()
}

pub fn bench(args: &BenchArgs) -> anyhow::Result<()> {
    match &args.what {
        Bench::Decode(a) => decode(a),
        Bench::Train(a) => train(a),
    }
}

fn decode(a: &DecodeArgs) -> anyhow::Result<()> {
    let model = Pretrained::load(&a.model, &a.device.device())?;
    let vocab = model.model.config.vocab_size;
    let requests = |b: usize, new: usize| -> Vec<Request> {
        (0..b)
            .map(|r| Request {
                ignore_eos: true,
                ..Request::greedy(synthetic_prompt(r, a.prompt_tokens, vocab), new)
            })
            .collect()
    };
    // Warm-up: first calls pay for allocator and kernel set-up.
    generate(&model.model, &model.tokenizer, &requests(1, 8), Padding::Left, &mut |_, _| {})?;
    if !a.json {
        println!("| engine | batch | prompt | new | seconds | tokens/s |");
        println!("|---|---:|---:|---:|---:|---:|");
    }
    for &b in &a.batch {
        let reqs = requests(b, a.new_tokens);
        let mut best = f64::INFINITY;
        for _ in 0..a.repeats.max(1) {
            let start = Instant::now();
            let out = generate(&model.model, &model.tokenizer, &reqs, Padding::Left, &mut |_, _| {})?;
            best = best.min(start.elapsed().as_secs_f64());
            anyhow::ensure!(out.iter().all(|g| g.tokens.len() == a.new_tokens), "a row stopped early");
        }
        let tps = (b * a.new_tokens) as f64 / best;
        if a.json {
            println!(
                "{}",
                serde_json::json!({"engine": "ours", "batch": b, "prompt": a.prompt_tokens,
                    "new": a.new_tokens, "seconds": best, "tokens_per_s": tps})
            );
        } else {
            println!(
                "| ours (burn + libtorch) | {b} | {} | {} | {best:.2} | {tps:.1} |",
                a.prompt_tokens, a.new_tokens
            );
        }
    }
    Ok(())
}

fn train(a: &TrainArgs) -> anyhow::Result<()> {
    use trainer::sft::data::Encoded;
    use trainer::sft::train::{ScheduleKindSerde, TrainOptions};

    let model = Pretrained::load(&a.model, &a.device.training_device())?;
    let vocab = model.model.config.vocab_size;
    // Every token but the first is supervised, as a causal-LM loss over the whole sequence.
    let data: Vec<Encoded> =
        (0..a.batch).map(|r| Encoded { ids: synthetic_prompt(r, a.seq + 1, vocab), prompt_len: 1 }).collect();
    let opts = TrainOptions {
        epochs: 1,
        max_steps: Some(a.steps + 1),
        learning_rate: 1e-5,
        schedule: ScheduleKindSerde::Constant,
        warmup_ratio: 0.0,
        weight_decay: 0.0,
        beta1: 0.9,
        beta2: 0.999,
        epsilon: 1e-8,
        batch_size: a.batch,
        grad_accum_steps: 1,
        max_grad_norm: Some(1.0),
        seed: 0,
        log_every: 1,
        checkpoint_every: None,
        packing: None,
    };
    let scratch = tempfile_dir()?;
    let mut marks = Vec::new();
    let pad = model.tokenizer.pad;
    trainer::sft::train::train(model.model, &data, pad, &opts, &scratch, false, &mut |log| {
        marks.push(log.elapsed_s);
        true
    })?;
    let _ = std::fs::remove_dir_all(&scratch);
    // From the end of the warm-up step to the end of the last one.
    let seconds = marks[marks.len() - 1] - marks[0];
    let tokens = (a.steps as usize * a.batch * a.seq) as f64;
    let tps = tokens / seconds;
    if a.json {
        println!(
            "{}",
            serde_json::json!({"engine": "ours", "seq": a.seq, "batch": a.batch, "steps": a.steps,
                "seconds": seconds, "tokens_per_s": tps})
        );
    } else {
        println!("| engine | seq | batch | steps | seconds | tokens/s |");
        println!("|---|---:|---:|---:|---:|---:|");
        println!(
            "| ours (burn + libtorch) | {} | {} | {} | {seconds:.2} | {tps:.1} |",
            a.seq, a.batch, a.steps
        );
    }
    Ok(())
}

/// A fresh directory for the run's metrics and final checkpoint, removed afterwards.
fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("pipeline-bench-train-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
