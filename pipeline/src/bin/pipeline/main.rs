//! `pipeline`: the command line. Parses arguments, sets up logging and progress, and hands
//! off to the library.

mod bench;
mod bench_dispatch;
mod bench_serve;
mod chat;
mod curate_cmd;
mod export_data_cmd;
mod reporter;
mod serve_cmd;

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use indicatif::MultiProgress;
use pipeline::config::{self, ConfigError, LoadedConfig};
use pipeline::run_dir::RunDir;
use pipeline::runner::{Outcome, RunOptions, Runner};
use pipeline::stages;
use tracing_subscriber::EnvFilter;
use vs_core::StageName;

use reporter::{LogWriter, TerminalReporter};

/// Diverse synthetic math data with Verbalized Sampling, and proof that it helps:
/// generate -> solve -> dedup -> verify -> train -> evaluate -> report, from one TOML config.
#[derive(Parser)]
#[command(name = "pipeline", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the stages of a config, skipping those whose outputs are up to date.
    Run(RunArgs),
    /// Check a config (and its --set overrides) without running anything.
    Validate(ConfigArgs),
    /// Write one sbatch script per stage under <run>/slurm/ (job arrays for the sharded
    /// stages, each job after the previous with afterok) and submit the chain with sbatch.
    Slurm(SlurmArgs),
    /// Grade answers: a JSONL file of {gold, pred} records, or one --gold/--pred pair.
    Grade(GradeArgs),
    /// Chat with a model in-process (GGUF file or HF folder): the model's chat template is
    /// applied and the reply streams to stdout, greedy by default.
    Chat(chat::ChatArgs),
    /// Measure hot paths and print a table (see tools/bench/ for side-by-side comparisons).
    Bench(bench::BenchArgs),
    /// Serve a model (GGUF file, HF folder or fine-tuned export) over an OpenAI-compatible API
    /// (`/v1/chat/completions`, `/v1/models`, `/health`), batching concurrent requests.
    Serve(serve_cmd::ServeArgs),
    /// Clean any file of problems (JSONL, JSON, Parquet) as the dedup stage does: degenerate
    /// items, exact and near duplicates, benchmark contamination; kept and dropped (with
    /// reasons) written out, and a summary table.
    Curate(curate_cmd::CurateArgs),
    /// Write a run's verified data per arm for other trainers: LLaMA-Factory alpaca and
    /// sharegpt JSON with dataset_info.json, and Hugging Face datasets folders with a card.
    ExportData(export_data_cmd::ExportDataArgs),
    /// Convert a model (GGUF file or HF folder) to a Hugging Face folder: f32 safetensors,
    /// config.json, tokenizer.json and tokenizer_config.json with the chat template.
    Export(chat::ExportArgs),
}

#[derive(Args)]
struct GradeArgs {
    /// JSONL with string fields `gold` and `pred` (and optionally `problem`; `-` reads standard
    /// input); writes each record with `equal`, `extracted` and `extraction` added.
    #[arg(long, conflicts_with_all = ["gold", "pred"], required_unless_present = "gold")]
    input: Option<PathBuf>,
    /// The gold answer (with --pred).
    #[arg(long, requires = "pred")]
    gold: Option<String>,
    /// A bare answer or a whole response; the answer is extracted first.
    #[arg(long, requires = "gold")]
    pred: Option<String>,
    /// The problem text (with --pred): an answer that merely restates one of its expressions is
    /// no answer, as in the evaluate stage. In a file, a record's `problem` field.
    #[arg(long, requires = "pred")]
    problem: Option<String>,
    /// How the answer is read from the response, as `evaluate.extraction`: `math_verify` (the
    /// paper's grader's extraction, the evaluate stage's default) or `strict` (boxed answers and
    /// "final answer is" phrases only).
    #[arg(long, default_value = "math_verify", value_parser = parse_extraction)]
    extraction: eval::grader::Extraction,
}

fn parse_extraction(s: &str) -> Result<eval::grader::Extraction, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| format!("`{s}`: expected `math_verify` or `strict`"))
}

