//! `bench dedup`: MinHash-LSH near-duplicate detection on a corpus with planted copies.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use crate::synthetic::{math_like_problem, perturb};

#[derive(Args)]
pub struct DedupArgs {
    #[arg(long, default_value_t = 100_000)]
    n: usize,
    /// Share of the corpus that is a near copy of another problem.
    #[arg(long, default_value_t = 0.1)]
    planted: f64,
    /// Share of a copy's words edited (substituted, deleted or inserted; at least one).
    #[arg(long, default_value_t = 0.03)]
    edits: f64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Banding (both or neither); default: `[dedup.minhash]`'s rule (see `--num-perm`).
    #[arg(long)]
    bands: Option<usize>,
    #[arg(long)]
    rows: Option<usize>,
    #[arg(long, default_value_t = 256)]
    num_perm: usize,
    #[arg(long, default_value_t = 0.99)]
    false_negative_weight: f64,
    /// Write the corpus (JSONL: id, text, copy_of) here.
    #[arg(long)]
    write: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

pub fn dedup(a: &DedupArgs) -> anyhow::Result<()> {
    use curation::dedup::{MinHasher, char_shingles, jaccard, near_duplicates};

    let mut rng = a.seed;
    let mut texts: Vec<String> = Vec::with_capacity(a.n);
    let mut copy_of: Vec<Option<usize>> = Vec::with_capacity(a.n);
    for i in 0..a.n {
        rng = vs_core::seeds::mix(rng, i as u64);
        if i > 0 && vs_core::seeds::unit(rng) < a.planted {
            let source = (rng >> 11) as usize % i;
            // Copy an original, so planted pairs are (original, copy).
            let source = copy_of[source].unwrap_or(source);
            texts.push(perturb(&texts[source], a.edits, &mut rng));
            copy_of.push(Some(source));
        } else {
            texts.push(math_like_problem(&mut rng));
            copy_of.push(None);
        }
    }
    let ids: Vec<String> = (0..a.n).map(|i| format!("p{i:07}")).collect();
    if let Some(path) = &a.write {
        let mut out = String::new();
        for i in 0..a.n {
            out.push_str(
                &serde_json::json!({"id": ids[i], "text": texts[i], "copy_of": copy_of[i].map(|s| &ids[s])})
                    .to_string(),
            );
            out.push('\n');
        }
        std::fs::write(path, out)?;
    }
    let config = pipeline::config::MinHashConfig {
        num_perm: a.num_perm,
        false_negative_weight: a.false_negative_weight,
        bands: a.bands,
        rows: a.rows,
        ..Default::default()
    };
    let (bands, rows) = config.lsh_params();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let text_refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let start = Instant::now();
    let hasher = MinHasher::new(bands, rows, a.seed);
    let dups = near_duplicates(&id_refs, &text_refs, config.ngram, &hasher, config.threshold);
    let seconds = start.elapsed().as_secs_f64();
    // A planted copy is found when it is dropped into its original's cluster.
    let cluster_of: std::collections::HashMap<usize, usize> =
        dups.iter().map(|d| (d.dropped, d.kept)).collect();
    let root = |i: usize| *cluster_of.get(&i).unwrap_or(&i);
    let planted: Vec<(usize, usize)> =
        copy_of.iter().enumerate().filter_map(|(i, c)| c.map(|s| (s, i))).collect();
    let found = planted.iter().filter(|&&(s, c)| root(s) == root(c)).count();
    let true_dropped = dups
        .iter()
        .filter(|d| {
            let (x, k) = (d.dropped, d.kept);
            let origin = |i: usize| copy_of[i].unwrap_or(i);
            origin(x) == origin(k)
        })
        .count();
    let recall = found as f64 / planted.len().max(1) as f64;
    let precision = true_dropped as f64 / dups.len().max(1) as f64;
    // How similar the planted pairs really are (what no LSH setting can beat).
    let mut similarity: Vec<f64> = planted
        .iter()
        .map(|&(s, c)| {
            jaccard(&char_shingles(&texts[s], config.ngram), &char_shingles(&texts[c], config.ngram))
        })
        .collect();
    similarity.sort_by(f64::total_cmp);
    let below = similarity.iter().filter(|&&j| j < config.threshold).count();
    let quantile =
        |q: f64| similarity.get(((similarity.len() as f64 - 1.0) * q) as usize).copied().unwrap_or(0.0);
    let words = texts.iter().map(|t| t.split(' ').count()).sum::<usize>() as f64 / a.n as f64;
    if a.json {
        println!(
            "{}",
            serde_json::json!({"engine": "ours", "n": a.n, "planted": planted.len(), "dropped": dups.len(),
                "seconds": seconds, "recall": recall, "precision": precision, "bands": bands, "rows": rows,
                "threshold": config.threshold, "ngram": config.ngram, "planted_below_threshold": below,
                "planted_jaccard_min": quantile(0.0), "planted_jaccard_median": quantile(0.5),
                "mean_words": words})
        );
    } else {
        println!(
            "{} problems (mean {words:.0} words), {} planted near copies ({:.0}% of words edited): pair Jaccard min {:.3}, median {:.3}, {below} below the threshold {}",
            a.n,
            planted.len(),
            a.edits * 100.0,
            quantile(0.0),
            quantile(0.5),
            config.threshold
        );
        println!("| engine | bands x rows | dropped | seconds | recall | precision |");
        println!("|---|---|---:|---:|---:|---:|");
        println!(
            "| ours (rayon) | {bands} x {rows} | {} | {seconds:.2} | {recall:.4} | {precision:.4} |",
            dups.len()
        );
    }
    Ok(())
}
