//! `pipeline run`: the stages of a config, those up to date skipped.

use std::collections::BTreeSet;

use anyhow::Context;
use clap::Args;
use indicatif::MultiProgress;
use pipeline::run_dir::RunDir;
use pipeline::runner::{Outcome, RunOptions, Runner};
use pipeline::stages;
use vs_core::StageName;

use crate::args::ConfigArgs;
use crate::reporter::TerminalReporter;

#[derive(Args)]
pub struct RunArgs {
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

pub fn run(args: &RunArgs, multi: MultiProgress) -> anyhow::Result<()> {
    let loaded = args.config.load()?;
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

fn forced(items: &[Forced]) -> BTreeSet<StageName> {
    items
        .iter()
        .flat_map(|f| match f {
            Forced::All => StageName::FLOW.to_vec(),
            Forced::Stage(s) => vec![*s],
        })
        .collect()
}