#[derive(Args)]
struct ConfigArgs {
    /// The TOML config, e.g. configs/default.toml.
    #[arg(long, short)]
    config: PathBuf,
    /// Override any key: --set generate.k=3 --set 'generate.strategies=["vs_cot"]'.
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    set: Vec<String>,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Only these stages (comma-separated, run in flow order).
    #[arg(long, value_delimiter = ',', value_name = "STAGE,...")]
    stages: Option<Vec<StageName>>,
    /// Rerun these stages even if up to date (comma-separated, or `all`); later stages rerun
    /// when their inputs change.
    #[arg(long, value_delimiter = ',', value_name = "STAGE,...|all")]
    force: Vec<Forced>,
    /// Rerun these stages and re-ask the LLM for every call instead of replaying the call cache
    /// (--force replays it: free and identical).
    #[arg(long, value_delimiter = ',', value_name = "STAGE,...|all")]
    refresh_cache: Vec<Forced>,
    /// Do share INDEX of COUNT of one stage's work (generate, solve or evaluate) and write no
    /// manifest: one task of a Slurm job array. The stage's next unsharded run merges the
    /// shards. Needs --stages with that one stage.
    #[arg(long, value_name = "INDEX/COUNT", requires = "stages", conflicts_with_all = ["force", "refresh_cache"])]
    shard: Option<vs_core::Shard>,
}

#[derive(Args)]
struct SlurmArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Only these stages (comma-separated, in flow order); all when absent.
    #[arg(long, value_delimiter = ',', value_name = "STAGE,...")]
    stages: Option<Vec<StageName>>,
    /// Write the scripts and print the sbatch commands without submitting.
    #[arg(long)]
    dry_run: bool,
}

/// A `--force` item: a stage, or `all`.
#[derive(Clone, Copy)]
enum Forced {
    All,
    Stage(StageName),
}

impl std::str::FromStr for Forced {
    type Err = vs_core::stage::UnknownStage;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim() == "all" { Ok(Forced::All) } else { s.parse().map(Forced::Stage) }
    }
}

/// Exit status for a config or usage error, as clap uses.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = parse_cli();
    let multi = MultiProgress::new();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(LogWriter(multi.clone()))
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let result = match cli.command {
        Command::Validate(args) => validate(&args),
        Command::Run(args) => run(&args, multi),
        Command::Slurm(args) => slurm(&args),
        Command::Grade(args) => grade(&args),
        Command::Chat(args) => chat::chat(&args),
        Command::Bench(args) => bench::bench(&args),
        Command::Export(args) => chat::export(&args),
        Command::Serve(args) => serve_cmd::serve(&args),
        Command::Curate(args) => curate_cmd::curate(&args),
        Command::ExportData(args) => export_data_cmd::export_data(&args),
    };
    // A signal is stopping this run's inference servers: that handler exits (with the
    // signal's code) once they are gone; leaving first would orphan them.
    while llm::server::interrupted() {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let usage = e.downcast_ref::<ConfigError>().is_some();
            eprintln!("error: {}", render(&e));
            ExitCode::from(if usage { EXIT_USAGE } else { 1 })
        }
    }
}

