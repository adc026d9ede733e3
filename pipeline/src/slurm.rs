//! `pipeline slurm`: the run as a chain of Slurm jobs. One sbatch script per stage under
//! `runs/<name>/slurm/`, rendered from `slurm.template`; generate, solve and evaluate can be
//! job arrays (each task a disjoint shard, see [`vs_core::Shard`]) followed by a merge
//! job, which is the stage's ordinary run. Each job starts only after the one before it
//! succeeded (`--dependency=afterok:<id>`). `submit.sh` replays the same chain by hand.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use crate::config::{Config, SlurmConfig};
use vs_core::StageName;
use vs_core::fs::write_atomic;

#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("template {}: {message}", path.display())]
    Template { path: PathBuf, message: String },
    #[error("cannot run `sbatch` (is this a Slurm login node?): {0}")]
    Spawn(std::io::Error),
    #[error("sbatch {script} failed ({status}): {stderr}")]
    Sbatch { script: String, status: String, stderr: String },
    #[error("sbatch {script} printed no job id: {stdout:?}")]
    NoJobId { script: String, stdout: String },
}

/// One job of the chain.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    /// `01-generate-shards`, `02-generate`, ...
    pub name: String,
    pub stage: StageName,
    /// Array size when the job is a job array of shards.
    pub shards: Option<usize>,
    pub script: PathBuf,
    pub gpus: u32,
    pub time: String,
}

/// The planned chain: jobs in submission order, each depending on the one before.
pub fn plan(config: &Config, stages: &[StageName]) -> Vec<(String, StageName, Option<usize>)> {
    let shards = |s: StageName| match s {
        StageName::Generate => config.slurm.shards.generate,
        StageName::Solve => config.slurm.shards.solve,
        StageName::Evaluate => config.slurm.shards.evaluate,
        _ => 1,
    };
    let mut jobs = Vec::new();
    for &stage in stages {
        let n = shards(stage);
        if n > 1 {
            jobs.push((format!("{stage}-shards"), stage, Some(n)));
        }
        jobs.push((stage.to_string(), stage, None));
    }
    jobs.into_iter()
        .enumerate()
        .map(|(i, (name, stage, n))| (format!("{:02}-{name}", i + 1), stage, n))
        .collect()
}

/// GPUs a stage's job asks for: what the server it starts needs (`[llm.<name>.serve]`), as
/// many as `train.devices` lists for training, one for evaluating on the local engine.
fn gpus_default(config: &Config, stage: StageName) -> u32 {
    let served = served_llm(config, stage).map(|(_, s)| s.gpus());
    match stage {
        StageName::Train => {
            config.train.devices.iter().filter(|d| d.starts_with("cuda")).count().max(1) as u32
        }
        StageName::Evaluate => served.unwrap_or(1),
        _ => served.unwrap_or(0),
    }
}

/// The LLM a stage calls whose server the stage starts itself, with its `serve` section.
fn served_llm(config: &Config, stage: StageName) -> Option<(String, &crate::config::ServeConfig)> {
    if stage == StageName::Evaluate
        && let Some(serve) = &config.evaluate.serve
    {
        return Some(("a server for each evaluation target in turn".into(), serve));
    }
    let name = match stage {
        StageName::Generate => Some(config.generate.llm.as_str()),
        StageName::Solve => Some(config.solve.llm.as_deref().unwrap_or(&config.generate.llm)),
        StageName::Evaluate => config.evaluate.llm.as_deref(),
        _ => None,
    }?;
    config.llm.get(name).and_then(|l| l.serve.as_ref()).map(|s| (format!("llm.{name}'s server"), s))
}

