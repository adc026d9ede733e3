//! `bench decode`: greedy generation throughput.

use std::time::Instant;

use clap::Args;
use trainer::DeviceSpec;
use trainer::generate::{Padding, Request, generate};

use crate::model::{ModelArgs, synthetic_prompt};

#[derive(Args)]
pub struct DecodeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// `f32`, `bf16` (weights stored in bf16) or `auto`.
    #[arg(long, default_value = "f32")]
    dtype: trainer::PrecisionChoice,
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

pub fn decode(a: &DecodeArgs) -> anyhow::Result<()> {
    let precision = a.dtype.resolve(a.device);
    let model = a.model.load(a.device, false)?.stored_in(precision)?;
    let vocab = model.model.config.vocab_size;
    let requests = |b: usize, new: usize| -> Vec<Request> {
        (0..b)
            .map(|r| Request {
                ignore_eos: true,
                grammar: None,
                ..Request::greedy(synthetic_prompt(r, a.prompt_tokens, vocab), new)
            })
            .collect()
    };
    // Warm-up: first calls pay for allocator and kernel set-up.
    generate(&model.model, &model.tokenizer, &requests(1, 8), Padding::Left, &mut |_, _| {})?;
    if !a.json {
        println!("| engine | dtype | batch | prompt | new | seconds | tokens/s |");
        println!("|---|---|---:|---:|---:|---:|---:|");
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
                    "new": a.new_tokens, "dtype": precision.to_string(), "seconds": best, "tokens_per_s": tps,
                    "parameters": model.model.config.num_parameters()})
            );
        } else {
            println!(
                "| ours (burn + libtorch) | {precision} | {b} | {} | {} | {best:.2} | {tps:.1} |",
                a.prompt_tokens, a.new_tokens
            );
        }
    }
    Ok(())
}
