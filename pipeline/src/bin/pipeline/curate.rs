//! `pipeline curate`: clean any file of problems with the dedup stage's code (see
//! `pipeline::curate`), no run needed.

use std::path::PathBuf;

use clap::Args;
use curation::import::FieldMap;

#[derive(Args)]
pub struct CurateArgs {
    /// Problems to clean: .jsonl, .json (a list of rows) or .parquet.
    #[arg(long)]
    input: PathBuf,
    /// The field holding the problem text (dotted for nested fields: `meta.problem`).
    #[arg(long, default_value = "question")]
    question: String,
    /// Optional fields carried into the output.
    #[arg(long)]
    answer: Option<String>,
    #[arg(long)]
    solution: Option<String>,
    /// The field holding a unique id (default: `row-<index>`).
    #[arg(long)]
    id: Option<String>,
    /// Benchmarks to decontaminate against, comma-separated, or `none`.
    #[arg(long, value_delimiter = ',', default_value = "math500,olympiadbench,minerva_math")]
    benchmarks: Vec<String>,
    /// Where kept.jsonl, dropped.jsonl, malformed.jsonl and summary.json go
    /// (default: `<input>-curated/` next to the input).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Take `[dedup]` (thresholds, LSH trade-off, semantic dedup and its embeddings) and
    /// `run.seed` from this config; the defaults otherwise.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Override a key of that config (or of the defaults): --set dedup.minhash.threshold=0.7.
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    set: Vec<String>,
    /// Also solve every problem with this `[llm.<name>]` of --config and keep those whose
    /// solutions agree on the answer: the file runs as the only arm of a run under --out
    /// (generate, solve, dedup, verify: the stages themselves, resumable, calls cached).
    #[arg(long, value_name = "LLM", requires = "config")]
    solve: Option<String>,
}

/// The config `curate` reads `[dedup]` from when none is given: the defaults, with no
/// embeddings (semantic dedup is asked for with `--set dedup.semantic.enabled=true
/// --set dedup.embeddings.provider="local"`).
const DEFAULTS: &str = "[run]\nname = \"curate\"\n[llm.unused]\nprovider = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"unused\"\n[generate]\nllm = \"unused\"\nstrategies = [\"direct\"]\n[dedup.embeddings]\nprovider = \"none\"\n";

pub fn curate(a: &CurateArgs) -> anyhow::Result<()> {
    if let Some(llm) = &a.solve {
        return solve_and_verify(a, llm);
    }
    let config = match &a.config {
        Some(path) => pipeline::config::load(path, &a.set)?.config,
        None => {
            pipeline::config::load_str(DEFAULTS, std::path::Path::new("(curate defaults)"), &a.set)?.config
        }
    };
    let benchmarks = if a.benchmarks.iter().any(|b| b == "none") {
        Vec::new()
    } else {
        a.benchmarks.iter().map(|b| b.parse::<eval::Benchmark>()).collect::<Result<Vec<_>, _>>()?
    };
    let options = curation::curate::CurateOptions {
        input: a.input.clone(),
        fields: FieldMap {
            question: a.question.clone(),
            answer: a.answer.clone(),
            solution: a.solution.clone(),
            id: a.id.clone(),
        },
        benchmarks,
        out: a.out.clone().unwrap_or_else(|| curation::curate::default_out(&a.input)),
        dedup: config.dedup.clone(),
        seed: config.run.seed,
    };
    // The embedder is made only when semantic dedup asks for it (loading a model is not free).
    let embedder = match config.dedup.semantic.enabled {
        true => pipeline::stages::dedup::Embedder::new(&config)?,
        false => None,
    };
    let summary =
        curation::curate::curate(&options, embedder.as_ref().map(|e| e as &dyn curation::embed::Embed))?;
    println!("{}", summary.table());
    println!(
        "{} kept of {} rows in {:.2} s (MinHash-LSH {} x {}); kept.jsonl, dropped.jsonl (with reasons), malformed.jsonl and summary.json in {}",
        summary.kept,
        summary.rows,
        summary.seconds,
        summary.lsh.0,
        summary.lsh.1,
        options.out.display()
    );
    Ok(())
}

/// `--solve`: the file as an imported arm of a run under --out, through verify.
fn solve_and_verify(a: &CurateArgs, llm: &str) -> anyhow::Result<()> {
    use pipeline::config::{Curation, ImportConfig};
    use pipeline::runner::{RunOptions, Runner};
    use vs_core::StageName;

    let path = a.config.as_ref().expect("clap requires --config with --solve");
    let mut config = pipeline::config::load(path, &a.set)?.config;
    anyhow::ensure!(
        config.llm.contains_key(llm),
        "--solve {llm}: {} has no [llm.{llm}] section",
        path.display()
    );
    let out = a.out.clone().unwrap_or_else(|| curation::curate::default_out(&a.input));
    std::fs::create_dir_all(&out)?;
    let input = std::fs::canonicalize(&a.input).map_err(|e| anyhow::anyhow!("{}: {e}", a.input.display()))?;
    config.generate.strategies.clear();
    config.generate.import = [(
        "input".to_owned(),
        ImportConfig {
            path: input,
            question: a.question.clone(),
            answer: a.answer.clone(),
            solution: a.solution.clone(),
            id: a.id.clone(),
            limit: None,
        },
    )]
    .into();
    config.solve.llm = Some(llm.to_owned());
    config.verify.curation = vec![Curation::Curated];
    // The stage decontaminates against all three benchmarks or none.
    config.dedup.decontaminate.enabled = !a.benchmarks.iter().any(|b| b == "none");
    config.run.name = "curate".into();
    config.run.out_dir = std::fs::canonicalize(&out)?;
    let run_dir = pipeline::run_dir::RunDir::open(&config)?;
    let stages = vec![StageName::Generate, StageName::Solve, StageName::Dedup, StageName::Verify];
    let options = RunOptions { stages: Some(stages), ..RunOptions::default() };
    Runner::new(&config, &run_dir, pipeline::stages::implemented(), &pipeline::progress::Silent)
        .run(&options)?;
    let manifest = |stage: &str| -> anyhow::Result<serde_json::Value> {
        let text = std::fs::read_to_string(run_dir.root().join(stage).join("manifest.json"))?;
        Ok(serde_json::from_str::<serde_json::Value>(&text)?["counts"].clone())
    };
    let (generate, dedup, verify) = (manifest("generate")?, manifest("dedup")?, manifest("verify")?);
    println!("| step | rows |\n|---|---:|");
    println!(
        "| read {} | {} ({} usable) |",
        a.input.display(),
        generate["input"]["rows"],
        generate["input"]["usable"]
    );
    println!(
        "| after dedup and decontamination | {} (dropped: {}) |",
        dedup["input"]["kept"], dedup["input"]["dropped"]
    );
    println!(
        "| verified | {} (rejected: {}) |",
        verify["input/curated"]["kept"], verify["input/curated"]["rejected"]
    );
    println!(
        "verified pairs: {}; every stage's records and manifest under {}",
        run_dir.root().join("verify/input/curated/train.jsonl").display(),
        run_dir.root().display()
    );
    Ok(())
}
