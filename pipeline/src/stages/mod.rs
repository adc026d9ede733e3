//! The pipeline's stages: their names and flow order, the trait each implements (one file per
//! stage in this folder), and the registry of those that exist.

pub mod arms;
pub mod dedup;
pub mod evaluate;
pub mod generate;
pub mod grading;
pub mod report;
pub mod solve;
pub mod train;
pub mod verify;

use std::collections::BTreeMap;
use std::path::PathBuf;

use vs_core::{DigestCache, Shard, StageName};

use crate::config::{Config, ResolvedLlm};
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

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Records(#[from] vs_core::jsonl::JsonlError),
    #[error(transparent)]
    Other(#[from] Box<dyn std::error::Error + Send + Sync>),
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
    spec.parse().map_err(|e: trainer::DeviceSpecError| StageError::Failed(format!("{key}: {e}")))
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

/// What an LLM-calling stage holds while it runs: the client, the runtime that drives it, and
/// the server started for it (stopped when this is dropped).
pub type LlmSession =
    (std::sync::Arc<llm::Client>, tokio::runtime::Runtime, Option<llm::server::RunningServer>);

/// The client for `llm` (its calls cached under the run, keyed by its endpoint identity) and a
/// runtime to drive it: what every LLM-calling stage starts with. When the LLM has a `serve`
/// section, its server is started first (its log in the stage folder).
pub fn llm_client(ctx: &StageContext<'_>, llm: &ResolvedLlm) -> Result<LlmSession, StageError> {
    let endpoint = llm
        .endpoint_identity(ctx.digests)
        .map_err(|e| StageError::Failed(format!("llm.{}: {e}", llm.name)))?;
    let cache = llm::cache::CallCache::new(
        ctx.run_dir.root().join("cache").join("llm"),
        crate::identity::short(&endpoint),
    )
    .refreshing(ctx.refresh_cache);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| StageError::Failed(format!("cannot start the async runtime: {e}")))?;
    let mut llm = llm.clone();
    let server = match (&llm.serve, &mut llm.endpoint) {
        (Some(spec), crate::config::Endpoint::Openai { base_url, model, .. }) => {
            let shard = ctx.shard.map(|s| format!(".{}", s.tag())).unwrap_or_default();
            let log = ctx.dir.join(format!("server-{}{shard}.log", llm.name));
            // Errors name the config key: an `[llm.<name>]` section's, or evaluate's own.
            let key = match ctx.config.llm.contains_key(&llm.name) {
                true => format!("llm.{}.serve", llm.name),
                false => "evaluate.serve".to_owned(),
            };
            let server = runtime
                .block_on(llm::server::RunningServer::start(&key, model, spec, &log))
                .map_err(|e| StageError::Failed(e.to_string()))?;
            *base_url = server.base_url().to_owned();
            Some(server)
        }
        _ => None,
    };
    let client = llm::Client::new(&llm, cache).map_err(|e| StageError::Failed(e.to_string()))?;
    Ok((std::sync::Arc::new(client), runtime, server))
}

/// Calls that failed for good, by reason, and whether they are too many: the stage stops
/// with a non-zero exit once they exceed `run.max_failed_fraction` of what it planned.
#[derive(Debug, Default, Clone)]
pub struct Failures {
    pub by_reason: BTreeMap<String, u64>,
    pub examples: Vec<String>,
}

impl Failures {
    pub fn add(&mut self, e: &llm::LlmError) {
        *self.by_reason.entry(e.kind().to_owned()).or_default() += 1;
        if self.examples.len() < 3 {
            self.examples.push(e.to_string().chars().take(300).collect());
        }
    }

    pub fn total(&self) -> u64 {
        self.by_reason.values().sum()
    }

    /// An error when more than `fraction` of `planned` units failed.
    pub fn check(&self, what: &str, planned: usize, fraction: f64) -> Result<(), StageError> {
        let failed = self.total();
        if failed == 0 || (failed as f64) <= fraction * planned as f64 {
            return Ok(());
        }
        Err(StageError::Failed(format!(
            "{what}: {failed} of {planned} failed ({}), more than run.max_failed_fraction = {fraction}; \
             what succeeded is kept and the next run asks only for the rest. First errors: {}",
            self.summary(),
            self.examples.join(" | ")
        )))
    }

    pub fn summary(&self) -> String {
        self.by_reason.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ")
    }
}

/// The stages built so far. A stage of [`StageName::FLOW`] missing here makes the runner stop
/// with "not implemented yet" rather than fake its outputs.
pub fn implemented() -> Vec<Box<dyn Stage>> {
    vec![
        Box::new(generate::Generate),
        Box::new(solve::Solve),
        Box::new(dedup::Dedup),
        Box::new(verify::Verify),
        Box::new(train::Train),
        Box::new(evaluate::Evaluate),
        Box::new(report::Report),
    ]
}
