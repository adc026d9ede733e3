//! Runs the selected stages in flow order. A stage is skipped when its manifest matches: same
//! stage version, same config slice, same input digests, and every recorded output still on
//! disk with the recorded hash. Otherwise (or under `--force`) it runs and a new manifest is
//! written once it has finished.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use crate::config::Config;
use crate::identity::Identify;
use crate::manifest::{FileDigest, Manifest, ManifestError};
use crate::progress::Reporter;
use crate::run_dir::{RunDir, RunDirError};
use crate::stages::{Stage, StageContext, StageError};
use vs_core::DigestCache;
use vs_core::digest::{sha256_file, sha256_hex};
use vs_core::{Shard, StageName};

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Only these stages (run in flow order); all of them when `None`.
    pub stages: Option<Vec<StageName>>,
    /// Rerun these even if their manifests match (replaying their cached calls).
    pub force: BTreeSet<StageName>,
    /// Rerun these and re-ask the LLM instead of replaying cached calls.
    pub refresh_cache: BTreeSet<StageName>,
    /// Do one share of a single stage's work (a job-array task): no skip check, no manifest.
    pub shard: Option<Shard>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Ran(Manifest),
    Skipped(Manifest),
    /// One shard's work is done; the stage's unsharded run merges it.
    Sharded {
        shard: Shard,
        counts: std::collections::BTreeMap<String, serde_json::Value>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("stage `{0}` is not implemented yet; stopping here (completed stages keep their outputs)")]
    NotImplemented(StageName),
    #[error(
        "stage `{stage}` needs the output of stage `{needs}`, which has not finished ({} is missing): run `{needs}` first or add it to --stages",
        manifest.display()
    )]
    MissingUpstream { stage: StageName, needs: StageName, manifest: PathBuf },
    #[error("stage `{stage}`: input {}: {source}", path.display())]
    Input { stage: StageName, path: PathBuf, source: std::io::Error },
    /// The stage, what failed in it, and whether a rerun can succeed.
    #[error("stage `{stage}` failed: {source}\n({})", source.rerun())]
    Stage { stage: StageName, source: StageError },
    #[error("stage `{stage}` reported output {} outside its folder {}", path.display(), dir.display())]
    OutputOutsideStage { stage: StageName, path: PathBuf, dir: PathBuf },
    #[error("--shard runs exactly one stage (got {0}); pass --stages <stage>")]
    ShardNeedsOneStage(usize),
    #[error("stage `{0}` cannot be sharded; only generate, solve and evaluate can")]
    NotShardable(StageName),
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

pub struct Runner<'a> {
    config: &'a Config,
    run_dir: &'a RunDir,
    stages: Vec<Box<dyn Stage>>,
    reporter: &'a dyn Reporter,
    digests: DigestCache,
}

impl<'a> Runner<'a> {
    pub fn new(
        config: &'a Config,
        run_dir: &'a RunDir,
        stages: Vec<Box<dyn Stage>>,
        reporter: &'a dyn Reporter,
    ) -> Self {
        // Shared by every run under `out_dir`: a model used by several runs is hashed once.
        let digests = DigestCache::open(config.run.out_dir.join(".cache").join("file-digests.json"));
        Self { config, run_dir, stages, reporter, digests }
    }

