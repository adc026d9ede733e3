//! `cargo run -p fuzz --release -- <target|all> [--seconds N | --iterations N] [--seed S]`:
//! fuzzes the readers longer than the test does. Failing inputs are saved under
//! `target/fuzz-failures/<target>/`; once fixed, add them to `tools/fuzz/corpus/<target>/`.

use std::time::Duration;

use clap::Parser;
use fuzz::{Budget, TARGETS};

#[derive(Parser)]
struct Args {
    /// A target (jsonl, json, parquet, records, gguf, safetensors, config) or `all`.
    target: String,
    /// Seconds per target (default 60).
    #[arg(long, conflicts_with = "iterations")]
    seconds: Option<u64>,
    /// Mutated inputs per target, after the corpus.
    #[arg(long)]
    iterations: Option<usize>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let targets: Vec<_> = TARGETS.iter().filter(|t| args.target == "all" || t.name == args.target).collect();
    anyhow::ensure!(
        !targets.is_empty(),
        "no target `{}`: one of {} or all",
        args.target,
        TARGETS.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
    );
    let budget = match args.iterations {
        Some(n) => Budget::Iterations(n),
        None => Budget::Time(Duration::from_secs(args.seconds.unwrap_or(60))),
    };
    let mut failed = 0;
    println!(
        "| target | inputs | seconds | inputs/s | peak MiB | failures |\n|---|---:|---:|---:|---:|---:|"
    );
    for target in targets {
        let stats = fuzz::fuzz(target, budget, args.seed);
        println!(
            "| {} | {} | {:.1} | {:.0} | {:.1} | {} |",
            target.name,
            stats.inputs,
            stats.seconds,
            stats.inputs as f64 / stats.seconds.max(1e-9),
            stats.max_peak as f64 / (1 << 20) as f64,
            stats.failures.len()
        );
        for f in &stats.failures {
            eprintln!("{}: {} ({})", f.target, f.why, f.saved.display());
        }
        failed += stats.failures.len();
    }
    anyhow::ensure!(failed == 0, "{failed} failing inputs");
    Ok(())
}
