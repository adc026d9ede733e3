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
