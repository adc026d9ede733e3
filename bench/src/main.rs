//! `bench`: speed measurements of the pipeline's hot paths that print a table (and JSON with
//! --json), for the comparisons in `tools/bench/`. Run with
//! `cargo run --release -p bench -- <what>`; not part of the `pipeline` binary.

mod decode;
mod dedup;
mod dispatch;
mod embed;
mod grammar;
mod model;
mod serve;
mod synthetic;
mod train;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// The allocator the `pipeline` binary runs with (see its `main.rs`), so that what is measured
/// here is what the pipeline runs: glibc's malloc and free were 6% of a batch-1 decode.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Measure hot paths and print a table (see tools/bench/ for side-by-side comparisons).
#[derive(Parser)]
#[command(name = "bench", version)]
struct Cli {
    #[command(subcommand)]
    what: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Greedy generation throughput: batch x new tokens / wall time (prefill included), on
    /// synthetic prompts `tools/bench/decode.py` reproduces token for token.
    Decode(decode::DecodeArgs),
    /// Training throughput: tokens/s of full fine-tuning steps (forward, backward, global-norm
    /// clipping, AdamW) on synthetic sequences `tools/bench/train.py` reproduces.
    Train(train::TrainArgs),
    /// MinHash-LSH near-duplicate detection on a synthetic corpus with planted near
    /// duplicates: seconds, and recall/precision of the planted pairs. `--write` saves the
    /// corpus for `tools/bench/dedup.py` (datasketch on the same texts).
    Dedup(dedup::DedupArgs),
    /// Sentence embeddings/s of the local encoder (all-MiniLM-L6-v2) on synthetic problems;
    /// `--write` saves them for `tools/bench/embed.py` (sentence-transformers on the same texts).
    Embed(embed::EmbedArgs),
    /// Generate-stage dispatch against a mock server with fixed latency (and an optional
    /// latency tail), side by side with a plain client that keeps every slot busy.
    Dispatch(dispatch::DispatchArgs),
    /// `pipeline serve` over HTTP next to the same engine in-process, at 1, 8 and 32 clients:
    /// requests/s, tokens/s and the largest batch formed.
    Serve(serve::ServeBenchArgs),
    /// Structured-output cost: a token mask (llguidance) plus its application to the logits,
    /// per token, walking a VS-Multi reply under the strategy's JSON schema.
    Grammar(grammar::GrammarArgs),
}

fn run(what: &Bench) -> anyhow::Result<()> {
    match what {
        Bench::Decode(a) => decode::decode(a),
        Bench::Train(a) => train::train(a),
        Bench::Dedup(a) => dedup::dedup(a),
        Bench::Embed(a) => embed::embed(a),
        Bench::Grammar(a) => grammar::grammar(a),
        Bench::Dispatch(a) => dispatch::dispatch(a),
        Bench::Serve(a) => serve::serve(a),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(&cli.what) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_benchmarks_without_a_model_run_small() {
        let runs: [&[&str]; 2] = [
            &[
                "bench",
                "dispatch",
                "--calls",
                "24",
                "--concurrency",
                "4",
                "--latency-ms",
                "5",
                "--slow-every",
                "5",
                "--slow-ms",
                "20",
            ],
            &["bench", "dedup", "--n", "300", "--json"],
        ];
        for args in runs {
            run(&Cli::try_parse_from(args).unwrap().what).unwrap();
        }
    }
}
