//! What an LLM-calling stage starts with (its client, runtime and server) and how it counts the
//! calls that failed for good.

use std::collections::BTreeMap;

use super::error::StageError;
use super::stage::StageContext;
use crate::config::ResolvedLlm;

/// What an LLM-calling stage holds while it runs: the client, the runtime that drives it, and
/// the server started for it (stopped when this is dropped).
pub type LlmSession =
    (std::sync::Arc<llm::Client>, tokio::runtime::Runtime, Option<llm::server::RunningServer>);

/// The client for `llm` (its calls cached under the run, keyed by its endpoint identity) and a
/// runtime to drive it: what every LLM-calling stage starts with. When the LLM has a `serve`
/// section, its server is started first (its log in the stage folder, its pid file in
/// `<run>/servers/`).
pub fn llm_client(ctx: &StageContext<'_>, llm: &ResolvedLlm) -> Result<LlmSession, StageError> {
    let endpoint =
        llm.endpoint_identity(ctx.digests).map_err(|e| StageError::config(format!("llm.{}", llm.name), e))?;
    let cache = llm::cache::CallCache::new(
        ctx.run_dir.root().join("cache").join("llm"),
        crate::identity::short(&endpoint),
    )
    .refreshing(ctx.refresh_cache);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| StageError::Runtime(format!("cannot start the async runtime: {e}")))?;
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
            // Pid files live in the run folder, not the stage's: any later run that starts a
            // server reaps what a killed one left, whichever stage it was.
            let stage = ctx.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let pid_file =
                ctx.run_dir.root().join("servers").join(format!("{stage}-{}{shard}.pid", llm.name));
            let server = runtime
                .block_on(llm::server::RunningServer::start(&key, model, spec, &log, &pid_file))
                .map_err(|e| StageError::Other(Box::new(e)))?;
            *base_url = server.base_url().to_owned();
            Some(server)
        }
        _ => None,
    };
    let client =
        llm::Client::new(&llm, cache).map_err(|e| StageError::llm(format!("llm.{}", llm.name), e))?;
    Ok((std::sync::Arc::new(client), runtime, server))
}

/// What a stage's calls did, for its manifest: a reading of the client taken when they start;
/// [`CallMeter::to_json`] once they end says how many were sent and replayed, the completion
/// tokens per second of wall time the stage saw, and for the local engine the batches it
/// formed and where its time went (a slow stage shows itself: small batches, or masks).
pub struct CallMeter {
    started: std::time::Instant,
    calls: (u64, u64, u64),
    engine: Option<llm::local::EngineSnapshot>,
}

impl CallMeter {
    pub fn start(client: &llm::Client) -> Self {
        Self {
            started: std::time::Instant::now(),
            calls: client.stats().read(),
            engine: client.provider().engine_stats(),
        }
    }

    pub fn to_json(&self, client: &llm::Client) -> serde_json::Value {
        let wall = self.started.elapsed().as_secs_f64();
        let (cached, sent, tokens) = client.stats().read();
        let tokens = tokens - self.calls.2;
        let mut v = serde_json::json!({
            "calls_sent": sent - self.calls.1,
            "calls_cached": cached - self.calls.0,
            "completion_tokens": tokens,
            "wall_s": (wall * 1000.0).round() / 1000.0,
            "completion_tokens_per_s": (wall > 0.0).then(|| (tokens as f64 / wall * 1000.0).round() / 1000.0),
        });
        if let (Some(now), Some(before)) = (client.provider().engine_stats(), self.engine) {
            v["engine"] = now.since(&before).to_json();
        }
        v
    }
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
        Err(StageError::TooManyFailures(Box::new(super::error::TooManyFailures {
            what: what.to_owned(),
            failed,
            planned,
            fraction,
            summary: self.summary(),
            examples: self.examples.join(" | "),
        })))
    }

    pub fn summary(&self) -> String {
        self.by_reason.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ")
    }
}
