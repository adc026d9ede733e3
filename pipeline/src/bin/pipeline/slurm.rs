//! `pipeline slurm`: one sbatch script per stage, chained with afterok, and submitted.

use anyhow::Context;
use clap::Args;
use pipeline::run_dir::RunDir;
use vs_core::StageName;

use crate::args::ConfigArgs;

#[derive(Args)]
pub struct SlurmArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Only these stages (comma-separated, in flow order); all when absent.
    #[arg(long, value_delimiter = ',', value_name = "STAGE,...")]
    stages: Option<Vec<StageName>>,
    /// Write the scripts and print the sbatch commands without submitting.
    #[arg(long)]
    dry_run: bool,
}

pub fn slurm(args: &SlurmArgs) -> anyhow::Result<()> {
    use pipeline::slurm;
    let loaded = args.config.load()?;
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
