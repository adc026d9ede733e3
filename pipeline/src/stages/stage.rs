//! The trait each stage implements, what it is given and what it hands back.

use std::collections::BTreeMap;
use std::path::PathBuf;

use vs_core::{DigestCache, Shard, StageName};

use super::arms;
use super::error::StageError;
use crate::config::Config;
use crate::identity::Identify;
use crate::progress::Reporter;
use crate::run_dir::RunDir;

/// What a stage gets to do its work.
pub struct StageContext<'a> {
    pub config: &'a Config,
    pub run_dir: &'a RunDir,
    /// This stage's folder, `runs/<name>/<stage>/`, already created.
    pub dir: PathBuf,
    /// The user asked to redo this stage (`--force`).
    pub force: bool,
    pub reporter: &'a dyn Reporter,
    /// Set when this process is one task of a job array (see [`Shard`]).
    pub shard: Option<Shard>,
    /// Re-ask the LLM instead of replaying cached calls (`--refresh-cache`).
    pub refresh_cache: bool,
    /// Content digests of models and files, cached across runs.
    pub digests: &'a DigestCache,
}

impl StageContext<'_> {
    /// What computes this stage's identities.
    pub fn identify(&self) -> Identify<'_> {
        Identify { config: self.config, digests: self.digests }
    }
}

/// What a finished stage hands back; the runner hashes `outputs` into the manifest.
#[derive(Debug, Default)]
pub struct StageOutput {
    /// Files the stage wrote, all under its folder.
    pub outputs: Vec<PathBuf>,
    pub counts: BTreeMap<String, serde_json::Value>,
    pub metrics: BTreeMap<String, serde_json::Value>,
}

/// One step of the pipeline. The runner decides whether to run it (see `runner`); the stage
/// only does the work and reports its outputs. A stage cut off mid-way must resume from what
/// it already wrote when run again.
pub trait Stage {
    fn name(&self) -> StageName;

    /// Bumped whenever the same inputs and config would now produce different outputs (a test
    /// compares golden outputs against it); it enters the stage's identity and its records'.
    fn version(&self) -> u32;

    /// Stages whose outputs this one reads; their manifests' output digests are its inputs.
    fn upstream(&self, _config: &Config) -> Vec<StageName> {
        self.name().previous().into_iter().collect()
    }

    /// What this stage's outputs depend on besides upstream outputs: config fields, the
    /// identities of the LLMs it calls, the content digests of the models it reads. Recorded
    /// and hashed in the manifest. Built from the resolved config's identity methods, so it
    /// leaves out what does not change outputs (concurrency, timeouts, retries), and tuning
    /// that does not redo paid work. Must not hold secrets (the config never does).
    fn config_slice(&self, id: Identify<'_>) -> Result<serde_json::Value, StageError>;

    /// Files outside the run folder the outputs depend on (model weights, benchmarks).
    fn external_inputs(&self, _config: &Config) -> Vec<PathBuf> {
        Vec::new()
    }

    /// Data built into the binary the outputs depend on (the benchmarks, the built-in task
    /// prompts): `(where it sits in the source tree, its bytes)`, recorded like a file.
    fn embedded_inputs(&self, _config: &Config) -> Vec<(PathBuf, &'static [u8])> {
        Vec::new()
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutput, StageError>;

    /// Whether `run` honours [`StageContext::shard`] (generate, solve, evaluate).
    fn shardable(&self) -> bool {
        false
    }
}

/// The device a stage's `key` (e.g. `evaluate.device`) names, or an error naming the key.
pub fn device(spec: &str, key: &str) -> Result<trainer::DeviceSpec, StageError> {
    spec.parse().map_err(|e: trainer::DeviceSpecError| StageError::config(key, e))
}

/// `{origin: identity}` for every strategy and imported set: the per-arm identities a
/// stage's config slice is made of (and its records carry, hashed).
pub fn strategy_identities(
    id: Identify<'_>,
    unit: impl Fn(Identify<'_>, &vs_core::Origin) -> Result<serde_json::Value, StageError>,
) -> Result<serde_json::Value, StageError> {
    let mut units = serde_json::Map::new();
    for origin in arms::origins(id.config) {
        units.insert(origin.as_str().to_owned(), unit(id, &origin)?);
    }
    Ok(serde_json::Value::Object(units))
}