/// The error and its causes, each said once (many of our errors already quote their source).
fn render(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn parse_cli() -> Cli {
    let mut stages_help = String::from("Stages, in flow order:\n");
    for s in StageName::FLOW {
        stages_help.push_str(&format!("  {:<9} {}\n", s.as_str(), s.description()));
    }
    stages_help
        .push_str("\nLogs: RUST_LOG=debug (default info). Outputs: <run.out_dir>/<run.name>/<stage>/.");
    let matches = Cli::command().after_help(stages_help).get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn load(args: &ConfigArgs) -> anyhow::Result<LoadedConfig> {
    Ok(config::load(&args.config, &args.set)?)
}

/// The `config.json` of models the paper trains, by folder name (see its SOURCES.md).
const PUBLISHED_CONFIGS: &str = "data/model_configs";

fn validate(args: &ConfigArgs) -> anyhow::Result<()> {
    let loaded = load(args)?;
    let c = &loaded.config;
    let strategies: Vec<&str> = c.generate.strategies.iter().map(|s| s.as_str()).collect();
    println!("{}: valid", args.config.display());
    for (name, import) in &c.generate.import {
        println!("  import     {name} <- {} (question = `{}`)", import.path.display(), import.question);
    }
    println!("  run        {} -> {}", c.run.name, c.run.out_dir.join(&c.run.name).display());
    println!(
        "  generate   {} x {} problems (k = {}) with llm `{}`",
        strategies.join(", "),
        c.generate.num_problems,
        c.generate.k,
        c.generate.llm
    );
    let students: Vec<&str> = c.train.students.keys().map(String::as_str).collect();
    println!("  students   {}", if students.is_empty() { "(none)".into() } else { students.join(", ") });
    // What the primary comparisons can detect, from report.power's assumptions.
    for (i, line) in pipeline::stages::report::power::describe(c).iter().enumerate() {
        println!("  {}  {line}", if i == 0 { "power    " } else { "         " });
    }
    // The memory plan of each student at the longest rows the config allows: a run that
    // cannot fit fails here, before any call is paid for.
    let t = &c.train;
    let devices = pipeline::stages::train::train_devices(t)?;
    let device = devices[0];
    let on = match devices.len() {
        1 => device.to_string(),
        n => format!("each of {n} devices ({} holds the optimizer)", device),
    };
    for (name, s) in &t.students {
        // A student not on this machine (a cluster path) is planned from its published
        // config.json when we ship it (data/model_configs/).
        let published = s
            .model_path
            .file_name()
            .map(|n| Path::new(PUBLISHED_CONFIGS).join(format!("{}.json", n.to_string_lossy())));
        let (model, from) = match (s.model_path.exists(), published) {
            (false, Some(p)) if p.exists() => (trainer::pretrained::model_config(&p), p),
            _ => (trainer::pretrained::model_config(&s.model_path), s.model_path.clone()),
        };
        let model = match model {
            Ok(model) => model,
            Err(e) => {
                println!("  memory     {name}: no plan yet ({e})");
                continue;
            }
        };
        if from != s.model_path {
            println!(
                "  memory     {name}: {} is not here; planned from {}",
                s.model_path.display(),
                from.display()
            );
        }
        let plan = pipeline::stages::train::memory_plan(c, &model, t.max_seq_len)?;
        println!(
            "  memory     {name}: {:.1} GB to train on {on} ({}, batch {} x {} tokens, activation checkpointing {})",
            plan.total_gb(),
            t.dtype.resolve(device),
            t.batch_size,
            t.max_seq_len,
            if t.checkpoint_activations { "on" } else { "off" },
        );
        for line in plan.table().lines() {
            println!("             {line}");
        }
        pipeline::stages::train::check_memory(c, &plan, &format!("train.students.{name}"))?;
    }
    Ok(())
}

fn run(args: &RunArgs, multi: MultiProgress) -> anyhow::Result<()> {
    let loaded = load(&args.config)?;
    let force = forced(&args.force);
    let run_dir = match (args.shard, args.stages.as_deref()) {
        (Some(shard), Some([stage])) => {
            RunDir::open_shard(&loaded.config, &format!("{stage}-{}", shard.tag()))?
        }
        _ => RunDir::open(&loaded.config)?,
    };
    tracing::info!(
        "run `{}` from {} into {}",
        loaded.config.run.name,
        loaded.path.display(),
        run_dir.root().display()
    );
    let reporter = TerminalReporter::new(multi);
    let runner = Runner::new(&loaded.config, &run_dir, stages::implemented(), &reporter);
    let outcomes = runner
        .run(&RunOptions {
            stages: args.stages.clone(),
            force,
            refresh_cache: forced(&args.refresh_cache),
            shard: args.shard,
        })
        .with_context(|| format!("run `{}`", loaded.config.run.name))?;
    if let [(stage, Outcome::Sharded { shard, counts })] = &outcomes[..] {
        tracing::info!(
            "{stage} shard {shard} done ({}); `pipeline run --stages {stage}` merges the shards",
            serde_json::to_string(counts).unwrap_or_default()
        );
        return Ok(());
    }
    let ran = outcomes.iter().filter(|(_, o)| matches!(o, Outcome::Ran(_))).count();
    tracing::info!("finished: {ran} stage(s) ran, {} up to date", outcomes.len() - ran);
    if outcomes.iter().any(|(s, _)| *s == StageName::Report) {
        let path = run_dir.root().join("report").join("report.md");
        if let Ok(text) = std::fs::read_to_string(&path) {
            println!("{text}");
            tracing::info!("report: {}", path.display());
        }
    }
    Ok(())
}

fn slurm(args: &SlurmArgs) -> anyhow::Result<()> {
    use pipeline::slurm;
    let loaded = load(&args.config)?;
    let c = &loaded.config;
    // The run's lock: no `pipeline run` may rewrite the run while its scripts are written.
    let _run_dir = RunDir::open(c)?;
    let stages: Vec<StageName> = StageName::FLOW
        .into_iter()
        .filter(|s| args.stages.as_ref().is_none_or(|only| only.contains(s)))
        .collect();
    let workdir = std::env::current_dir().context("the working directory")?;
    let binary = match &c.slurm.binary {
        Some(b) => workdir.join(b),
        None => std::env::current_exe().context("the path of this binary")?,
    };
    let dir = workdir.join(&c.run.out_dir).join(&c.run.name).join("slurm");
    let jobs = slurm::write_scripts(c, &stages, &dir, &workdir, &binary)?;
    println!("{} job(s) written to {}:", jobs.len(), dir.display());
    for job in &jobs {
        let array = job.shards.map(|n| format!(" array 0-{}", n - 1)).unwrap_or_default();
        println!("  {:<22} gpus {}  time {}{array}", job.name, job.gpus, job.time);
    }
    if args.dry_run {
        println!("dry run; to submit: {} (or rerun without --dry-run)", dir.join("submit.sh").display());
        for (i, job) in jobs.iter().enumerate() {
            let after = (i > 0).then(|| format!("<{}>", jobs[i - 1].name));
            println!("  sbatch {}", slurm::sbatch_args(job, after.as_deref()).join(" "));
        }
        return Ok(());
    }
    let ids = slurm::submit(&jobs, &mut |job, id| println!("submitted {} as {id}", job.name))?;
    let record: Vec<serde_json::Value> = jobs
        .iter()
        .zip(&ids)
        .map(|(j, id)| serde_json::json!({ "job": j.name, "id": id, "script": j.script }))
        .collect();
    let path = dir.join("jobs.json");
    std::fs::write(&path, serde_json::to_string_pretty(&record)?)
        .with_context(|| path.display().to_string())?;
    println!("job ids in {}; follow with: squeue -u $USER", path.display());
    Ok(())
}

fn grade(args: &GradeArgs) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let written = match (&args.input, &args.gold, &args.pred) {
        (Some(path), _, _) => {
            let lines = pipeline::grade_file::grade_file(path, args.extraction)?;
            lines.iter().try_for_each(|l| writeln!(out, "{l}"))
        }
        (None, Some(gold), Some(pred)) => {
            // The evaluate stage's own entry point and extraction option.
            let g = eval::grader::grade_response(gold, pred, args.problem.as_deref(), args.extraction);
            let json = serde_json::json!({ "equal": g.verdict.equal, "extracted": g.extracted,
                                           "reason": g.verdict.reason, "extraction": args.extraction });
            writeln!(out, "{json}")
        }
        _ => unreachable!("clap requires --input or both --gold and --pred"),
    };
    match written {
        // `pipeline grade ... | head` is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn forced(items: &[Forced]) -> BTreeSet<StageName> {
    items
        .iter()
        .flat_map(|f| match f {
            Forced::All => StageName::FLOW.to_vec(),
            Forced::Stage(s) => vec![*s],
        })
        .collect()
}