/// Single-quoted for POSIX shells.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=+,@%".contains(c)) {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Double-quoted: `$VAR` still expands (`/scratch/$USER`), nothing else is special.
pub fn double_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if matches!(c, '"' | '\\' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Writes the scripts, the effective config they run and `submit.sh` into `dir`.
pub fn write_scripts(
    config: &Config,
    stages: &[StageName],
    dir: &Path,
    workdir: &Path,
    binary: &Path,
) -> Result<Vec<Job>, SlurmError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| SlurmError::Io { path, source }
    };
    std::fs::create_dir_all(dir.join("logs")).map_err(io(dir))?;
    let s: &SlurmConfig = &config.slurm;
    let template_path = if s.template.is_absolute() { s.template.clone() } else { workdir.join(&s.template) };
    let source = std::fs::read_to_string(&template_path).map_err(io(&template_path))?;
    let mut env = minijinja::Environment::new();
    env.set_keep_trailing_newline(true);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.add_filter("sh", |v: String| shell_quote(&v));
    env.add_filter("dq", |v: String| double_quote(&v));
    let template_err =
        |e: minijinja::Error| SlurmError::Template { path: template_path.clone(), message: format!("{e:#}") };
    env.add_template("stage", &source).map_err(template_err)?;
    let template = env.get_template("stage").map_err(template_err)?;

    // The jobs run exactly this config (file plus --set overrides), whatever happens to the
    // original file before they start.
    let config_path = dir.join("config.toml");
    write_atomic(&config_path, config.to_toml().as_bytes()).map_err(io(&config_path))?;

    let mut jobs = Vec::new();
    for (name, stage, shards) in plan(config, stages) {
        let o = s.stages.get(stage.as_str()).cloned().unwrap_or_default();
        let gpus = o.gpus.unwrap_or_else(|| gpus_default(config, stage));
        let time = o.time.clone().unwrap_or_else(|| s.time.clone());
        let mut args = vec![
            shell_quote(&binary.display().to_string()),
            "run".into(),
            "--config".into(),
            shell_quote(&config_path.display().to_string()),
            "--stages".into(),
            stage.to_string(),
        ];
        if let Some(n) = shards {
            args.push("--shard".into());
            args.push(format!("\"${{SLURM_ARRAY_TASK_ID}}/{n}\""));
        }
        let context = minijinja::context! {
            run => config.run.name,
            stage => stage.as_str(),
            job_name => format!("{}-{name}", config.run.name),
            workdir => workdir.display().to_string(),
            log_dir => dir.join("logs").display().to_string(),
            partition => o.partition.clone().or_else(|| s.partition.clone()),
            account => s.account,
            qos => s.qos,
            time => time,
            cpus_per_task => o.cpus_per_task.unwrap_or(s.cpus_per_task),
            mem => o.mem.clone().or_else(|| s.mem.clone()),
            gpus => gpus,
            servers => served_llm(config, stage).map(|(what, s)| minijinja::context! {
                what => what,
                engine => serde_json::to_value(s.engine).ok(),
                gpus => s.gpus(),
            }).into_iter().collect::<Vec<_>>(),
            array => shards.map(|n| format!("0-{}", n - 1)),
            extra => s.extra,
            modules => s.modules,
            env => s.env,
            setup => s.setup,
            command => args.join(" "),
        };
        let text = template.render(context).map_err(template_err)?;
        let script = dir.join(format!("{name}.sbatch"));
        write_atomic(&script, text.as_bytes()).map_err(io(&script))?;
        jobs.push(Job { name, stage, shards, script, gpus, time });
    }

    let mut submit = String::from(
        "#!/usr/bin/env bash\n# Submits the chain by hand (what `pipeline slurm` does without --dry-run).\nset -euo pipefail\ncd \"$(dirname \"${BASH_SOURCE[0]}\")\"\n",
    );
    for (i, job) in jobs.iter().enumerate() {
        let dep = if i == 0 { String::new() } else { format!(" --dependency=afterok:$j{}", i - 1) };
        let file = job.script.file_name().expect("a file").to_string_lossy();
        submit.push_str(&format!(
            "j{i}=$(sbatch --parsable{dep} {file} | cut -d';' -f1)\necho \"{} $j{i}\"\n",
            job.name
        ));
    }
    let submit_path = dir.join("submit.sh");
    write_atomic(&submit_path, submit.as_bytes()).map_err(io(&submit_path))?;
    set_executable(&submit_path)?;
    Ok(jobs)
}

#[cfg(unix)]
fn set_executable(path: &Path) -> Result<(), SlurmError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|source| SlurmError::Io { path: path.to_owned(), source })
}

#[cfg(not(unix))]
fn set_executable(_: &Path) -> Result<(), SlurmError> {
    Ok(())
}

/// The sbatch command line for `job` after the job `after` (if any).
pub fn sbatch_args(job: &Job, after: Option<&str>) -> Vec<String> {
    let mut args = vec!["--parsable".to_owned()];
    if let Some(id) = after {
        args.push(format!("--dependency=afterok:{id}"));
    }
    args.push(job.script.display().to_string());
    args
}

/// Submits the chain in order; returns each job's id. Stops at the first refusal (jobs
/// already queued stay queued; their ids were printed).
pub fn submit(jobs: &[Job], on_submitted: &mut dyn FnMut(&Job, &str)) -> Result<Vec<String>, SlurmError> {
    let mut ids: Vec<String> = Vec::with_capacity(jobs.len());
    for job in jobs {
        let script = job.script.display().to_string();
        let out = Command::new("sbatch")
            .args(sbatch_args(job, ids.last().map(String::as_str)))
            .output()
            .map_err(SlurmError::Spawn)?;
        if !out.status.success() {
            return Err(SlurmError::Sbatch {
                script,
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        // `--parsable` prints `<id>` or `<id>;<cluster>`.
        let id = stdout.trim().split(';').next().unwrap_or_default().to_owned();
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit() || c == '_') {
            return Err(SlurmError::NoJobId { script, stdout });
        }
        on_submitted(job, &id);
        ids.push(id);
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_the_shell() {
        assert_eq!(shell_quote("runs/a-b.toml"), "runs/a-b.toml");
        assert_eq!(shell_quote("it's here"), r"'it'\''s here'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(double_quote(r#"/scratch/$USER/"a`b"#), r#""/scratch/$USER/\"a\`b""#);
    }
}
