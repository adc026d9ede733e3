//! `pipeline curate`: the dedup stage's cleaning on any file of problems, without a run. Reads
//! JSONL, JSON or Parquet through a field map ([`crate::import`]), drops degenerate items,
//! exact and near duplicates, benchmark-contaminated problems and (when `[dedup.semantic]` is
//! on) semantic duplicates, with the stage's own code ([`crate::filter::dedup_texts`]),
//! and writes what it kept and what it dropped, with reasons, plus a summary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::json;

use crate::embed::Embed;
use crate::error::CurationError;
use crate::filter::{Dropped, benchmark_index, dedup_texts, drop_semantic, tally};
use crate::import::{FieldMap, ImportedRow};
use crate::params::DedupConfig;

pub struct CurateOptions {
    pub input: PathBuf,
    pub fields: FieldMap,
    /// Benchmarks to decontaminate against (empty: none).
    pub benchmarks: Vec<eval::Benchmark>,
    pub out: PathBuf,
    /// `[dedup]` (defaults without a config file).
    pub dedup: DedupConfig,
    /// `run.seed`: the MinHash permutations.
    pub seed: u64,
}

/// What a curation did, step by step (also written as `summary.json`).
#[derive(Debug, Serialize)]
pub struct Summary {
    pub input: String,
    pub rows: usize,
    pub malformed: usize,
    pub malformed_by_reason: BTreeMap<String, usize>,
    /// Dropped per reason, in the order the steps run.
    pub dropped: BTreeMap<String, usize>,
    pub contaminated_by_benchmark: BTreeMap<String, usize>,
    pub kept: usize,
    pub lsh: (usize, usize),
    pub seconds: f64,
}

/// A dropped row as written to `dropped.jsonl`: the reason and the row itself.
#[derive(Serialize)]
struct DroppedRow<'a> {
    #[serde(flatten)]
    why: &'a Dropped,
    question: &'a str,
}

/// Curates `o.input` into `o.out`; `embed` gives the vectors for `[dedup.semantic]` (required
/// when it is on).
pub fn curate(o: &CurateOptions, embed: Option<&dyn Embed>) -> Result<Summary, CurationError> {
    let started = std::time::Instant::now();
    refuse_to_overwrite_input(o)?;
    let imported = crate::import::read(&o.input, &o.fields)?;
    let rows = &imported.rows;
    // Ids name rows in kept.jsonl and dropped.jsonl: two rows with one id would be ambiguous.
    if let Some(id) = crate::import::repeated_id(rows) {
        return Err(CurationError::RepeatedId { path: o.input.clone(), id: id.to_owned() });
    }
    let d = &o.dedup;
    let hasher = d.minhash.hasher(o.seed);
    let index = if o.benchmarks.is_empty() { None } else { Some(benchmark_index(d, &o.benchmarks, o.seed)?) };
    let items: Vec<(&str, &str)> = rows.iter().map(|r| (r.id.as_str(), r.question.as_str())).collect();
    let (mut kept, mut dropped) = dedup_texts(&items, d, &hasher, index.as_ref());
    if d.semantic.enabled {
        let embed = embed.ok_or(CurationError::NoEmbeddings)?;
        let texts: Vec<&str> = kept.iter().map(|&i| items[i].1).collect();
        let vectors = embed.embed(&texts).map_err(CurationError::Embeddings)?;
        let ids: Vec<&str> = kept.iter().map(|&i| items[i].0).collect();
        let keep = drop_semantic(&ids, &vectors, d.semantic.threshold, &mut dropped);
        kept = kept.into_iter().zip(keep).filter(|(_, k)| *k).map(|(i, _)| i).collect();
    }

    std::fs::create_dir_all(&o.out).map_err(|source| CurationError::Io { path: o.out.clone(), source })?;
    let kept_rows: Vec<&ImportedRow> = kept.iter().map(|&i| &rows[i]).collect();
    vs_core::jsonl::write_all(&o.out.join("kept.jsonl"), &kept_rows)?;
    let position: std::collections::HashMap<&str, usize> =
        rows.iter().enumerate().map(|(i, r)| (r.id.as_str(), i)).collect();
    let dropped_rows: Vec<DroppedRow> = dropped
        .iter()
        .map(|why| DroppedRow { why, question: &rows[position[why.id.as_str()]].question })
        .collect();
    vs_core::jsonl::write_all(&o.out.join("dropped.jsonl"), &dropped_rows)?;
    vs_core::jsonl::write_all(&o.out.join("malformed.jsonl"), &imported.malformed)?;

    let (by_reason, by_benchmark) = tally(&dropped);
    let summary = Summary {
        input: o.input.display().to_string(),
        rows: rows.len() + imported.malformed.len(),
        malformed: imported.malformed.len(),
        malformed_by_reason: imported.malformed_by_reason(),
        dropped: by_reason,
        contaminated_by_benchmark: by_benchmark,
        kept: kept.len(),
        lsh: (hasher.bands, hasher.rows),
        seconds: started.elapsed().as_secs_f64(),
    };
    let text = serde_json::to_string_pretty(&json!({
        "summary": &summary,
        "dedup": d,
        "benchmarks": o.benchmarks,
        "fields": o.fields,
        "seed": o.seed,
    }))
    .expect("summaries serialize");
    let path = o.out.join("summary.json");
    vs_core::fs::write_atomic(&path, text.as_bytes()).map_err(|source| CurationError::Io { path, source })?;
    Ok(summary)
}

impl Summary {
    /// The funnel as a Markdown table.
    pub fn table(&self) -> String {
        let mut out = String::from("| step | rows | dropped |\n|---|---:|---:|\n");
        let mut left = self.rows;
        out.push_str(&format!("| read {} | {} | {} malformed |\n", self.input, self.rows, self.malformed));
        left -= self.malformed;
        for step in ["degenerate", "exact", "near", "contaminated", "semantic"] {
            let Some(&n) = self.dropped.get(step) else { continue };
            let detail = if step == "contaminated" && !self.contaminated_by_benchmark.is_empty() {
                let parts: Vec<String> =
                    self.contaminated_by_benchmark.iter().map(|(b, n)| format!("{b} {n}")).collect();
                format!(" ({})", parts.join(", "))
            } else {
                String::new()
            };
            out.push_str(&format!("| {step}{detail} | {left} | {n} |\n"));
            left -= n;
        }
        out.push_str(&format!("| **kept** | **{}** | |\n", self.kept));
        out
    }
}

/// The files a curation writes in its output folder.
pub const OUTPUTS: [&str; 4] = ["kept.jsonl", "dropped.jsonl", "malformed.jsonl", "summary.json"];

/// An input that is one of the files this curation would write (`--input out/kept.jsonl --out
/// out`) would be replaced by its own output: refused before anything is read or written.
fn refuse_to_overwrite_input(o: &CurateOptions) -> Result<(), CurationError> {
    match OUTPUTS.iter().any(|name| vs_core::fs::overlaps(&o.out.join(name), &o.input)) {
        true => Err(CurationError::OverwritesInput { input: o.input.clone(), out: o.out.clone() }),
        false => Ok(()),
    }
}

/// `<input without its extension>-curated`, next to the input.
pub fn default_out(input: &Path) -> PathBuf {
    let stem = input.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "input".into());
    input.with_file_name(format!("{stem}-curated"))
}
