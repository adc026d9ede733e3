//! `pipeline`: the command line. Parses arguments, sets up logging and progress, and hands
//! off to the library.

mod args;
mod chat;
mod curate;
mod export;
mod export_data;
mod grade;
mod reporter;
mod run;
mod serve;
mod slurm;
mod validate;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use indicatif::MultiProgress;
use pipeline::config::ConfigError;
use tracing_subscriber::EnvFilter;
use vs_core::StageName;

use reporter::LogWriter;

/// mimalloc for the whole process: built with `override`, it also serves libtorch's
/// allocations, whose varied sizes (a KV cache that grows, rows that join and leave) glibc's
/// allocator kept after they were freed (the default run peaked at 9.1 GiB; 3.1 GB with
/// mimalloc, and faster).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    Run(run::RunArgs),
    /// Check a config (and its --set overrides) without running anything.
    Validate(validate::ValidateArgs),
    /// Write one sbatch script per stage under <run>/slurm/ (job arrays for the sharded
    /// stages, each job after the previous with afterok) and submit the chain with sbatch.
    Slurm(slurm::SlurmArgs),
    /// Grade answers: a JSONL file of {gold, pred} records, or one --gold/--pred pair.
    Grade(grade::GradeArgs),
    /// Chat with a model in-process (GGUF file or HF folder): the model's chat template is
    /// applied and the reply streams to stdout, greedy by default.
    Chat(chat::ChatArgs),
    /// Serve a model (GGUF file, HF folder or fine-tuned export) over an OpenAI-compatible API
    /// (`/v1/chat/completions`, `/v1/models`, `/health`), batching concurrent requests.
    Serve(serve::ServeArgs),
    /// Clean any file of problems (JSONL, JSON, Parquet) as the dedup stage does: degenerate
    /// items, exact and near duplicates, benchmark contamination; kept and dropped (with
    /// reasons) written out, and a summary table.
    Curate(curate::CurateArgs),
    /// Write a run's verified data per arm for other trainers: LLaMA-Factory alpaca and
    /// sharegpt JSON with dataset_info.json, and Hugging Face datasets folders with a card.
    ExportData(export_data::ExportDataArgs),
    /// Convert a model (GGUF file or HF folder) to a Hugging Face folder: f32 safetensors,
    /// config.json, tokenizer.json and tokenizer_config.json with the chat template.
    Export(export::ExportArgs),
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
        Command::Validate(args) => validate::validate(&args),
        Command::Run(args) => run::run(&args, multi),
        Command::Slurm(args) => slurm::slurm(&args),
        Command::Grade(args) => grade::grade(&args),
        Command::Chat(args) => chat::chat(&args),
        Command::Export(args) => export::export(&args),
        Command::Serve(args) => serve::serve(&args),
        Command::Curate(args) => curate::curate(&args),
        Command::ExportData(args) => export_data::export_data(&args),
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