    fn identify(&self) -> Identify<'_> {
        Identify { config: self.config, digests: &self.digests }
    }

    pub fn run(&self, options: &RunOptions) -> Result<Vec<(StageName, Outcome)>, RunError> {
        self.run_dir.write_config(self.config)?;
        // Servers a killed earlier run left behind (their pid files in `servers/`) are stopped
        // now, whatever stages this run starts: they hold GPUs and ports.
        llm::server::reap_orphans(&self.run_dir.root().join("servers"));
        let selected: Vec<StageName> = StageName::FLOW
            .into_iter()
            .filter(|s| options.stages.as_ref().is_none_or(|only| only.contains(s)))
            .collect();
        if let Some(shard) = options.shard {
            let [name] = selected[..] else { return Err(RunError::ShardNeedsOneStage(selected.len())) };
            let stage =
                self.stages.iter().find(|s| s.name() == name).ok_or(RunError::NotImplemented(name))?;
            return Ok(vec![(name, self.run_shard(stage.as_ref(), shard)?)]);
        }
        let mut outcomes = Vec::new();
        for name in selected {
            let stage =
                self.stages.iter().find(|s| s.name() == name).ok_or(RunError::NotImplemented(name))?;
            let refresh = options.refresh_cache.contains(&name);
            let outcome =
                self.run_stage(stage.as_ref(), options.force.contains(&name) || refresh, refresh)?;
            outcomes.push((name, outcome));
        }
        Ok(outcomes)
    }

    fn run_shard(&self, stage: &dyn Stage, shard: Shard) -> Result<Outcome, RunError> {
        let name = stage.name();
        if !stage.shardable() {
            return Err(RunError::NotShardable(name));
        }
        // Upstream must have finished, exactly as for a whole run.
        self.inputs(stage)?;
        let dir = self.run_dir.stage_dir(name);
        std::fs::create_dir_all(&dir).map_err(|source| RunDirError::Io { path: dir.clone(), source })?;
        tracing::info!("stage `{name}`: shard {shard}");
        let clock = Instant::now();
        let ctx = StageContext {
            config: self.config,
            run_dir: self.run_dir,
            dir,
            force: false,
            reporter: self.reporter,
            shard: Some(shard),
            refresh_cache: false,
            digests: &self.digests,
        };
        let output = stage.run(&ctx).map_err(|source| RunError::Stage { stage: name, source })?;
        tracing::info!("stage `{name}`: shard {shard} done in {:.1?}", clock.elapsed());
        Ok(Outcome::Sharded { shard, counts: output.counts })
    }

    fn run_stage(&self, stage: &dyn Stage, force: bool, refresh_cache: bool) -> Result<Outcome, RunError> {
        let name = stage.name();
        let slice =
            stage.config_slice(self.identify()).map_err(|source| RunError::Stage { stage: name, source })?;
        let config_sha256 = sha256_hex(&serde_json::to_vec(&slice).expect("config slices serialize"));
        let inputs = self.inputs(stage)?;
        let manifest_path = self.run_dir.manifest_path(name);

        let previous = match Manifest::read(&manifest_path) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("{e}; rerunning the stage");
                None
            }
        };
        if let Some(previous) = previous {
            if !force
                && previous.stage_version == stage.version()
                && previous.config_sha256 == config_sha256
                && previous.inputs == inputs
            {
                if self.outputs_intact(&previous) {
                    self.reporter.stage_skipped(name, &previous);
                    return Ok(Outcome::Skipped(previous));
                }
                tracing::info!(
                    "stage `{name}`: an output changed or disappeared since the last run; rerunning"
                );
            }
            // Remove it first: a crash during the rerun must not leave a manifest that vouches
            // for outputs being rewritten.
            std::fs::remove_file(&manifest_path)
                .map_err(|source| ManifestError::Io { path: manifest_path.clone(), source })?;
        }

        let dir = self.run_dir.stage_dir(name);
        std::fs::create_dir_all(&dir).map_err(|source| RunDirError::Io { path: dir.clone(), source })?;
        self.reporter.stage_started(name);
        let started_at = SystemTime::now();
        let clock = Instant::now();
        let ctx = StageContext {
            config: self.config,
            run_dir: self.run_dir,
            dir: dir.clone(),
            force,
            reporter: self.reporter,
            shard: None,
            refresh_cache,
            digests: &self.digests,
        };
        let output = stage.run(&ctx).map_err(|source| {
            self.reporter.stage_failed(name);
            RunError::Stage { stage: name, source }
        })?;

        let mut outputs = Vec::with_capacity(output.outputs.len());
        for path in &output.outputs {
            if !path.starts_with(&dir) {
                return Err(RunError::OutputOutsideStage { stage: name, path: path.clone(), dir });
            }
            let digest = FileDigest::of(path, self.run_dir.label(path)).map_err(|source| {
                RunError::Stage { stage: name, source: StageError::Io { path: path.clone(), source } }
            })?;
            outputs.push(digest);
        }
        let took = clock.elapsed();
        let manifest = Manifest {
            stage: name,
            stage_version: stage.version(),
            pipeline_version: env!("CARGO_PKG_VERSION").to_owned(),
            config: slice,
            config_sha256,
            inputs,
            outputs,
            counts: output.counts,
            metrics: output.metrics,
            started_at: humantime::format_rfc3339_seconds(started_at).to_string(),
            finished_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            wall_seconds: took.as_secs_f64(),
        };
        manifest.write(&manifest_path)?;
        self.reporter.stage_finished(name, &manifest, took);
        Ok(Outcome::Ran(manifest))
    }

    /// Upstream stages' output digests (from their manifests, not re-hashed), then the
    /// stage's external files, hashed now.
    fn inputs(&self, stage: &dyn Stage) -> Result<Vec<FileDigest>, RunError> {
        let mut inputs = Vec::new();
        for needs in stage.upstream(self.config) {
            let manifest = self.run_dir.manifest_path(needs);
            match Manifest::read(&manifest)? {
                Some(m) => inputs.extend(m.outputs),
                None => return Err(RunError::MissingUpstream { stage: stage.name(), needs, manifest }),
            }
        }
        for path in stage.external_inputs(self.config) {
            let input = |source| RunError::Input { stage: stage.name(), path: path.clone(), source };
            let bytes = std::fs::metadata(&path).map_err(input)?.len();
            let sha256 = self.digests.file(&path).map_err(input)?;
            inputs.push(FileDigest { path: path.to_string_lossy().into_owned(), sha256, bytes });
        }
        for (path, data) in stage.embedded_inputs(self.config) {
            inputs.push(FileDigest {
                path: path.to_string_lossy().into_owned(),
                sha256: vs_core::digest::sha256_hex(data),
                bytes: data.len() as u64,
            });
        }
        Ok(inputs)
    }

    fn outputs_intact(&self, manifest: &Manifest) -> bool {
        manifest.outputs.iter().all(|out| {
            let path = self.run_dir.resolve(&out.path);
            std::fs::metadata(&path).is_ok_and(|m| m.len() == out.bytes)
                && sha256_file(&path).is_ok_and(|(sha, _)| sha == out.sha256)
        })
    }
}
