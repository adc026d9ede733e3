//! `bench embed`: sentence embeddings/s of the local encoder.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use trainer::DeviceSpec;

use crate::synthetic::synthetic_problem;

#[derive(Args)]
pub struct EmbedArgs {
    #[arg(long, default_value = "models/all-MiniLM-L6-v2")]
    model: PathBuf,
    #[arg(long, default_value_t = 2000)]
    n: usize,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
    /// Write the texts (JSONL: text) here.
    #[arg(long)]
    write: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

pub fn embed(a: &EmbedArgs) -> anyhow::Result<()> {
    let mut rng = a.seed;
    let texts: Vec<String> = (0..a.n).map(|_| synthetic_problem(&mut rng)).collect();
    if let Some(path) = &a.write {
        let lines: String =
            texts.iter().map(|t| serde_json::json!({ "text": t }).to_string() + "\n").collect();
        std::fs::write(path, lines)?;
    }
    let encoder = trainer::embed::SentenceEncoder::load(&a.model, &a.device.device())?;
    // One warm-up batch, then the timed pass over everything.
    encoder.embed(&texts[..a.batch.min(texts.len())], a.batch)?;
    let start = Instant::now();
    let vectors = encoder.embed(&texts, a.batch)?;
    let seconds = start.elapsed().as_secs_f64();
    let rate = vectors.len() as f64 / seconds;
    if a.json {
        println!(
            "{}",
            serde_json::json!({"engine": "ours", "n": a.n, "batch": a.batch, "seconds": seconds, "sentences_per_s": rate})
        );
    } else {
        println!("| engine | sentences | batch | seconds | sentences/s |");
        println!("|---|---:|---:|---:|---:|");
        println!("| ours (burn + libtorch) | {} | {} | {seconds:.2} | {rate:.1} |", a.n, a.batch);
    }
    Ok(())
}
